//! The Looker endpoints: each handler reads its request, asks the engine, and answers in Looker's
//! shapes. Errors travel as [`LookerError`] and are written in one place.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::error::LookerError;
use super::expiring::Expiring;
use super::looks::{self, LookStore, WriteLook};
use super::query::{self, QueryStore, StoredQuery, WriteQuery};
use super::results::{self, ResultFormat, ResultMeta};
use super::semantic::Models;
use super::session::Sessions;
use super::table_calc::TableCalc;
use super::users;
use super::{Front, filter};
use super::{FrontContext, Settings};
use crate::engine::{Engine, JobId, JobRecord, JobRef, JobSpec, JobState, Reuse, SideTable};
use crate::query::Principal;
use crate::sql::guard::cpu_bound;
use crate::wire::{self as http, HttpLimits, Request, Response, RouteLabel};

/// The API prefix every SDK call uses.
const API: &str = "/api/4.0";
/// How long a cached result may be reused.
const CACHE_WINDOW: Duration = Duration::from_secs(3600);

/// Looker's wire over the engine.
pub struct LookerFront {
    engine: Engine,
    limits: HttpLimits,
    settings: Settings,
    sessions: Sessions,
    models: Models,
    queries: QueryStore,
    looks: LookStore,
    sql_queries: SqlQueries,
    /// Task ids this front created and whose they were, so that a forgotten one reads `expired`
    /// to its owner (and `missing`, as a never-existing id does, to everyone else).
    tasks: Mutex<Expiring<u128, Principal>>,
}

/// The result of a handler: an answer, or a Looker error.
type Answer = Result<Response, LookerError>;

impl Front for LookerFront {
    fn name(&self) -> &'static str {
        "looker"
    }

    fn owns(&self, path: &str) -> bool {
        path == API || path.starts_with("/api/4.0/") || path == "/api/logout"
    }

    fn handle(&self, request: Request) -> BoxFuture<'_, Response> {
        Box::pin(async move {
            let (route, answer) = self.route(&request).await;
            let mut response = answer.unwrap_or_else(LookerError::into_response);
            response.extensions_mut().insert(RouteLabel(route));
            response
        })
    }

    fn reject(&self, status: StatusCode, message: &str) -> Response {
        LookerError::new(status, message).into_response()
    }

    fn refuse(&self, error: crate::engine::EngineError) -> Response {
        LookerError::from(error).into_response()
    }

    fn session_principal(&self, headers: &hyper::HeaderMap) -> Option<Principal> {
        let authorization = headers.get(hyper::header::AUTHORIZATION)?.to_str().ok();
        self.sessions.authenticate(authorization)
    }

    /// Sessions are a principal's; stored queries, looks and SQL Runner queries are everyone's,
    /// so only a full reset forgets them (and their ids start again from 1).
    fn reset(&self, owner: Option<&Principal>) {
        self.sessions.forget(owner);
        if owner.is_none() {
            self.queries.clear();
            self.looks.clear();
            self.sql_queries.clear();
            self.tasks.lock().unwrap_or_else(|p| p.into_inner()).clear();
        }
    }
}

/// A Looker job's model and explore (for the control plane's fault rules); `None` for SQL Runner
/// jobs and other wires' jobs.
pub fn model_and_explore(spec: &JobSpec) -> Option<(String, String)> {
    let query = spec.meta::<LookerJob>()?.query?;
    Some((query.model?, query.view?))
}

/// `?name=value` parameters, with the literal `null` (the TypeScript SDK's unset) treated as absent.
struct Params(Vec<(String, String)>);

impl Params {
    fn of(request: &Request) -> Params {
        Params(http::query_pairs(request))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, v)| k == name && v != "null")
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> Result<Option<bool>, LookerError> {
        match self.get(name) {
            None => Ok(None),
            Some("true") | Some("1") => Ok(Some(true)),
            Some("false") | Some("0") => Ok(Some(false)),
            Some(other) => Err(LookerError::bad_request(format!(
                "parameter {name}={other:?} is not true or false"
            ))),
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>, LookerError> {
        self.get(name)
            .map(|v| {
                v.trim().parse::<i64>().map_err(|_| {
                    LookerError::bad_request(format!("parameter {name}={v:?} is not a number"))
                })
            })
            .transpose()
    }
}

/// The run options every run and task takes as query parameters.
#[derive(Clone, Copy, Debug)]
struct RunOptions {
    limit: Option<i64>,
    apply_formatting: bool,
    cache: Option<bool>,
}

impl RunOptions {
    fn of(params: &Params) -> Result<RunOptions, LookerError> {
        Ok(RunOptions {
            limit: params.int("limit")?,
            apply_formatting: params.flag("apply_formatting")?.unwrap_or(false),
            cache: params.flag("cache")?,
        })
    }
}

/// A JSON body, or Looker's 400 for malformed JSON.
fn json_body<T: for<'de> Deserialize<'de>>(request: &Request) -> Result<T, LookerError> {
    let body = request.body();
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        &body[..]
    };
    serde_json::from_slice(text)
        .map_err(|e| LookerError::bad_request(format!("the request body is not valid JSON: {e}")))
}

/// Keeps only the `fields=` keys of a JSON object, or of each object of a list (Looker's partial
/// responses).
fn partial(value: Value, fields: Option<&str>) -> Value {
    if let (Some(_), Value::Array(items)) = (fields, &value) {
        return Value::Array(items.iter().map(|v| partial(v.clone(), fields)).collect());
    }
    let (Some(fields), Value::Object(map)) = (fields, &value) else {
        return value;
    };
    let wanted: Vec<&str> = fields
        .split(',')
        .map(|f| f.split('(').next().unwrap_or(f).trim())
        .filter(|f| !f.is_empty())
        .collect();
    if wanted.is_empty() {
        return value;
    }
    Value::Object(
        map.iter()
            .filter(|(k, _)| wanted.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    )
}

fn ok_json(value: Value, params: &Params) -> Answer {
    Ok(http::json(
        StatusCode::OK,
        &partial(value, params.get("fields")),
    ))
}

fn to_value(value: &impl Serialize) -> Result<Value, LookerError> {
    serde_json::to_value(value)
        .map_err(|e| LookerError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, false)
}

/// Seconds a job ran (or has been running).
fn runtime(record: &JobRecord) -> Option<f64> {
    let start = record.started?;
    let end = record.finished.unwrap_or_else(Utc::now);
    Some((end - start).num_milliseconds().max(0) as f64 / 1000.0)
}

/// Looker's task status for an engine state.
fn task_status(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "added",
        JobState::Running => "running",
        JobState::Succeeded => "complete",
        JobState::Failed | JobState::TimedOut => "error",
        JobState::Cancelled => "killed",
    }
}

/// What a Looker job keeps for its reads: what made it (a run, a task, a totals statement, a SQL
/// Runner query), the query it answers and how its result is written.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct LookerJob {
    kind: JobKind,
    query_id: Option<String>,
    query: Option<WriteQuery>,
    result_format: Option<String>,
    source: Option<String>,
    apply_formatting: bool,
    cache: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum JobKind {
    #[default]
    Run,
    Task,
    Totals,
    SqlRunner,
}

impl crate::engine::WireMeta for LookerJob {
    const DIALECT: &'static str = "looker";
}

impl LookerJob {
    fn of(record: &JobRecord) -> LookerJob {
        record.spec.meta().unwrap_or_default()
    }
}

/// `POST /query_tasks` body (`WriteCreateQueryTask`).
#[derive(Deserialize)]
struct CreateQueryTask {
    query_id: Option<Value>,
    result_format: Option<String>,
    source: Option<String>,
    #[serde(default)]
    deferred: Option<bool>,
    look_id: Option<Value>,
    dashboard_id: Option<Value>,
}

/// `POST /sql_queries` body (`SqlQueryCreate`).
#[derive(Deserialize)]
struct SqlQueryCreate {
    connection_name: Option<String>,
    connection_id: Option<String>,
    model_name: Option<String>,
    sql: Option<String>,
    vis_config: Option<Value>,
}

/// A SQL Runner query as stored (in the engine's side records too, so it outlives a restart).
#[derive(Clone, Debug, Serialize, Deserialize)]
struct SqlQuery {
    /// Who created it: only they may read or run it.
    owner: Principal,
    slug: String,
    sql: String,
    connection_name: String,
    model_name: Option<String>,
    vis_config: Option<Value>,
    run_count: u64,
    #[serde(with = "crate::query::rfc3339::option")]
    last_run_at: Option<DateTime<Utc>>,
    last_runtime: Option<f64>,
}

/// The SQL Runner queries used within the retention.
struct SqlQueries {
    by_slug: Mutex<Expiring<String, SqlQuery>>,
    saved: SideTable<SqlQuery>,
}

impl SqlQueries {
    fn new(retain: Duration, saved: SideTable<SqlQuery>) -> SqlQueries {
        let mut by_slug = Expiring::new(retain);
        for (slug, query) in saved.load() {
            by_slug.insert(slug, query);
        }
        SqlQueries {
            by_slug: Mutex::new(by_slug),
            saved,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Expiring<String, SqlQuery>> {
        self.by_slug.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn insert(&self, slug: String, query: SqlQuery) {
        self.saved.save(&slug, &query);
        for (gone, _) in self.lock().insert(slug, query) {
            self.saved.remove(&gone);
        }
    }

    fn get(&self, slug: &str) -> Option<SqlQuery> {
        self.read_through(slug);
        self.lock().get(&slug.to_string()).cloned()
    }

    /// In a cluster, takes in a query another instance stored (or changed) under `slug`.
    fn read_through(&self, slug: &str) {
        if self.saved.shared()
            && let Some(query) = self.saved.get(slug)
        {
            self.lock().insert(slug.to_string(), query);
        }
    }

    /// Forgets every SQL Runner query (the control plane's reset).
    fn clear(&self) {
        for slug in self.lock().clear() {
            self.saved.remove(&slug);
        }
    }

    /// Changes a stored query in place (its run counts).
    fn update(&self, slug: &str, change: impl FnOnce(&mut SqlQuery)) {
        self.read_through(slug);
        if let Some(query) = self.lock().get(&slug.to_string()) {
            change(query);
            self.saved.save(slug, query);
        }
    }
}

impl SqlQuery {
    fn to_json(&self) -> Value {
        json!({
            "can": {"run": true, "download": true, "explore": true},
            "slug": self.slug,
            "last_runtime": self.last_runtime,
            "run_count": self.run_count,
            "browser_limit": 5000,
            "sql": self.sql,
            "last_run_at": self.last_run_at.map(rfc3339),
            "connection": {"name": self.connection_name, "dialect": null},
            "model_name": self.model_name,
            "creator": null,
            "explore_url": null,
            "plaintext": false,
            "vis_config": self.vis_config,
            "result_maker_id": null,
        })
    }
}

impl LookerFront {
    pub fn new(context: FrontContext<Settings>) -> LookerFront {
        let FrontContext {
            engine,
            principals,
            limits,
            settings,
        } = context;
        let models = Models::load(engine.executor().catalog(), settings.model_dir.as_deref());
        let retain = Duration::from_secs(settings.retain_secs.max(1));
        let sessions = Sessions::new(principals)
            .with_lifetime(Duration::from_secs(settings.token_lifetime_secs.max(1)))
            .shared_through(engine.side_table("looker_sessions"));
        let queries = QueryStore::new(
            retain,
            engine.side_table("looker_queries"),
            engine.side_table("looker_query_definitions"),
        );
        let looks = LookStore::new(engine.side_table("looker_looks"));
        let sql_queries = SqlQueries::new(retain, engine.side_table("looker_sql_queries"));
        LookerFront {
            engine,
            limits,
            settings,
            sessions,
            models,
            queries,
            looks,
            sql_queries,
            tasks: Mutex::new(Expiring::new(retain)),
        }
    }

    async fn route(&self, request: &Request) -> (&'static str, Answer) {
        let path = request.uri().path().to_string();
        let method = request.method().clone();
        if path == "/api/logout" || path == "/api/4.0/logout" {
            return ("logout", self.logout(request, &method));
        }
        let Some(rest) = path.strip_prefix(API) else {
            return ("unknown", Err(LookerError::not_found()));
        };
        let segments: Vec<String> = rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(http::path_segment)
            .collect();
        let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
        if parts == ["login"] {
            return ("login", self.login(request, &method));
        }
        let authorization = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let Some(owner) = self.sessions.authenticate(authorization) else {
            return ("unauthenticated", Err(LookerError::unauthenticated()));
        };
        let params = Params::of(request);
        let m = &method;
        match parts.as_slice() {
            ["login", user_id] if m == Method::POST => {
                ("login_user", self.login_user(&params, &owner, user_id))
            }
            ["user"] if m == Method::GET => (
                "me",
                users::me(self.sessions.principals(), &owner)
                    .ok_or_else(LookerError::not_found)
                    .and_then(|u| ok_json(u.to_json(), &params)),
            ),
            ["users"] if m == Method::GET => (
                "all_users",
                ok_json(
                    Value::Array(
                        users::all(self.sessions.principals(), &owner)
                            .iter()
                            .map(users::LookerUser::to_json)
                            .collect(),
                    ),
                    &params,
                ),
            ),
            ["users", id] if m == Method::GET => (
                "user",
                users::by_id(self.sessions.principals(), &owner, id)
                    .ok_or_else(LookerError::not_found)
                    .and_then(|u| ok_json(u.to_json(), &params)),
            ),
            ["users", id, "roles"] if m == Method::GET => (
                "user_roles",
                users::by_id(self.sessions.principals(), &owner, id)
                    .ok_or_else(LookerError::not_found)
                    .and_then(|u| ok_json(Value::Array(u.roles()), &params)),
            ),
            ["roles"] if m == Method::GET => {
                ("all_roles", ok_json(Value::Array(users::roles()), &params))
            }
            ["roles", id] if m == Method::GET => (
                "role",
                id.parse()
                    .ok()
                    .and_then(users::role)
                    .ok_or_else(LookerError::not_found)
                    .and_then(|r| ok_json(r, &params)),
            ),
            ["looks"] if m == Method::GET => {
                ("all_looks", self.looks_json(self.looks.all(), &params))
            }
            ["looks"] if m == Method::POST => {
                ("create_look", self.create_look(request, &params, &owner))
            }
            ["looks", "search"] if m == Method::GET => (
                "search_looks",
                self.looks_json(
                    self.looks.search(&|k| params.get(k).map(str::to_string)),
                    &params,
                ),
            ),
            ["looks", id] if m == Method::GET => (
                "look",
                self.looks
                    .get(id)
                    .ok_or_else(LookerError::not_found)
                    .and_then(|l| ok_json(self.look_json(&l), &params)),
            ),
            ["looks", id] if m == Method::PATCH => {
                ("update_look", self.update_look(request, &params, id))
            }
            ["looks", id] if m == Method::DELETE => (
                "delete_look",
                if self.looks.delete(id) {
                    Ok(http::no_body(StatusCode::NO_CONTENT))
                } else {
                    Err(LookerError::not_found())
                },
            ),
            ["looks", id, "run", format] if m == Method::GET => {
                let query_id = self.looks.get(id).map(|l| l.query_id);
                let answer = match query_id {
                    Some(q) => self.run_query(&params, &owner, &q, format).await,
                    None => Err(LookerError::not_found()),
                };
                ("run_look", answer)
            }
            ["queries"] if m == Method::POST => {
                ("create_query", self.create_query(request, &params))
            }
            ["queries", "run", format] if m == Method::POST => (
                "run_inline_query",
                self.run_inline_query(request, &params, &owner, format)
                    .await,
            ),
            ["queries", "slug", slug] if m == Method::GET => (
                "query_for_slug",
                self.queries
                    .by_slug(slug)
                    .ok_or_else(LookerError::not_found)
                    .and_then(|q| ok_json(to_value(&q.query)?, &params)),
            ),
            ["queries", "models", model, "views", view, "run", format] if m == Method::GET => (
                "run_url_encoded_query",
                self.run_url_encoded(&params, &owner, model, view, format)
                    .await,
            ),
            ["queries", id] if m == Method::GET => (
                "query",
                self.queries
                    .get(id)
                    .ok_or_else(LookerError::not_found)
                    .and_then(|q| ok_json(to_value(&q.query)?, &params)),
            ),
            ["queries", id, "run", format] if m == Method::GET => (
                "run_query",
                self.run_query(&params, &owner, id, format).await,
            ),
            ["query_tasks"] if m == Method::POST => (
                "create_query_task",
                self.create_query_task(request, &params, &owner).await,
            ),
            ["query_tasks", "multi_results"] if m == Method::GET => (
                "query_task_multi_results",
                self.multi_results(&params, &owner).await,
            ),
            ["query_tasks", id] if m == Method::GET => {
                ("query_task", self.query_task(&params, &owner, id))
            }
            ["query_tasks", id, "results"] if m == Method::GET => {
                ("query_task_results", self.task_results(&owner, id).await)
            }
            ["running_queries"] if m == Method::GET => {
                ("all_running_queries", self.running_queries(&owner))
            }
            ["running_queries", id] if m == Method::DELETE => ("kill_query", self.kill(&owner, id)),
            ["sql_queries"] if m == Method::POST => (
                "create_sql_query",
                self.create_sql_query(request, &params, &owner),
            ),
            ["sql_queries", slug] if m == Method::GET => (
                "sql_query",
                self.sql_query(slug, &owner)
                    .and_then(|q| ok_json(q.to_json(), &params)),
            ),
            ["sql_queries", slug, "run", format] if m == Method::POST => (
                "run_sql_query",
                self.run_sql_query(&owner, slug, format).await,
            ),
            _ => ("unknown", Err(LookerError::not_found())),
        }
    }

    // --- auth ---------------------------------------------------------------------------------

    fn login(&self, request: &Request, method: &Method) -> Answer {
        if method != Method::POST {
            return Err(LookerError::not_found());
        }
        let mut pairs = http::query_pairs(request);
        let is_form = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|ct| ct.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            let body: Vec<(String, String)> =
                serde_urlencoded::from_bytes(request.body()).unwrap_or_default();
            pairs.extend(body);
        }
        let value = |name: &str| {
            pairs
                .iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
                .unwrap_or_default()
        };
        let token = self
            .sessions
            .login(value("client_id"), value("client_secret"))
            .ok_or_else(LookerError::not_found)?;
        Ok(self.access_token(token))
    }

    /// `AccessToken`, the answer of both logins.
    fn access_token(&self, token: String) -> Response {
        http::json(
            StatusCode::OK,
            &json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": self.settings.token_lifetime_secs.max(1),
                "refresh_token": null,
            }),
        )
    }

    /// `POST /login/{user_id}`: an admin (or, with no users configured, the one user) opens a
    /// session as another user; `DELETE /logout` with that token ends it.
    fn login_user(&self, params: &Params, owner: &Principal, user_id: &str) -> Answer {
        let _associative = params.flag("associative")?;
        let principals = self.sessions.principals();
        let target = users::by_id(principals, owner, user_id).ok_or_else(LookerError::not_found)?;
        let may_sudo =
            principals.is_open() || users::me(principals, owner).is_some_and(|me| me.admin);
        if !may_sudo {
            return Err(LookerError::new(StatusCode::FORBIDDEN, "Forbidden"));
        }
        Ok(self.access_token(self.sessions.open(Principal::user(target.name))))
    }

    fn logout(&self, request: &Request, method: &Method) -> Answer {
        if method != Method::DELETE {
            return Err(LookerError::not_found());
        }
        let authorization = request
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if self.sessions.authenticate(authorization).is_none() {
            return Err(LookerError::unauthenticated());
        }
        self.sessions.logout(authorization);
        Ok(http::no_body(StatusCode::NO_CONTENT))
    }

    // --- queries ------------------------------------------------------------------------------

    /// Validates a query by compiling it once.
    fn validate(&self, write: &WriteQuery) -> Result<query::Compiled, LookerError> {
        cpu_bound(|| query::compile(&self.models, write, None, filter::now()))
    }

    fn create_query(&self, request: &Request, params: &Params) -> Answer {
        let write: WriteQuery = json_body(request)?;
        let compiled = self.validate(&write)?;
        let stored = self
            .queries
            .create(write, &compiled.model, &compiled.explore.name);
        ok_json(to_value(&stored.query)?, params)
    }

    // --- looks --------------------------------------------------------------------------------

    fn look_json(&self, look: &looks::Look) -> Value {
        let query = self
            .queries
            .get(&look.query_id)
            .and_then(|q| serde_json::to_value(&q.query).ok())
            .unwrap_or(Value::Null);
        look.to_json(query)
    }

    fn looks_json(&self, list: Vec<looks::Look>, params: &Params) -> Answer {
        ok_json(
            Value::Array(list.iter().map(|l| self.look_json(l)).collect()),
            params,
        )
    }

    /// The stored query a look names, as `(id, model)`.
    fn look_query(&self, write: &WriteLook) -> Result<Option<(String, String)>, LookerError> {
        let Some(value) = &write.query_id else {
            return Ok(None);
        };
        let id = looks::id_text(value).ok_or_else(|| {
            LookerError::validation("query_id", "invalid", "query_id must be a query's id")
        })?;
        let stored = self.queries.get(&id).ok_or_else(|| {
            LookerError::validation("query_id", "missing", format!("no query {id}"))
        })?;
        Ok(Some((id, stored.query.model.clone())))
    }

    fn create_look(&self, request: &Request, params: &Params, owner: &Principal) -> Answer {
        let write: WriteLook = json_body(request)?;
        if write.title.as_deref().is_none_or(|t| t.trim().is_empty()) {
            return Err(LookerError::validation(
                "title",
                "missing",
                "a look needs a title",
            ));
        }
        let query = self.look_query(&write)?.ok_or_else(|| {
            LookerError::validation("query_id", "missing", "a look needs a query_id")
        })?;
        let user_id = users::me(self.sessions.principals(), owner)
            .map(|u| u.id.to_string())
            .unwrap_or_else(|| "1".into());
        let look = self.looks.create(&write, query, user_id);
        ok_json(self.look_json(&look), params)
    }

    fn update_look(&self, request: &Request, params: &Params, id: &str) -> Answer {
        let write: WriteLook = json_body(request)?;
        let query = self.look_query(&write)?;
        let look = self
            .looks
            .update(id, |l| l.apply(&write, query))
            .ok_or_else(LookerError::not_found)?;
        ok_json(self.look_json(&look), params)
    }

    fn stored(&self, id: &str) -> Result<Arc<StoredQuery>, LookerError> {
        self.queries.get(id).ok_or_else(LookerError::not_found)
    }

    async fn run_query(
        &self,
        params: &Params,
        owner: &Principal,
        id: &str,
        format: &str,
    ) -> Answer {
        let stored = self.stored(id)?;
        self.run_now(&stored.write, Some(id), params, owner, format)
            .await
    }

    async fn run_inline_query(
        &self,
        request: &Request,
        params: &Params,
        owner: &Principal,
        format: &str,
    ) -> Answer {
        let write: WriteQuery = json_body(request)?;
        self.run_now(&write, None, params, owner, format).await
    }

    async fn run_url_encoded(
        &self,
        params: &Params,
        owner: &Principal,
        model: &str,
        view: &str,
        format: &str,
    ) -> Answer {
        let list = |name: &str| {
            params.get(name).map(|v| {
                v.split(',')
                    .map(|s| s.trim().to_string())
                    .filter(|s| !s.is_empty())
                    .collect::<Vec<_>>()
            })
        };
        let filters: Map<String, Value> = params
            .0
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("f[")?.strip_suffix(']')?;
                Some((name.to_string(), Value::String(v.clone())))
            })
            .collect();
        let write = WriteQuery {
            model: Some(model.to_string()),
            view: Some(view.to_string()),
            fields: list("fields"),
            pivots: list("pivots"),
            sorts: list("sorts"),
            filters: (!filters.is_empty()).then_some(filters),
            ..WriteQuery::default()
        };
        self.run_now(&write, None, params, owner, format).await
    }

    /// A synchronous run: the job runs (or a cached identical one is reused), then its result is
    /// written in `format`.
    async fn run_now(
        &self,
        write: &WriteQuery,
        query_id: Option<&str>,
        params: &Params,
        owner: &Principal,
        format: &str,
    ) -> Answer {
        let format = results::check_format(format).map_err(LookerError::bad_request)?;
        let options = RunOptions::of(params)?;
        let compiled =
            cpu_bound(|| query::compile(&self.models, write, options.limit, filter::now()))?;
        let spec = self.spec(
            owner,
            &compiled.sql,
            write,
            query_id,
            format,
            options,
            JobKind::Run,
            None,
        );
        // A run writes its own format, so any job of the same SQL answers it.
        let reuse = Reuse {
            within: CACHE_WINDOW,
            unfinished: true,
        };
        let cached = options
            .cache
            .unwrap_or(true)
            .then(|| self.engine.find_reusable(&spec, reuse, |_| true))
            .flatten();
        let id = match cached {
            Some(id) => id,
            None => {
                let id = self.engine.submit(spec).await?;
                return self.answer_run(id, &compiled, format, options, false).await;
            }
        };
        // A run that reuses another request's job waits for it but never cancels it.
        self.engine.wait(id, self.limits.wait_budget()).await?;
        self.answer_run(id, &compiled, format, options, true).await
    }

    /// Answers a run once its job is done (waited for within the request, as every sync run is).
    async fn answer_run(
        &self,
        id: JobId,
        compiled: &query::Compiled,
        format: ResultFormat,
        options: RunOptions,
        from_cache: bool,
    ) -> Answer {
        let record = if from_cache {
            self.engine.get(id)?
        } else {
            http::wait_within(&self.engine, id, &self.limits).await?
        };
        let meta = self.meta(
            &record,
            Some(compiled),
            options.apply_formatting,
            from_cache,
        );
        self.answer_result(&record, format, meta).await
    }

    /// The job spec for a query run or task.
    #[allow(clippy::too_many_arguments)]
    fn spec(
        &self,
        owner: &Principal,
        sql: &str,
        write: &WriteQuery,
        query_id: Option<&str>,
        format: ResultFormat,
        options: RunOptions,
        kind: JobKind,
        source: Option<String>,
    ) -> JobSpec {
        let mut spec = JobSpec::new(sql, owner.clone(), "looker");
        spec.set_meta(&LookerJob {
            kind,
            query_id: query_id.map(str::to_string),
            query: Some(write.clone()),
            result_format: Some(format.name().to_string()),
            source,
            apply_formatting: options.apply_formatting,
            cache: options.cache.unwrap_or(false),
        });
        spec
    }

    /// What a result's formats need, from the query the job was made from (recompiled: field
    /// metadata does not depend on the moment) or, for SQL Runner jobs, from the result's columns.
    fn meta(
        &self,
        record: &JobRecord,
        compiled: Option<&query::Compiled>,
        apply_formatting: bool,
        from_cache: bool,
    ) -> ResultMeta {
        let query = LookerJob::of(record).query;
        let recompiled;
        let compiled = match compiled {
            Some(c) => Some(c),
            None => {
                recompiled = query.as_ref().and_then(|w| self.validate(w).ok());
                recompiled.as_ref()
            }
        };
        let filters = query.and_then(|w| w.filters).unwrap_or_default();
        ResultMeta {
            fields: match compiled {
                Some(c) => c
                    .fields
                    .iter()
                    .cloned()
                    .chain(c.table_calcs.iter().map(TableCalc::field))
                    .collect(),
                None => Vec::new(),
            },
            table_calcs: compiled
                .map(|c| c.table_calcs.iter().map(|t| t.name.clone()).collect())
                .unwrap_or_default(),
            sql: record.spec.sql.clone(),
            explore: compiled.map(|c| {
                (
                    c.explore.name.clone(),
                    c.explore.label.clone(),
                    c.explore.description.clone(),
                )
            }),
            sorts: compiled.map(|c| c.sorts.clone()).unwrap_or_default(),
            pivots: compiled
                .map(|c| {
                    c.pivots
                        .iter()
                        .filter_map(|name| c.fields.iter().position(|f| &f.name == name))
                        .collect()
                })
                .unwrap_or_default(),
            totals_sql: compiled.and_then(|c| c.totals_sql.clone()),
            totals: None,
            row_totals_sql: compiled.and_then(|c| c.row_totals_sql.clone()),
            row_totals: None,
            filters,
            apply_formatting,
            id: record.id.to_hex(),
            ran_at: rfc3339(record.started.unwrap_or(record.created)),
            runtime: runtime(record).unwrap_or(0.0),
            from_cache,
        }
    }

    /// A finished job's result in `format`, or its failure in Looker's form.
    async fn answer_result(
        &self,
        record: &JobRecord,
        format: ResultFormat,
        meta: ResultMeta,
    ) -> Answer {
        match record.state {
            JobState::Succeeded => {
                let mut meta = meta;
                if let Some(sql) = meta.totals_sql.clone() {
                    meta.totals = self
                        .side_result(record, &sql)
                        .await
                        .and_then(|batches| totals_data(&batches));
                }
                if let Some(sql) = meta.row_totals_sql.clone() {
                    meta.row_totals = self.side_result(record, &sql).await;
                }
                let reader = self.engine.read(record.id)?;
                if meta.fields.is_empty() {
                    meta.fields = results::raw_fields(&reader.schema());
                }
                Ok(results::render(format, meta, reader.into_stream()).await)
            }
            JobState::Queued | JobState::Running => Err(LookerError::new(
                StatusCode::BAD_REQUEST,
                "the query did not finish in time",
            )),
            _ => {
                let message = record
                    .error
                    .as_ref()
                    .map(|e| e.message.clone())
                    .unwrap_or_else(|| "the query failed".into());
                Ok(results::render_failure(format, &meta, &message))
            }
        }
    }

    /// Runs a statement beside a result (its totals or row totals) as a job of the result's owner
    /// and answers its rows; `None` (nothing written) when it fails or does not finish within the
    /// request's budget.
    async fn side_result(
        &self,
        record: &JobRecord,
        sql: &str,
    ) -> Option<Vec<datafusion::arrow::record_batch::RecordBatch>> {
        let mut spec = JobSpec::new(sql, record.spec.owner.clone(), "looker");
        spec.set_meta(&LookerJob {
            kind: JobKind::Totals,
            ..LookerJob::default()
        });
        let id = self.engine.submit(spec).await.ok()?;
        let done = http::wait_within(&self.engine, id, &self.limits).await.ok();
        let batches = match done {
            Some(done) if done.state == JobState::Succeeded => self
                .engine
                .read(id)
                .ok()
                .and_then(|reader| reader.into_iter().collect::<Result<Vec<_>, _>>().ok()),
            _ => None,
        };
        let _ = self.engine.remove(id);
        batches
    }

    // --- query tasks --------------------------------------------------------------------------

    async fn create_query_task(
        &self,
        request: &Request,
        params: &Params,
        owner: &Principal,
    ) -> Answer {
        let body: CreateQueryTask = json_body(request)?;
        let _ = (body.deferred, &body.look_id, &body.dashboard_id);
        let query_id = match &body.query_id {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                return Err(LookerError::validation(
                    "query_id",
                    "missing",
                    "query_id is required",
                ));
            }
        };
        let format_name = body.result_format.as_deref().ok_or_else(|| {
            LookerError::validation("result_format", "missing", "result_format is required")
        })?;
        let format = results::check_format(format_name)
            .map_err(|m| LookerError::validation("result_format", "invalid", m))?;
        let stored = self.queries.get(&query_id).ok_or_else(|| {
            LookerError::validation(
                "query_id",
                "not_found",
                format!("query {query_id} does not exist"),
            )
        })?;
        let options = RunOptions::of(params)?;
        let compiled = cpu_bound(|| {
            query::compile(&self.models, &stored.write, options.limit, filter::now())
        })?;
        let spec = self.spec(
            owner,
            &compiled.sql,
            &stored.write,
            Some(&query_id),
            format,
            options,
            JobKind::Task,
            Some(body.source.clone().unwrap_or_else(|| "api".to_string())),
        );
        let reused = if options.cache == Some(true) {
            self.reusable_task(&spec)
        } else {
            None
        };
        let id = match reused {
            Some(id) => id,
            None => self.engine.submit(spec).await?,
        };
        self.remember(id, owner);
        let record = self.engine.get(id)?;
        ok_json(self.task_json(&record, Some(&stored)), params)
    }

    /// A task of this owner with the same SQL and output that succeeded within the cache window.
    fn reusable_task(&self, spec: &JobSpec) -> Option<JobId> {
        let reuse = Reuse {
            within: CACHE_WINDOW,
            unfinished: false,
        };
        let wanted = spec.meta::<LookerJob>().unwrap_or_default();
        self.engine.find_reusable(spec, reuse, |earlier| {
            let earlier = earlier.meta::<LookerJob>().unwrap_or_default();
            (
                earlier.kind,
                &earlier.result_format,
                earlier.apply_formatting,
            ) == (wanted.kind, &wanted.result_format, wanted.apply_formatting)
        })
    }

    fn remember(&self, id: JobId, owner: &Principal) {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.uuid, owner.clone());
    }

    /// Whether `reference` names a task `owner` created that is gone now.
    fn was_task(&self, reference: &str, owner: &Principal) -> bool {
        match JobRef::parse(reference) {
            Some(JobRef::Uuid(u)) => self
                .tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&u)
                .is_some_and(|created_by| created_by == owner),
            _ => false,
        }
    }

    /// Looker's QueryTask for a job, keys in the order real Looker sends them.
    fn task_json(&self, record: &JobRecord, stored: Option<&StoredQuery>) -> Value {
        let meta = LookerJob::of(record);
        let query_id = meta.query_id.clone();
        let query = stored.map(|s| s.query.clone()).or_else(|| {
            query_id
                .as_deref()
                .and_then(|q| self.queries.get(q))
                .map(|s| s.query.clone())
        });
        let result_source = (record.state == JobState::Succeeded).then_some("query");
        json!({
            "query_id": query_id,
            "query": query,
            "generate_links": true,
            "force_production": false,
            "path_prefix": null,
            "cache": meta.cache,
            "server_table_calcs": true,
            "cache_only": false,
            "cache_key": null,
            "status": task_status(record.state),
            "source": meta.source.as_deref().unwrap_or("api"),
            "runtime": runtime(record),
            "rebuild_pdts": false,
            "result_source": result_source,
            "look_id": null,
            "dashboard_id": null,
            "result_format": meta.result_format.as_deref().unwrap_or("json"),
            "id": record.id.to_hex(),
            "can": {"index": true, "show": true, "kill": true, "see_results": true},
        })
    }

    /// The task a client names: any job of this owner's, whichever wire started it (a job that is
    /// no Looker task reads as a task of its own SQL, with `json` results).
    fn task(&self, owner: &Principal, reference: &str) -> Result<JobRecord, LookerError> {
        let id = JobRef::parse(reference)
            .and_then(|r| self.engine.resolve(r))
            .ok_or_else(LookerError::not_found)?;
        Ok(self.engine.get_for(id, owner)?)
    }

    fn query_task(&self, params: &Params, owner: &Principal, id: &str) -> Answer {
        let record = self.task(owner, id)?;
        // A status poll: counted against a fault's not-ready polls.
        let record = self.engine.poll(record.id).unwrap_or(record);
        ok_json(self.task_json(&record, None), params)
    }

    async fn task_results(&self, owner: &Principal, id: &str) -> Answer {
        let record = self.task(owner, id)?;
        if !record.state.is_terminal() {
            let status = StatusCode::from_u16(self.settings.not_ready_status)
                .unwrap_or(StatusCode::ACCEPTED);
            return Ok(http::no_body(status));
        }
        self.task_answer(&record).await
    }

    async fn task_answer(&self, record: &JobRecord) -> Answer {
        let job = LookerJob::of(record);
        let format = job
            .result_format
            .as_deref()
            .and_then(ResultFormat::parse)
            .unwrap_or(ResultFormat::Json);
        let formatting = job.apply_formatting;
        let meta = self.meta(record, None, formatting, false);
        self.answer_result(record, format, meta).await
    }

    async fn multi_results(&self, params: &Params, owner: &Principal) -> Answer {
        let raw = params
            .get("query_task_ids")
            .ok_or_else(|| LookerError::bad_request("query_task_ids is required"))?;
        let ids: Vec<String> = match serde_json::from_str::<Vec<String>>(raw) {
            Ok(list) => list,
            Err(_) => raw
                .split(',')
                .map(|s| s.trim().trim_matches('"').to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        };
        let mut answer = Map::new();
        for id in ids {
            let entry = match self.task(owner, &id) {
                Ok(record) if !record.state.is_terminal() => {
                    json!({"status": task_status(record.state)})
                }
                Ok(record) => {
                    let mut entry = Map::new();
                    entry.insert("status".into(), json!(task_status(record.state)));
                    entry.insert("result_source".into(), json!("query"));
                    entry.insert("data".into(), self.inline_data(&record).await?);
                    Value::Object(entry)
                }
                Err(_) if self.was_task(&id, owner) => json!({"status": "expired"}),
                Err(_) => json!({"status": "missing"}),
            };
            answer.insert(id, entry);
        }
        Ok(http::json(StatusCode::OK, &Value::Object(answer)))
    }

    /// A finished task's result as a JSON value for multi_results: JSON formats parsed, the others
    /// as their text.
    async fn inline_data(&self, record: &JobRecord) -> Result<Value, LookerError> {
        let response = match self.task_answer(record).await {
            Ok(r) => r,
            Err(e) => {
                return Ok(
                    json!({"id": record.id.to_hex(), "error": e.message, "sql": record.spec.sql}),
                );
            }
        };
        let is_json = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| LookerError::bad_request(e.to_string()))?
            .to_bytes();
        if is_json {
            let value: Value = serde_json::from_slice(&bytes)
                .map_err(|e| LookerError::bad_request(e.to_string()))?;
            if !status.is_success() {
                let message = value.get("message").cloned().unwrap_or(Value::Null);
                return Ok(
                    json!({"id": record.id.to_hex(), "error": message, "sql": record.spec.sql}),
                );
            }
            Ok(value)
        } else {
            Ok(Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        }
    }

    // --- running queries ----------------------------------------------------------------------

    fn running_queries(&self, owner: &Principal) -> Answer {
        let running: Vec<Value> = self
            .engine
            .list(Some(owner))
            .into_iter()
            .filter(|r| r.spec.dialect == "looker" && !r.state.is_terminal())
            .map(|r| {
                let job = LookerJob::of(&r);
                let query_id = job.query_id.clone();
                let query = query_id
                    .as_deref()
                    .and_then(|q| self.queries.get(q))
                    .map(|s| s.query.clone());
                json!({
                    "can": {"kill": true},
                    "id": r.id.to_hex(),
                    "user": {"id": owner.name(), "display_name": owner.name()},
                    "query": query,
                    "sql_query": null,
                    "look": null,
                    "created_at": rfc3339(r.created),
                    "completed_at": null,
                    "query_id": query_id,
                    "source": job.source.as_deref().unwrap_or("api"),
                    "node_id": null,
                    "slug": null,
                    "query_task_id": r.id.to_hex(),
                    "cache_key": null,
                    "connection_name": "polyquery",
                    "dialect": "datafusion",
                    "connection_id": "polyquery",
                    "message": null,
                    "status": task_status(r.state),
                    "runtime": runtime(&r),
                    "sql": r.spec.sql,
                })
            })
            .collect();
        Ok(http::json(StatusCode::OK, &running))
    }

    fn kill(&self, owner: &Principal, id: &str) -> Answer {
        let record = JobRef::parse(id)
            .and_then(|r| self.engine.resolve(r))
            .ok_or_else(LookerError::not_found)
            .and_then(|id| Ok(self.engine.get_for(id, owner)?))?;
        if record.state.is_terminal() {
            return Err(LookerError::not_found());
        }
        self.engine.cancel(record.id)?;
        Ok(http::no_body(StatusCode::NO_CONTENT))
    }

    // --- SQL Runner ---------------------------------------------------------------------------

    fn create_sql_query(&self, request: &Request, params: &Params, owner: &Principal) -> Answer {
        let body: SqlQueryCreate = json_body(request)?;
        let sql = body
            .sql
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| LookerError::validation("sql", "missing", "sql is required"))?;
        let connection_name = body
            .connection_name
            .or(body.connection_id)
            .or_else(|| body.model_name.clone().map(|_| "polyquery".to_string()))
            .ok_or_else(|| {
                LookerError::validation(
                    "connection_name",
                    "missing",
                    "one of connection_name or model_name is required",
                )
            })?;
        let slug = format!("{:016x}", uuid::Uuid::new_v4().as_u128() as u64);
        let stored = SqlQuery {
            owner: owner.clone(),
            slug: slug.clone(),
            sql,
            connection_name,
            model_name: body.model_name,
            vis_config: body.vis_config,
            run_count: 0,
            last_run_at: None,
            last_runtime: None,
        };
        let answer = stored.to_json();
        self.sql_queries.insert(slug, stored);
        ok_json(answer, params)
    }

    /// The caller's own SQL Runner query; someone else's is not found, as an unknown slug is.
    fn sql_query(&self, slug: &str, owner: &Principal) -> Result<SqlQuery, LookerError> {
        self.sql_queries
            .get(slug)
            .filter(|q| q.owner == *owner)
            .ok_or_else(LookerError::not_found)
    }

    async fn run_sql_query(&self, owner: &Principal, slug: &str, format: &str) -> Answer {
        let stored = self.sql_query(slug, owner)?;
        let format = results::check_format(format).map_err(LookerError::bad_request)?;
        let mut spec = JobSpec::new(&stored.sql, owner.clone(), "looker");
        spec.set_meta(&LookerJob {
            kind: JobKind::SqlRunner,
            ..LookerJob::default()
        });
        let id = self.engine.submit(spec).await?;
        let record = http::wait_within(&self.engine, id, &self.limits).await?;
        self.sql_queries.update(slug, |q| {
            q.run_count += 1;
            q.last_run_at = Some(Utc::now());
            q.last_runtime = runtime(&record);
        });
        let meta = self.meta(&record, None, false, false);
        self.answer_result(&record, format, meta).await
    }
}

/// `totals_data` from the totals statement's one row: each measure as `{"value": v}`.
fn totals_data(
    batches: &[datafusion::arrow::record_batch::RecordBatch],
) -> Option<Map<String, Value>> {
    let batch = batches.iter().find(|b| b.num_rows() > 0)?;
    let options = crate::encode::EncodeOptions::default();
    Some(
        batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(f, column)| {
                let value =
                    crate::encode::cell_json(column.as_ref(), 0, &options).unwrap_or(Value::Null);
                (f.name().clone(), json!({ "value": value }))
            })
            .collect(),
    )
}
