//! `SqlExecutionApi`: the synchronous `PUT /api/Sql/{format}` (the SQL in the body) and
//! `GET /api/Sql/{format}/{query}` (the SQL in the path), which lumipy's `query_and_fetch` calls.
//!
//! Each is a job like any other (in the job list, readable through the other wires by its id),
//! run with the request's timeout and answered once it finishes, in the format the path names.

use std::time::Duration;

use super::fetch::{FetchRequest, Output};
use super::params::QueryParams;
use super::{Answer, KEEP_FOR_NEGATIVE, LuminesceError, LuminesceFront, models};
use crate::engine::Limits;
use crate::query::Principal;

/// The options of the synchronous calls; every other query key is a scalar parameter.
const SYNC_OPTIONS: [&str; 10] = [
    "scalarParameters",
    "queryName",
    "download",
    "timeout",
    "timeoutSeconds",
    "delimiter",
    "escape",
    "dateTimeFormat",
    "jsonProper",
    "includeLineage",
];

/// The options that shape the answer (the rest shape the job).
const OUTPUT_OPTIONS: [&str; 4] = ["download", "delimiter", "escape", "dateTimeFormat"];

/// The formats of `/api/Sql/{format}`.
const FORMATS: [Output; 7] = [
    Output::Csv,
    Output::Excel,
    Output::Json,
    Output::Parquet,
    Output::Pipe,
    Output::Sqlite,
    Output::Xml,
];

/// "<0 or > 175 → 175s (Maximum allowed), 0 → 120s"; absent is 0.
const MAX_TIMEOUT: Duration = Duration::from_secs(175);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

fn timeout(seconds: Option<i64>) -> Duration {
    match seconds.unwrap_or(0) {
        0 => DEFAULT_TIMEOUT,
        s if s < 0 => MAX_TIMEOUT,
        s => Duration::from_secs(s as u64).min(MAX_TIMEOUT),
    }
}

impl LuminesceFront {
    /// Runs `sql` as a job and answers its result once it has finished.
    pub(super) async fn run_sync(
        &self,
        caller: &Principal,
        format: &str,
        sql: &str,
        q: &QueryParams,
    ) -> Answer {
        let Some(mut output) = FORMATS
            .into_iter()
            .find(|o| o.segment().eq_ignore_ascii_case(format))
        else {
            return Err(LuminesceError::no_such_path(format!(
                "/api/Sql/{format} (its formats are {})",
                FORMATS.map(Output::segment).join(", ")
            )));
        };
        let lineage = q.bool("includeLineage")?.unwrap_or(false);
        if output == Output::Json {
            if lineage {
                output = Output::JsonProperWithLineage;
            } else if q.bool("jsonProper")?.unwrap_or(false) {
                output = Output::JsonProper;
            }
        }
        let timeout = timeout(match q.int("timeoutSeconds")? {
            Some(s) => Some(s),
            None => q.int("timeout")?,
        });
        let mut request = FetchRequest::parse(output, &q.only(&OUTPUT_OPTIONS))?;
        request.load_wait_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        let mut spec = self.job_spec(caller, sql, q, &SYNC_OPTIONS).await?;
        spec.name = q.nonblank("queryName");
        let limits = Limits {
            timeout: Some(timeout),
            keep_for: KEEP_FOR_NEGATIVE,
            row_limit: None,
        };
        spec.limits = super::limited(&spec, limits);
        spec.set_meta(&models::LuminesceJob {
            provide_lineage: lineage,
            ..models::LuminesceJob::of(&spec)
        });
        let id = self.engine.submit(spec).await?;
        // A synchronous query: its job ends with the request (given up on, or the client gone).
        crate::wire::wait_within(&self.engine, id, &self.limits).await?;
        self.deliver(caller, &id.to_uuid(), &request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_follow_the_documented_rule() {
        assert_eq!(timeout(None), DEFAULT_TIMEOUT);
        assert_eq!(timeout(Some(0)), DEFAULT_TIMEOUT);
        assert_eq!(timeout(Some(-1)), MAX_TIMEOUT);
        assert_eq!(timeout(Some(500)), MAX_TIMEOUT);
        assert_eq!(timeout(Some(30)), Duration::from_secs(30));
    }
}
