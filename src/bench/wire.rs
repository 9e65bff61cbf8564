//! The wire figures of `polyquery bench`: each dialect's flow on one keep-alive connection, and
//! status polls per second under load, each beside a bare hyper server answering a body of the
//! same size on the same machine, in the same run, through the same client.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

use super::{percentiles, us};
use crate::config::Config;
use crate::engine::{Engine, EngineError};
use crate::server;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn failed(e: impl std::fmt::Display) -> EngineError {
    EngineError::internal(format!("bench: {e}"))
}

/// A polyquery server on a free loopback port, over `dir`; stopped when dropped.
pub struct BenchServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl BenchServer {
    pub async fn start(dir: &std::path::Path) -> Result<BenchServer, EngineError> {
        let config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.to_path_buf(),
            ..Config::default()
        };
        let executor = crate::exec::datafusion::DataFusionExecutor::new(
            config.engine.partitions,
            &config.tables,
        )
        .await?;
        let engine_config = config.engine_config().map_err(EngineError::internal)?;
        let engine = Engine::start(engine_config, Arc::new(executor))?;
        let listeners = server::bind_all(&config).await?;
        let addr = listeners[0].local_addr()?;
        let app = server::App::new(engine, Arc::new(config));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server::serve(app, listeners, async move {
            let _ = rx.await;
        }));
        Ok(BenchServer {
            addr,
            stop: Some(tx),
        })
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// The reference: bare hyper on a free loopback port, answering every request with `body`.
async fn bare_hyper(body: Bytes, content_type: &'static str) -> Result<SocketAddr, EngineError> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let body = body.clone();
            let service = hyper::service::service_fn(move |_req| {
                let body = body.clone();
                async move {
                    Ok::<_, Infallible>(
                        hyper::Response::builder()
                            .header("content-type", content_type)
                            .body(Full::new(body))
                            .unwrap_or_default(),
                    )
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .keep_alive(true)
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    Ok(addr)
}

/// One keep-alive HTTP/1.1 connection, as an SDK's pooled session holds it.
struct Conn {
    send: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn open(addr: SocketAddr) -> Result<Conn, BoxError> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (send, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Conn { send })
    }

    async fn call(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Result<(StatusCode, Bytes), BoxError> {
        self.send.ready().await?;
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "bench");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(Bytes::from(body.to_string())))?;
        let response = self.send.send_request(request).await?;
        let status = response.status();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }
}

const LUMINESCE: &str = "/honeycomb/api/SqlBackground";
const BEARER: (&str, &str) = ("authorization", "Bearer bench");
/// ADMIN:KYLIN, Kylin's default account.
const KYLIN_BASIC: (&str, &str) = ("authorization", "Basic QURNSU46S1lMSU4=");

fn json_field(body: &[u8], field: &str) -> Result<String, BoxError> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    value[field]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no {field} in {}", String::from_utf8_lossy(body)).into())
}

fn expect(status: StatusCode, want: StatusCode, body: &[u8], what: &str) -> Result<(), BoxError> {
    if status == want {
        Ok(())
    } else {
        Err(format!("{what}: {status} {}", String::from_utf8_lossy(body)).into())
    }
}

/// Luminesce: start `select 1`, poll its progress until it ran, fetch `/csv`. Answers the requests
/// made.
async fn luminesce_flow(conn: &mut Conn) -> Result<usize, BoxError> {
    let start = [BEARER, ("content-type", "text/plain")];
    let (status, body) = conn
        .call(Method::PUT, LUMINESCE, &start, "select 1")
        .await?;
    expect(status, StatusCode::ACCEPTED, &body, "start")?;
    let id = json_field(&body, "executionId")?;
    let mut requests = 1;
    loop {
        let (status, body) = conn
            .call(Method::GET, &format!("{LUMINESCE}/{id}"), &[BEARER], "")
            .await?;
        requests += 1;
        expect(status, StatusCode::OK, &body, "progress")?;
        if json_field(&body, "status")? != "WaitingForActivation" {
            break;
        }
    }
    let (status, body) = conn
        .call(Method::GET, &format!("{LUMINESCE}/{id}/csv"), &[BEARER], "")
        .await?;
    expect(status, StatusCode::OK, &body, "fetch")?;
    Ok(requests + 1)
}

/// Looker: an inline run of a one-row query, JSON out.
async fn looker_flow(conn: &mut Conn, token: &str) -> Result<usize, BoxError> {
    let bearer = format!("Bearer {token}");
    let headers = [
        ("authorization", bearer.as_str()),
        ("content-type", "application/json"),
    ];
    let query = r#"{"model":"thelook","view":"users","fields":["users.count"]}"#;
    let (status, body) = conn
        .call(Method::POST, "/api/4.0/queries/run/json", &headers, query)
        .await?;
    expect(status, StatusCode::OK, &body, "run")?;
    Ok(1)
}

/// POSTs a form; answers the body of a `200`.
async fn post_form(conn: &mut Conn, path: &str, form: &str) -> Result<Bytes, BoxError> {
    let headers = [("content-type", "application/x-www-form-urlencoded")];
    let (status, body) = conn.call(Method::POST, path, &headers, form).await?;
    expect(status, StatusCode::OK, &body, path)?;
    Ok(body)
}

async fn looker_login(conn: &mut Conn) -> Result<String, BoxError> {
    let form = "client_id=bench&client_secret=bench";
    let body = post_form(conn, "/api/4.0/login", form).await?;
    json_field(&body, "access_token")
}

/// AsterixDB: an immediate `select 1;`.
async fn asterixdb_flow(conn: &mut Conn) -> Result<usize, BoxError> {
    post_form(conn, "/query/service", "statement=select%201%3B").await?;
    Ok(1)
}

/// Kylin: a synchronous `select 1`.
async fn kylin_flow(conn: &mut Conn) -> Result<usize, BoxError> {
    let headers = [KYLIN_BASIC, ("content-type", "application/json")];
    let query = r#"{"sql":"select 1","project":"learn_kylin"}"#;
    let (status, body) = conn
        .call(Method::POST, "/kylin/api/query", &headers, query)
        .await?;
    expect(status, StatusCode::OK, &body, "query")?;
    Ok(1)
}

/// Each wire's flow on one keep-alive connection, beside the same number of round trips to bare
/// hyper on one keep-alive connection.
pub async fn flows(server: &BenchServer, times: usize) -> Result<(), EngineError> {
    let reference = bare_hyper(Bytes::from_static(&[b'x'; 64]), "text/plain").await?;
    let mut bare = Conn::open(reference).await.map_err(failed)?;
    let mut bare_times = Vec::with_capacity(times);
    for _ in 0..times {
        let t = Instant::now();
        bare.call(Method::GET, "/", &[], "").await.map_err(failed)?;
        bare_times.push(t.elapsed());
    }
    let (b50, _) = percentiles(&mut bare_times);
    println!(
        "wire flows, {times} times each on one keep-alive connection (goal: p50 <= 1 ms); bare hyper round trip p50 {:.1} us",
        us(b50)
    );
    let mut conn = Conn::open(server.addr).await.map_err(failed)?;
    let token = looker_login(&mut conn).await.map_err(failed)?;
    for name in ["luminesce", "looker", "asterixdb", "kylin"] {
        let mut took = Vec::with_capacity(times);
        let mut requests = 0;
        for _ in 0..times {
            let t = Instant::now();
            requests += match name {
                "luminesce" => luminesce_flow(&mut conn).await,
                "looker" => looker_flow(&mut conn, &token).await,
                "asterixdb" => asterixdb_flow(&mut conn).await,
                _ => kylin_flow(&mut conn).await,
            }
            .map_err(|e| failed(format!("{name}: {e}")))?;
            took.push(t.elapsed());
        }
        let (p50, p99) = percentiles(&mut took);
        let per_flow = requests as f64 / times as f64;
        let flow = match name {
            "luminesce" => "start -> progress -> /csv",
            "looker" => "POST /queries/run/json",
            "asterixdb" => "immediate select 1;",
            _ => "sync select 1",
        };
        println!(
            "  {name:<10} {flow:<26} p50 {:>8.1} us   p99 {:>8.1} us   {per_flow:.1} requests; bare hyper for as many {:>7.1} us",
            us(p50),
            us(p99),
            us(b50) * per_flow,
        );
    }
    Ok(())
}

/// Status polls per second from 64 keep-alive connections driven by two threads (as wrk
/// with two threads and 64 connections), against bare hyper answering a body of the same size.
pub async fn polls(server: &BenchServer, seconds: f64) -> Result<(), EngineError> {
    let mut conn = Conn::open(server.addr).await.map_err(failed)?;
    let start = [BEARER, ("content-type", "text/plain")];
    let (_, body) = conn
        .call(Method::PUT, LUMINESCE, &start, "select 1")
        .await
        .map_err(failed)?;
    let id = json_field(&body, "executionId").map_err(failed)?;
    let path = format!("{LUMINESCE}/{id}");
    let (_, sample) = conn
        .call(Method::GET, &path, &[BEARER], "")
        .await
        .map_err(failed)?;
    let reference = bare_hyper(sample.clone(), "application/json").await?;
    println!(
        "status polls per second, 2 threads x 64 connections, {seconds:.0} s each (goal: >= 0.8x bare hyper)"
    );
    let load = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let run = |addr: SocketAddr, path: String| {
        let task = load.spawn(hammer(addr, path, [BEARER], seconds));
        async move { task.await.map_err(failed)?.map_err(failed) }
    };
    // Alternated, so a slow moment of the machine falls on both.
    let mut ours = 0.0;
    let mut bare = 0.0;
    for _ in 0..2 {
        bare += run(reference, "/".to_string()).await?;
        ours += run(server.addr, path.clone()).await?;
    }
    println!(
        "  luminesce progress ({} B)  polyquery {:>9.0}/s   bare hyper {:>9.0}/s   ratio {:.2}x",
        sample.len(),
        ours / 2.0,
        bare / 2.0,
        ours / bare
    );
    load.shutdown_background();
    Ok(())
}

/// Requests per second from 64 connections polling `path` for `seconds`.
async fn hammer(
    addr: SocketAddr,
    path: String,
    headers: [(&'static str, &'static str); 1],
    seconds: f64,
) -> Result<f64, BoxError> {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let mut conn = Conn::open(addr).await?;
        let (done, stop, path) = (done.clone(), stop.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (status, _) = conn.call(Method::GET, &path, &headers, "").await?;
                if status != StatusCode::OK {
                    return Err::<(), BoxError>(format!("a poll answered {status}").into());
                }
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(())
        }));
    }
    let t = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let counted = done.load(Ordering::Relaxed);
    let elapsed = t.elapsed();
    for task in tasks {
        task.await??;
    }
    Ok(counted as f64 / elapsed.as_secs_f64())
}
