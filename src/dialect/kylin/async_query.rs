//! `/kylin/api/async_query…`: submit, status, metadata, file status, download, result path,
//! delete and stop, in the v2 (`queryID`, project optional) and v4 (`query_id`, project required)
//! flavours.

use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDateTime, TimeZone, Utc};
use futures::StreamExt;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper::header::{CONTENT_DISPOSITION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, StatusCode};
use serde_json::{Map, Value, json};

use super::errors::{self, KeCode, KylinError, text};
use super::files::{self, FileFormat, FileSpec};
use super::sql::{Project, calcite_message, check_planned_scope, prepare};
use super::wire::{AsyncQueryData, Envelope, Flavour, Status, sql_type};
use super::{Call, KylinJob, Reply, State, enveloped, json_response};
use crate::engine::{Engine, ExportState, JobRecord, JobRef, JobSpec, JobState, Limits};
use crate::sql::guard::cpu_bound;
use crate::wire::{FormatLabel, Response};

/// Routes `/async_query/<rest>`; answers the metrics label and the reply.
pub async fn route(
    state: &Arc<State>,
    method: &Method,
    rest: &[&str],
    call: &Call,
    flavour: Flavour,
) -> (&'static str, Reply) {
    match (method, rest) {
        (&Method::POST, []) => ("async_submit", submit(state, call, flavour).await),
        (&Method::DELETE, []) => ("async_delete_all", delete_all(state, call, flavour)),
        (&Method::DELETE, ["stop", id]) => ("async_stop", stop(state, call, flavour, id)),
        (&Method::DELETE, [id]) => ("async_delete", delete(state, call, flavour, id)),
        (&Method::GET, [id, "status"]) => ("async_status", status(state, call, flavour, id)),
        (&Method::GET, [id, "metadata"]) => ("async_metadata", metadata(state, call, flavour, id)),
        (&Method::GET, [id, "filestatus" | "file_status"]) => {
            ("async_file_status", file_status(state, call, flavour, id))
        }
        (&Method::GET, [id, "result_download"]) => {
            ("async_download", download(state, call, flavour, id).await)
        }
        (&Method::GET, [id, "result_path"]) => {
            ("async_result_path", result_path(state, call, flavour, id))
        }
        _ => (
            "async_other",
            Err(KylinError::new(
                KeCode::Unknown,
                format!(
                    "Request method '{method}' is not supported for /async_query/{}",
                    rest.join("/")
                ),
            )
            .with_status(StatusCode::METHOD_NOT_ALLOWED)),
        ),
    }
}

/// A submit body's fields, read leniently as Jackson does (numbers may be strings).
fn text_field(body: &Map<String, Value>, key: &str) -> Option<String> {
    match body.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

fn number_field(body: &Map<String, Value>, key: &str) -> Result<u64, KylinError> {
    let bad = || {
        KylinError::invalid_parameter(format!(
            "JSON parse error: `{key}` must be a non-negative integer"
        ))
    };
    match body.get(key) {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .or_else(|| n.as_i64().filter(|&i| i <= 0).map(|_| 0))
            .ok_or_else(bad),
        Some(Value::String(s)) => s.trim().parse().map_err(|_| bad()),
        Some(_) => Err(bad()),
    }
}

fn bool_field(body: &Map<String, Value>, key: &str) -> bool {
    match body.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The project a request names: required for v4 (`missing` says how to complain), `DEFAULT` or
/// "every project" for v2.
fn named_project(
    name: Option<String>,
    flavour: Flavour,
    missing: KylinError,
) -> Result<Option<Project>, KylinError> {
    match name.filter(|n| !n.trim().is_empty()) {
        Some(name) => Project::find(&name).map(Some).ok_or_else(|| {
            KylinError::new(KeCode::ProjectNotFound, text::project_not_found(&name))
        }),
        None => match flavour {
            Flavour::V4(_) => Err(missing),
            Flavour::V2 | Flavour::Raw => Ok(None),
        },
    }
}

/// The failure a submit answers without a job: HTTP 200, `FAILED`, no id.
fn refused(flavour: Flavour, code: String, info: String) -> Reply {
    let data = AsyncQueryData {
        query_id: None,
        status: Status::Failed,
        info,
    };
    json_response(flavour, &Envelope::with(code, data.to_json(flavour), ""))
}

async fn submit(state: &Arc<State>, call: &Call, flavour: Flavour) -> Reply {
    let body = call.json_object()?;
    let project = named_project(
        text_field(&body, "project"),
        flavour,
        KylinError::new(KeCode::EmptyProjectName, text::EMPTY_PROJECT),
    )?
    .or_else(|| Project::find("DEFAULT"))
    .ok_or_else(|| KylinError::new(KeCode::ProjectNotFound, text::project_not_found("DEFAULT")))?;
    let format_text = text_field(&body, "format").unwrap_or_else(|| "csv".into());
    let encode = text_field(&body, "encode")
        .unwrap_or_else(|| "utf-8".into())
        .to_ascii_lowercase();
    let unsupported = || {
        refused(
            flavour,
            KeCode::AsyncIllegalParam.with_name(),
            // Kylin names the format in this message even when the encoding is what is wrong.
            format!(
                "Format {format_text} unsupported. Only {} are supported",
                FileFormat::NAMES
            ),
        )
    };
    if !matches!(encode.as_str(), "utf-8" | "gbk") {
        return unsupported();
    }
    let Some(format) = FileFormat::parse(&format_text) else {
        return unsupported();
    };
    let separator = text_field(&body, "separator")
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| ",".into());
    let file = FileSpec {
        format,
        encode,
        file_name: text_field(&body, "file_name")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "result".into()),
        separator,
        include_header: bool_field(&body, "include_header"),
    };
    let limit = number_field(&body, "limit")?;
    let offset = number_field(&body, "offset")?;
    let sql = text_field(&body, "sql").unwrap_or_default();
    let catalog = state.engine.executor().catalog();
    let prepared = match cpu_bound(|| prepare(&sql, project, catalog, limit, offset)) {
        Ok(p) => p,
        Err(e) => return refused(flavour, "000".into(), e.message),
    };
    if let Err(e) = check_planned_scope(&state.engine, &prepared, project).await {
        return refused(flavour, "000".into(), e.message);
    }
    let mut spec = JobSpec::new(sql, call.principal.principal.clone(), "kylin");
    spec.exec_sql = prepared.exec_sql;
    spec.limits = Limits {
        keep_for: Duration::from_secs(state.settings().result_retain_hours.saturating_mul(3600)),
        ..Limits::default()
    };
    spec.set_meta(&KylinJob {
        project: project.name.into(),
        file: Some(file.clone()),
    });
    let id = match state.engine.submit(spec).await {
        Ok(id) => id,
        Err(e) if e.kind == crate::engine::ErrorKind::Busy => return Err(errors::from_engine(e)),
        Err(e) => return refused(flavour, "000".into(), e.message),
    };
    let record = state
        .engine
        .wait(id, Duration::from_millis(state.settings().submit_wait_ms))
        .await
        .map_err(errors::from_engine)?;
    let (status, info) = match progress(state, &record, project, &file) {
        (Status::Successful, _) => (Status::Successful, "query success".to_string()),
        (Status::Failed, info) => (Status::Failed, info),
        _ => (
            Status::Running,
            match flavour {
                Flavour::V4(_) => "query still running".to_string(),
                Flavour::V2 | Flavour::Raw => "still running".to_string(),
            },
        ),
    };
    let data = AsyncQueryData {
        query_id: Some(id.to_uuid()),
        status,
        info,
    };
    enveloped(flavour, data.to_json(flavour))
}

/// Writes a Kylin async job's result file as soon as it succeeds (subscribed to the engine's job
/// ends when the front is built), so the file is usually there by the first status poll.
pub fn write_on_success(engine: &Engine, record: &JobRecord) {
    if record.state != JobState::Succeeded {
        return;
    }
    if let (Some(project), file) = file_spec(record) {
        let _ = engine.export(
            record.id,
            &files::file_name(project.name, record.id, file.format),
            files::writer(file),
        );
    }
}

/// Where an async job stands on Kylin's wire: its status and info text. A succeeded job whose file
/// is not written yet is still `RUNNING`, as in Kylin (the `_SUCCESS` marker comes last).
fn progress(
    state: &State,
    record: &JobRecord,
    project: Project,
    file: &FileSpec,
) -> (Status, String) {
    match record.state {
        JobState::Queued | JobState::Running => (Status::Running, "still running".into()),
        JobState::Succeeded => {
            let name = files::file_name(project.name, record.id, file.format);
            match state
                .engine
                .export(record.id, &name, files::writer(file.clone()))
            {
                Ok(ExportState::Ready { .. }) => {
                    (Status::Successful, "await fetching results".into())
                }
                Ok(ExportState::Writing) => (Status::Running, "still running".into()),
                Ok(ExportState::Failed(reason)) => (Status::Failed, reason),
                Err(e) => (Status::Failed, e.message),
            }
        }
        JobState::Failed | JobState::Cancelled | JobState::TimedOut => (
            Status::Failed,
            record
                .error
                .as_ref()
                .map(|e| calcite_message(&e.message, &record.spec.sql))
                .unwrap_or_default(),
        ),
    }
}

/// An async job found by a GET or DELETE.
struct Located {
    record: JobRecord,
    /// The job's own project, or for another wire's job the one the caller named (else `DEFAULT`).
    project: Project,
    file: FileSpec,
}

/// What looking a job up came to.
enum Lookup {
    Found(Box<Located>),
    /// No such job in this project (or at all). Admins are told so; others are refused.
    Unknown,
    /// Someone else's job, and the caller is not an admin.
    Denied,
}

/// The project and result file of a job. A job Kylin's async API did not start (another wire's, or
/// a Kylin sync query) belongs to whichever project the caller names (`None`), and reads as a CSV
/// file with Kylin's defaults.
fn file_spec(record: &JobRecord) -> (Option<Project>, FileSpec) {
    let own = record.spec.meta::<KylinJob>().and_then(|job| {
        let project = Project::find(&job.project)?;
        Some((Some(project), job.file?))
    });
    own.unwrap_or((None, FileSpec::default()))
}

/// Resolves the project (v4: required, v2: optional) and the job. With v2 and no project an unknown
/// id is an error, as Kylin's v2 `searchProject` makes it.
fn locate(state: &State, call: &Call, flavour: Flavour, id: &str) -> Result<Lookup, KylinError> {
    let project = named_project(
        call.project_param(),
        flavour,
        KylinError::new(KeCode::ProjectNameEmpty, text::PROJECT_NAME_EMPTY),
    )?;
    let found = JobRef::parse(id)
        .and_then(|r| state.engine.resolve(r))
        .and_then(|job| state.engine.get(job).ok())
        .and_then(|record| {
            let (job_project, file) = file_spec(&record);
            // A job of Kylin's own is found in its project; another wire's job in any project.
            let project = match (job_project, project) {
                (Some(own), Some(asked)) if own != asked => return None,
                (Some(own), _) => own,
                (None, asked) => asked.unwrap_or(Project::DEFAULT),
            };
            Some(Located {
                record,
                project,
                file,
            })
        });
    Ok(match found {
        Some(found) if call.principal.admin_may_see(&found.record.spec.owner) => {
            Lookup::Found(Box::new(found))
        }
        Some(_) => Lookup::Denied,
        None if project.is_none() => return Err(KylinError::query_not_found()),
        None if call.principal.admin => Lookup::Unknown,
        None => Lookup::Denied,
    })
}

/// Kylin's HTTP-200 `code:"401"` answer for a job the caller may not see.
fn denied(flavour: Flavour, data: Value, what: &str) -> Reply {
    json_response(
        flavour,
        &Envelope::with(
            "401",
            data,
            format!("Access denied. Only task submitters or admin users can {what}"),
        ),
    )
}

fn status(state: &Arc<State>, call: &Call, flavour: Flavour, id: &str) -> Reply {
    let data = match locate(state, call, flavour, id)? {
        Lookup::Denied => return denied(flavour, Value::Null, "get the query status"),
        Lookup::Unknown => AsyncQueryData {
            query_id: Some(id.to_string()),
            status: Status::Missing,
            info: "query status is lost".into(),
        },
        Lookup::Found(job) => {
            // A status poll: counted against a fault's not-ready polls.
            let record = state.engine.poll(job.record.id).unwrap_or(job.record);
            let (status, info) = progress(state, &record, job.project, &job.file);
            AsyncQueryData {
                query_id: Some(record.id.to_uuid()),
                status,
                info,
            }
        }
    };
    enveloped(flavour, data.to_json(flavour))
}

/// The job, when its result file is ready; otherwise Kylin's "result not found".
fn finished(state: &Arc<State>, lookup: Lookup) -> Result<Box<Located>, KylinError> {
    match lookup {
        Lookup::Found(job)
            if progress(state, &job.record, job.project, &job.file).0 == Status::Successful =>
        {
            Ok(job)
        }
        _ => Err(KylinError::result_not_found()),
    }
}

fn metadata(state: &Arc<State>, call: &Call, flavour: Flavour, id: &str) -> Reply {
    let lookup = locate(state, call, flavour, id)?;
    if matches!(lookup, Lookup::Denied) {
        return denied(flavour, Value::Null, "get the metadata");
    }
    let job = finished(state, lookup)?;
    let schema = match job.record.schema {
        Some(schema) => schema,
        None => state
            .engine
            .read(job.record.id)
            .map_err(errors::from_engine)?
            .schema(),
    };
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let types: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| sql_type(f.data_type()).text())
        .collect();
    enveloped(flavour, json!([names, types]))
}

fn file_status(state: &Arc<State>, call: &Call, flavour: Flavour, id: &str) -> Reply {
    let lookup = locate(state, call, flavour, id)?;
    if matches!(lookup, Lookup::Denied) {
        return denied(flavour, json!(0), "get the file status");
    }
    let job = finished(state, lookup)?;
    let name = files::file_name(job.project.name, job.record.id, job.file.format);
    let size = match state
        .engine
        .export(job.record.id, &name, files::writer(job.file.clone()))
    {
        Ok(ExportState::Ready { size }) => size,
        _ => 0,
    };
    enveloped(flavour, size)
}

fn result_path(state: &Arc<State>, call: &Call, flavour: Flavour, id: &str) -> Reply {
    match locate(state, call, flavour, id)? {
        Lookup::Denied => denied(flavour, json!(""), "get the query path"),
        Lookup::Unknown => Err(KylinError::query_not_found()),
        Lookup::Found(job) => {
            let dir = state
                .engine
                .export_location(job.record.id)
                .join(files::result_dir(job.project.name, job.record.id));
            let dir = std::path::absolute(&dir).unwrap_or(dir);
            enveloped(flavour, format!("file://{}", dir.display()))
        }
    }
}

async fn download(state: &Arc<State>, call: &Call, flavour: Flavour, id: &str) -> Reply {
    if call.param("includeHeader").is_some() || call.param("oldIncludeHeader").is_some() {
        // Kylin resolves the project before it looks at the parameter.
        named_project(
            call.project_param(),
            flavour,
            KylinError::new(KeCode::ProjectNameEmpty, text::PROJECT_NAME_EMPTY),
        )?;
        return Err(KylinError::new(
            KeCode::IncludeHeaderNotEmpty,
            text::INCLUDE_HEADER,
        ));
    }
    let lookup = locate(state, call, flavour, id)?;
    if matches!(lookup, Lookup::Denied) {
        return Err(KylinError::new(KeCode::AccessDenied, text::DOWNLOAD_DENIED));
    }
    let job = finished(state, lookup)?;
    let name = files::file_name(job.project.name, job.record.id, job.file.format);
    let (_, bytes) = state
        .engine
        .open_export(job.record.id, &name)
        .await
        .map_err(|_| KylinError::result_not_found())?;
    let chunks = bytes.map(|chunk| {
        chunk
            .map(Frame::data)
            .map_err(|e| Box::new(e) as crate::wire::BoxError)
    });
    let mut response = Response::new(StreamBody::new(chunks.boxed()).boxed_unsync());
    let headers = response.headers_mut();
    let content_type = job.file.format.content_type(&job.file.encode);
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(CONTENT_TYPE, value);
    }
    headers.insert(
        CONTENT_DISPOSITION,
        crate::wire::attachment(&job.file.file_name, job.file.format.name(), "result"),
    );
    response
        .extensions_mut()
        .insert(FormatLabel(job.file.format.name()));
    Ok(response)
}

fn delete(state: &Arc<State>, call: &Call, flavour: Flavour, id: &str) -> Reply {
    match locate(state, call, flavour, id)? {
        Lookup::Denied => json_response(
            flavour,
            &Envelope::with("401", false, text::BULK_DELETE_DENIED),
        ),
        Lookup::Unknown => Err(KylinError::query_not_found()),
        Lookup::Found(job) => {
            forget(state, &job.record);
            enveloped(flavour, true)
        }
    }
}

/// A job and its result file are gone together.
fn forget(state: &State, record: &JobRecord) {
    let _ = state.engine.remove(record.id);
}

fn stop(state: &Arc<State>, call: &Call, flavour: Flavour, id: &str) -> Reply {
    let job = match locate(state, call, flavour, id)? {
        Lookup::Denied => return denied(flavour, json!(""), "stop the query"),
        Lookup::Unknown => return Err(KylinError::query_not_found()),
        Lookup::Found(job) => job,
    };
    if job.record.state.is_terminal() {
        return json_response(
            flavour,
            &Envelope::with(
                "999",
                "Query is not running",
                "Query is not running. please check",
            ),
        );
    }
    state
        .engine
        .cancel(job.record.id)
        .map_err(errors::from_engine)?;
    json_response(
        flavour,
        &Envelope::with(
            "000",
            "",
            format!("Async Query（id={}） will be canceled", job.record.id),
        ),
    )
}

/// `DELETE /async_query`: admins only; everything, or one project's results older than a time.
fn delete_all(state: &Arc<State>, call: &Call, flavour: Flavour) -> Reply {
    if !call.principal.admin {
        return Err(KylinError::new(
            KeCode::AccessDenied,
            text::BULK_DELETE_DENIED,
        ));
    }
    let project = match call.param("project") {
        Some(name) => Some(Project::find(name).ok_or_else(|| {
            KylinError::new(KeCode::ProjectNotFound, text::project_not_found(name))
        })?),
        None => None,
    };
    let older_than = call.param("older_than");
    let cutoff = match (project, older_than) {
        (None, None) => None,
        (Some(_), Some(time)) => {
            let time = NaiveDateTime::parse_from_str(time.trim(), "%Y-%m-%d %H:%M:%S")
                .map_err(|_| KylinError::new(KeCode::TimeFormat, text::TIME_FORMAT))?;
            Some(Utc.from_utc_datetime(&time))
        }
        _ => {
            return json_response(
                flavour,
                &Envelope::with("000", false, text::CLEAN_FOLDER_FAIL),
            );
        }
    };
    for record in state.engine.list(None) {
        // Only the jobs Kylin's async API started have files of their own to clean.
        let (Some(job_project), _) = file_spec(&record) else {
            continue;
        };
        let selected = match (project, cutoff) {
            (Some(p), Some(cutoff)) => p == job_project && record.created < cutoff,
            _ => true,
        };
        if selected {
            forget(state, &record);
        }
    }
    enveloped(flavour, true)
}
