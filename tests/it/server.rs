//! The HTTP server itself: health, metrics, routing, limits, bad input.

use polyquery::config::Config;
use reqwest::StatusCode;

use crate::support::TestServer;

async fn server() -> TestServer {
    TestServer::start(Config::default()).await
}

#[tokio::test]
async fn health_and_readiness_answer_ok() {
    let s = server().await;
    let client = reqwest::Client::new();
    for path in ["/healthz", "/readyz"] {
        let r = client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert!(r.headers().contains_key("x-request-id"));
    }
}

#[tokio::test]
async fn a_request_id_given_is_echoed() {
    let s = server().await;
    let r = reqwest::Client::new()
        .get(s.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let s = server().await;
    let r = reqwest::get(s.url("/no/such/thing")).await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("/no/such/thing"));
}

#[tokio::test]
async fn metrics_count_requests_and_jobs_in_prometheus_text() {
    let s = server().await;
    let id = s
        .engine
        .submit(polyquery::engine::JobSpec::new(
            "SELECT 1",
            polyquery::query::Principal::user("m"),
            "kylin",
        ))
        .await
        .unwrap();
    s.engine
        .wait(id, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let client = reqwest::Client::new();
    client.get(s.url("/healthz")).send().await.unwrap();
    let r = client.get(s.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let body = r.text().await.unwrap();
    assert!(
        body.contains(
            "polyquery_requests_total{dialect=\"server\",route=\"server\",status=\"200\"}"
        ),
        "{body}"
    );
    assert!(
        body.contains("polyquery_jobs{dialect=\"kylin\",state=\"succeeded\"} 1"),
        "{body}"
    );
    assert!(body.contains("polyquery_queue_depth 0"), "{body}");
    assert!(body.contains("polyquery_request_duration_seconds_bucket{dialect=\"server\",route=\"server\",le=\"+Inf\"}"), "{body}");
}

#[tokio::test]
async fn an_oversized_body_is_413_and_the_server_keeps_serving() {
    let mut config = Config::default();
    config.limits.max_body_bytes = 1024;
    let s = TestServer::start(config).await;
    let client = reqwest::Client::new();
    let r = client
        .put(s.url("/honeycomb/api/SqlBackground"))
        .body(vec![b'x'; 20 * 1024 * 1024])
        .send()
        .await;
    // The server may close the connection while the client is still sending; either way no 5xx.
    if let Ok(r) = r {
        assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    let chunked = reqwest::Body::wrap_stream(futures::stream::iter(
        (0..64).map(|_| Ok::<_, std::io::Error>(vec![b'y'; 1024])),
    ));
    if let Ok(r) = client
        .post(s.url("/kylin/api/query"))
        .body(chunked)
        .send()
        .await
    {
        assert_eq!(
            r.status(),
            StatusCode::PAYLOAD_TOO_LARGE,
            "a chunked body over the limit"
        );
    }
    assert_eq!(
        client.get(s.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn an_invalid_utf8_body_is_a_client_error_on_every_wire_and_the_server_keeps_serving() {
    let s = server().await;
    let client = reqwest::Client::new();
    for path in [
        "/honeycomb/api/SqlBackground",
        "/query/service",
        "/api/4.0/query_tasks",
        "/kylin/api/async_query",
    ] {
        let r = client
            .post(s.url(path))
            .body(vec![0xff, 0xfe, 0x00, 0xc3])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
    }
    assert_eq!(
        client.get(s.url("/healthz")).send().await.unwrap().status(),
        StatusCode::OK
    );
}

/// A front whose handler panics on `/boom`, to show a panic is contained to its request.
struct Panicking;

impl polyquery::dialect::Front for Panicking {
    fn name(&self) -> &'static str {
        "panicking"
    }

    fn owns(&self, path: &str) -> bool {
        path == "/boom"
    }

    fn handle(
        &self,
        _request: polyquery::wire::Request,
    ) -> futures::future::BoxFuture<'_, polyquery::wire::Response> {
        Box::pin(async { panic!("a bug in a front") })
    }

    fn reject(&self, status: hyper::StatusCode, message: &str) -> polyquery::wire::Response {
        polyquery::wire::text(status, format!("panicking front: {message}"))
    }
}

#[tokio::test]
async fn a_panic_in_a_front_is_its_own_500_and_the_server_stays_up() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        data_dir: dir.path().to_path_buf(),
        ..Config::default()
    };
    let engine = polyquery::engine::Engine::start(
        config.engine_config().unwrap(),
        crate::support::executor().await,
    )
    .unwrap();
    let listeners = polyquery::server::bind_all(&config).await.unwrap();
    let addr = listeners[0].local_addr().unwrap();
    let app = polyquery::server::App::with_fronts(
        engine,
        std::sync::Arc::new(config),
        vec![std::sync::Arc::new(Panicking)],
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(polyquery::server::serve(app, listeners, async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    for _ in 0..3 {
        let r = client
            .get(format!("http://{addr}/boom"))
            .send()
            .await
            .expect("the connection was dropped instead of answered");
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(r.text().await.unwrap().starts_with("panicking front: "));
    }
    let r = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let _ = stop.send(());
}

#[tokio::test]
async fn request_heads_past_max_header_bytes_are_431() {
    let s = server().await;
    let client = reqwest::Client::new();
    let limit = polyquery::wire::HttpLimits::default().max_header_bytes;
    assert_eq!(limit, 65_536);
    for (size, expected) in [
        (60_000, StatusCode::OK),
        (100_000, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
    ] {
        let r = client
            .get(s.url("/healthz"))
            .header("x-big", "a".repeat(size))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), expected, "{size}");
    }
    // Many headers that add up count as one head.
    let mut request = client.get(s.url("/honeycomb/api/SqlBackground"));
    for i in 0..40 {
        request = request.header(format!("x-h{i}"), "a".repeat(2_000));
    }
    let r = request.send().await.unwrap();
    assert_eq!(r.status(), StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}
