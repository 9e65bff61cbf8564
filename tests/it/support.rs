//! Shared test scaffolding: an engine over a temporary data directory, a server on a free port.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use polyquery::config::Config;
use polyquery::engine::{Engine, EngineConfig, JobId, JobRecord, JobSpec, JobState, JobStore};
use polyquery::exec::datafusion::DataFusionExecutor;
use polyquery::server;
use tempfile::TempDir;

pub async fn executor() -> Arc<DataFusionExecutor> {
    Arc::new(DataFusionExecutor::new(1, &[]).await.unwrap())
}

pub fn engine_config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir.to_path_buf());
    c.reaper_interval = Duration::from_millis(50);
    c
}

/// An engine over a fresh temporary data directory (kept alive by the returned guard).
pub async fn engine() -> (Engine, TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::start(engine_config(dir.path()), executor().await).unwrap();
    (engine, dir)
}

pub fn spec(sql: &str) -> JobSpec {
    JobSpec::new(sql, polyquery::query::Principal::user("tester"), "test")
}

/// Submits and waits for the job to finish.
pub async fn run(engine: &Engine, spec: JobSpec) -> (JobId, JobRecord) {
    let id = engine.submit(spec).await.unwrap();
    let record = engine.wait(id, Duration::from_secs(60)).await.unwrap();
    assert!(record.state.is_terminal(), "job did not finish: {record:?}");
    (id, record)
}

/// Waits until the job reaches `state` (or panics after 10 s).
pub async fn wait_for_state(engine: &Engine, id: JobId, state: JobState) -> JobRecord {
    for _ in 0..1000 {
        let r = engine.get(id).unwrap();
        if r.state == state {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("job never reached {state:?}: {:?}", engine.get(id));
}

/// A running polyquery server on 127.0.0.1 with a free port; stopped when the guard drops.
pub struct TestServer {
    pub addr: SocketAddr,
    pub engine: Engine,
    _dir: TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        TestServer::start_with(config, "pq-query", None).await
    }

    /// A server whose query threads carry `thread_name` (to measure their CPU alone) and whose job
    /// records go to `store` (default: the data directory).
    pub async fn start_with(
        config: Config,
        thread_name: &str,
        store: Option<Arc<dyn JobStore>>,
    ) -> TestServer {
        TestServer::launch(config, thread_name, store, tempfile::tempdir().unwrap()).await
    }

    /// Stops this server (its engine writes what it holds) and starts another over the same data
    /// directory, as a restart of the process does.
    pub async fn restarted(self, config: Config) -> TestServer {
        self.restarted_with_store(config, || None).await
    }

    /// A restart whose job records go to the store `store` opens once the old server has stopped
    /// (`None`: the data directory).
    pub async fn restarted_with_store(
        mut self,
        config: Config,
        store: impl FnOnce() -> Option<Arc<dyn JobStore>> + Send + 'static,
    ) -> TestServer {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.engine.shutdown().await;
        let dir = std::mem::replace(&mut self._dir, tempfile::tempdir().unwrap());
        drop(self);
        let store = tokio::task::spawn_blocking(store).await.unwrap();
        TestServer::launch(config, "pq-query", store, dir).await
    }

    async fn launch(
        mut config: Config,
        thread_name: &str,
        store: Option<Arc<dyn JobStore>>,
        dir: TempDir,
    ) -> TestServer {
        // A test that picks port 0 itself picks its address too (a non-loopback one, say).
        if config.listen.port() != 0 {
            config.listen = "127.0.0.1:0".parse().unwrap();
        }
        config.data_dir = dir.path().to_path_buf();
        let mut engine_config = config.engine_config().unwrap();
        engine_config.thread_name = thread_name.into();
        let engine = match store {
            Some(store) => Engine::start_with_store(engine_config, executor().await, store),
            None => Engine::start(engine_config, executor().await),
        }
        .unwrap();
        let listeners = server::bind_all(&config).await.unwrap();
        let addr = listeners[0].local_addr().unwrap();
        let app = server::App::new(engine.clone(), Arc::new(config));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(server::serve(app, listeners, async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            engine,
            _dir: dir,
            stop: Some(tx),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
    }
}

/// CPU seconds used so far by the threads whose name is `name` (Linux).
pub fn thread_cpu_seconds(name: &str) -> f64 {
    let ticks = 100.0; // USER_HZ on Linux
    let mut total = 0u64;
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        for task in tasks.flatten() {
            let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
            if comm.trim() != name {
                continue;
            }
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
            if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let utime: u64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
                let stime: u64 = fields.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
                total += utime + stime;
            }
        }
    }
    total as f64 / ticks
}

/// The Python interpreter with the pinned vendor SDKs: `POLYQUERY_PYTHON` (scripts/test sets it),
/// else whatever `scripts/sdk-env` installs. Panics when neither works: an SDK test must fail, never
/// be skipped, when its SDK cannot run.
pub fn sdk_python() -> String {
    python_of("POLYQUERY_PYTHON", None)
}

/// lumipy's interpreter (its own virtual environment): `POLYQUERY_LUMIPY_PYTHON`, else what
/// `scripts/sdk-env lumipy` installs.
pub fn lumipy_python() -> String {
    python_of("POLYQUERY_LUMIPY_PYTHON", Some("lumipy"))
}

fn python_of(variable: &str, which: Option<&str>) -> String {
    if let Ok(python) = std::env::var(variable)
        && !python.is_empty()
    {
        return python;
    }
    let root = env!("CARGO_MANIFEST_DIR");
    let output = std::process::Command::new(Path::new(root).join("scripts/sdk-env"))
        .args(which)
        .current_dir(root)
        .output()
        .expect("scripts/sdk-env could not be started");
    assert!(
        output.status.success(),
        "scripts/sdk-env failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .expect("scripts/sdk-env printed no interpreter")
        .trim()
        .to_string()
}

/// The keys of a JSON object in wire order (serde_json keeps it), for checking field order.
pub fn keys(value: &serde_json::Value) -> Vec<&str> {
    value
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect()
}

/// `select 1 as x where 1=1 or 1=1 or …` with `terms` terms: a tree as deep as it is long.
pub fn or_chain(terms: usize) -> String {
    format!("select 1 as x where {}", vec!["1=1"; terms].join(" or "))
}

/// Ten times the expression depth the parser allows.
pub fn too_deep() -> String {
    or_chain(polyquery::sql::guard::MAX_SQL_DEPTH * 10)
}

/// Asserts that the server still answers `/healthz`, promptly.
pub async fn assert_alive(server: &TestServer) {
    let r = reqwest::Client::new()
        .get(server.url("/healthz"))
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .expect("the server no longer answers /healthz");
    assert_eq!(r.status(), reqwest::StatusCode::OK);
}
