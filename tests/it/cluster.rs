//! Cluster mode: three polyquery processes on one PostgreSQL and one shared results directory. Any
//! instance answers for any job, a cancel reaches the instance running the query, and the jobs of
//! an instance killed with SIGKILL end on the survivors.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::cross_wire::{ADMIN, ANSWER, Caller, Seen, WIRES, Wire, json_of};
use crate::postgres::{Postgres, free_port};

/// One `polyquery serve` process, killed (SIGKILL) when dropped.
struct Instance {
    child: Child,
    base: String,
    _data: tempfile::TempDir,
}

impl Instance {
    /// An instance with `settings` (`key=value`) over the configuration file `shared/polyquery.toml`.
    fn start(pg: &Postgres, shared: &Path, settings: &[&str]) -> Instance {
        let data = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_polyquery"));
        command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data.path())
            .arg("--config")
            .arg(shared.join("polyquery.toml"))
            .args(["--set", &format!("store.url={}", pg.url())])
            .args(["--set", &format!("results.url=file://{}", shared.display())])
            .args(["--set", "cluster.lease_ms=1000"])
            .args([
                "--set",
                concat!(
                    "looker.model_dir=",
                    env!("CARGO_MANIFEST_DIR"),
                    "/tests/sdk/looker/models"
                ),
            ])
            .args(["--set", "engine.reaper_interval_ms=100"]);
        for setting in settings {
            command.args(["--set", setting]);
        }
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        Instance {
            child,
            base: format!("http://127.0.0.1:{port}"),
            _data: data,
        }
    }

    /// Waits until the instance answers (bounded).
    async fn ready(&self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let answer = http.get(format!("{}/readyz", self.base)).send().await;
            if answer.is_ok_and(|a| a.status() == StatusCode::OK) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} never became ready", self.base);
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}

struct Cluster {
    instances: Vec<Instance>,
    _shared: tempfile::TempDir,
    pg: Postgres,
}

impl Cluster {
    async fn start(settings: &[&str]) -> Cluster {
        Cluster::configured("", settings).await
    }

    /// A cluster whose instances read the configuration file `toml`.
    async fn configured(toml: &str, settings: &[&str]) -> Cluster {
        let pg = Postgres::start();
        let shared = tempfile::tempdir().unwrap();
        std::fs::write(shared.path().join("polyquery.toml"), toml).unwrap();
        // The first instance migrates the schema; the others then start together.
        let first = Instance::start(&pg, shared.path(), settings);
        first.ready().await;
        let mut instances = vec![first];
        for _ in 0..2 {
            instances.push(Instance::start(&pg, shared.path(), settings));
        }
        for instance in &instances {
            instance.ready().await;
        }
        Cluster {
            instances,
            _shared: shared,
            pg,
        }
    }

    /// A caller talking to the instances `which`, in turn.
    async fn caller(&self, which: &[usize]) -> Caller {
        let bases = which
            .iter()
            .map(|&i| self.instances[i].base.clone())
            .collect();
        Caller::over(bases, ADMIN).await
    }
}

/// Polls `wire`'s status of `job` until `expected` or `secs` seconds have passed.
async fn seen_within(caller: &Caller, wire: Wire, job: &str, expected: Seen, secs: u64) {
    let within = Duration::from_secs(secs);
    let deadline = Instant::now() + within;
    loop {
        let seen = caller.status(wire, job).await;
        if seen == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{wire:?}: job {job} is {seen:?}, not {expected:?}, after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_follow_up_request_goes_to_another_instance() {
    let cluster = Cluster::start(&[]).await;
    let caller = cluster.caller(&[0, 1, 2]).await;
    for from in WIRES {
        for via in WIRES {
            let cell = format!("started on {from:?}, read through {via:?}");
            let job = caller.start(from, false).await;
            assert_eq!(caller.settled(via, &job).await, Seen::Succeeded, "{cell}");
            let (status, body) = caller.result(via, &job).await;
            assert_eq!(status, StatusCode::OK, "{cell}: {body}");
            assert!(body.contains(ANSWER), "{cell}: {body}");

            let slow = caller.start(from, true).await;
            assert!(caller.cancel(via, &slow).await, "{cell}: cancel");
            assert_eq!(caller.status(via, &slow).await, Seen::Ended, "{cell}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cancel_through_one_instance_stops_the_query_running_on_another() {
    let cluster = Cluster::start(&["engine.workers=1"]).await;
    let (on_a, on_b) = (cluster.caller(&[0]).await, cluster.caller(&[1]).await);
    let slow = on_a.start(Wire::Luminesce, true).await;
    seen_within(&on_a, Wire::Luminesce, &slow, Seen::Going, 5).await;
    assert!(on_b.cancel(Wire::Luminesce, &slow).await);
    // The instance running it stops it within a second, and its one worker is free again.
    seen_within(&on_a, Wire::Luminesce, &slow, Seen::Ended, 1).await;
    let next = on_a.start(Wire::Luminesce, false).await;
    seen_within(&on_a, Wire::Luminesce, &next, Seen::Succeeded, 10).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_jobs_of_a_killed_instance_end_on_the_survivors() {
    let mut cluster = Cluster::start(&[]).await;
    let on_a = cluster.caller(&[0]).await;
    let mut jobs = Vec::new();
    for wire in WIRES {
        let done = on_a.start(wire, false).await;
        assert_eq!(on_a.settled(wire, &done).await, Seen::Succeeded);
        // An AsterixDB result may be read once (max-result-reads): it is read after the kill only.
        let before = match wire {
            Wire::AsterixDb => "[ { \"n\": 1000 } ]\n".to_string(),
            _ => on_a.result(wire, &done).await.1,
        };
        let slow = on_a.start(wire, true).await;
        jobs.push((wire, done, before, slow));
    }
    cluster.instances[0].kill();
    let survivors = cluster.caller(&[1, 2]).await;
    for (wire, done, before, slow) in &jobs {
        // Finished results read the same through the survivors; unfinished jobs fail once the
        // dead instance's lease (1 s) has run out.
        let (status, after) = survivors.result(*wire, done).await;
        assert_eq!((status, &after), (StatusCode::OK, before), "{wire:?}");
        seen_within(&survivors, *wire, slow, Seen::Ended, 10).await;
    }
}

/// `polyquery balance` in front of the instances, killed when dropped.
struct Balancer {
    child: Child,
    base: String,
}

impl Balancer {
    async fn start(cluster: &Cluster) -> Balancer {
        let port = free_port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_polyquery"));
        command.args(["balance", "--listen", &format!("127.0.0.1:{port}")]);
        for instance in &cluster.instances {
            command.args(["--to", &instance.base]);
        }
        let balancer = Balancer {
            child: command
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
            base: format!("http://127.0.0.1:{port}"),
        };
        // Ready once a request gets through it.
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !http
            .get(format!("{}/healthz", balancer.base))
            .send()
            .await
            .is_ok_and(|a| a.status() == StatusCode::OK)
        {
            assert!(Instant::now() < deadline, "the balancer never answered");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        balancer
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a client script with `args`; it must succeed and print `ok_line`.
async fn client_script(script: &str, args: &[&str], ok_line: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let out = tokio::process::Command::new(crate::support::sdk_python())
        .arg(&path)
        .args(args)
        .env_remove("FBN_LUMINESCE_URL")
        .env_remove("FBN_ACCESS_TOKEN")
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(ok_line),
        "{script} through the balancer failed\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The official clients' flows, through a round-robin balancer: each of their requests reaches
/// another instance than the one before.
#[tokio::test(flavor = "multi_thread")]
async fn the_luminesce_and_kylin_clients_work_through_a_balancer() {
    let cluster = Cluster::start(&[]).await;
    let balancer = Balancer::start(&cluster).await;
    let url = balancer.base.as_str();
    client_script(
        "tests/sdk/luminesce/sdk_test.py",
        &[url],
        "async client: ok",
    )
    .await;
    client_script("tests/sdk/kylin/kylinpy_check.py", &[url], "").await;
    client_script("tests/sdk/kylin/superset_check.py", &[url], "").await;
}

/// The Looker SDK's flow checks that bad credentials are refused: a configured user.
#[tokio::test(flavor = "multi_thread")]
async fn the_looker_sdk_works_through_a_balancer() {
    let users = "[[users]]\nname = \"alice\"\npassword = \"s3cret\"\n";
    let cluster = Cluster::configured(users, &[]).await;
    let balancer = Balancer::start(&cluster).await;
    let url = balancer.base.as_str();
    client_script(
        "tests/sdk/looker/sdk_flow.py",
        &[url, "alice", "s3cret", "full"],
        "",
    )
    .await;
}

/// `/readyz` of every instance, until each answers `status` (bounded).
async fn readiness_becomes(cluster: &Cluster, status: StatusCode) {
    let http = reqwest::Client::new();
    for instance in &cluster.instances {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let answer = http
                .get(format!("{}/readyz", instance.base))
                .send()
                .await
                .unwrap();
            if answer.status() == status {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{}: /readyz stayed {}",
                instance.base,
                answer.status()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// PostgreSQL stopped and started again under load: the instances say they are not ready while it
/// is away, reconnect, and every job submitted before, during and after ends with its result.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_restarted_under_load_loses_nothing() {
    let cluster = Cluster::start(&[]).await;
    let caller = cluster.caller(&[0, 1, 2]).await;
    let mut jobs = Vec::new();
    for wire in WIRES {
        jobs.push((wire, caller.start(wire, false).await));
    }
    cluster.pg.stop();
    readiness_becomes(&cluster, StatusCode::SERVICE_UNAVAILABLE).await;
    // A job submitted while the store is away waits for it (within the reconnect window).
    let during = tokio::spawn({
        let bases = cluster.instances.iter().map(|i| i.base.clone()).collect();
        async move {
            let late = Caller::over(bases, ADMIN).await;
            let job = late.start(Wire::Luminesce, false).await;
            (late, job)
        }
    });
    // Not a wait for state: the store stays away a moment, so that the request above meets it gone.
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.pg.start_again();
    readiness_becomes(&cluster, StatusCode::OK).await;
    let (late, late_job) = during.await.unwrap();
    for wire in WIRES {
        jobs.push((wire, caller.start(wire, false).await));
    }
    for (wire, job) in &jobs {
        assert_eq!(
            caller.settled(*wire, job).await,
            Seen::Succeeded,
            "{wire:?}"
        );
        let (status, body) = caller.result(*wire, job).await;
        assert_eq!(status, StatusCode::OK, "{wire:?}: {body}");
        assert!(body.contains(ANSWER), "{wire:?}: {body}");
    }
    assert_eq!(
        late.settled(Wire::Luminesce, &late_job).await,
        Seen::Succeeded
    );
}

/// An instance frozen (SIGSTOP) past its lease has its jobs failed by the survivors; thawed
/// (SIGCONT), its query finishes but its late write is refused: the job ended once, failed, as
/// every instance (the thawed one included) reports it from then on.
#[tokio::test(flavor = "multi_thread")]
async fn a_frozen_instance_cannot_overwrite_what_the_survivors_did() {
    let mut cluster = Cluster::start(&[]).await;
    let (on_a, survivors) = (cluster.caller(&[0]).await, cluster.caller(&[1, 2]).await);
    let job = on_a.start(Wire::Luminesce, true).await;
    seen_within(&on_a, Wire::Luminesce, &job, Seen::Going, 5).await;
    let pid = cluster.instances[0].child.id().to_string();
    let signal = |name: &str| {
        let sent = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(sent.success(), "kill {name}");
    };
    signal("-STOP");
    seen_within(&survivors, Wire::Luminesce, &job, Seen::Ended, 10).await;
    signal("-CONT");
    // The thawed instance hears that the job ended and stops it; whatever it writes late is
    // refused. Every instance says Ended, never Succeeded, from here on.
    let everyone = cluster.caller(&[0, 1, 2]).await;
    for _ in 0..30 {
        assert_eq!(everyone.status(Wire::Luminesce, &job).await, Seen::Ended);
    }
    // Its worker is free again.
    let next = on_a.start(Wire::Luminesce, false).await;
    seen_within(&on_a, Wire::Luminesce, &next, Seen::Succeeded, 10).await;
    cluster.instances[0].kill();
}

/// `scripts/cluster --check`: the local cluster users start (PostgreSQL, three instances, the
/// balancer) answers a query through the balancer.
#[test]
fn the_local_cluster_script_answers_through_its_balancer() {
    let out = cluster_script(&["--check"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("answer\n42"),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With `cluster.on_owner_loss = "rerun"`, a survivor runs a killed instance's unfinished job
/// again, and the job ends with its result.
#[tokio::test(flavor = "multi_thread")]
async fn a_killed_instances_job_is_rerun_by_a_survivor() {
    let mut cluster = Cluster::start(&["cluster.on_owner_loss=\"rerun\""]).await;
    let on_a = cluster.caller(&[0]).await;
    let job = on_a.start_luminesce("select pq_sleep(1500) as n").await;
    seen_within(&on_a, Wire::Luminesce, &job, Seen::Going, 5).await;
    cluster.instances[0].kill();
    let survivors = cluster.caller(&[1, 2]).await;
    seen_within(&survivors, Wire::Luminesce, &job, Seen::Succeeded, 20).await;
    let (status, body) = survivors.result(Wire::Luminesce, &job).await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "n\n1500"));
}

/// AsterixDB's `max-result-reads` counts the reads through every instance.
#[tokio::test(flavor = "multi_thread")]
async fn asterixdb_result_reads_are_counted_across_instances() {
    let cluster = Cluster::start(&["asterixdb.profile=\"master\""]).await;
    let http = reqwest::Client::new();
    let base = |i: usize| cluster.instances[i].base.clone();
    let path = |handle: &str| handle[handle.find("/query/").unwrap()..].to_string();
    let form = serde_urlencoded::to_string([
        ("statement", "select 1 as n;"),
        ("mode", "async"),
        ("max-result-reads", "2"),
    ])
    .unwrap();
    let started = json_of(
        http.post(format!("{}/query/service", base(0)))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form),
    )
    .await;
    let status_path = path(started["handle"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    let result_path = loop {
        let status: serde_json::Value =
            json_of(http.get(format!("{}{status_path}", base(1)))).await;
        if status["status"] == "success" {
            break path(status["handle"].as_str().unwrap());
        }
        assert!(Instant::now() < deadline, "{status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let read = |i: usize| {
        let url = format!("{}{result_path}", base(i));
        let http = http.clone();
        async move { http.get(url).send().await.unwrap().status() }
    };
    assert_eq!(read(0).await, StatusCode::OK);
    assert_eq!(read(1).await, StatusCode::OK);
    assert_eq!(read(2).await, StatusCode::NOT_FOUND);
}

/// A Luminesce view set up through one instance is a table on the others.
#[tokio::test(flavor = "multi_thread")]
async fn a_view_set_up_on_one_instance_is_a_table_on_the_others() {
    let cluster = Cluster::start(&[]).await;
    let (on_a, on_b) = (cluster.caller(&[0]).await, cluster.caller(&[1]).await);
    let setup = on_a
        .start_luminesce(
            "@v = use Sys.Admin.SetupView\n--provider=V.Low\n----\n\
             select [Int] from Testing1K where [Int] <= 2\nenduse;\nselect * from @v",
        )
        .await;
    seen_within(&on_a, Wire::Luminesce, &setup, Seen::Succeeded, 10).await;
    let read = on_b
        .start_luminesce("select [Int] from V.Low order by 1")
        .await;
    seen_within(&on_b, Wire::Luminesce, &read, Seen::Succeeded, 10).await;
    let (status, body) = on_b.result(Wire::Luminesce, &read).await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "Int\n1\n2"));
}

/// The metrics say which instance answers, how many jobs it runs under its lease, and how long its
/// store takes to answer a heartbeat.
#[tokio::test(flavor = "multi_thread")]
async fn the_metrics_show_the_instance_its_leases_and_the_store_latency() {
    let cluster = Cluster::start(&["engine.workers=1"]).await;
    let on_a = cluster.caller(&[0]).await;
    let slow = on_a.start(Wire::Luminesce, true).await;
    seen_within(&on_a, Wire::Luminesce, &slow, Seen::Going, 5).await;
    let metrics = reqwest::get(format!("{}/metrics", cluster.instances[0].base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let line = |name: &str| {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in:\n{metrics}"))
            .to_string()
    };
    assert!(line("polyquery_instance_info{instance=\"").ends_with("} 1"));
    assert_eq!(line("polyquery_leases "), "polyquery_leases 1");
    let heartbeat: f64 = line("polyquery_store_heartbeat_seconds ")
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(heartbeat > 0.0, "{heartbeat}");
}

/// `scripts/cluster --bench` prints the cluster's figures beside their references (a short run: the
/// figures are not checked, only that every row is there).
#[test]
fn the_cluster_benchmark_prints_every_row() {
    let out = cluster_script(&["--bench", "--jobs", "20", "--poll-seconds", "0.2"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for row in [
        "one instance, files",
        "3 on PostgreSQL",
        "polls/s",
        "the job store",
        "pgbench, same statement",
    ] {
        assert!(
            out.status.success() && stdout.contains(row),
            "no {row:?} in:\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `scripts/cluster` with `args`, on the test build's binary and a free port.
fn cluster_script(args: &[&str]) -> std::process::Output {
    Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/cluster"))
        .args(args)
        .env("POLYQUERY_BIN", env!("CARGO_BIN_EXE_polyquery"))
        .env("PORT", free_port().to_string())
        .output()
        .unwrap()
}
