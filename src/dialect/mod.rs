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

use crate::engine::{Engine, EngineError};
use crate::query::{Principal, Principals};
use crate::wire::{HttpLimits, Request, Response};

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

    /// This wire's own answer for an engine error found before the front runs (a fault rule's
    /// throttle renders `Busy` through it).
    fn refuse(&self, error: EngineError) -> Response {
        self.reject(StatusCode::TOO_MANY_REQUESTS, &error.message)
    }

    /// Who a request's credentials name, when only this front can tell (a Looker session token);
    /// the control plane matches fault rules by it.
    fn session_principal(&self, _headers: &hyper::HeaderMap) -> Option<Principal> {
        None
    }

    /// Forgets what the front keeps of its own (sessions), or only one principal's: the control
    /// plane's reset.
    fn reset(&self, _owner: Option<&Principal>) {}
}

/// What a front is given: the engine, the one model of who is calling, the server's limits, and its
/// own settings. Never the whole configuration.
#[derive(Clone)]
pub struct FrontContext<S> {
    pub engine: Engine,
    pub principals: Arc<Principals>,
    pub limits: HttpLimits,
    pub settings: S,
}

impl FrontContext<()> {
    /// The same context with a front's own settings.
    pub fn with<S>(&self, settings: S) -> FrontContext<S> {
        FrontContext {
            engine: self.engine.clone(),
            principals: self.principals.clone(),
            limits: self.limits.clone(),
            settings,
        }
    }
}
