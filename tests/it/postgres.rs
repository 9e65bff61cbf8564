//! The job store on PostgreSQL: the same contract as the data directory's store, and a server on
//! it that keeps its jobs and side records across a restart. Every test starts its own PostgreSQL
//! (Debian's binaries, a cluster in a temporary directory, a port chosen at run time).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use polyquery::config::Config;
use polyquery::engine::{FileJobStore, JobRef, JobState, JobStore, PgJobStore};
use serde_json::json;

use crate::support::{self, TestServer};

/// A PostgreSQL server of the test's own, stopped (immediately) when dropped.
pub struct Postgres {
    dir: tempfile::TempDir,
    pub port: u16,
    /// The server's options (its port among them), for starting it again.
    options: String,
}

/// Where Debian keeps PostgreSQL's server programs (`initdb`, `pg_ctl`), newest version first.
fn pg_bin(program: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .map(|bin| bin.join(program))
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from(program))
}

/// Runs a PostgreSQL program as a user it accepts: `initdb` refuses root, so as root it runs as
/// the `postgres` system user.
fn as_pg_user(program: &str) -> Command {
    let path = pg_bin(program);
    // SAFETY-free check of the effective user: root's home is /root on every Debian.
    let root = std::env::var("USER").map(|u| u == "root").unwrap_or(false)
        || Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
    if root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(path);
        c
    } else {
        Command::new(path)
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

impl Postgres {
    pub fn start() -> Postgres {
        let dir = tempfile::tempdir().unwrap();
        // The cluster's owner must own its directory.
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir.path())
            .status();
        let data = dir.path().join("data");
        let init = as_pg_user("initdb")
            .arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", "polyquery", "--no-sync"])
            .output()
            .unwrap();
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        let port = free_port();
        let options = format!(
            "-p {port} -h 127.0.0.1 -k {} -c fsync=off -c synchronous_commit=off",
            dir.path().display()
        );
        let pg = Postgres { dir, port, options };
        pg.start_again();
        pg
    }

    /// Starts the server (stopped by [`Postgres::stop`]) on its port again.
    pub fn start_again(&self) {
        let start = as_pg_user("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-o", &self.options, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "start"])
            .output()
            .unwrap();
        assert!(
            start.status.success(),
            "pg_ctl start failed: {}{}",
            String::from_utf8_lossy(&start.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    /// Stops the server at once (its clients' connections are cut).
    pub fn stop(&self) {
        let stop = as_pg_user("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "stop"])
            .output()
            .unwrap();
        assert!(stop.status.success(), "pg_ctl stop failed");
    }

    pub fn url(&self) -> String {
        format!(
            "postgres://polyquery@127.0.0.1:{}/postgres?connect_timeout=10",
            self.port
        )
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_pg_user("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// What every job store must do, run against one (`open` opens it again, as a restart does).
fn store_contract(what: &str, open: &dyn Fn() -> Box<dyn JobStore>) {
    let store = open();
    let record = |seq: u64, sql: &str| {
        polyquery::engine::JobRecord::new(
            polyquery::engine::JobId {
                uuid: u128::from(seq) << 64 | 0xabc,
                seq,
            },
            support::spec(sql),
            chrono::Utc::now(),
        )
    };
    let first = record(1, "SELECT 1");
    let second = record(2, "SELECT 2");
    store.save(&first).unwrap();
    store.save(&second).unwrap();
    let mut changed = first.clone();
    changed.state = JobState::Running;
    store.save(&changed).unwrap();
    store.remove(second.id).unwrap();
    store.remove(second.id).unwrap();
    store.raise_sequence_high_water(7).unwrap();
    store.raise_sequence_high_water(3).unwrap();
    store.save_side("t", "1", &json!({"a": 1})).unwrap();
    store.save_side("t", "1", &json!({"a": 2})).unwrap();
    store.save_side("t", "two", &json!("x")).unwrap();
    store.remove_side("t", "two").unwrap();
    store.remove_side("t", "never").unwrap();
    assert!(
        store.save_side("Bad Name", "k", &json!(1)).is_err(),
        "{what}"
    );
    drop(store);

    let reopened = open();
    let jobs = reopened.load_all().unwrap();
    assert_eq!(jobs.len(), 1, "{what}: {jobs:?}");
    assert_eq!(jobs[0].id, first.id, "{what}");
    assert_eq!(jobs[0].state, JobState::Running, "{what}");
    assert_eq!(reopened.sequence_high_water().unwrap(), 7, "{what}");
    assert_eq!(
        reopened.load_side("t").unwrap(),
        vec![("1".to_string(), json!({"a": 2}))],
        "{what}"
    );
    assert!(reopened.load_side("none").unwrap().is_empty(), "{what}");
}

#[test]
fn the_file_store_and_the_postgres_store_keep_the_same_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path: &Path = dir.path();
    store_contract("files", &|| {
        Box::new(FileJobStore::new(path.to_path_buf()).unwrap())
    });
    let pg = Postgres::start();
    let url = pg.url();
    store_contract("postgres", &|| Box::new(PgJobStore::connect(&url).unwrap()));
}

/// Several instances on one store: sequence numbers never collide, any instance reads any job by
/// id or number, every instance hears of every change, and a write that would give an ended job
/// another end (or overwrite a later attempt) is refused.
#[test]
fn instances_sharing_a_store_see_one_truth() {
    let pg = Postgres::start();
    let (a, b) = (
        PgJobStore::connect(&pg.url()).unwrap(),
        PgJobStore::connect(&pg.url()).unwrap(),
    );
    assert!(a.shared() && b.shared());
    let mut seqs: Vec<u64> = (0..5)
        .flat_map(|_| [a.next_seq().unwrap(), b.next_seq().unwrap()])
        .collect();
    seqs.sort();
    seqs.dedup();
    assert_eq!(seqs.len(), 10, "{seqs:?}");

    let mut heard = b.events().unwrap();
    let id = polyquery::engine::JobId {
        uuid: 0xfeed,
        seq: a.next_seq().unwrap(),
    };
    let mut running =
        polyquery::engine::JobRecord::new(id, support::spec("SELECT 1"), chrono::Utc::now());
    running.state = JobState::Running;
    assert!(a.save(&running).unwrap());
    let by_seq = b.load(JobRef::Seq(id.seq)).unwrap().unwrap();
    assert_eq!((by_seq.id, by_seq.state), (id, JobState::Running));
    assert_eq!(b.load(JobRef::Uuid(id.uuid)).unwrap().unwrap().id, id);
    assert!(b.load(JobRef::Seq(id.seq + 1000)).unwrap().is_none());
    assert_eq!(b.load_owned(Some(&running.spec.owner)).unwrap().len(), 1);
    assert!(
        b.load_owned(Some(&polyquery::engine::Principal::user("nobody")))
            .unwrap()
            .is_empty()
    );

    // B cancels; A, still thinking the job runs, then tries to finish it.
    let mut cancelled = by_seq.clone();
    cancelled.state = JobState::Cancelled;
    assert!(b.save(&cancelled).unwrap());
    let mut succeeded = running.clone();
    succeeded.state = JobState::Succeeded;
    assert!(
        !a.save(&succeeded).unwrap(),
        "an ended job took another end"
    );
    assert!(
        a.save(&cancelled).unwrap(),
        "the same end may be written again"
    );
    assert_eq!(
        a.load(JobRef::Uuid(id.uuid)).unwrap().unwrap().state,
        JobState::Cancelled
    );

    // A later attempt's record is never overwritten by an earlier one's.
    let id2 = polyquery::engine::JobId {
        uuid: 0xbeef,
        seq: a.next_seq().unwrap(),
    };
    let mut second =
        polyquery::engine::JobRecord::new(id2, support::spec("SELECT 2"), chrono::Utc::now());
    second.attempt = 1;
    assert!(b.save(&second).unwrap());
    second.attempt = 0;
    second.state = JobState::Running;
    assert!(
        !a.save(&second).unwrap(),
        "an earlier attempt overwrote a later one"
    );

    a.remove(id).unwrap();
    let events: Vec<_> = std::iter::from_fn(|| heard.try_recv().ok())
        .filter(|e| e.uuid == id.uuid)
        .collect();
    // Announcements are asynchronous: wait for the last one (removal) if it is not in yet.
    let events = if events.last().is_some_and(|e| e.state.is_none()) {
        events
    } else {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let mut events = events;
        rt.block_on(async {
            while events.last().is_none_or(|e| e.state.is_some()) {
                let e = tokio::time::timeout(std::time::Duration::from_secs(10), heard.recv())
                    .await
                    .expect("the removal is announced")
                    .unwrap();
                if e.uuid == id.uuid {
                    events.push(e);
                }
            }
        });
        events
    };
    let states: Vec<_> = events.iter().map(|e| e.state).collect();
    assert_eq!(
        states,
        vec![Some(JobState::Running), Some(JobState::Cancelled), None],
        "{events:?}"
    );
}

#[test]
fn an_unreachable_database_is_an_error_not_a_hang() {
    let port = free_port();
    let e = PgJobStore::connect(&format!(
        "postgres://polyquery@127.0.0.1:{port}/postgres?connect_timeout=2"
    ))
    .err()
    .expect("nothing listens there");
    assert!(e.message.contains("PostgreSQL"), "{e}");
}

/// The JSON answer of a request that must succeed.
async fn json_of(request: reqwest::RequestBuilder) -> serde_json::Value {
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

/// A Looker access token (no users configured: any credentials).
async fn looker_token(client: &reqwest::Client, server: &TestServer) -> String {
    let login = json_of(
        client
            .post(server.url("/api/4.0/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("client_id=someone&client_secret=x"),
    )
    .await;
    login["access_token"].as_str().unwrap().to_string()
}

/// A server on PostgreSQL restarted: its jobs (results read back) and the fronts' side records
/// (a Looker stored query) are still there.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_on_postgres_keeps_jobs_and_side_records_across_a_restart() {
    let pg = Postgres::start();
    let url = pg.url();
    fn store(url: &str) -> Arc<dyn JobStore> {
        Arc::new(PgJobStore::connect(url).unwrap())
    }
    let server = TestServer::start_with(Config::default(), "pq-query", Some(store(&url))).await;
    let client = reqwest::Client::new();
    let started = json_of(
        client
            .put(server.url("/honeycomb/api/SqlBackground"))
            .bearer_auth("someone")
            .body("select 41 + 1 as answer"),
    )
    .await;
    let id = started["executionId"].as_str().unwrap().to_string();
    let job = polyquery::engine::JobRef::parse(&id)
        .and_then(|r| server.engine.resolve(r))
        .unwrap();
    server
        .engine
        .wait(job, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let token = looker_token(&client, &server).await;
    let query = json_of(
        client
            .post(server.url("/api/4.0/queries"))
            .bearer_auth(&token)
            .json(
                &json!({"model": "polyquery", "view": "testing1k", "fields": ["testing1k.count"]}),
            ),
    )
    .await;
    let query_id = query["id"].as_str().unwrap().to_string();

    let server = server
        .restarted_with_store(Config::default(), move || Some(store(&url)))
        .await;
    let csv = client
        .get(server.url(&format!("/honeycomb/api/SqlBackground/{id}/csv")))
        .bearer_auth("someone")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv.trim(), "answer\n42");
    let token = looker_token(&client, &server).await;
    let read = json_of(
        client
            .get(server.url(&format!("/api/4.0/queries/{query_id}")))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(read["id"], json!(query_id), "{read}");
}
