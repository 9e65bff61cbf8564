//! FINBOURNE Luminesce `SqlBackground` (issue #3): the API the official `luminesce-sdk` calls, under
//! `/honeycomb/api/SqlBackground`.
//!
//! - `PUT /api/SqlBackground` starts a query (raw SQL in a text/plain body) and answers 202 with links;
//! - `GET /{id}` is its progress, `DELETE /{id}` cancels it (or clears a finished one);
//! - `GET /{id}/<format>` fetches the result (csv, pipe, json, jsonProper, jsonProperWithLineage,
//!   xml, excel, parquet, sqlite), reshaped by sortBy/filter/sqlFilter/select/groupBy/limit/page;
//! - `GET /{id}/historicalFeedback`, `GET /api/SqlBackground` (this principal's queries).
//!
//! Auth is a Bearer token. With no users configured any token is accepted and is its own
//! principal; with users configured only their tokens are.

mod apply;
mod catalog;
mod design;
mod drive;
mod errors;
mod exclusions;
mod fetch;
pub(crate) mod filter;
mod grouping;
mod histogram;
mod history;
mod models;
mod modifiers;
mod multi_query;
#[cfg(test)]
mod oracle;
mod params;
mod save_as;
mod script;
pub(crate) mod sql;
mod sql_execution;
mod view_api;
mod view_parameters;
mod views;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use hyper::header::{AUTHORIZATION, CONTENT_DISPOSITION};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{Front, FrontContext};
use crate::engine::{
    Engine, JobId, JobRecord, JobRef, JobSpec, Limits, ParamValue, Params, Reuse, SaveArea,
};
use crate::query::{Principal, Principals};
use crate::sql::guard::cpu_bound;
use crate::wire::HttpLimits;
use crate::wire::body::encoded;
use crate::wire::{self as http, Body, FormatLabel, Request, Response, RouteLabel};
pub use errors::{LuminesceError, ProblemDetails};
use fetch::{FetchRequest, Output};
use models::{
    BackgroundQueryCancelResponse, BackgroundQueryListItem, BackgroundQueryProgressResponse,
    BackgroundQueryResponse,
};
use params::QueryParams;

/// `[luminesce]` settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// An extra address serving only this dialect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Identical-query reuse: for this many seconds (and never longer than the earlier query's
    /// keep-for) the same principal sending a character-identical query with the same parameters gets
    /// the earlier query's id back instead of a new query. 0 turns reuse off.
    pub reuse_window_secs: u64,
    /// The directory that stands in for Drive (`/{id}/drive`); default `luminesce-drive` in the
    /// data directory (a cluster's shared directory, `results.url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drive_dir: Option<PathBuf>,
}

pub fn front(context: FrontContext<Settings>) -> Arc<dyn Front> {
    let drive = context.engine.save_area(
        context
            .settings
            .drive_dir
            .clone()
            .unwrap_or_else(|| context.engine.shared_dir().join("luminesce-drive")),
    );
    let views = views::Views::new(&context.engine);
    let settle = views.clone();
    context
        .engine
        .on_end(move |_, record| settle.settle(record));
    Arc::new(LuminesceFront {
        engine: context.engine,
        principals: context.principals,
        limits: context.limits,
        settings: context.settings,
        drive,
        views,
    })
}

/// The Luminesce wire over the engine.
pub struct LuminesceFront {
    engine: Engine,
    principals: Arc<Principals>,
    limits: HttpLimits,
    settings: Settings,
    /// The area that stands in for Drive.
    drive: SaveArea,
    /// The saved views (`Sys.Admin.SetupView`).
    views: views::Views,
}

/// The path every request must start with.
const PREFIX: &str = "/honeycomb/";
/// The dialect name jobs are tagged with.
pub(crate) const DIALECT: &str = "luminesce";
/// The named parameters of `PUT /api/SqlBackground`; every other query key is a scalar parameter.
const START_PARAMETERS: [&str; 7] = [
    "executionId",
    "scalarParameters",
    "queryName",
    "timeoutSeconds",
    "keepForSeconds",
    "executionFlags",
    "externalQuerySource",
];
/// `timeoutSeconds=0`: two hours.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(7200);
/// `keepForSeconds` < 0: twenty minutes; 0: eight hours; at most 31 days.
const KEEP_FOR_NEGATIVE: Duration = Duration::from_secs(1200);
const KEEP_FOR_ZERO: Duration = Duration::from_secs(28_800);
const KEEP_FOR_MAX: Duration = Duration::from_secs(2_678_400);

/// Where a request goes, read off its path.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `/api/SqlBackground`
    Collection,
    /// `/api/SqlBackground/{id}`
    Job(String),
    /// `/api/SqlBackground/{id}/{action}`
    Action(String, String),
    /// `/api/Sql/{format}` (the query in the body)
    Sql(String),
    /// `/api/Sql/{format}/{query}` (the query in the path)
    SqlInPath(String, String),
    /// `/api/Catalog`, `/api/Catalog/fields`, `/api/Catalog/providers`
    Catalog(Option<String>),
    /// `/api/metadata/{endpoints | access/resources}`
    Metadata(String),
    /// `/api/MultiQueryBackground[/…]`
    MultiQuery(Vec<String>),
    /// `/api/View/{list | update | sql}`
    View(String),
    /// `/fakeNodeReclaim` (HealthCheckingEndpointApi)
    FakeNodeReclaim,
    /// `/api/History`, `/api/History/{id}`, `/api/History/{id}/json`
    History(Vec<String>),
}

/// Operations of the SDK's API classes that polyquery does not build, below `/honeycomb/api/`
/// (`{id}` is any one segment): each a 501 that names it, where a path of no class is a 404.
const NOT_BUILT: [(&str, &str); 21] = [
    ("PUT", "Sql/todesign"),
    ("PUT", "Sql/fromdesign"),
    ("PUT", "Sql/tocasestatementdesign"),
    ("PUT", "Sql/fromcasestatementdesign"),
    ("PUT", "Sql/tofilereaddesign"),
    ("PUT", "Sql/fromfilereaddesign"),
    ("PUT", "Sql/toinlinedpropertiesdesign"),
    ("PUT", "Sql/frominlinedpropertiesdesign"),
    ("PUT", "Sql/towriterdesign"),
    ("PUT", "Sql/fromwriterdesign"),
    ("PUT", "Sql/fromlusidgrid"),
    ("PUT", "Sql/intellisense"),
    ("PUT", "Sql/intellisenseError"),
    ("GET", "Sql/providertemplateforexport"),
    ("PUT", "Sql/extractscalarparameters/custom"),
    ("GET", "Certificate/certificate"),
    ("GET", "Certificate/certificates"),
    ("PUT", "Certificate/manage"),
    ("GET", "Download/download"),
    ("GET", "Download/versions"),
    ("GET", "History/{id}/histogram"),
];

/// The operation a path names if it is one of [`NOT_BUILT`].
fn not_built(method: &Method, path: &str) -> Option<&'static str> {
    let rest = path.strip_prefix("/honeycomb")?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let [api, tail @ ..] = segments.as_slice() else {
        return None;
    };
    if !api.eq_ignore_ascii_case("api") {
        return None;
    }
    NOT_BUILT.iter().find_map(|(m, template)| {
        let parts: Vec<&str> = template.split('/').collect();
        let fits = *m == method.as_str()
            && parts.len() == tail.len()
            && parts
                .iter()
                .zip(tail)
                .all(|(p, s)| *p == "{id}" || p.eq_ignore_ascii_case(s));
        fits.then_some(*template)
    })
}

/// Reads the route off a path, tolerating doubled slashes (the SDK sends `//` when its base URL
/// ends in `/`). `None`: not an API path.
fn route(path: &str) -> Option<Route> {
    let rest = path.strip_prefix("/honeycomb")?;
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    if let [single] = segments.as_slice()
        && single.eq_ignore_ascii_case("fakeNodeReclaim")
    {
        return Some(Route::FakeNodeReclaim);
    }
    let [api, family, tail @ ..] = segments.as_slice() else {
        return None;
    };
    if !api.eq_ignore_ascii_case("api") {
        return None;
    }
    if family.eq_ignore_ascii_case("SqlBackground") {
        return match tail {
            [] => Some(Route::Collection),
            [id] => Some(Route::Job(http::path_segment(id))),
            [id, action] => Some(Route::Action(http::path_segment(id), action.to_string())),
            _ => None,
        };
    }
    if family.eq_ignore_ascii_case("History") && tail.len() <= 2 {
        return Some(Route::History(
            tail.iter().map(|s| http::path_segment(s)).collect(),
        ));
    }
    if family.eq_ignore_ascii_case("MultiQueryBackground") && tail.len() <= 2 {
        return Some(Route::MultiQuery(
            tail.iter().map(|s| http::path_segment(s)).collect(),
        ));
    }
    if family.eq_ignore_ascii_case("View")
        && let [part] = tail
    {
        return Some(Route::View(part.to_string()));
    }
    if family.eq_ignore_ascii_case("metadata") && !tail.is_empty() {
        return Some(Route::Metadata(tail.join("/")));
    }
    if family.eq_ignore_ascii_case("Catalog") {
        return match tail {
            [] => Some(Route::Catalog(None)),
            [part] => Some(Route::Catalog(Some(part.to_string()))),
            _ => None,
        };
    }
    if family.eq_ignore_ascii_case("Sql") {
        return match tail {
            [format] => Some(Route::Sql(format.to_string())),
            [format, query] => Some(Route::SqlInPath(
                format.to_string(),
                http::path_segment(query),
            )),
            _ => None,
        };
    }
    None
}

type Answer = Result<Response, LuminesceError>;

impl Front for LuminesceFront {
    fn name(&self) -> &'static str {
        DIALECT
    }

    fn owns(&self, path: &str) -> bool {
        path.starts_with(PREFIX)
    }

    fn handle(&self, request: Request) -> BoxFuture<'_, Response> {
        Box::pin(async move {
            let (label, answer) = self.answer(&request).await;
            let mut response = answer.unwrap_or_else(|e| e.response());
            response.extensions_mut().insert(RouteLabel(label));
            response
        })
    }

    fn reject(&self, status: StatusCode, message: &str) -> Response {
        let name = match status {
            StatusCode::PAYLOAD_TOO_LARGE => "RequestTooLarge",
            StatusCode::SERVICE_UNAVAILABLE => "RequestTimedOut",
            StatusCode::INTERNAL_SERVER_ERROR => "InternalServerError",
            _ => "InvalidRequest",
        };
        LuminesceError::new(status, name, "The request was refused", message).response()
    }

    fn refuse(&self, error: crate::engine::EngineError) -> Response {
        LuminesceError::from(error).response()
    }

    /// Views are the domain's, not one user's: only a full reset forgets them.
    fn reset(&self, owner: Option<&Principal>) {
        if owner.is_none() {
            self.views.clear();
        }
    }
}

impl LuminesceFront {
    /// Routes one request; answers the route label for metrics with the answer.
    async fn answer(&self, request: &Request) -> (&'static str, Answer) {
        if let Some(operation) = not_built(request.method(), request.uri().path()) {
            return (
                "other",
                Err(LuminesceError::not_built(format!(
                    "{} /api/{operation} is part of the Luminesce API but not built in polyquery",
                    request.method()
                ))),
            );
        }
        let Some(route) = route(request.uri().path()) else {
            return (
                "other",
                Err(LuminesceError::no_such_path(format!(
                    "{} {}",
                    request.method(),
                    request.uri().path()
                ))),
            );
        };
        let caller = match self.principal(request) {
            Ok(c) => c,
            Err(e) => return ("auth", Err(e)),
        };
        let q = match QueryParams::decode(request.uri().query()) {
            Ok(q) => q,
            Err(e) => return ("other", Err(e)),
        };
        let method = request.method();
        match (&route, method) {
            (Route::Collection, &Method::PUT) => ("start", self.start(&caller, request, &q).await),
            (Route::Collection, &Method::GET) => ("list", self.list(&caller, &q)),
            (Route::Job(id), &Method::GET) => ("status", self.progress(&caller, id, &q)),
            (Route::Job(id), &Method::DELETE) => ("cancel", self.cancel(&caller, id)),
            (Route::Sql(op), &Method::PUT) if op.eq_ignore_ascii_case("fromviewdesign") => {
                ("design", self.view_design_to_sql(request.body()))
            }
            (Route::Sql(op), &Method::PUT) => match request_sql(request) {
                Ok(sql) if op.eq_ignore_ascii_case("pretty") => ("design", self.pretty(sql, &q)),
                Ok(sql) if op.eq_ignore_ascii_case("extractscalarparameters") => {
                    ("design", self.extract_scalar_parameters(sql))
                }
                Ok(sql) if op.eq_ignore_ascii_case("toviewdesign") => {
                    ("design", self.sql_to_view_design(sql))
                }
                Ok(sql) => ("sql", self.run_sync(&caller, op, sql, &q).await),
                Err(e) => ("sql", Err(e)),
            },
            (Route::Metadata(part), &Method::GET) => ("metadata", self.metadata(part)),
            (Route::History(tail), method) => match (tail.as_slice(), method) {
                ([], &Method::GET) => ("history", self.history(&caller, &q).await),
                ([id], &Method::GET) => ("status", self.progress(&caller, id, &q)),
                ([id], &Method::DELETE) => ("cancel", self.cancel(&caller, id)),
                ([id, json], &Method::GET) if json.eq_ignore_ascii_case("json") => {
                    let output = match q.bool("jsonProper") {
                        Ok(Some(true)) => Output::JsonProper,
                        Ok(_) => Output::Json,
                        Err(e) => return ("results", Err(e)),
                    };
                    let q = q.only(&["sortBy", "filter", "select", "groupBy", "limit", "page"]);
                    ("results", self.fetch(&caller, id, output, &q).await)
                }
                _ => (
                    "other",
                    Err(LuminesceError::no_such_path(format!(
                        "{method} {}",
                        request.uri().path()
                    ))),
                ),
            },
            (Route::MultiQuery(tail), method) => (
                "multi",
                self.multi_query(&caller, tail, method, request, &q).await,
            ),
            (Route::View(part), method) => (
                "view",
                self.view_api(&caller, part, method, request, &q).await,
            ),
            (Route::FakeNodeReclaim, &Method::GET) => ("health", self.fake_node_reclaim(&q)),
            (Route::Catalog(part), &Method::GET) => ("catalog", self.catalog(part.as_deref(), &q)),
            (Route::SqlInPath(format, sql), &Method::GET) => {
                ("sql", self.run_sync(&caller, format, sql, &q).await)
            }
            (Route::Action(id, action), &Method::GET) => {
                if action.eq_ignore_ascii_case("historicalFeedback") {
                    ("feedback", self.historical_feedback(&caller, id, &q).await)
                } else if action.eq_ignore_ascii_case("histogram") {
                    ("histogram", self.histogram(&caller, id, &q).await)
                } else if action.eq_ignore_ascii_case("drive") {
                    ("drive", self.drive(&caller, id, &q).await)
                } else if let Some(output) = Output::parse(action) {
                    ("results", self.fetch(&caller, id, output, &q).await)
                } else {
                    (
                        "other",
                        Err(LuminesceError::not_found(format!(
                            "unknown result format '{action}'; use one of: {}, histogram, drive, historicalFeedback",
                            Output::ALL.map(Output::segment).join(", ")
                        ))),
                    )
                }
            }
            _ => (
                "other",
                Err(LuminesceError::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "MethodNotAllowed",
                    "The method is not allowed here",
                    format!("{method} is not allowed on {}", request.uri().path()),
                )),
            ),
        }
    }

    /// The caller's principal, from `Authorization: Bearer <token>`.
    fn principal(&self, request: &Request) -> Result<Principal, LuminesceError> {
        if !request.headers().contains_key(AUTHORIZATION) {
            return Err(LuminesceError::unauthorized(
                "an Authorization: Bearer token is required",
            ));
        }
        let token = http::token_credentials(request, &["bearer"]).ok_or_else(|| {
            LuminesceError::unauthorized("the Authorization header must be 'Bearer <token>'")
        })?;
        self.principals
            .by_token(token)
            .map(|c| c.principal)
            .ok_or_else(|| LuminesceError::unauthorized("the Bearer token is not valid"))
    }

    /// A job of the caller's, by the id a client sent; anything else is 404.
    /// A query of a multi-query set is `{set}_{name}`.
    fn job(&self, caller: &Principal, id: &str) -> Result<JobId, LuminesceError> {
        let job = JobRef::parse(id)
            .and_then(|r| self.engine.resolve(r))
            .or_else(|| self.set_member(caller, id).map(|r| r.id))
            .ok_or_else(|| no_such_query(id))?;
        self.engine
            .get_for(job, caller)
            .map_err(|_| no_such_query(id))?;
        Ok(job)
    }

    /// `PUT /api/SqlBackground`
    async fn start(&self, caller: &Principal, request: &Request, q: &QueryParams) -> Answer {
        let sql = request_sql(request)?;
        if let Some(id) = q.nonblank("executionId")
            && uuid::Uuid::try_parse(id.trim()).is_err()
        {
            return Err(LuminesceError::bad_parameter(
                "executionId",
                format!("executionId must be blank or a GUID, not '{id}'"),
            ));
        }
        let lineage = match q.nonblank("executionFlags") {
            None => false,
            Some(f) if f.eq_ignore_ascii_case("None") => false,
            Some(f) if f.eq_ignore_ascii_case("ProvideLineage") => true,
            Some(f) => {
                return Err(LuminesceError::bad_parameter(
                    "executionFlags",
                    format!("executionFlags must be None or ProvideLineage, not '{f}'"),
                ));
            }
        };
        match q.nonblank("externalQuerySource") {
            None => {}
            Some(s) if s.eq_ignore_ascii_case("None") => {}
            Some(s) => {
                return Err(LuminesceError::bad_parameter(
                    "externalQuerySource",
                    format!(
                        "externalQuerySource '{s}' is not available: polyquery has no saved queries; send the SQL itself"
                    ),
                ));
            }
        }
        let limits = Limits {
            timeout: timeout(q.int("timeoutSeconds")?),
            keep_for: keep_for(q.int("keepForSeconds")?),
            row_limit: None,
        };
        let mut spec = self.job_spec(caller, sql, q, &START_PARAMETERS).await?;
        spec.name = q.nonblank("queryName");
        spec.limits = limited(&spec, limits);
        spec.set_meta(&models::LuminesceJob {
            provide_lineage: lineage,
            ..models::LuminesceJob::of(&spec)
        });
        if let Some(id) = self.reusable(&spec) {
            return Ok(started(id));
        }
        let id = self.engine.submit(spec).await?;
        Ok(started(id))
    }

    /// A job for Luminesce SQL: rewritten for the engine, with the scalar parameters of the query
    /// string (every key but the request's own `options`) bound. The views a script sets up ride
    /// on the job (with their columns, planned now) and are saved when it succeeds.
    async fn job_spec(
        &self,
        caller: &Principal,
        sql: &str,
        q: &QueryParams,
        options: &[&str],
    ) -> Result<JobSpec, LuminesceError> {
        let params = scalar_parameters(q, options)?;
        self.script_job(caller, sql, params, &[]).await
    }

    /// A job for a Luminesce script with its parameters, reading `earlier` table variables.
    async fn script_job(
        &self,
        caller: &Principal,
        sql: &str,
        params: Params,
        earlier: &[(String, Box<sqlparser::ast::Query>)],
    ) -> Result<JobSpec, LuminesceError> {
        let catalog = self.engine.executor().catalog();
        let saved = self.views.all();
        let rewritten = cpu_bound(|| sql::rewrite_with(sql, &params, catalog, &saved, earlier))?;
        let mut spec = JobSpec::new(sql, caller.clone(), DIALECT);
        if !rewritten.views.is_empty() {
            let mut setups = Vec::with_capacity(rewritten.views.len());
            for setup in rewritten.views {
                views::check_setup(&setup, catalog, &saved)?;
                if setup.delete {
                    setups.push((setup, Vec::new()));
                    continue;
                }
                let view = sql::rewrite_view(&setup, &params, catalog, &saved)?;
                // Planned, not run: no rows are read past LIMIT 0.
                let probe = format!("SELECT * FROM ({}) AS v LIMIT 0", view.exec_sql);
                let schema = self.engine.describe(&probe, &params).await?.schema;
                let columns: Vec<(String, String)> = schema
                    .fields()
                    .iter()
                    .map(|f| (f.name().clone(), models::data_type(f.data_type()).into()))
                    .collect();
                setups.push((setup, columns));
            }
            spec.set_meta(&models::LuminesceJob {
                views: setups,
                ..models::LuminesceJob::default()
            });
        }
        spec.wait = Some(rewritten.wait).filter(|w| !w.is_zero());
        // Carried to the request's own limits, which keep it where it is the shorter (`limited`).
        spec.limits.timeout = rewritten.timeout;
        spec.saves = rewritten.saves;
        for save in &mut spec.saves {
            save.root = self.drive.root().to_path_buf();
        }
        spec.exec_sql = rewritten.exec_sql;
        spec.params = params;
        Ok(spec)
    }

    /// Identical-query reuse: an earlier job of this principal with the same SQL, parameters and
    /// lineage request, still going or within the window (and never past its keep-for).
    fn reusable(&self, spec: &JobSpec) -> Option<JobId> {
        let window = Duration::from_secs(self.settings.reuse_window_secs);
        // A script that writes files writes them each time it is sent.
        if window.is_zero() || !spec.saves.is_empty() {
            return None;
        }
        let reuse = Reuse {
            within: window.min(spec.limits.keep_for),
            unfinished: true,
        };
        self.engine
            .find_reusable(spec, reuse, |earlier| earlier.meta == spec.meta)
    }

    /// `GET /api/SqlBackground/{id}`
    fn progress(&self, caller: &Principal, id: &str, q: &QueryParams) -> Answer {
        q.bool("buildFromLogs")?;
        let all = q.bool("includeAllFeedback")?.unwrap_or(false);
        let job = self.job(caller, id)?;
        let record = self.engine.poll(job).map_err(|_| no_such_query(id))?;
        self.views.settle(&record);
        let fresh = self.engine.feedback(job, caller, all)?;
        Ok(http::json(
            StatusCode::OK,
            &BackgroundQueryProgressResponse::new(&record, fresh),
        ))
    }

    /// `GET /api/SqlBackground/{id}/historicalFeedback`: the whole feedback log, after waiting up
    /// to `nextMessageWaitSeconds` for the query to finish.
    async fn historical_feedback(&self, caller: &Principal, id: &str, q: &QueryParams) -> Answer {
        let wait = q.int("nextMessageWaitSeconds")?.unwrap_or(0).max(0) as u64;
        if let Some(s) = q.nonblank("startedAt")
            && chrono::DateTime::parse_from_rfc3339(s.trim()).is_err()
        {
            return Err(LuminesceError::bad_parameter(
                "startedAt",
                format!("startedAt must be an ISO-8601 date-time, not '{s}'"),
            ));
        }
        let job = self.job(caller, id)?;
        let record = self
            .engine
            .wait(job, Duration::from_secs(wait).min(self.max_wait()))
            .await?;
        Ok(http::json(
            StatusCode::OK,
            &BackgroundQueryProgressResponse::new(&record, record.log.clone()),
        ))
    }

    /// `DELETE /api/SqlBackground/{id}`: a running query is cancelled (and stays visible as
    /// Canceled); a finished one is cleared (and is gone).
    fn cancel(&self, caller: &Principal, id: &str) -> Answer {
        let job = self.job(caller, id)?;
        let current = self.engine.get(job)?;
        let body = if current.state.is_terminal() {
            let before = self.engine.remove(job)?;
            let mut progress = models::progress_text(&before);
            progress.push_str("\nQuery data cleared");
            BackgroundQueryCancelResponse::new(&before, progress)
        } else {
            let before = self.engine.cancel(job)?;
            let after = self.engine.get(job)?;
            BackgroundQueryCancelResponse::new(&before, models::progress_text(&after))
        };
        Ok(http::json(StatusCode::OK, &body))
    }

    /// `GET /api/SqlBackground`: this principal's live queries, most recent first.
    fn list(&self, caller: &Principal, q: &QueryParams) -> Answer {
        let like = q
            .nonblank("sqlLike")
            .map(|p| sql_like_matcher(&p))
            .transpose()
            .map_err(|e| {
                LuminesceError::bad_parameter(
                    "sqlLike",
                    format!("the pattern is too long or not usable: {e}"),
                )
            })?;
        let items: Vec<BackgroundQueryListItem> = self
            .engine
            .list(Some(caller))
            .iter()
            .filter(|r| like.as_ref().is_none_or(|m| m.is_match(&r.spec.sql)))
            .map(BackgroundQueryListItem::new)
            .collect();
        Ok(http::json(StatusCode::OK, &items))
    }

    /// The longest a request may wait for a query.
    fn max_wait(&self) -> Duration {
        self.limits.wait_budget()
    }

    /// A caller's finished job, waiting up to `load_wait_ms` for it; not ready, failed or
    /// cancelled is the engine's error, mapped to the wire in one place.
    async fn finished(
        &self,
        caller: &Principal,
        id: &str,
        load_wait_ms: u64,
    ) -> Result<(JobId, JobRecord, datafusion::arrow::datatypes::SchemaRef), LuminesceError> {
        let job = self.job(caller, id)?;
        let wait = Duration::from_millis(load_wait_ms).min(self.max_wait());
        let record = self.engine.wait(job, wait).await?;
        self.views.settle(&record);
        let schema = self.engine.read(job)?.schema();
        Ok((job, record, schema))
    }

    /// A finished job's result, reshaped and encoded as the request asks (streamed).
    async fn result_body(
        &self,
        caller: &Principal,
        id: &str,
        request: &FetchRequest,
    ) -> Result<(JobRecord, Body), LuminesceError> {
        let (job, record, schema) = self.finished(caller, id, request.load_wait_ms).await?;
        let reshape = request.reshape(&schema)?;
        let stream = self.engine.reshape(job, &reshape, self.max_wait()).await?;
        let stream = crate::wire::body::first_batch(stream).await?;
        let output = request.output;
        let body = encoded(stream, output.format(), request.options.clone());
        let body = match output {
            Output::Json => fetch::json_string(body),
            Output::JsonProperWithLineage => {
                fetch::with_lineage(body, &models::lineage(&record, &schema))
            }
            _ => body,
        };
        Ok((record, body))
    }

    /// `GET /api/SqlBackground/{id}/<format>`
    async fn fetch(&self, caller: &Principal, id: &str, output: Output, q: &QueryParams) -> Answer {
        let request = FetchRequest::parse(output, q)?;
        self.deliver(caller, id, &request).await
    }

    /// A finished job's result as the response to a fetch: its body, content type and download name.
    async fn deliver(&self, caller: &Principal, id: &str, request: &FetchRequest) -> Answer {
        let output = request.output;
        let (record, body) = self.result_body(caller, id, request).await?;
        let mut response = http::with_body(StatusCode::OK, output.content_type(), "");
        *response.body_mut() = body;
        if request.download {
            let stem = record
                .spec
                .name
                .clone()
                .unwrap_or_else(|| record.id.to_uuid());
            response.headers_mut().insert(
                CONTENT_DISPOSITION,
                http::attachment(&file_stem(&stem), output.extension(), "query"),
            );
        }
        response
            .extensions_mut()
            .insert(FormatLabel(output.format().name()));
        Ok(response)
    }

    /// `GET /api/SqlBackground/{id}/histogram`
    async fn histogram(&self, caller: &Principal, id: &str, q: &QueryParams) -> Answer {
        let request = histogram::HistogramRequest::parse(q)?;
        let (job, _, schema) = self.finished(caller, id, 0).await?;
        let buckets = request
            .run(&self.engine, job, &schema, self.max_wait())
            .await?;
        if request.json_proper {
            return Ok(http::json(StatusCode::OK, &buckets));
        }
        let text = serde_json::to_string(&buckets).map_err(crate::engine::EngineError::internal)?;
        Ok(http::json(StatusCode::OK, &text))
    }

    /// `GET /api/SqlBackground/{id}/drive`: the result saved as a file in the Drive directory.
    async fn drive(&self, caller: &Principal, id: &str, q: &QueryParams) -> Answer {
        let requested = q.nonblank("driveLocationAndFileName").ok_or_else(|| {
            LuminesceError::bad_parameter(
                "driveLocationAndFileName",
                "driveLocationAndFileName is required",
            )
        })?;
        let output = match q.nonblank("format") {
            None => Output::Csv,
            Some(f) => Output::parse(&f).ok_or_else(|| {
                LuminesceError::bad_parameter(
                    "format",
                    format!(
                        "format '{f}' cannot be saved; use one of: {}",
                        Output::ALL.map(Output::segment).join(", ")
                    ),
                )
            })?,
        };
        let may_overwrite = q.bool("mayOverwrite")?.unwrap_or(false);
        let (path, shown) = drive::target(&requested, output)?;
        let request = FetchRequest::parse(output, q)?;
        let (_, body) = self.result_body(caller, id, &request).await?;
        let bytes = drive::save(&self.drive, &path, body, may_overwrite).await?;
        Ok(http::json(
            StatusCode::OK,
            &format!(
                "Saved {bytes} bytes of {} to Drive at {shown}",
                output.segment()
            ),
        ))
    }
}

/// The SQL of a request's text/plain body.
/// A job's limits as its request asks; a `pragma TimeoutSec` in its SQL (which `script_job` put in
/// the spec's timeout) is kept where it is the shorter.
fn limited(spec: &JobSpec, mut limits: Limits) -> Limits {
    if let Some(pragma) = spec.limits.timeout {
        limits.timeout = Some(limits.timeout.map_or(pragma, |t| t.min(pragma)));
    }
    limits
}

fn request_sql(request: &Request) -> Result<&str, LuminesceError> {
    let sql = std::str::from_utf8(request.body()).map_err(|e| {
        LuminesceError::bad_request(format!("the body must be the SQL as UTF-8 text: {e}"))
    })?;
    if sql.trim().is_empty() {
        return Err(LuminesceError::bad_request(
            "the body is empty: send the SQL as the text/plain body",
        ));
    }
    Ok(sql)
}

fn no_such_query(id: &str) -> LuminesceError {
    let detail = if JobRef::parse(id).is_none() {
        format!("'{id}' is not an execution id (a GUID), so no such query exists")
    } else {
        format!(
            "no query with execution id {id} exists for the calling user: it never did, has expired, or another user ran it"
        )
    };
    LuminesceError::not_found(detail)
}

fn started(id: JobId) -> Response {
    http::json(StatusCode::ACCEPTED, &BackgroundQueryResponse::new(id))
}

/// `timeoutSeconds`: < 0 unlimited, 0 (or absent) two hours.
fn timeout(seconds: Option<i64>) -> Option<Duration> {
    match seconds.unwrap_or(0) {
        s if s < 0 => None,
        0 => Some(DEFAULT_TIMEOUT),
        s => Some(Duration::from_secs(s as u64)),
    }
}

/// `keepForSeconds`: < 0 (or absent) twenty minutes, 0 eight hours, at most 31 days.
fn keep_for(seconds: Option<i64>) -> Duration {
    match seconds {
        None => KEEP_FOR_NEGATIVE,
        Some(s) if s < 0 => KEEP_FOR_NEGATIVE,
        Some(0) => KEEP_FOR_ZERO,
        Some(s) => Duration::from_secs(s as u64).min(KEEP_FOR_MAX),
    }
}

/// The scalar parameters of a start request, in both wire forms: every query key that is not a
/// named parameter (SDK ≥ 2.4.150), and `scalarParameters=<json object>` (older SDKs), plus
/// ASP.NET's `scalarParameters[name]=value`. Flattened values are text; JSON values keep their type.
fn scalar_parameters(q: &QueryParams, options: &[&str]) -> Result<Params, LuminesceError> {
    let mut named: BTreeMap<String, ParamValue> = BTreeMap::new();
    for (key, value) in q.pairs() {
        if key.eq_ignore_ascii_case("scalarParameters") {
            let object: serde_json::Map<String, ParamValue> =
                serde_json::from_str(value).map_err(|e| {
                    LuminesceError::bad_parameter(
                        "scalarParameters",
                        format!("scalarParameters must be a JSON object of name to value: {e}"),
                    )
                })?;
            for (k, v) in object {
                if v.is_array() || v.is_object() {
                    return Err(LuminesceError::bad_parameter(
                        "scalarParameters",
                        format!("the scalar parameter '{k}' must be a single value"),
                    ));
                }
                named.insert(k, v);
            }
        } else if let Some(name) = key
            .strip_prefix("scalarParameters[")
            .and_then(|k| k.strip_suffix(']'))
        {
            named.insert(name.to_string(), ParamValue::String(value.clone()));
        } else if !options.iter().any(|p| p.eq_ignore_ascii_case(key)) {
            named.insert(key.clone(), ParamValue::String(value.clone()));
        }
    }
    Ok(Params {
        positional: Vec::new(),
        named,
    })
}

/// A file name made of the query's name: letters, digits, `-`, `_`, `.` and spaces kept.
fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ' ') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stem = stem.trim().trim_matches('.');
    if stem.is_empty() {
        "query".into()
    } else {
        stem.chars().take(100).collect()
    }
}

/// SQL `LIKE` (`%` any run, `_` one character), ignoring case, for `sqlLike`: compiled once into
/// a regular expression, which matches in time linear in the text (a backtracking matcher takes
/// exponential time on `%a%a%a%b`).
pub(crate) fn sql_like_matcher(pattern: &str) -> Result<regex::Regex, regex::Error> {
    let mut expression = String::from("(?is)^");
    for c in pattern.chars() {
        match c {
            '%' => expression.push_str(".*"),
            '_' => expression.push('.'),
            c => expression.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    expression.push('$');
    regex::RegexBuilder::new(&expression)
        .size_limit(1 << 20)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_tolerate_doubled_slashes_and_quoted_ids() {
        assert_eq!(
            route("/honeycomb//api/SqlBackground/a%2Fb%20c"),
            Some(Route::Job("a/b c".into()))
        );
        assert_eq!(
            route("/honeycomb/api/SqlBackground"),
            Some(Route::Collection)
        );
        assert_eq!(
            route("/honeycomb/api/SqlBackground/x/csv"),
            Some(Route::Action("x".into(), "csv".into()))
        );
        assert_eq!(route("/honeycomb/api/Other"), None);
        assert_eq!(
            route("/honeycomb/api/Sql/csv/select%201"),
            Some(Route::SqlInPath("csv".into(), "select 1".into()))
        );
        assert_eq!(
            route("/honeycomb/api/Sql/json"),
            Some(Route::Sql("json".into()))
        );
    }

    #[test]
    fn lifetimes_follow_the_documented_rules() {
        assert_eq!(timeout(Some(-1)), None);
        assert_eq!(timeout(Some(0)), Some(DEFAULT_TIMEOUT));
        assert_eq!(timeout(None), Some(DEFAULT_TIMEOUT));
        assert_eq!(timeout(Some(30)), Some(Duration::from_secs(30)));
        assert_eq!(keep_for(Some(-5)), KEEP_FOR_NEGATIVE);
        assert_eq!(keep_for(Some(0)), KEEP_FOR_ZERO);
        assert_eq!(keep_for(Some(600)), Duration::from_secs(600));
        assert_eq!(keep_for(Some(99_999_999)), KEEP_FOR_MAX);
    }

    #[test]
    fn scalar_parameters_in_both_wire_forms() {
        let q = QueryParams::parse(Some(
            "p1=v%201&queryName=n&timeoutSeconds=3&scalarParameters=%7B%22p2%22%3A%202%7D&scalarParameters%5Bp3%5D=x",
        ));
        let p = scalar_parameters(&q, &START_PARAMETERS).unwrap();
        assert_eq!(p.named.len(), 3, "{p:?}");
        assert_eq!(p.named["p1"], ParamValue::String("v 1".into()));
        assert_eq!(p.named["p2"], serde_json::json!(2));
        assert_eq!(p.named["p3"], ParamValue::String("x".into()));
        assert!(
            scalar_parameters(
                &QueryParams::parse(Some("scalarParameters=nope")),
                &START_PARAMETERS
            )
            .is_err()
        );
    }

    fn sql_like(text: &str, pattern: &str) -> bool {
        sql_like_matcher(pattern).unwrap().is_match(text)
    }

    #[test]
    fn like_patterns() {
        assert!(sql_like("select 1 from Testing1K", "%testing1k"));
        assert!(sql_like("select 1", "select _"));
        assert!(!sql_like("select 12", "select _"));
        assert!(sql_like(r"a.b*c\d", r"a.b*c\_"));
        assert!(!sql_like("axb", "a.b"));
        assert!(sql_like("line one\nline two", "%one%two"));
    }

    #[test]
    fn like_patterns_match_in_linear_time() {
        let text = "a".repeat(100_000);
        let pattern = format!("{}b", "%a".repeat(200));
        let started = std::time::Instant::now();
        assert!(!sql_like(&text, &pattern));
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
