//! The JSON bodies of the SqlBackground API, field for field as the SDK's models name them, and how
//! an engine job is shown in them (status, state, columns, feedback).

use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::datatypes::{DataType, Schema};
use serde::{Deserialize, Serialize};

use crate::engine::{JobId, JobRecord, JobState, LogEntry};

/// The API's path below `/honeycomb`; Link hrefs are relative to `/honeycomb`, as in FINBOURNE's docs.
pub const API_PATH: &str = "/api/SqlBackground";

/// A hypermedia link (`Link` in the SDK): `relation`, `href` and `method` are required.
#[derive(Debug, Serialize)]
pub struct Link {
    pub relation: &'static str,
    pub href: String,
    pub description: &'static str,
    pub method: &'static str,
}

/// The 202 body of `PUT /api/SqlBackground` (`BackgroundQueryResponse`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundQueryResponse {
    pub execution_id: String,
    pub progress: Link,
    pub cancel: Link,
    pub fetch_json: Link,
    pub fetch_json_proper: Link,
    pub fetch_json_proper_with_lineage: Link,
    pub fetch_xml: Link,
    pub fetch_parquet: Link,
    pub fetch_csv: Link,
    pub fetch_pipe: Link,
    pub fetch_excel: Link,
    pub fetch_sqlite: Link,
    pub histogram: Link,
    pub save_to_drive: Link,
}

impl BackgroundQueryResponse {
    pub fn new(id: JobId) -> Self {
        let base = format!("{API_PATH}/{}", id.to_uuid());
        let get = |relation, suffix: &str, description| Link {
            relation,
            href: format!("{base}{suffix}"),
            description,
            method: "GET",
        };
        BackgroundQueryResponse {
            execution_id: id.to_uuid(),
            progress: get("Progress", "", "Gets the progress of the query"),
            cancel: Link {
                relation: "Cancel",
                href: base.clone(),
                description: "Cancels the query, or clears its data once it has finished",
                method: "DELETE",
            },
            fetch_json: get("FetchJson", "/json", "Fetches the result as a JSON string"),
            fetch_json_proper: get(
                "FetchJsonProper",
                "/jsonProper",
                "Fetches the result as a JSON array of row objects",
            ),
            fetch_json_proper_with_lineage: get(
                "FetchJsonProperWithLineage",
                "/jsonProperWithLineage",
                "Fetches the result as JSON with its lineage",
            ),
            fetch_xml: get("FetchXml", "/xml", "Fetches the result as XML"),
            fetch_parquet: get("FetchParquet", "/parquet", "Fetches the result as Parquet"),
            fetch_csv: get("FetchCsv", "/csv", "Fetches the result as CSV"),
            fetch_pipe: get("FetchPipe", "/pipe", "Fetches the result pipe-delimited"),
            fetch_excel: get(
                "FetchExcel",
                "/excel",
                "Fetches the result as an Excel workbook",
            ),
            fetch_sqlite: get(
                "FetchSqlite",
                "/sqlite",
                "Fetches the result as an SQLite database",
            ),
            histogram: get(
                "Histogram",
                "/histogram",
                "Counts the result's rows over time",
            ),
            save_to_drive: get("SaveToDrive", "/drive", "Saves the result to Drive"),
        }
    }
}

/// `TaskStatus`: `WaitingForActivation` while queued or running, as FINBOURNE's pollers expect.
pub fn task_status(state: JobState) -> &'static str {
    match state {
        JobState::Queued | JobState::Running => "WaitingForActivation",
        JobState::Succeeded => "RanToCompletion",
        JobState::Failed | JobState::TimedOut => "Faulted",
        JobState::Cancelled => "Canceled",
    }
}

/// `BackgroundQueryState` (note `Cancelled` with two l's, unlike `TaskStatus`).
pub fn query_state(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "New",
        JobState::Running => "Running",
        JobState::Succeeded => "Executed",
        JobState::Failed | JobState::TimedOut => "Errored",
        JobState::Cancelled => "Cancelled",
    }
}

/// The Luminesce `DataType` of an Arrow column type.
pub fn data_type(t: &DataType) -> &'static str {
    use DataType as D;
    match t {
        D::Boolean => "Boolean",
        D::Int8 | D::Int16 | D::Int32 | D::UInt8 | D::UInt16 => "Int",
        D::Int64 | D::UInt32 | D::UInt64 => "BigInt",
        D::Float16 | D::Float32 | D::Float64 => "Double",
        D::Decimal32(..) | D::Decimal64(..) | D::Decimal128(..) | D::Decimal256(..) => "Decimal",
        D::Date32 | D::Date64 => "Date",
        D::Timestamp(..) => "DateTime",
        D::Dictionary(_, value) => data_type(value),
        _ => "Text",
    }
}

/// One item of `columnsAvailable` (`Column`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Column {
    pub name: String,
    #[serde(rename = "type")]
    pub data_type: &'static str,
    pub is_primary_key: bool,
    pub is_main: bool,
    pub is_required_by_provider: bool,
}

pub fn columns(schema: &Schema) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: data_type(f.data_type()),
            is_primary_key: false,
            is_main: false,
            is_required_by_provider: false,
        })
        .collect()
}

/// One feedback message (`FeedbackEventArgs`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Feedback {
    pub when: String,
    pub execution_id: String,
    pub level: &'static str,
    pub sender: &'static str,
    pub message: String,
}

/// The sender named in feedback messages.
const SENDER: &str = "polyquery";

/// Feedback is a suffix of the job's log, so a failed job's last entry (its failure) is an error.
fn feedback(id: JobId, entries: Vec<LogEntry>, failed: bool) -> Vec<Feedback> {
    let n = entries.len();
    entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| Feedback {
            when: timestamp(e.at),
            execution_id: id.to_uuid(),
            level: if failed && i + 1 == n {
                "Error"
            } else {
                "Progress"
            },
            sender: SENDER,
            message: e.message,
        })
        .collect()
}

/// `2026-01-02T03:04:05.123+00:00`, the form .NET writes and the SDK parses.
pub fn timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, false)
}

/// What a Luminesce job keeps for its reads.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LuminesceJob {
    /// Started with `executionFlags=ProvideLineage`.
    #[serde(default)]
    pub provide_lineage: bool,
    /// The views the script sets up (`Sys.Admin.SetupView`), with their columns: saved once it
    /// succeeds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub views: Vec<(super::script::ViewSetup, Vec<(String, String)>)>,
    /// Set for a query of a MultiQueryBackground set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi: Option<MultiMember>,
}

/// Which set a MultiQueryBackground query belongs to, and where in it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MultiMember {
    pub set: String,
    pub name: String,
    pub index: usize,
    /// The set's `queryName`, if it has one.
    pub set_name: Option<String>,
}

impl crate::engine::WireMeta for LuminesceJob {
    const DIALECT: &'static str = super::DIALECT;
}

impl LuminesceJob {
    /// A job's Luminesce metadata (the defaults for another wire's job).
    pub fn of(spec: &crate::engine::JobSpec) -> LuminesceJob {
        spec.meta().unwrap_or_default()
    }
}

fn provides_lineage(record: &JobRecord) -> bool {
    LuminesceJob::of(&record.spec).provide_lineage
}

/// The `Lineage` node of `/jsonProperWithLineage` (`TableLineage`): one plain column entry per
/// result column when `executionFlags=ProvideLineage` was given, else the reason there is none.
pub fn lineage(record: &JobRecord, schema: &Schema) -> serde_json::Value {
    if !provides_lineage(record) {
        return serde_json::json!({
            "columnLineage": [],
            "wholeTableLineage": null,
            "failureReason": "the query was not started with executionFlags=ProvideLineage",
        });
    }
    let columns: Vec<serde_json::Value> = schema
        .fields()
        .iter()
        .map(|f| {
            serde_json::json!({
                "type": "Column",
                "legendText": f.name(),
                "alias": f.name(),
                "children": [],
            })
        })
        .collect();
    serde_json::json!({
        "columnLineage": columns,
        "wholeTableLineage": null,
        "failureReason": null,
    })
}

/// The 200 body of `GET /api/SqlBackground/{id}` and of historicalFeedback
/// (`BackgroundQueryProgressResponse`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundQueryProgressResponse {
    pub has_data: bool,
    pub row_count: i64,
    pub status: &'static str,
    pub state: &'static str,
    pub progress: String,
    pub feedback: Vec<Feedback>,
    pub query: String,
    pub query_name: Option<String>,
    pub columns_available: Vec<Column>,
    /// Only for a query started with `executionFlags=ProvideLineage`, once it has data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lineage: Option<serde_json::Value>,
}

impl BackgroundQueryProgressResponse {
    /// The job as the progress endpoint shows it; `fresh` is the feedback this caller has not seen.
    pub fn new(record: &JobRecord, fresh: Vec<LogEntry>) -> Self {
        let has_data = record.state == JobState::Succeeded;
        let failed = matches!(record.state, JobState::Failed | JobState::TimedOut);
        BackgroundQueryProgressResponse {
            has_data,
            row_count: match (has_data, record.row_count) {
                (true, Some(n)) => i64::try_from(n).unwrap_or(i64::MAX),
                _ => -1,
            },
            status: task_status(record.state),
            state: query_state(record.state),
            progress: progress_text(record),
            feedback: feedback(record.id, fresh, failed),
            query: record.spec.sql.clone(),
            query_name: record.spec.name.clone(),
            columns_available: match (&record.schema, has_data) {
                (Some(schema), true) => columns(schema),
                _ => Vec::new(),
            },
            lineage: match (&record.schema, has_data) {
                (Some(schema), true) if provides_lineage(record) => Some(lineage(record, schema)),
                _ => None,
            },
        }
    }
}

/// The full progress log. A failed query's log ends the way FINBOURNE's clients parse errors:
/// `Query Execution failed.`, the error, then `Sql:` and the query.
pub fn progress_text(record: &JobRecord) -> String {
    let mut text = record.log_text();
    if matches!(record.state, JobState::Failed | JobState::TimedOut) {
        let error = record
            .error
            .as_ref()
            .map(|e| e.message.as_str())
            .unwrap_or("unknown error");
        text.push_str(&format!(
            "\nQuery Execution failed.\n{error}\nSql:\n{}",
            record.spec.sql
        ));
    }
    text
}

/// The 200 body of `DELETE /api/SqlBackground/{id}` (`BackgroundQueryCancelResponse`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundQueryCancelResponse {
    pub had_data: bool,
    pub previous_status: &'static str,
    pub previous_state: &'static str,
    pub progress: String,
}

impl BackgroundQueryCancelResponse {
    /// `before` is the job as it was; `after` its log once cancelled or cleared.
    pub fn new(before: &JobRecord, progress: String) -> Self {
        BackgroundQueryCancelResponse {
            had_data: before.state == JobState::Succeeded,
            previous_status: task_status(before.state),
            previous_state: query_state(before.state),
            progress,
        }
    }
}

/// One item of `GET /api/SqlBackground` (`BackgroundQueryListItem`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BackgroundQueryListItem {
    pub execution_id: String,
    pub query: String,
    pub query_name: Option<String>,
    pub state: &'static str,
    pub when: String,
    pub expires_at: Option<String>,
}

impl BackgroundQueryListItem {
    pub fn new(record: &JobRecord) -> Self {
        let when = record.finished.or(record.started).unwrap_or(record.created);
        BackgroundQueryListItem {
            execution_id: record.id.to_uuid(),
            query: record.spec.sql.clone(),
            query_name: record.spec.name.clone(),
            state: query_state(record.state),
            when: timestamp(when),
            expires_at: record.expires_at().map(timestamp),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_link_is_complete_and_points_at_the_job() {
        let id = JobId { uuid: 7, seq: 1 };
        let v = serde_json::to_value(BackgroundQueryResponse::new(id)).unwrap();
        let object = v.as_object().unwrap();
        assert_eq!(object.len(), 14);
        for (key, link) in object.iter().skip(1) {
            assert!(link["relation"].is_string(), "{key}");
            assert!(link["method"].is_string(), "{key}");
            let href = link["href"].as_str().unwrap();
            assert!(href.starts_with(&format!("{API_PATH}/{}", id.to_uuid())));
        }
        assert_eq!(v["cancel"]["method"], "DELETE");
        assert_eq!(
            v["fetchSqlite"]["href"],
            format!("{API_PATH}/{}/sqlite", id)
        );
    }

    #[test]
    fn statuses_use_the_exact_enum_spellings() {
        assert_eq!(task_status(JobState::Running), "WaitingForActivation");
        assert_eq!(task_status(JobState::Cancelled), "Canceled");
        assert_eq!(query_state(JobState::Cancelled), "Cancelled");
        assert_eq!(data_type(&DataType::Utf8View), "Text");
        assert_eq!(data_type(&DataType::Int32), "Int");
        assert_eq!(data_type(&DataType::Int64), "BigInt");
    }
}
