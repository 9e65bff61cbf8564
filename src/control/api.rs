//! The admin API's routes: plain JSON over HTTP, a clear 4xx JSON error for bad input.

use std::sync::Arc;

use chrono::Utc;
use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ControlPlane;
use super::journal::{Matcher, Pattern, entry_json};
use super::rules::RuleSpec;
use crate::dialect::Front;
use crate::engine::{Engine, JobId, JobRecord, JobRef};
use crate::query::Principal;
use crate::wire::{self as http, Request, Response};

/// The most rows a result preview answers at once.
const MAX_PREVIEW_ROWS: usize = 1000;

type Answer = Result<Response, (StatusCode, String)>;

fn bad(message: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::BAD_REQUEST, message.into())
}

fn not_found(message: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::NOT_FOUND, message.into())
}

/// Answers one admin request (the caller is already authorized). `rest` is the path after the prefix.
pub async fn handle(
    control: &ControlPlane,
    engine: &Engine,
    fronts: &[Arc<dyn Front>],
    request: Request,
) -> Response {
    let path = request.uri().path();
    let rest = path.strip_prefix(super::PREFIX).unwrap_or(path).to_string();
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let method = request.method().clone();
    let answer = match (&method, segments.as_slice()) {
        (&Method::GET, [] | ["ui"]) => Ok(http::with_body(
            StatusCode::OK,
            "text/html; charset=utf-8",
            include_str!("ui.html"),
        )),
        (&Method::POST, ["reset"]) => reset(control, engine, fronts, &request),
        (&Method::GET, ["faults"]) => Ok(http::json(StatusCode::OK, &control.rules.list())),
        (&Method::POST, ["faults"]) => add_faults(control, &request),
        (&Method::DELETE, ["faults"]) => {
            control.rules.clear();
            Ok(http::no_body(StatusCode::NO_CONTENT))
        }
        (&Method::DELETE, ["faults", id]) => match id.parse::<u64>() {
            Ok(id) if control.rules.remove(id) => Ok(http::no_body(StatusCode::NO_CONTENT)),
            _ => Err(not_found(format!("no fault rule {id}"))),
        },
        (&Method::GET, ["journal"]) => journal(control, &request),
        (&Method::DELETE, ["journal"]) => {
            control.journal.clear();
            Ok(http::no_body(StatusCode::NO_CONTENT))
        }
        (&Method::POST, ["journal", "verify"]) => verify(control, &request),
        (&Method::GET, ["jobs"]) => jobs(engine, &request),
        (&Method::GET, ["jobs", id]) => job(engine, id).map(|r| {
            let mut view = job_view(&r);
            view["log"] = json!(r.log);
            view["meta"] = r.spec.meta.clone();
            view["exec_sql"] = json!(r.spec.runnable_sql());
            http::json(StatusCode::OK, &view)
        }),
        (&Method::GET, ["jobs", id, "preview"]) => preview(engine, id, &request).await,
        (&Method::POST, ["jobs", id, "cancel"]) => job(engine, id).and_then(|r| {
            engine
                .cancel(r.id)
                .and_then(|_| engine.get(r.id))
                .map(|r| http::json(StatusCode::OK, &job_view(&r)))
                .map_err(|e| not_found(e.message))
        }),
        (_, ["ui" | "reset" | "faults" | "journal" | "jobs", ..]) => Err((
            StatusCode::METHOD_NOT_ALLOWED,
            format!("{method} is not served on {path}"),
        )),
        _ => Err(not_found(format!("no admin route {path}"))),
    };
    answer.unwrap_or_else(|(status, message)| http::json(status, &json!({ "error": message })))
}

/// A JSON body, or the empty object when there is none.
fn body<T: for<'de> Deserialize<'de>>(request: &Request) -> Result<T, (StatusCode, String)> {
    let bytes: &[u8] =
        if request.body().trim_ascii().is_empty() || request.body().trim_ascii() == b"null" {
            b"{}"
        } else {
            request.body()
        };
    serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("the body is not what was expected: {e}")))
}

/// The query string as a typed value.
fn query<T: for<'de> Deserialize<'de>>(request: &Request) -> Result<T, (StatusCode, String)> {
    serde_urlencoded::from_str(request.uri().query().unwrap_or_default())
        .map_err(|e| bad(format!("the query string is not what was expected: {e}")))
}

/// What a reset is limited to (nothing: everything).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ResetScope {
    principal: Option<String>,
    dialect: Option<String>,
}

fn reset(
    control: &ControlPlane,
    engine: &Engine,
    fronts: &[Arc<dyn Front>],
    request: &Request,
) -> Answer {
    let scope: ResetScope = body(request)?;
    if let Some(d) = &scope.dialect
        && !fronts.iter().any(|f| f.name() == d)
    {
        return Err(bad(format!("no dialect `{d}`")));
    }
    let owner = scope.principal.as_deref().map(principal);
    let removed = engine.reset(owner.as_ref(), scope.dialect.as_deref());
    for front in fronts {
        if scope.dialect.as_ref().is_none_or(|d| d == front.name()) {
            front.reset(owner.as_ref());
        }
    }
    let everything = scope.principal.is_none() && scope.dialect.is_none();
    if everything {
        control.journal.clear();
        control.rules.restore().map_err(|e| bad(e.0))?;
    }
    Ok(http::json(
        StatusCode::OK,
        &json!({ "jobs_removed": removed, "journal_cleared": everything, "faults_restored": everything }),
    ))
}

/// A principal as the admin API names it: a user name, or `anonymous@<ip>`.
fn principal(name: &str) -> Principal {
    match name.strip_prefix("anonymous@").map(str::parse) {
        Some(Ok(ip)) => Principal::Anonymous(ip),
        _ => Principal::user(name),
    }
}

/// One rule or a list of them.
fn add_faults(control: &ControlPlane, request: &Request) -> Answer {
    let specs = match serde_json::from_slice::<Value>(request.body()) {
        Err(e) => return Err(bad(format!("the body is not JSON: {e}"))),
        // Parsed by type so that a mistake is named (untagged enums only say "no variant").
        Ok(Value::Array(items)) => items
            .into_iter()
            .map(serde_json::from_value::<RuleSpec>)
            .collect::<Result<Vec<_>, _>>(),
        Ok(one) => serde_json::from_value::<RuleSpec>(one).map(|r| vec![r]),
    }
    .map_err(|e| bad(format!("not a fault rule: {e}")))?;
    let added = control.rules.add(specs).map_err(|e| bad(e.0))?;
    Ok(http::json(StatusCode::CREATED, &added))
}

/// A journal filter from the query string.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JournalQuery {
    dialect: Option<String>,
    principal: Option<String>,
    method: Option<String>,
    path: Option<String>,
    status: Option<u16>,
    body: Option<String>,
    limit: Option<usize>,
}

fn journal(control: &ControlPlane, request: &Request) -> Answer {
    let q: JournalQuery = query(request)?;
    let matcher = Matcher::new(Pattern {
        dialect: q.dialect,
        principal: q.principal,
        method: q.method,
        path: q.path,
        status: q.status,
        body: q.body,
    })
    .map_err(|e| bad(e.0))?;
    let entries: Vec<Value> = control
        .journal
        .find(&matcher, q.limit.unwrap_or(100))
        .iter()
        .map(|e| entry_json(e))
        .collect();
    Ok(http::json(StatusCode::OK, &entries))
}

/// `verify`: a pattern and how many requests must have matched it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Verify {
    #[serde(default)]
    request: Pattern,
    count: Option<usize>,
    at_least: Option<usize>,
    at_most: Option<usize>,
}

fn verify(control: &ControlPlane, request: &Request) -> Answer {
    let v: Verify = body(request)?;
    if v.count.is_none() && v.at_least.is_none() && v.at_most.is_none() {
        return Err(bad("say `count`, `at_least` or `at_most`"));
    }
    let matcher = Matcher::new(v.request).map_err(|e| bad(e.0))?;
    let n = control.journal.count(&matcher);
    let ok = v.count.is_none_or(|c| n == c)
        && v.at_least.is_none_or(|c| n >= c)
        && v.at_most.is_none_or(|c| n <= c);
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::CONFLICT
    };
    Ok(http::json(
        status,
        &json!({ "ok": ok, "count": n, "expected": { "count": v.count, "at_least": v.at_least, "at_most": v.at_most } }),
    ))
}

/// A job list filter.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct JobsQuery {
    dialect: Option<String>,
    state: Option<String>,
    principal: Option<String>,
    /// Text searched in the SQL, the id and the principal.
    q: Option<String>,
    limit: Option<usize>,
}

fn jobs(engine: &Engine, request: &Request) -> Answer {
    let f: JobsQuery = query(request)?;
    let needle = f.q.as_deref().map(str::to_lowercase);
    let list: Vec<Value> = engine
        .list(None)
        .iter()
        .filter(|r| f.dialect.as_ref().is_none_or(|d| *d == r.spec.dialect))
        .filter(|r| f.state.as_ref().is_none_or(|s| s == r.state.as_str()))
        .filter(|r| {
            f.principal
                .as_ref()
                .is_none_or(|p| *p == r.spec.owner.name())
        })
        .filter(|r| {
            needle.as_ref().is_none_or(|n| {
                r.spec.sql.to_lowercase().contains(n)
                    || r.id.to_uuid().contains(n)
                    || r.spec.owner.name().to_lowercase().contains(n)
            })
        })
        .take(f.limit.unwrap_or(500))
        .map(job_view)
        .collect();
    Ok(http::json(StatusCode::OK, &list))
}

fn job(engine: &Engine, id: &str) -> Result<JobRecord, (StatusCode, String)> {
    JobRef::parse(id)
        .and_then(|r| engine.resolve(r))
        .and_then(|id: JobId| engine.get(id).ok())
        .ok_or_else(|| not_found(format!("no job {id}")))
}

/// A job as the dashboard lists it, with its identity on every wire.
fn job_view(r: &JobRecord) -> Value {
    let now = Utc::now();
    let ms = |d: chrono::TimeDelta| d.num_milliseconds();
    json!({
        "id": r.id.to_uuid(),
        "ids": { "luminesce": r.id.to_uuid(), "kylin": r.id.to_uuid(), "looker": r.id.to_hex(), "asterixdb": r.id.to_handle() },
        "dialect": r.spec.dialect,
        "principal": r.spec.owner.name(),
        "state": r.state.as_str(),
        "sql": r.spec.sql,
        "name": r.spec.name,
        "rows": r.rows,
        "created": r.created.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "age_ms": ms(now - r.created),
        "duration_ms": r.started.map(|s| ms(r.finished.unwrap_or(now) - s)),
        "error": r.error,
    })
}

/// `?offset=&limit=`: a page of a succeeded job's result as JSON rows.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Page {
    offset: Option<usize>,
    limit: Option<usize>,
}

async fn preview(engine: &Engine, id: &str, request: &Request) -> Answer {
    let page: Page = query(request)?;
    let record = job(engine, id)?;
    let reader = engine
        .read(record.id)
        .map_err(|e| (StatusCode::CONFLICT, e.message))?;
    let offset = page.offset.unwrap_or(0);
    let limit = page.limit.unwrap_or(50).min(MAX_PREVIEW_ROWS);
    // The result may be a file: read off the async runtime.
    let rows = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
        let mut writer = arrow::json::ArrayWriter::new(Vec::new());
        let (mut skip, mut left) = (offset, limit);
        for batch in reader {
            let batch = batch.map_err(|e| e.to_string())?;
            let n = batch.num_rows();
            if skip >= n {
                skip -= n;
                continue;
            }
            let take = left.min(n - skip);
            writer
                .write(&batch.slice(skip, take))
                .map_err(|e| e.to_string())?;
            skip = 0;
            left -= take;
            if left == 0 {
                break;
            }
        }
        writer.finish().map_err(|e| e.to_string())?;
        Ok(writer.into_inner())
    })
    .await
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let rows: Value = if rows.is_empty() {
        json!([])
    } else {
        serde_json::from_slice(&rows).unwrap_or_default()
    };
    Ok(http::json(
        StatusCode::OK,
        &json!({ "offset": offset, "limit": limit, "total": record.row_count, "rows": rows }),
    ))
}
