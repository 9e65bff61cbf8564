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
