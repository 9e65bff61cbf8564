//! Apache AsterixDB's HTTP query API: `/query/service` with immediate, deferred and async delivery,
//! its status and result handles, and `/admin/requests/running` to list and cancel requests.
//!
//! The text is printed as AsterixDB prints it (see [`printer`]); which fields appear follows the
//! configured [`Profile`]: the vendor's documentation page, the 0.9.9 release, or master.
//!
//! - `mod.rs`: routing, auth, and `/query/service` (immediate, deferred, async, compile-only);
//! - `request.rs`: the parameters and their validation; `sqlpp.rs`: SQL++ into the engine's SQL,
//!   with `builtins.rs`: SQL++ operators and functions as engine expressions, or refused, and
//!   `bindings.rs`: `LET` and `WITH` variables;
//! - `handles.rs`: handle URLs, the status and result endpoints; `running.rs`: listing and cancelling;
//! - `fields.rs`: which fields and metrics a profile prints; `printer.rs`: how they are printed;
//! - `results.rs`: result rows as SQL++ values, streamed; `errors.rs`: the one error mapping.

mod bindings;
mod builtins;
mod errors;
mod fields;
mod handles;
mod printer;
mod request;
mod results;
mod running;
pub(crate) mod sqlpp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use hyper::header::{HOST, HeaderValue};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Front, FrontContext};
use crate::engine::{
    Engine, JobId, JobRecord, JobRef, JobSpec, JobState, Limits, Params, SideTable,
};
use crate::query::{Principal, Principals};
use crate::sql::guard::cpu_bound;
use crate::wire::{self as http, RemoteAddr, Request, Response, RouteLabel};
use errors::{AsxError, ResultStatus};
use fields::{FieldRules, Measures, MetricSet, PlanRequest, result_tail};
use handles::{handle, handle_url};
use printer::{Envelope, RecordStyle};
use request::{JobProfile, Mode, OutputFormat, QueryRequest};
use results::{Counts, Layout, RecordPrinter};
use sqlpp::RowShape;

/// Which AsterixDB the responses follow: the vendor page, the 0.9.9 release, or master.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum Profile {
    #[default]
    #[serde(rename = "docs")]
    Docs,
    #[serde(rename = "0.9.9")]
    V099,
    #[serde(rename = "master")]
    Master,
}

/// `[asterixdb]` settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// An extra address serving only this dialect (AsterixDB's own port is 19002).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    pub profile: Profile,
}

pub fn front(context: FrontContext<Settings>) -> Arc<dyn Front> {
    let reads = ReadCounts::load(&context.engine);
    Arc::new(AsterixFront {
        engine: context.engine,
        principals: context.principals,
        limits: context.limits,
        profile: context.settings.profile,
        reads,
    })
}

/// Per job, how many times its result was read, kept in the engine's side records too, so that a
/// restart does not give a job its `max-result-reads` again.
struct ReadCounts {
    counts: Mutex<HashMap<JobId, i64>>,
    saved: SideTable<i64>,
}

impl ReadCounts {
    fn load(engine: &Engine) -> ReadCounts {
        let saved = engine.side_table("asterixdb_reads");
        let mut counts = HashMap::new();
        for (key, count) in saved.load() {
            match JobRef::parse(&key).and_then(|r| engine.resolve(r)) {
                Some(id) => {
                    counts.insert(id, count);
                }
                None => saved.remove(&key),
            }
        }
        ReadCounts {
            counts: Mutex::new(counts),
            saved,
        }
    }

    /// Counts one read of `id`; answers whether it was the last of the `allowed`.
    fn count(&self, engine: &Engine, id: JobId, allowed: i64) -> bool {
        if self.saved.shared() {
            // In a cluster the reads through every instance count: the store keeps the count.
            let key = id.to_uuid();
            let count = self.saved.get(&key).unwrap_or(0).saturating_add(1);
            let done = count >= allowed;
            if done {
                self.saved.remove(&key);
            } else {
                self.saved.save(&key, &count);
            }
            return done;
        }
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        // Counts of jobs that expired or were discarded meanwhile go with them.
        counts.retain(|id, _| {
            let live = engine.get(*id).is_ok();
            if !live {
                self.saved.remove(&id.to_uuid());
            }
            live
        });
        let count = counts.entry(id).or_insert(0);
        *count += 1;
        let done = *count >= allowed;
        if done {
            counts.remove(&id);
            self.saved.remove(&id.to_uuid());
        } else {
            self.saved.save(&id.to_uuid(), count);
        }
        done
    }
}

const SERVICE: &str = "/query/service";
const STATUS: &str = "/query/service/status";
const RESULT: &str = "/query/service/result";
const RUNNING: &str = "/admin/requests/running";
const DIALECT: &str = "asterixdb";

/// What an AsterixDB job keeps for its later reads: what its request said about the output, and
/// where it came from (for `/admin/requests/running`). Another wire's job reads as the defaults.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct AsterixJob {
    client_context_id: Option<String>,
    /// [`OutputFormat::tag`].
    format: String,
    /// [`RowShape::tag`].
    shape: String,
    pretty: bool,
    max_result_reads: i64,
    profile_timings: bool,
    compile_nanos: u64,
    ordered: bool,
    new_api: bool,
    user_agent: Option<String>,
    remote_addr: Option<String>,
}

impl Default for AsterixJob {
    fn default() -> Self {
        AsterixJob {
            client_context_id: None,
            format: "json".into(),
            shape: "object".into(),
            pretty: false,
            max_result_reads: 1,
            profile_timings: false,
            compile_nanos: 0,
            ordered: false,
            new_api: false,
            user_agent: None,
            remote_addr: None,
        }
    }
}

impl crate::engine::WireMeta for AsterixJob {
    const DIALECT: &'static str = DIALECT;
}

impl AsterixJob {
    fn of(record: &JobRecord) -> AsterixJob {
        record.spec.meta().unwrap_or_default()
    }
}

/// The AsterixDB front.
pub struct AsterixFront {
    engine: Engine,
    principals: Arc<Principals>,
    limits: http::HttpLimits,
    profile: Profile,
    reads: ReadCounts,
}

impl Front for AsterixFront {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn owns(&self, path: &str) -> bool {
        [SERVICE, RUNNING]
            .iter()
            .any(|p| path == *p || path.starts_with(&format!("{p}/")))
    }

    fn handle(&self, request: Request) -> BoxFuture<'_, Response> {
        Box::pin(self.route(request))
    }

    fn reject(&self, status: StatusCode, message: &str) -> Response {
        let error = if status == StatusCode::SERVICE_UNAVAILABLE {
            AsxError::timed_out()
        } else if status.is_server_error() {
            AsxError::from_engine(&crate::engine::EngineError::internal(message), "")
        } else {
            AsxError::invalid_parameter("statement", message)
        };
        let mut response = self.error_response(&error, None, None, Instant::now());
        *response.status_mut() = status;
        response
    }

    fn refuse(&self, error: crate::engine::EngineError) -> Response {
        self.error_response(
            &AsxError::from_engine(&error, ""),
            None,
            None,
            Instant::now(),
        )
    }
}

impl AsterixFront {
    async fn route(&self, request: Request) -> Response {
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        let Some(owner) = self.principal(&request) else {
            let mut r = http::no_body(StatusCode::UNAUTHORIZED);
            r.headers_mut().insert(
                "www-authenticate",
                HeaderValue::from_static("Basic realm=\"AsterixDB\""),
            );
            return r;
        };
        let mut response = if path == SERVICE {
            match method {
                Method::GET | Method::POST => self.query(&request, &owner).await,
                Method::OPTIONS => self.options(&request),
                _ => not_allowed(&method),
            }
        } else if path == STATUS || path.starts_with(&format!("{STATUS}/")) {
            match method {
                Method::GET => self.status(&request, &path[STATUS.len()..], &owner),
                _ => not_allowed(&method),
            }
        } else if path == RESULT || path.starts_with(&format!("{RESULT}/")) {
            match method {
                Method::GET => self.result(&path[RESULT.len()..], &owner),
                Method::DELETE if self.profile == Profile::Master => {
                    self.discard(&path[RESULT.len()..], &owner)
                }
                _ => not_allowed(&method),
            }
        } else if path == RUNNING || path.starts_with(&format!("{RUNNING}/")) {
            match method {
                Method::GET => self.running(&owner),
                Method::DELETE => self.cancel(&request, &owner),
                _ => not_allowed(&method),
            }
        } else {
            unknown_path()
        };
        let route = if path == SERVICE {
            "query"
        } else if path.starts_with(STATUS) {
            "status"
        } else if path.starts_with(RESULT) {
            "results"
        } else {
            "requests"
        };
        response.extensions_mut().insert(RouteLabel(route));
        response
    }

    /// Who is asking: the HTTP Basic principal when credentials are sent (required when users are
    /// configured: `None` answers 401), else the anonymous principal of the client's address.
    fn principal(&self, request: &Request) -> Option<Principal> {
        match http::basic_credentials(request) {
            Some((name, password)) => self
                .principals
                .by_password(&name, &password)
                .map(|c| c.principal),
            None if self.principals.is_open() => {
                Some(Principals::anonymous(http::remote_ip(request)).principal)
            }
            None => None,
        }
    }

    // ---- /query/service ------------------------------------------------------------------------

    async fn query(&self, request: &Request, owner: &Principal) -> Response {
        let started = Instant::now();
        let params = match request::parse(request) {
            Ok(p) => p,
            Err(e) => return self.error_response(&e, None, None, started),
        };
        let Some(statement) = params.statement.clone() else {
            return self.error_response(&AsxError::no_statement(), None, None, started);
        };
        let mut response = self.run(request, owner, &params, statement, started).await;
        cors(request, &mut response);
        response
    }

    async fn run(
        &self,
        request: &Request,
        owner: &Principal,
        params: &QueryRequest,
        mut statement: String,
        started: Instant,
    ) -> Response {
        if !statement.trim_end().ends_with(';') {
            statement.push(';');
        }
        let rules = sqlpp::Rules {
            asynchronous: params.mode == Mode::Async,
            readonly: params.readonly,
            multi_statement: params.multi_statement,
            dataverse: params.dataverse.as_deref(),
            catalog: Some(self.engine.executor().catalog()),
        };
        let translated = cpu_bound(|| sqlpp::translate(&statement, rules));
        let compile = started.elapsed();
        let request_id = uuid::Uuid::new_v4().hyphenated().to_string();
        let translation = match translated {
            Ok(t) => t,
            Err(e) => return self.compile_error(&e, &request_id, params, started),
        };
        if params.compile_only {
            return self.compiled_answer(params, &translation, started, compile);
        }
        let origin = (
            request
                .headers()
                .get(hyper::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            request
                .extensions()
                .get::<RemoteAddr>()
                .map(|remote| remote.0.to_string()),
        );
        let spec = self.job_spec(owner, params, &statement, &translation, compile, origin);
        let id = match self.engine.submit(spec).await {
            Ok(id) => id,
            Err(e) => {
                let e = AsxError::from_engine(&e, &request_id);
                return self.compile_error(&e, &request_id, params, started);
            }
        };
        let request_id = id.to_uuid();
        if params.mode == Mode::Async {
            return self.async_answer(request, id, params, started, compile, &translation.exec_sql);
        }
        let record = match http::wait_within(&self.engine, id, &self.limits).await {
            Ok(r) => r,
            Err(e) => {
                let e = AsxError::from_engine(&e, &request_id);
                return self.error_response(&e, Some(&request_id), Some(params), started);
            }
        };
        if record.state != JobState::Succeeded {
            let error = record.end_error();
            self.engine.remove(id).ok();
            let e = AsxError::from_engine(&error, &request_id);
            return self.error_response(&e, Some(&request_id), Some(params), started);
        }
        match params.mode {
            Mode::Deferred => self.deferred_answer(request, &record, params, started),
            _ => self.immediate_answer(&record, params, &translation.shape, started),
        }
    }

    fn job_spec(
        &self,
        owner: &Principal,
        params: &QueryRequest,
        statement: &str,
        translation: &sqlpp::Translation,
        compile: Duration,
        (user_agent, remote_addr): (Option<String>, Option<String>),
    ) -> JobSpec {
        let new_api = self.new_api(params);
        let meta = AsterixJob {
            client_context_id: params.client_context_id.clone(),
            format: params.format.tag().into(),
            shape: translation.shape.tag(),
            pretty: params.pretty,
            // New-API async results are read any number of times, until DELETE or expiry.
            max_result_reads: if new_api && params.mode == Mode::Async {
                i64::MAX
            } else {
                params.max_result_reads.max(1)
            },
            profile_timings: params.profile == JobProfile::Timings,
            compile_nanos: compile.as_nanos().min(u64::MAX as u128) as u64,
            ordered: translation.ordered,
            new_api,
            user_agent,
            remote_addr,
        };
        let keep_for = params
            .result_ttl
            .filter(|_| new_api)
            .unwrap_or(Limits::default().keep_for);
        let mut spec = JobSpec {
            sql: statement.to_string(),
            exec_sql: translation.exec_sql.clone(),
            params: Params {
                positional: params.args.clone(),
                named: params.named.clone(),
            },
            owner: owner.clone(),
            dialect: DIALECT.into(),
            name: params.client_context_id.clone(),
            limits: Limits {
                timeout: params.timeout,
                keep_for,
                ..Limits::default()
            },
            meta: Value::Null,
            saves: Vec::new(),
            wait: None,
        };
        spec.set_meta(&meta);
        spec
    }

    /// A statement refused before it ran. An async request in 0.9.9 (and the docs profile) answers
    /// these with HTTP 200 and status `failed`; everything else uses the error mapping.
    fn compile_error(
        &self,
        error: &AsxError,
        request_id: &str,
        params: &QueryRequest,
        started: Instant,
    ) -> Response {
        let mut error = error.clone();
        if params.mode == Mode::Async && self.profile != Profile::Master {
            error.status = ResultStatus::Failed;
            error.http = StatusCode::OK;
        }
        self.error_response(&error, Some(request_id), Some(params), started)
    }

    /// The header fields every answer starts with.
    fn header(
        &self,
        envelope: &mut Envelope,
        request_id: Option<&str>,
        params: Option<&QueryRequest>,
    ) {
        if let Some(id) = request_id {
            envelope.string("requestID", id);
        }
        if let Some(c) = params.and_then(|p| p.client_context_id.as_deref()) {
            envelope.string("clientContextID", c);
        }
        if let Some(t) = params.and_then(|p| p.format.type_field()) {
            envelope.string("type", t);
        }
    }

    fn signature(
        &self,
        envelope: &mut Envelope,
        params: &QueryRequest,
        record: Option<&JobRecord>,
    ) {
        if !params.signature {
            return;
        }
        if self.profile == Profile::Docs {
            envelope.string("signature", "*");
            return;
        }
        let typed = record
            .and_then(|r| r.schema.clone())
            .filter(|_| params.jdbc);
        let text = match typed {
            Some(schema) => {
                let names: Vec<Value> = schema.fields().iter().map(|f| json!(f.name())).collect();
                let types: Vec<Value> = schema
                    .fields()
                    .iter()
                    .map(|f| json!(adm_type(f.data_type(), f.is_nullable())))
                    .collect();
                format!(
                    "\t\"signature\": {{\n\t\t\"name\": {},\n\t\t\"type\": {}\n\t}}",
                    Value::Array(names),
                    Value::Array(types)
                )
            }
            None => "\t\"signature\": {\n\t\t\"*\": \"*\"\n\t}".to_string(),
        };
        envelope.raw(text);
    }

    fn content_type(&self) -> &'static str {
        match self.profile {
            Profile::Docs => "application/json; charset=utf-8",
            _ => "application/json; charset=UTF-8",
        }
    }

    fn respond(&self, status: StatusCode, body: String) -> Response {
        http::with_body(status, self.content_type(), body)
    }

    fn error_response(
        &self,
        error: &AsxError,
        request_id: Option<&str>,
        params: Option<&QueryRequest>,
        started: Instant,
    ) -> Response {
        let mut envelope = Envelope::default();
        self.header(&mut envelope, request_id, params);
        envelope.errors(error);
        self.rules().cached_plan(&mut envelope);
        envelope.string("status", error.status.as_str());
        let elapsed = started.elapsed();
        let measures = Measures {
            elapsed,
            execution: elapsed,
            errors: 1,
            ..Measures::default()
        };
        self.rules()
            .metrics(&mut envelope, &measures, MetricSet::Full);
        self.respond(error.http, envelope.finish())
    }

    fn record_measures(&self, record: &JobRecord, started: Instant) -> Measures {
        let compile = compile_time(record);
        Measures {
            elapsed: started.elapsed(),
            execution: between(record.started, record.finished),
            compile,
            queue_wait: between(Some(record.created), record.started),
            counts: Counts::default(),
            errors: 0,
        }
    }

    fn immediate_answer(
        &self,
        record: &JobRecord,
        params: &QueryRequest,
        shape: &RowShape,
        started: Instant,
    ) -> Response {
        let reader = match self.engine.read(record.id) {
            Ok(r) => r,
            Err(e) => {
                let e = AsxError::from_engine(&e, &record.id.to_uuid());
                return self.error_response(&e, Some(&record.id.to_uuid()), Some(params), started);
            }
        };
        // The rows are in hand: an immediate request leaves no job behind.
        self.engine.remove(record.id).ok();
        let mut head = Envelope::default();
        self.header(&mut head, Some(&record.id.to_uuid()), Some(params));
        self.signature(&mut head, params, Some(record));
        let mut head = head.joined();
        head.push_str(",\n");
        let measures = self.record_measures(record, started);
        let rules = self.rules();
        let plans = PlanRequest::new(params, record.spec.runnable_sql());
        let tail: results::Tail = Box::new(move |counts| {
            let mut m = measures;
            m.counts = counts;
            m.elapsed = started.elapsed();
            let mut envelope = Envelope::default();
            rules.plans(&mut envelope, &plans);
            rules.cached_plan(&mut envelope);
            envelope.string("status", ResultStatus::Success.as_str());
            rules.metrics(&mut envelope, &m, MetricSet::Full);
            format!(",\n{}\n}}\n", envelope.joined())
        });
        let printer = RecordPrinter {
            shape: shape.clone(),
            format: params.format,
            style: style(params.pretty),
            quoted: true,
        };
        let body = results::stream(
            reader,
            printer,
            Layout::ENVELOPE,
            format!("{{\n{head}"),
            tail,
        );
        let mut response = hyper::Response::new(body);
        if let Ok(v) = HeaderValue::from_str(self.content_type()) {
            response
                .headers_mut()
                .insert(hyper::header::CONTENT_TYPE, v);
        }
        response
    }

    /// Master's new API (`include-host=false`): relative handles that name the request.
    fn new_api(&self, params: &QueryRequest) -> bool {
        self.profile == Profile::Master && !params.include_host
    }

    fn rules(&self) -> FieldRules {
        FieldRules {
            profile: self.profile,
        }
    }

    fn deferred_answer(
        &self,
        request: &Request,
        record: &JobRecord,
        params: &QueryRequest,
        started: Instant,
    ) -> Response {
        let mut envelope = Envelope::default();
        self.header(&mut envelope, Some(&record.id.to_uuid()), Some(params));
        self.signature(&mut envelope, params, Some(record));
        envelope.string("handle", &handle(request, "result", record));
        let plans = PlanRequest::new(params, record.spec.runnable_sql());
        self.rules().plans(&mut envelope, &plans);
        self.rules().cached_plan(&mut envelope);
        envelope.string("status", ResultStatus::Success.as_str());
        let measures = self.record_measures(record, started);
        self.rules()
            .metrics(&mut envelope, &measures, MetricSet::Full);
        self.respond(StatusCode::OK, envelope.finish())
    }

    fn async_answer(
        &self,
        request: &Request,
        id: JobId,
        params: &QueryRequest,
        started: Instant,
        compile: Duration,
        engine_sql: &str,
    ) -> Response {
        let mut envelope = Envelope::default();
        self.header(&mut envelope, Some(&id.to_uuid()), Some(params));
        self.signature(&mut envelope, params, None);
        let status_handle = match self.engine.get(id) {
            Ok(record) => handle(request, "status", &record),
            Err(_) => handle_url(request, "status", id, false),
        };
        let elapsed = started.elapsed();
        let measures = Measures {
            elapsed,
            execution: elapsed.saturating_sub(compile),
            compile,
            ..Measures::default()
        };
        match self.profile {
            Profile::Master => {
                envelope.string("handle", &status_handle);
                self.rules()
                    .plans(&mut envelope, &PlanRequest::new(params, engine_sql));
                self.rules().cached_plan(&mut envelope);
                envelope.string("status", ResultStatus::Queued.as_str());
                self.rules()
                    .metrics(&mut envelope, &measures, MetricSet::AsyncReduced);
            }
            Profile::V099 | Profile::Docs => {
                envelope.string("status", ResultStatus::Running.as_str());
                envelope.string("handle", &status_handle);
                self.rules()
                    .plans(&mut envelope, &PlanRequest::new(params, engine_sql));
                self.rules()
                    .metrics(&mut envelope, &measures, MetricSet::Full);
            }
        }
        self.respond(StatusCode::OK, envelope.finish())
    }

    /// `compile-only`: the statement is translated and checked by the engine, not run; the answer
    /// describes it (its parameters in `plans.statementParameters`).
    fn compiled_answer(
        &self,
        params: &QueryRequest,
        translation: &sqlpp::Translation,
        started: Instant,
        compile: Duration,
    ) -> Response {
        let request_id = uuid::Uuid::new_v4().hyphenated().to_string();
        if let Err(e) = cpu_bound(|| self.engine.executor().check(&translation.exec_sql)) {
            let e = AsxError::from_engine(&e, &request_id);
            return self.error_response(&e, Some(&request_id), Some(params), started);
        }
        let mut envelope = Envelope::default();
        self.header(&mut envelope, Some(&request_id), Some(params));
        self.signature(&mut envelope, params, None);
        let mut plans = PlanRequest::new(params, &translation.exec_sql);
        plans.compiled = Some(translation.parameters.clone());
        self.rules().plans(&mut envelope, &plans);
        self.rules().cached_plan(&mut envelope);
        envelope.string("status", ResultStatus::Success.as_str());
        let measures = Measures {
            elapsed: started.elapsed(),
            compile,
            ..Measures::default()
        };
        self.rules()
            .metrics(&mut envelope, &measures, MetricSet::Full);
        self.respond(StatusCode::OK, envelope.finish())
    }

    fn options(&self, request: &Request) -> Response {
        let mut response = http::no_body(StatusCode::OK);
        cors(request, &mut response);
        let version = match self.profile {
            Profile::Master => "Apache AsterixDB/0.9.10-SNAPSHOT",
            Profile::Docs | Profile::V099 => "Apache AsterixDB/0.9.9",
        };
        response
            .headers_mut()
            .insert("server", HeaderValue::from_static(version));
        response
    }
}

fn style(pretty: bool) -> RecordStyle {
    if pretty {
        RecordStyle::Pretty
    } else {
        RecordStyle::Compact
    }
}

fn between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Duration {
    match (from, to) {
        (Some(a), Some(b)) => (b - a).to_std().unwrap_or_default(),
        _ => Duration::ZERO,
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The translation time recorded with the job.
fn compile_time(record: &JobRecord) -> Duration {
    Duration::from_nanos(AsterixJob::of(record).compile_nanos)
}

/// The CORS headers AsterixDB adds to `/query/service` answers.
fn cors(request: &Request, response: &mut Response) {
    if let Some(origin) = request.headers().get("origin") {
        response
            .headers_mut()
            .insert("access-control-allow-origin", origin.clone());
    }
    response.headers_mut().insert(
        "access-control-allow-headers",
        HeaderValue::from_static("Origin, X-Requested-With, Content-Type, Accept"),
    );
}

fn not_allowed(method: &Method) -> Response {
    http::text(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("Method {method} not allowed for the requested resource."),
    )
}

fn unknown_path() -> Response {
    let mut r = http::no_body(StatusCode::NOT_FOUND);
    r.headers_mut()
        .insert("permanent", HeaderValue::from_static("true"));
    r
}

/// The ADM type name of a column, `?` when it may be null (the JDBC signature).
fn adm_type(data_type: &datafusion::arrow::datatypes::DataType, nullable: bool) -> String {
    use datafusion::arrow::datatypes::DataType as T;
    let name = match data_type {
        T::Int8 => "int8",
        T::Int16 | T::UInt8 => "int16",
        T::Int32 | T::UInt16 => "int32",
        T::Int64 | T::UInt32 | T::UInt64 => "int64",
        T::Float16 | T::Float32 => "float",
        T::Float64 | T::Decimal128(..) | T::Decimal256(..) => "double",
        T::Boolean => "boolean",
        T::Utf8 | T::LargeUtf8 | T::Utf8View => "string",
        T::Date32 | T::Date64 => "date",
        T::Time32(_) | T::Time64(_) => "time",
        T::Timestamp(..) => "datetime",
        T::Duration(_) | T::Interval(_) => "duration",
        T::Binary | T::LargeBinary | T::BinaryView | T::FixedSizeBinary(_) => "binary",
        T::Struct(_) | T::Map(..) => "object",
        T::List(_) | T::LargeList(_) | T::FixedSizeList(..) | T::ListView(_) => "array",
        T::Null => "null",
        _ => "any",
    };
    if nullable && name != "null" {
        format!("{name}?")
    } else {
        name.to_string()
    }
}
