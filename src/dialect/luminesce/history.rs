//! `HistoricallyExecutedQueriesApi`: `GET /api/History` starts a background query over the
//! caller's queries in the engine's job list (answered 202 like `PUT /api/SqlBackground`); its
//! progress, JSON result and cancel are `/api/History/{id}`, `/{id}/json` and `DELETE /{id}`,
//! the same job as `/api/SqlBackground/{id}`.

use chrono::{Duration as ChronoDuration, Utc};
use sqlparser::ast::{Ident, Value};

use super::histogram::instant;
use super::params::QueryParams;
use super::sql::values_table;
use super::{Answer, DIALECT, LuminesceFront, models, started};
use crate::engine::{EngineError, JobSpec};
use crate::query::Principal;

/// The history's columns.
const COLUMNS: [&str; 9] = [
    "ExecutionId",
    "QueryName",
    "Sql",
    "Status",
    "State",
    "StartedAt",
    "FinishedAt",
    "RowCount",
    "Error",
];

impl LuminesceFront {
    /// `GET /api/History`: `startAt` (default a day ago) to `endAt` (default now), rows whose
    /// text holds `freeTextSearch`. `showAll` is accepted; a caller sees only its own queries.
    pub(super) async fn history(&self, caller: &Principal, q: &QueryParams) -> Answer {
        let now = Utc::now();
        let start = instant(q, "startAt")?.unwrap_or(now - ChronoDuration::days(1));
        let end = instant(q, "endAt")?.unwrap_or(now);
        q.bool("showAll")?;
        let search = q.nonblank("freeTextSearch").map(|s| s.to_lowercase());
        let text = |s: &str| Value::SingleQuotedString(s.to_string());
        let optional = |s: Option<String>| s.map_or(Value::Null, |s| text(&s));
        let rows: Vec<Vec<Value>> = self
            .engine
            .list(Some(caller))
            .iter()
            .filter(|r| r.created >= start && r.created <= end)
            .map(|r| {
                vec![
                    text(&r.id.to_uuid()),
                    optional(r.spec.name.clone()),
                    text(&r.spec.sql),
                    text(models::task_status(r.state)),
                    text(models::query_state(r.state)),
                    optional(r.started.map(models::timestamp)),
                    optional(r.finished.map(models::timestamp)),
                    r.row_count
                        .map_or(Value::Null, |n| Value::Number(n.to_string(), false)),
                    optional(r.error.as_ref().map(|e| e.to_string())),
                ]
            })
            .filter(|row| {
                search.as_deref().is_none_or(|s| {
                    row.iter().any(|v| match v {
                        Value::SingleQuotedString(t) => t.to_lowercase().contains(s),
                        _ => false,
                    })
                })
            })
            .collect();
        let table = values_table(&COLUMNS, &rows, &Ident::with_quote('"', "History"))
            .map_err(EngineError::internal)?;
        let mut spec = JobSpec::new(
            "select * from Sys.Logs.HcQueryStart",
            caller.clone(),
            DIALECT,
        );
        spec.exec_sql = format!("SELECT * FROM {table}");
        spec.name = Some("History".into());
        let id = self.engine.submit(spec).await?;
        Ok(started(id))
    }
}
