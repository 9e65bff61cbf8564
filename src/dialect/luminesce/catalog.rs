//! `CurrentTableFieldCatalogApi`: `GET /api/Catalog` (every field of every table),
//! `/api/Catalog/fields` (the same rows, filtered by `tableLike`) and `/api/Catalog/providers`
//! (one row per table). The rows are `Sys.Field`'s and `Sys.Registration`'s, from one place.

use hyper::StatusCode;
use serde_json::{Map, Value as Json};
use sqlparser::ast::Value;

use super::params::QueryParams;
use super::sql::SysTable;
use super::{Answer, LuminesceError, LuminesceFront, sql_like_matcher};
use crate::wire as http;

/// A SQL literal of a `Sys` row as JSON.
fn json(value: &Value) -> Json {
    match value {
        Value::Boolean(b) => Json::Bool(*b),
        Value::Null => Json::Null,
        Value::Number(n, _) => n
            .parse::<i64>()
            .map(Json::from)
            .unwrap_or_else(|_| Json::String(n.clone())),
        Value::SingleQuotedString(s) => Json::String(s.clone()),
        other => Json::String(other.to_string()),
    }
}

impl LuminesceFront {
    /// `GET /api/Catalog[/fields|/providers]`
    pub(super) fn catalog(&self, part: Option<&str>, q: &QueryParams) -> Answer {
        let (table, name_column) = match part {
            None => (SysTable::Field, "TableName"),
            Some(p) if p.eq_ignore_ascii_case("fields") => (SysTable::Field, "TableName"),
            Some(p) if p.eq_ignore_ascii_case("providers") => (SysTable::Registration, "Name"),
            Some(p) => {
                return Err(LuminesceError::no_such_path(format!(
                    "GET /api/Catalog/{p} (the catalog has /fields and /providers)"
                )));
            }
        };
        q.bool("addLineage")?;
        q.bool("addLineageMarker")?;
        let search = q.nonblank("freeTextSearch").map(|s| s.to_lowercase());
        let like = q
            .nonblank("tableLike")
            .map(|p| sql_like_matcher(&p))
            .transpose()
            .map_err(|e| {
                LuminesceError::bad_parameter(
                    "tableLike",
                    format!("the pattern is too long or not usable: {e}"),
                )
            })?;
        let columns = table.columns();
        let rows: Vec<Map<String, Json>> = table
            .rows(self.engine.executor().catalog(), &self.views.all())
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .zip(row)
                    .map(|(c, v)| (c.to_string(), json(v)))
                    .collect::<Map<String, Json>>()
            })
            .filter(|row| {
                let name = row.get(name_column).and_then(Json::as_str).unwrap_or("");
                like.as_ref().is_none_or(|m| m.is_match(name))
                    && search.as_deref().is_none_or(|s| {
                        row.values()
                            .filter_map(Json::as_str)
                            .any(|v| v.to_lowercase().contains(s))
                    })
            })
            .collect();
        // GUESS: the catalog is a JSON array unless `jsonProper=False` asks for it as a JSON string:
        // lumipy reads `ast.literal_eval(get_catalog())`, which works only on the SDK's rendering of
        // an array.
        if part.is_none() && q.bool("jsonProper")? == Some(false) {
            let text =
                serde_json::to_string(&rows).map_err(crate::engine::EngineError::internal)?;
            return Ok(http::json(StatusCode::OK, &text));
        }
        Ok(http::json(StatusCode::OK, &rows))
    }
}
