//! The HTTP server: hyper 1 on tokio, HTTP/1.1 keep-alive. It routes each request to the dialect
//! front that owns its path, enforces the limits, logs one line per request, keeps the metrics, and
//! shuts down gracefully.

pub mod metrics;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::FutureExt;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::control::rules::{Facts, REQUEST, RequestAct};
use crate::control::{self, ControlPlane};
use crate::dialect::{Front, FrontContext, asterixdb, kylin, looker, luminesce};
use crate::engine::Engine;
use crate::query::Principals;
use crate::sql::guard;
use crate::wire::{self as http, FormatLabel, RemoteAddr, RouteLabel, body};
use metrics::Metrics;

/// What every connection shares.
pub struct App {
    pub engine: Engine,
    pub config: Arc<Config>,
    pub fronts: Vec<Arc<dyn Front>>,
    pub metrics: Metrics,
    pub principals: Arc<Principals>,
    /// Fault rules, the traffic journal, the admin API.
    pub control: ControlPlane,
}

impl App {
    pub fn new(engine: Engine, config: Arc<Config>) -> Arc<App> {
        let principals = Arc::new(Principals::new(config.users.clone()));
        let context = FrontContext {
            engine: engine.clone(),
            principals: principals.clone(),
            limits: config.limits.clone(),
            settings: (),
        };
        let fronts = vec![
            luminesce::front(context.with(config.luminesce.clone())),
            asterixdb::front(context.with(config.asterixdb.clone())),
            looker::front(context.with(config.looker.clone())),
            kylin::front(context.with(config.kylin.clone())),
        ];
        App::assemble(engine, config, fronts, principals)
    }

    /// An app serving these fronts (tests serve fronts of their own).
    pub fn with_fronts(
        engine: Engine,
        config: Arc<Config>,
        fronts: Vec<Arc<dyn Front>>,
    ) -> Arc<App> {
        let principals = Arc::new(Principals::new(config.users.clone()));
        App::assemble(engine, config, fronts, principals)
    }

    fn assemble(
        engine: Engine,
        config: Arc<Config>,
        fronts: Vec<Arc<dyn Front>>,
        principals: Arc<Principals>,
    ) -> Arc<App> {
        let control = ControlPlane::new(config.admin.clone(), &engine);
        Arc::new(App {
            engine,
            config,
            fronts,
            metrics: Metrics::default(),
            principals,
            control,
        })
    }
}

/// A bound listener and the dialect it is limited to (`None`: all of them).
pub struct Listener {
    pub listener: TcpListener,
    pub only: Option<&'static str>,
}

impl Listener {
    pub async fn bind(addr: SocketAddr, only: Option<&'static str>) -> std::io::Result<Listener> {
        Ok(Listener {
            listener: TcpListener::bind(addr).await?,
            only,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts a connection ready to serve: with TCP_NODELAY, since a streamed body's small last
    /// chunk must not wait for the client's delayed ACK (40 ms on every keep-alive fetch).
    pub async fn accept(&self) -> std::io::Result<(tokio::net::TcpStream, SocketAddr)> {
        let (stream, remote) = self.listener.accept().await?;
        stream.set_nodelay(true)?;
        Ok((stream, remote))
    }
}

/// Binds the main address and each dialect's own address, if configured.
pub async fn bind_all(config: &Config) -> std::io::Result<Vec<Listener>> {
    let mut listeners = vec![Listener::bind(config.listen, None).await?];
    let extra = [
        ("luminesce", config.luminesce.listen),
        ("asterixdb", config.asterixdb.listen),
        ("looker", config.looker.listen),
        ("kylin", config.kylin.listen),
    ];
    for (name, addr) in extra {
        if let Some(addr) = addr {
            listeners.push(Listener::bind(addr, Some(name)).await?);
        }
    }
    Ok(listeners)
}

/// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish (up to
/// ten seconds), and marks unfinished jobs as interrupted.
pub async fn serve(
    app: Arc<App>,
    listeners: Vec<Listener>,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let graceful = Arc::new(GracefulShutdown::new());
    let permits = Arc::new(Semaphore::new(app.config.limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut accepting = Vec::new();
    for listener in listeners {
        accepting.push(tokio::spawn(accept_loop(
            app.clone(),
            listener,
            permits.clone(),
            graceful.clone(),
            stop_rx.clone(),
        )));
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    for task in accepting {
        let _ = task.await;
    }
    // The accept loops are done, so this is the last handle on the connection watcher.
    if let Ok(graceful) = Arc::try_unwrap(graceful)
        && tokio::time::timeout(Duration::from_secs(10), graceful.shutdown())
            .await
            .is_err()
    {
        tracing::warn!("some connections did not finish within 10 s");
    }
    app.engine.shutdown().await;
}

async fn accept_loop(
    app: Arc<App>,
    listener: Listener,
    permits: Arc<Semaphore>,
    graceful: Arc<GracefulShutdown>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let max_header_bytes = app.config.limits.max_header_bytes.max(8192);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.changed() => return,
        };
        let (stream, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let app = app.clone();
        let only = listener.only;
        let admin = only.is_none()
            && listener
                .local_addr()
                .is_ok_and(|local| app.config.admin.served_on(local));
        let service = service_fn(move |req| {
            let app = app.clone();
            async move { Ok::<_, Infallible>(handle(app, req, remote, only, admin).await) }
        });
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(30))
            .max_buf_size(max_header_bytes)
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
}

/// One request, end to end: route, read the body within the limit, answer, log, count.
async fn handle(
    app: Arc<App>,
    req: hyper::Request<Incoming>,
    remote: SocketAddr,
    only: Option<&'static str>,
    admin: bool,
) -> http::Response {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128)
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let front = app
        .fronts
        .iter()
        .find(|f| only.is_none_or(|o| o == f.name()) && f.owns(&path))
        .cloned();
    let head_bytes = head_size(&req);
    let max_head = app.config.limits.max_header_bytes;
    let (dialect, mut response) = match (front, path.as_str()) {
        // hyper's own cap works on its read buffer, which may hold more than the head; this is
        // the documented limit, counted exactly.
        (front, _) if head_bytes > max_head => {
            let message =
                format!("the request head is {head_bytes} bytes; at most {max_head} are accepted");
            match front {
                Some(front) => (
                    front.name(),
                    front.reject(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, &message),
                ),
                None => (
                    "server",
                    http::text(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, message),
                ),
            }
        }
        (None, p) if admin && control::owns(p) => ("admin", administer(&app, req, remote).await),
        (None, "/healthz") => ("server", http::text(StatusCode::OK, "ok\n")),
        (None, "/readyz") => (
            "server",
            match app.engine.ready() {
                Ok(()) => http::text(StatusCode::OK, "ready\n"),
                Err(e) => http::text(StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}\n")),
            },
        ),
        (None, "/metrics") if method == Method::GET => (
            "server",
            http::with_body(
                StatusCode::OK,
                "text/plain; version=0.0.4; charset=utf-8",
                app.metrics.render(&app.engine),
            ),
        ),
        (None, _) => (
            "server",
            http::text(
                StatusCode::NOT_FOUND,
                format!("polyquery: no such path: {path}\n"),
            ),
        ),
        (Some(front), _) => (front.name(), through_front(&app, front, req, remote).await),
    };
    let route = response
        .extensions()
        .get::<RouteLabel>()
        .map(|r| r.0)
        .unwrap_or(if dialect == "server" {
            "server"
        } else {
            "other"
        });
    let took = started.elapsed();
    let status = response.status();
    app.metrics
        .record_request(dialect, route, status.as_u16(), took);
    tracing::info!(
        request_id = %request_id, method = %method, path = %path, status = status.as_u16(),
        duration_ms = took.as_secs_f64() * 1000.0, dialect, "request"
    );
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    // Head and first chunk in one write: with the head sent alone, a client's delayed ACK (or a
    // second small packet) stands between it and the data on a keep-alive connection.
    let (parts, body) = response.into_parts();
    response = hyper::Response::from_parts(parts, body::primed(body).await);
    if let Some(format) = response.extensions().get::<FormatLabel>().map(|f| f.0) {
        let app = app.clone();
        response = response.map(|b| body::metered(b, move |n| app.metrics.record_bytes(format, n)));
    }
    response
}

/// The bytes of a request's head as sent: the request line and every header line.
fn head_size<B>(req: &hyper::Request<B>) -> usize {
    let line =
        req.method().as_str().len() + req.uri().to_string().len() + " HTTP/1.1\r\n".len() + 1;
    req.headers()
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + ": \r\n".len())
        .sum::<usize>()
        + line
}

/// A front's request: read within the limits, acted on by the fault rules, answered within the
/// request timeout, and kept in the traffic journal.
async fn through_front(
    app: &App,
    front: Arc<dyn Front>,
    req: hyper::Request<Incoming>,
    remote: SocketAddr,
) -> http::Response {
    let started = Instant::now();
    let request = match read_body(app, req, remote, |status, message| {
        front.reject(status, message)
    })
    .await
    {
        Ok(request) => request,
        Err(response) => return response,
    };
    let facts = Facts {
        dialect: front.name().to_string(),
        method: request.method().to_string(),
        path: request.uri().path().to_string(),
        principal: caller_name(app, &front, &request),
    };
    let (method, uri, headers, body) = (
        request.method().clone(),
        request.uri().clone(),
        request.headers().clone(),
        request.body().clone(),
    );
    let act = app.control.rules.request_act(&facts);
    let principal = facts.principal.clone();
    let mut response = match &act {
        Some((
            rule,
            RequestAct::Throttle {
                status,
                retry_after_secs,
            },
        )) => {
            // The wire's own "busy" error, with the status and Retry-After the rule asks for.
            let mut response = front.refuse(crate::engine::EngineError::new(
                crate::engine::ErrorKind::Busy,
                format!("too many requests (polyquery fault rule {rule}); retry after {retry_after_secs} s"),
            ));
            *response.status_mut() = *status;
            response.headers_mut().insert(
                hyper::header::RETRY_AFTER,
                HeaderValue::from(*retry_after_secs),
            );
            response
        }
        _ => {
            REQUEST
                .scope(facts, answer(app, front.clone(), request))
                .await
        }
    };
    if let Some((_, RequestAct::Cut { after_bytes })) = &act {
        let after = *after_bytes;
        response = response.map(|b| body::cut_after(b, after));
    }
    let journal = &app.control.journal;
    if let Some(captured) = journal.record(control::journal::Exchange {
        dialect: front.name(),
        principal,
        method: method.as_str(),
        uri: &uri,
        headers: &headers,
        body: &body,
        status: response.status().as_u16(),
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
        fault: act.map(|(rule, _)| rule),
        at: chrono::Utc::now(),
    }) {
        let limit = journal.body_bytes();
        response = response.map(|b| {
            body::tapped(b, move |chunk| {
                control::journal::capture(&captured, chunk, limit)
            })
        });
    }
    response
}

/// Who a request's credentials name, as far as the server can tell without the front: a Bearer
/// token or Basic credentials through `Principals`, or the front's own session; with no
/// credentials at all, the anonymous principal of its address.
fn caller_name(app: &App, front: &Arc<dyn Front>, request: &http::Request) -> Option<String> {
    if http::authorization(request).is_none() {
        return Some(
            Principals::anonymous(http::remote_ip(request))
                .principal
                .name(),
        );
    }
    front
        .session_principal(request.headers())
        .or_else(|| {
            let bearer = http::token_credentials(request, &["bearer", "token"]);
            bearer
                .and_then(|t| app.principals.by_token(t))
                .or_else(|| {
                    http::basic_credentials(request)
                        .and_then(|(name, password)| app.principals.by_password(&name, &password))
                })
                .map(|c| c.principal)
        })
        .map(|p| p.name())
}

/// The admin API: served on this listener, its credentials checked, its body read within the limit.
async fn administer(
    app: &App,
    req: hyper::Request<Incoming>,
    remote: SocketAddr,
) -> http::Response {
    let error = |status: StatusCode, message: &str| {
        http::json(status, &serde_json::json!({ "error": message }))
    };
    let request = match read_body(app, req, remote, error).await {
        Ok(request) => request,
        Err(response) => return response,
    };
    // A page in a browser may post to a loopback address: only the dashboard's own may.
    if !control::same_origin(&request) {
        return error(
            StatusCode::FORBIDDEN,
            "the admin API answers pages of its own origin only",
        );
    }
    if !app.control.authorized(&request) {
        let mut response = error(
            StatusCode::UNAUTHORIZED,
            "the admin API needs the admin credentials (admin.user and admin.password, or admin.token)",
        );
        response.headers_mut().insert(
            hyper::header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"polyquery admin\""),
        );
        return response;
    }
    control::handle(&app.control, &app.engine, &app.fronts, request).await
}

/// Reads the body within the size limit; a body too large or unreadable is refused by `reject`.
async fn read_body(
    app: &App,
    req: hyper::Request<Incoming>,
    remote: SocketAddr,
    reject: impl Fn(StatusCode, &str) -> http::Response,
) -> Result<http::Request, http::Response> {
    let limit = app.config.limits.max_body_bytes;
    let too_large = || {
        reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let (parts, incoming) = req.into_parts();
    let bytes = match Limited::new(incoming, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return Err(too_large());
        }
        Err(e) => {
            return Err(reject(
                StatusCode::BAD_REQUEST,
                &format!("could not read the request body: {e}"),
            ));
        }
    };
    let mut request = hyper::Request::from_parts(parts, bytes);
    request.extensions_mut().insert(RemoteAddr(remote));
    Ok(request)
}

/// Lets the front answer within the request timeout.
async fn answer(app: &App, front: Arc<dyn Front>, request: http::Request) -> http::Response {
    let timeout = Duration::from_secs(app.config.limits.request_timeout_secs.max(1));
    match tokio::time::timeout(timeout, contained(&front, request)).await {
        Ok(response) => response,
        Err(_) => front.reject(
            StatusCode::SERVICE_UNAVAILABLE,
            &format!("the request took longer than {} s", timeout.as_secs()),
        ),
    }
}

/// The front's answer, polled on a stack deep enough for the SQL depth allowed, with a panic in the
/// handler turned into the front's own 500 (and logged) instead of a dropped connection.
async fn contained(front: &Arc<dyn Front>, request: http::Request) -> http::Response {
    let mut answer = front.handle(request);
    let polled = std::future::poll_fn(|cx| guard::on_big_stack(|| answer.as_mut().poll(cx)));
    match AssertUnwindSafe(polled).catch_unwind().await {
        Ok(response) => response,
        Err(panic) => {
            let what = crate::query::panic_text(panic.as_ref());
            tracing::error!(dialect = front.name(), panic = %what, "a request handler panicked");
            front.reject(
                StatusCode::INTERNAL_SERVER_ERROR,
                "polyquery failed while answering this request (an internal error, logged)",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn accepted_connections_do_not_wait_for_delayed_acks() {
        let listener = Listener::bind("127.0.0.1:0".parse().unwrap(), None)
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let client = tokio::net::TcpStream::connect(addr);
        let (accepted, _) = tokio::join!(listener.accept(), client);
        let (stream, _) = accepted.unwrap();
        assert!(stream.nodelay().unwrap());
    }
}
