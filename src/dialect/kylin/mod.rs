//! Apache Kylin: the async query API (`/kylin/api/async_query…`, v2 and v4 flavours) and the sync
//! `/kylin/api/query` with the endpoints kylinpy and the JDBC drivers call around it.
//!
//! The wire is read off Kylin 5's controllers (spec: `specs/kylin.md`). Every request is
//! authenticated with HTTP Basic first; the `Accept` header then picks the flavour; the handler
//! parses the request, asks the engine, and answers in the flavour's envelope. Failures are
//! [`errors::KylinError`]s, rendered in one place ([`KylinFront::error`]).

mod async_query;
mod auth;
mod calcite;
mod errors;
mod files;
pub(crate) mod sql;
mod sync_query;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use hyper::header::{ACCEPT, HOST};
use hyper::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{Front, FrontContext};
use crate::engine::Engine;
use crate::query::{Caller, Principals};
use crate::wire::{self as http, HttpLimits, Request, Response, RouteLabel};
use errors::{KeCode, KylinError};
use wire::{Accept, Envelope, Flavour};

pub use sql::{PROJECTS, Project};

/// `[kylin]` settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// An extra address serving only this dialect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// Hours an async query's result is kept (Kylin's `kylin.query.async.result-retain-days`, 7 d).
    pub result_retain_hours: u64,
    /// Milliseconds `POST /async_query` waits for a quick query to finish before answering
    /// `RUNNING` (Kylin polls every 200 ms).
    pub submit_wait_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: None,
            result_retain_hours: 7 * 24,
            submit_wait_ms: 200,
        }
    }
}

pub fn front(context: FrontContext<Settings>) -> Arc<dyn Front> {
    context.engine.on_end(async_query::write_on_success);
    Arc::new(KylinFront {
        state: Arc::new(State {
            engine: context.engine,
            principals: context.principals,
            limits: context.limits,
            settings: context.settings,
        }),
    })
}

/// The Kylin wire over the engine.
pub struct KylinFront {
    state: Arc<State>,
}

/// What the handlers share (and the background tasks that write result files).
pub struct State {
    engine: Engine,
    principals: Arc<Principals>,
    limits: HttpLimits,
    settings: Settings,
}

impl State {
    fn settings(&self) -> &Settings {
        &self.settings
    }
}

/// What a Kylin job keeps in the engine (Kylin keeps the same facts in `_FILEINFO`, `_USER` and the
/// project directory): its project and, for an async query, how its result file is written.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct KylinJob {
    project: String,
    /// Set for async queries only.
    file: Option<files::FileSpec>,
}

impl crate::engine::WireMeta for KylinJob {
    const DIALECT: &'static str = "kylin";
}

/// One authenticated request, taken apart.
pub struct Call {
    principal: Caller,
    accept: Accept,
    /// The full request URL, for error bodies.
    url: String,
    /// The host the client addressed, for `SQLResponse.server`.
    host: String,
    query: Vec<(String, String)>,
    body: Bytes,
}

impl Call {
    /// A query-string parameter.
    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as a JSON object: a bare object, or the vendor page's one-element array holding one.
    fn json_object(&self) -> Result<serde_json::Map<String, Value>, KylinError> {
        if self.body.iter().all(u8::is_ascii_whitespace) {
            return Err(KylinError::invalid_parameter(
                "Required request body is missing",
            ));
        }
        let value: Value = serde_json::from_slice(&self.body)
            .map_err(|e| KylinError::invalid_parameter(format!("JSON parse error: {e}")))?;
        match value {
            Value::Object(object) => Ok(object),
            Value::Array(mut items) if items.len() == 1 => match items.remove(0) {
                Value::Object(object) => Ok(object),
                _ => Err(KylinError::invalid_parameter(
                    "JSON parse error: the request body must be an object",
                )),
            },
            _ => Err(KylinError::invalid_parameter(
                "JSON parse error: the request body must be an object (or an array holding one)",
            )),
        }
    }

    /// `project` from the query string, else from a JSON body, as Kylin's GET handlers read it.
    fn project_param(&self) -> Option<String> {
        self.param("project").map(str::to_string).or_else(|| {
            serde_json::from_slice::<Value>(&self.body)
                .ok()
                .and_then(|v| v.get("project").and_then(Value::as_str).map(str::to_string))
        })
    }
}

/// What a handler answers.
type Reply = Result<Response, KylinError>;

impl Front for KylinFront {
    fn name(&self) -> &'static str {
        "kylin"
    }

    fn owns(&self, path: &str) -> bool {
        path == "/kylin" || path.starts_with("/kylin/")
    }

    fn handle(&self, request: Request) -> BoxFuture<'_, Response> {
        Box::pin(async move {
            let accept = Accept::parse(request.headers().get(ACCEPT).and_then(|v| v.to_str().ok()));
            let host = request
                .headers()
                .get(HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost")
                .to_string();
            let url = format!(
                "http://{host}{}",
                request
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
            );
            let principal = match auth::authenticate(&request, &self.state.principals) {
                Ok(p) => p,
                Err(e) => {
                    return labelled(
                        error_response(&e, &url, "application/json;charset=UTF-8"),
                        "auth",
                    );
                }
            };
            let method = request.method().clone();
            let path = request.uri().path().to_string();
            let call = Call {
                principal,
                accept,
                url,
                host,
                query: http::query_pairs(&request),
                body: request.into_body(),
            };
            self.route(&method, &path, call).await
        })
    }

    fn reject(&self, status: StatusCode, message: &str) -> Response {
        let e = KylinError::new(KeCode::Unknown, message).with_status(status);
        error_response(&e, "", "application/json;charset=UTF-8")
    }

    fn refuse(&self, error: crate::engine::EngineError) -> Response {
        error_response(
            &errors::from_engine(error),
            "",
            "application/json;charset=UTF-8",
        )
    }
}

impl KylinFront {
    async fn route(&self, method: &Method, path: &str, call: Call) -> Response {
        let state = &self.state;
        let rest = path.strip_prefix("/kylin/api").unwrap_or("");
        let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
        let legacy = call.accept.for_legacy();
        let (label, flavour, reply) = match (method, parts.as_slice()) {
            (&Method::POST, ["query"]) | (&Method::POST, ["query", "prestate"]) => (
                "query",
                legacy,
                sync_query::query(state, &call, legacy).await,
            ),
            (&Method::GET | &Method::POST, ["user", "authentication"]) => (
                "authentication",
                legacy,
                sync_query::authentication(&call, legacy),
            ),
            (&Method::GET, ["projects"]) => (
                "projects",
                legacy,
                sync_query::projects(state, &call, legacy),
            ),
            (&Method::GET, ["tables_and_columns"])
            | (&Method::GET, ["query", "tables_and_columns"]) => (
                "tables_and_columns",
                legacy,
                sync_query::tables_and_columns(state, &call, legacy),
            ),
            (_, ["async_query", ..]) => match call.accept.for_async() {
                Some(flavour) => {
                    let (label, reply) =
                        async_query::route(state, method, &parts[1..], &call, flavour).await;
                    (label, flavour, reply)
                }
                None => (
                    "async",
                    Flavour::Raw,
                    Err(KylinError::new(
                        KeCode::Unknown,
                        "Could not find acceptable representation",
                    )
                    .with_status(StatusCode::NOT_ACCEPTABLE)),
                ),
            },
            _ => (
                "other",
                legacy,
                Err(
                    KylinError::new(KeCode::Unknown, format!("{method} {path} is not an API"))
                        .with_status(StatusCode::NOT_FOUND),
                ),
            ),
        };
        let response = match reply {
            Ok(response) => response,
            Err(e) => error_response(&e, &call.url, flavour.content_type()),
        };
        labelled(response, label)
    }
}

fn labelled(mut response: Response, label: &'static str) -> Response {
    response.extensions_mut().insert(RouteLabel(label));
    response
}

/// Kylin's `ErrorResponse` for `e`.
fn error_response(e: &KylinError, url: &str, content_type: &str) -> Response {
    match serde_json::to_vec(&e.body(url)) {
        Ok(bytes) => http::with_body(e.status, content_type, bytes),
        Err(_) => http::text(StatusCode::INTERNAL_SERVER_ERROR, e.msg()),
    }
}

/// A JSON body in this flavour's content type, with HTTP 200.
fn json_response(flavour: Flavour, value: &impl Serialize) -> Reply {
    let bytes = serde_json::to_vec(value)
        .map_err(|e| KylinError::new(KeCode::Unknown, format!("cannot write JSON: {e}")))?;
    Ok(http::with_body(
        StatusCode::OK,
        flavour.content_type(),
        bytes,
    ))
}

/// `data` wrapped in the success envelope (or, for raw bodies, as it is).
fn enveloped(flavour: Flavour, data: impl Serialize) -> Reply {
    match flavour {
        Flavour::Raw => json_response(flavour, &data),
        Flavour::V2 | Flavour::V4(_) => json_response(flavour, &Envelope::ok(data)),
    }
}
