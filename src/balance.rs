//! A small round-robin HTTP load balancer (`polyquery balance`) for a local cluster and the
//! cluster tests: each request goes to the next instance in turn, so no flow relies on sticky
//! sessions. Bodies stream both ways; an instance that cannot be reached answers 502.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use futures::TryStreamExt;
use http_body_util::{BodyExt, BodyStream, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderName};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

type Body = BoxBody<Bytes, std::io::Error>;

/// The instances behind the balancer, taken in turn.
struct Upstreams {
    bases: Vec<String>,
    turn: AtomicUsize,
    http: reqwest::Client,
}

/// Headers of one hop only (RFC 9110 §7.6.1), never forwarded.
fn hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::TE
        || name == header::TRAILER
        || name == header::PROXY_AUTHORIZATION
        || name == header::PROXY_AUTHENTICATE
        || name.as_str() == "keep-alive"
}

/// Serves `listener`, sending each request to the next of `bases` (`http://host:port`).
pub async fn serve(listener: TcpListener, bases: Vec<String>) -> std::io::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(std::io::Error::other)?;
    let upstreams = Arc::new(Upstreams {
        bases: bases
            .into_iter()
            .map(|b| b.trim_end_matches('/').to_string())
            .collect(),
        turn: AtomicUsize::new(0),
        http,
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let upstreams = upstreams.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let upstreams = upstreams.clone();
                async move { Ok::<_, Infallible>(upstreams.forward(request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

impl Upstreams {
    async fn forward(&self, request: Request<Incoming>) -> Response<Body> {
        if self.bases.is_empty() {
            return text(StatusCode::BAD_GATEWAY, "no instances to balance over\n");
        }
        let base = &self.bases[self.turn.fetch_add(1, Ordering::Relaxed) % self.bases.len()];
        let (parts, body) = request.into_parts();
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let mut outgoing = self
            .http
            .request(parts.method.clone(), format!("{base}{target}"))
            .body(reqwest::Body::wrap_stream(
                BodyStream::new(body)
                    .try_filter_map(|frame| async move { Ok(frame.into_data().ok()) }),
            ));
        for (name, value) in &parts.headers {
            if name != header::HOST && !hop_by_hop(name) {
                outgoing = outgoing.header(name, value);
            }
        }
        let answer = match outgoing.send().await {
            Ok(answer) => answer,
            Err(e) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    &format!("the instance at {base} did not answer: {e}\n"),
                );
            }
        };
        let mut response = Response::builder().status(answer.status());
        for (name, value) in answer.headers() {
            if !hop_by_hop(name) {
                response = response.header(name, value);
            }
        }
        let body = StreamBody::new(
            answer
                .bytes_stream()
                .map_ok(Frame::data)
                .map_err(std::io::Error::other),
        );
        response
            .body(BodyExt::boxed(body))
            .unwrap_or_else(|e| text(StatusCode::BAD_GATEWAY, &format!("{e}\n")))
    }
}

fn text(status: StatusCode, message: &str) -> Response<Body> {
    let body =
        http_body_util::Full::new(Bytes::from(message.to_string())).map_err(|never| match never {});
    let mut response = Response::new(BodyExt::boxed(body));
    *response.status_mut() = status;
    response
}
