//! The four wires. A front knows its wire and nothing else: request parsing, auth, id format,
//! status names, envelopes, error shapes. It asks the engine to do the work and an encoder to write
//! the bytes, and maps engine errors to its own wire in one place.

pub mod asterixdb;
pub mod kylin;
pub mod looker;
pub mod luminesce;

use std::sync::Arc;

use futures::future::BoxFuture;
use hyper::StatusCode;

use crate::config::Config;
use crate::engine::Engine;
use crate::server::http::{Request, Response};

/// One vendor's HTTP API.
pub trait Front: Send + Sync + 'static {
    /// `luminesce`, `asterixdb`, `looker` or `kylin`: the label in logs and metrics.
    fn name(&self) -> &'static str;

    /// Whether this front serves `path`.
    fn owns(&self, path: &str) -> bool;

    /// Answers one request (its body already read, within the size limit).
    fn handle(&self, request: Request) -> BoxFuture<'_, Response>;

    /// This wire's own error answer for a failure the server finds before the front runs
    /// (body too large, request timed out).
    fn reject(&self, status: StatusCode, message: &str) -> Response;
}

/// Every front, built over one engine.
pub fn fronts(engine: &Engine, config: &Arc<Config>) -> Vec<Arc<dyn Front>> {
    vec![
        luminesce::front(engine, config),
        asterixdb::front(engine, config),
        looker::front(engine, config),
        kylin::front(engine, config),
    ]
}

/// A wire whose issue has not landed yet: every path it owns answers a plain 501 that says so.
pub struct Unbuilt {
    pub name: &'static str,
    pub vendor: &'static str,
    pub issue: u32,
    pub prefixes: &'static [&'static str],
}

impl Front for Unbuilt {
    fn name(&self) -> &'static str {
        self.name
    }

    fn owns(&self, path: &str) -> bool {
        self.prefixes.iter().any(|p| path.starts_with(p))
    }

    fn handle(&self, _request: Request) -> BoxFuture<'_, Response> {
        let message = format!(
            "polyquery: the {} API is not built yet (issue #{}).\n",
            self.vendor, self.issue
        );
        Box::pin(async move { crate::server::http::text(StatusCode::NOT_IMPLEMENTED, message) })
    }

    fn reject(&self, status: StatusCode, message: &str) -> Response {
        crate::server::http::text(status, format!("{message}\n"))
    }
}
