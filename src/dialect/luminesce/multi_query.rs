//! `MultiQueryExecutionApi` (`/api/MultiQueryBackground`): a set of queries started as one.
//!
//! - `PUT /custom` takes a `CustomMultiQueryRequest`: named queries, each of which reads the ones
//!   before it as `@Name` table variables. Every query whose result is external is an engine job of
//!   its own (tagged with the set's id and its name); an intermediate one only feeds later ones.
//!   A query is `{ExecutionId}_{Name}` on the SqlBackground API, as the SDK documents.
//! - `GET /{id}` is the set's progress (each query's, and the set's status), `DELETE /{id}` cancels
//!   the running queries and clears the finished ones, `GET` lists the caller's sets.
//! - `PUT` (the LUSID query kinds: instrument searches, holdings, …) reads LUSID providers
//!   polyquery does not have, and `/download`, `/drive` are not built: each a 501 that says so.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use sqlparser::ast::Query;

use super::models::{
    self, BackgroundQueryCancelResponse, BackgroundQueryProgressResponse, Feedback, Link,
    LuminesceJob, MultiMember, query_state, task_status, timestamp,
};
use super::params::QueryParams;
use super::{Answer, LuminesceError, LuminesceFront, keep_for, sql_like_matcher};
use crate::engine::{JobRecord, JobState, Limits, ParamValue, Params};
use crate::query::Principal;
use crate::wire::{self as http, Request};

/// Which set a job belongs to, and where in it (`None`: not a set's query).
fn member(record: &JobRecord) -> Option<MultiMember> {
    LuminesceJob::of(&record.spec).multi
}

/// The path of this API below `/honeycomb`.
const PATH: &str = "/api/MultiQueryBackground";
/// The most queries one set may hold, and the longest name of one (the SDK documents 31).
const MAX_QUERIES: usize = 100;
const MAX_NAME_CHARS: usize = 31;
/// The most scalar parameters, as documented.
const MAX_PARAMETERS: usize = 100;
/// `timeoutSeconds` 0 (or absent): twenty minutes per query.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1200);

/// The SDK's `CustomMultiQueryRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomMultiQueryRequest {
    execution_id: Option<String>,
    scalar_parameters: Option<BTreeMap<String, Option<String>>>,
    queries: Vec<CustomMultiQueryItem>,
    /// Accepted; how many run at once is the engine's worker pool's to decide.
    #[serde(rename = "maxInParallel")]
    _max_in_parallel: Option<i64>,
    timeout_seconds: Option<i64>,
    keep_for_seconds: Option<i64>,
    query_name: Option<String>,
}

/// The SDK's `CustomMultiQueryItem`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CustomMultiQueryItem {
    name: String,
    sql: Option<String>,
    saved_query: Option<String>,
    is_external_result: Option<bool>,
}

/// The SDK's `BackgroundMultiQueryResponse` (202 body of a start).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BackgroundMultiQueryResponse {
    execution_id: String,
    progress: Link,
    cancel: Link,
    download: Link,
    save_to_drive: Link,
    fetch_json: Vec<Link>,
    fetch_json_proper: Vec<Link>,
    fetch_json_proper_with_lineage: Vec<Link>,
    fetch_xml: Vec<Link>,
    fetch_parquet: Vec<Link>,
    fetch_csv: Vec<Link>,
    fetch_pipe: Vec<Link>,
    fetch_excel: Vec<Link>,
    fetch_sqlite: Vec<Link>,
    histogram: Vec<Link>,
}

impl BackgroundMultiQueryResponse {
    fn new(set: &str, names: &[String]) -> Self {
        let link = |relation, href: String, description, method| Link {
            relation,
            href,
            description,
            method,
        };
        let each = |relation, suffix: &str, description| -> Vec<Link> {
            names
                .iter()
                .map(|n| {
                    let href = format!("{}/{set}_{n}/{suffix}", models::API_PATH);
                    link(relation, href, description, "GET")
                })
                .collect()
        };
        let base = format!("{PATH}/{set}");
        BackgroundMultiQueryResponse {
            execution_id: set.to_string(),
            progress: link(
                "Progress",
                base.clone(),
                "Gets the progress of the queries",
                "GET",
            ),
            cancel: link(
                "Cancel",
                base.clone(),
                "Cancels the queries, or clears their data once they have finished",
                "DELETE",
            ),
            download: link(
                "Download",
                format!("{base}/download"),
                "Downloads every result",
                "GET",
            ),
            save_to_drive: link(
                "SaveToDrive",
                format!("{base}/drive"),
                "Saves every result to Drive",
                "GET",
            ),
            fetch_json: each("FetchJson", "json", "Fetches a result as a JSON string"),
            fetch_json_proper: each("FetchJsonProper", "jsonProper", "Fetches a result as JSON"),
            fetch_json_proper_with_lineage: each(
                "FetchJsonProperWithLineage",
                "jsonProperWithLineage",
                "Fetches a result as JSON with its lineage",
            ),
            fetch_xml: each("FetchXml", "xml", "Fetches a result as XML"),
            fetch_parquet: each("FetchParquet", "parquet", "Fetches a result as Parquet"),
            fetch_csv: each("FetchCsv", "csv", "Fetches a result as CSV"),
            fetch_pipe: each("FetchPipe", "pipe", "Fetches a result pipe-delimited"),
            fetch_excel: each("FetchExcel", "excel", "Fetches a result as Excel"),
            fetch_sqlite: each("FetchSqlite", "sqlite", "Fetches a result as SQLite"),
            histogram: each("Histogram", "histogram", "Counts a result's rows over time"),
        }
    }
}

/// The SDK's `BackgroundMultiQueryProgressResponse`.
#[derive(Debug, Serialize)]
struct BackgroundMultiQueryProgressResponse {
    progress: String,
    feedback: Vec<Feedback>,
    status: &'static str,
    queries: Vec<BackgroundQueryProgressResponse>,
}

/// The SDK's `CustomMultiQueryListItem` and `CustomMultiQueryListItemQuery`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CustomMultiQueryListItem {
    execution_id: String,
    query_name: Option<String>,
    state: &'static str,
    started_at: String,
    when: String,
    expires_at: Option<String>,
    queries: Vec<CustomMultiQueryListItemQuery>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CustomMultiQueryListItemQuery {
    name: String,
    state: &'static str,
    has_result: bool,
}

/// Where a set stands: running while any query runs, else failed if any failed, else cancelled
/// if any was, else succeeded.
fn set_state(jobs: &[JobRecord]) -> JobState {
    let any = |f: fn(JobState) -> bool| jobs.iter().any(|j| f(j.state));
    if any(|s| s == JobState::Running) {
        JobState::Running
    } else if any(|s| s == JobState::Queued) {
        JobState::Queued
    } else if any(|s| matches!(s, JobState::Failed | JobState::TimedOut)) {
        JobState::Failed
    } else if any(|s| s == JobState::Cancelled) {
        JobState::Cancelled
    } else {
        JobState::Succeeded
    }
}

/// A query's name: an identifier of at most 31 characters.
fn valid_name(name: &str) -> bool {
    name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl LuminesceFront {
    /// `/api/MultiQueryBackground[/…]`
    pub(super) async fn multi_query(
        &self,
        caller: &Principal,
        tail: &[String],
        method: &Method,
        request: &Request,
        q: &QueryParams,
    ) -> Answer {
        match (tail, method) {
            ([], &Method::GET) => self.list_sets(caller, q),
            ([], &Method::PUT) => Err(LuminesceError::not_built(
                "the LUSID query kinds (instrument searches, holdings, …) read LUSID providers polyquery does not have; start your own queries with PUT /api/MultiQueryBackground/custom",
            )),
            ([custom], &Method::PUT) if custom.eq_ignore_ascii_case("custom") => {
                self.start_set(caller, request).await
            }
            ([id], &Method::GET) => self.set_progress(caller, id),
            ([id], &Method::DELETE) => self.cancel_set(caller, id),
            ([_, part], &Method::GET)
                if part.eq_ignore_ascii_case("download") || part.eq_ignore_ascii_case("drive") =>
            {
                Err(LuminesceError::not_built(format!(
                    "/api/MultiQueryBackground/{{id}}/{part} is not built: fetch each query's result through /api/SqlBackground/{{executionId}}_{{name}}"
                )))
            }
            _ => Err(LuminesceError::no_such_path(format!(
                "{method} {PATH}/{}",
                tail.join("/")
            ))),
        }
    }

    /// `PUT /api/MultiQueryBackground/custom`
    async fn start_set(&self, caller: &Principal, request: &Request) -> Answer {
        let body: CustomMultiQueryRequest =
            serde_json::from_slice(request.body()).map_err(|e| {
                LuminesceError::bad_request(format!(
                    "the body must be a CustomMultiQueryRequest as JSON: {e}"
                ))
            })?;
        let set = match body.execution_id.as_deref().map(str::trim) {
            None | Some("") => uuid::Uuid::new_v4(),
            Some(id) => uuid::Uuid::try_parse(id).map_err(|_| {
                LuminesceError::bad_parameter(
                    "executionId",
                    format!("executionId must be blank or a GUID, not '{id}'"),
                )
            })?,
        }
        .hyphenated()
        .to_string();
        if !self.set_jobs(caller, &set).is_empty() {
            return Err(LuminesceError::bad_parameter(
                "executionId",
                format!("the executionId {set} is already in use"),
            ));
        }
        if body.queries.is_empty() || body.queries.len() > MAX_QUERIES {
            return Err(LuminesceError::bad_parameter(
                "queries",
                format!("a set holds from 1 to {MAX_QUERIES} queries"),
            ));
        }
        let parameters = body.scalar_parameters.unwrap_or_default();
        if parameters.len() > MAX_PARAMETERS {
            return Err(LuminesceError::bad_parameter(
                "scalarParameters",
                format!("at most {MAX_PARAMETERS} scalar parameters"),
            ));
        }
        let params = Params {
            positional: Vec::new(),
            named: parameters
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k, ParamValue::String(v))))
                .collect(),
        };
        let limits = Limits {
            timeout: match body.timeout_seconds.unwrap_or(0) {
                s if s < 0 => None,
                0 => Some(DEFAULT_TIMEOUT),
                s => Some(Duration::from_secs(s.unsigned_abs())),
            },
            keep_for: keep_for(body.keep_for_seconds),
            row_limit: None,
        };
        // Every query is checked before any starts: a set starts whole or not at all.
        let mut earlier: Vec<(String, Box<Query>)> = Vec::new();
        let mut specs = Vec::new();
        for (index, item) in body.queries.iter().enumerate() {
            let name = item.name.trim();
            if !valid_name(name) {
                return Err(LuminesceError::bad_parameter(
                    "queries",
                    format!(
                        "'{name}' is not a query name: an identifier of at most {MAX_NAME_CHARS} characters"
                    ),
                ));
            }
            if earlier.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                return Err(LuminesceError::bad_parameter(
                    "queries",
                    format!("two queries are named '{name}'"),
                ));
            }
            let sql = match (item.sql.as_deref(), item.saved_query.as_deref()) {
                (Some(sql), None) if !sql.trim().is_empty() => sql,
                (None, Some(_)) => {
                    return Err(LuminesceError::bad_parameter(
                        "queries",
                        format!(
                            "query '{name}' names a saved query: polyquery has no saved queries; send the SQL itself"
                        ),
                    ));
                }
                _ => {
                    return Err(LuminesceError::bad_parameter(
                        "queries",
                        format!("query '{name}' must give exactly one of sql and savedQuery"),
                    ));
                }
            };
            let mut spec = self
                .script_job(caller, sql, params.clone(), &earlier)
                .await
                .map_err(|e| e.with_detail("query", name))?;
            let own = super::script::compile_with(sql, &earlier)
                .map_err(LuminesceError::from)
                .and_then(|c| match c.statement {
                    sqlparser::ast::Statement::Query(q) => Ok(q),
                    _ => Err(LuminesceError::bad_request("a query must be a query")),
                })?;
            earlier.push((name.to_string(), without_earlier(own, earlier.len())));
            if item.is_external_result == Some(false) {
                continue;
            }
            spec.name = Some(name.to_string());
            spec.limits = super::limited(&spec, limits.clone());
            spec.set_meta(&LuminesceJob {
                multi: Some(MultiMember {
                    set: set.clone(),
                    name: name.to_string(),
                    index,
                    set_name: body.query_name.clone(),
                }),
                ..LuminesceJob::of(&spec)
            });
            specs.push(spec);
        }
        if specs.is_empty() {
            return Err(LuminesceError::bad_parameter(
                "queries",
                "at least one query must be an external result",
            ));
        }
        let names: Vec<String> = specs.iter().filter_map(|s| s.name.clone()).collect();
        for spec in specs {
            self.engine.submit(spec).await?;
        }
        Ok(http::json(
            StatusCode::ACCEPTED,
            &BackgroundMultiQueryResponse::new(&set, &names),
        ))
    }

    /// The caller's jobs of one set, in the order the request gave them.
    fn set_jobs(&self, caller: &Principal, set: &str) -> Vec<JobRecord> {
        let mut jobs: Vec<JobRecord> = self
            .engine
            .list(Some(caller))
            .into_iter()
            .filter(|r| member(r).is_some_and(|m| m.set.eq_ignore_ascii_case(set.trim())))
            .collect();
        jobs.sort_by_key(|j| member(j).map(|m| m.index));
        jobs
    }

    fn existing_set(&self, caller: &Principal, id: &str) -> Result<Vec<JobRecord>, LuminesceError> {
        let jobs = self.set_jobs(caller, id);
        if jobs.is_empty() {
            return Err(super::no_such_query(id));
        }
        Ok(jobs)
    }

    /// `GET /api/MultiQueryBackground/{id}`
    fn set_progress(&self, caller: &Principal, id: &str) -> Answer {
        let jobs = self.existing_set(caller, id)?;
        let mut progress = Vec::new();
        let mut feedback = Vec::new();
        let mut queries = Vec::new();
        for job in &jobs {
            let fresh = self.engine.feedback(job.id, caller, false)?;
            let name = job.spec.name.clone().unwrap_or_default();
            progress.push(format!("{name}:\n{}", models::progress_text(job)));
            let mut shown = BackgroundQueryProgressResponse::new(job, fresh);
            feedback.append(&mut shown.feedback);
            queries.push(shown);
        }
        Ok(http::json(
            StatusCode::OK,
            &BackgroundMultiQueryProgressResponse {
                progress: progress.join("\n"),
                feedback,
                status: task_status(set_state(&jobs)),
                queries,
            },
        ))
    }

    /// `DELETE /api/MultiQueryBackground/{id}`: running queries are cancelled, finished ones cleared.
    fn cancel_set(&self, caller: &Principal, id: &str) -> Answer {
        let jobs = self.existing_set(caller, id)?;
        let mut progress = Vec::new();
        for job in &jobs {
            let name = job.spec.name.clone().unwrap_or_default();
            if job.state.is_terminal() {
                self.engine.remove(job.id)?;
                progress.push(format!("{name}: Query data cleared"));
            } else {
                self.engine.cancel(job.id)?;
                progress.push(format!("{name}: Query cancelled"));
            }
        }
        let Some(mut before) = jobs.first().cloned() else {
            return Err(super::no_such_query(id));
        };
        before.state = set_state(&jobs);
        Ok(http::json(
            StatusCode::OK,
            &BackgroundQueryCancelResponse::new(&before, progress.join("\n")),
        ))
    }

    /// `GET /api/MultiQueryBackground`: the caller's sets, most recent first; `sqlLike` keeps
    /// the sets any of whose queries' SQL matches.
    fn list_sets(&self, caller: &Principal, q: &QueryParams) -> Answer {
        let like = q
            .nonblank("sqlLike")
            .map(|p| sql_like_matcher(&p))
            .transpose()
            .map_err(|e| LuminesceError::bad_parameter("sqlLike", e.to_string()))?;
        let mut sets: BTreeMap<String, Vec<JobRecord>> = BTreeMap::new();
        for job in self.engine.list(Some(caller)) {
            if let Some(m) = member(&job) {
                sets.entry(m.set).or_default().push(job);
            }
        }
        let mut items: Vec<(chrono::DateTime<chrono::Utc>, CustomMultiQueryListItem)> = sets
            .into_iter()
            .filter(|(_, jobs)| {
                like.as_ref()
                    .is_none_or(|m| jobs.iter().any(|j| m.is_match(&j.spec.sql)))
            })
            .filter_map(|(set, mut jobs)| {
                jobs.sort_by_key(|j| member(j).map(|m| m.index));
                let started = jobs.iter().map(|j| j.created).min()?;
                let when = jobs
                    .iter()
                    .map(|j| j.finished.or(j.started).unwrap_or(j.created))
                    .max()?;
                let item = CustomMultiQueryListItem {
                    execution_id: set,
                    query_name: member(jobs.first()?).and_then(|m| m.set_name),
                    state: query_state(set_state(&jobs)),
                    started_at: timestamp(started),
                    when: timestamp(when),
                    expires_at: jobs
                        .iter()
                        .filter_map(|j| j.expires_at())
                        .min()
                        .map(timestamp),
                    queries: jobs
                        .iter()
                        .map(|j| CustomMultiQueryListItemQuery {
                            name: j.spec.name.clone().unwrap_or_default(),
                            state: query_state(j.state),
                            has_result: j.state == JobState::Succeeded,
                        })
                        .collect(),
                };
                Some((started, item))
            })
            .collect();
        items.sort_by_key(|(started, _)| std::cmp::Reverse(*started));
        let items: Vec<CustomMultiQueryListItem> = items.into_iter().map(|(_, i)| i).collect();
        Ok(http::json(StatusCode::OK, &items))
    }

    /// A query of a set by its SqlBackground id, `{set}_{name}`.
    pub(super) fn set_member(&self, caller: &Principal, id: &str) -> Option<JobRecord> {
        let (set, name) = id.split_once('_')?;
        uuid::Uuid::try_parse(set).ok()?;
        self.set_jobs(caller, set).into_iter().find(|j| {
            j.spec
                .name
                .as_deref()
                .is_some_and(|n| n.eq_ignore_ascii_case(name))
        })
    }
}

/// A query compiled after `earlier` others, without their CTEs (which the later query's own
/// compile puts in front again): so no query holds its predecessors twice.
fn without_earlier(mut query: Box<Query>, earlier: usize) -> Box<Query> {
    if let Some(with) = &mut query.with {
        with.cte_tables.drain(..earlier.min(with.cte_tables.len()));
        if with.cte_tables.is_empty() {
            query.with = None;
        }
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_identifiers_of_at_most_31_characters() {
        for ok in ["a", "Q_1", "_x", &"a".repeat(31)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a b", &"a".repeat(32)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
