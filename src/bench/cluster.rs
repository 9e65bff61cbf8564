//! The cluster's figures (`polyquery bench --store-url postgres://…`, or `scripts/cluster --bench`):
//! one instance on the data directory beside three instances on PostgreSQL sharing a results
//! directory, and the store's job-record writes beside `pgbench` running the same statement.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{percentiles, print_latency, select_one_jobs, us};
use crate::engine::{
    Engine, EngineConfig, EngineError, JobId, JobRecord, JobSpec, JobState, JobStore, PgJobStore,
    Principal, SAVE_JOB,
};
use crate::exec::datafusion::DataFusionExecutor;

pub async fn run(
    executor: Arc<DataFusionExecutor>,
    dir: &Path,
    url: &str,
    jobs: usize,
    poll_seconds: f64,
) -> Result<(), EngineError> {
    let single = Engine::start(EngineConfig::new(dir.join("single")), executor.clone())?;
    let mut cluster = Vec::new();
    for n in 0..3 {
        let mut config = EngineConfig::new(dir.join(format!("instance{n}")));
        config.results_dir = Some(dir.join("shared"));
        let store = Arc::new(PgJobStore::connect(url)?);
        cluster.push(Engine::start_with_store(config, executor.clone(), store)?);
    }

    println!("cluster: SELECT 1 x {jobs}, submit -> succeeded -> read");
    let mut alone = select_one_jobs(&single, jobs).await?;
    let mut across = across_instances(&cluster, jobs).await?;
    let (a50, a99) = percentiles(&mut alone);
    let (c50, c99) = percentiles(&mut across);
    print_latency("one instance, files", a50, a99, String::new());
    print_latency(
        "3 on PostgreSQL",
        c50,
        c99,
        format!(
            "   {:.1}x (submitted on one, read on the next)",
            ratio(c50, a50)
        ),
    );

    println!("cluster: status polls of a finished job for {poll_seconds} s, one thread");
    let local = polls_per_second(&single, &single, poll_seconds).await?;
    let remote = polls_per_second(&cluster[0], &cluster[1], poll_seconds).await?;
    println!("  one instance, files     {local:>10.0} polls/s");
    println!(
        "  3 on PostgreSQL         {remote:>10.0} polls/s   {:.2}x (another instance's job, read from the store)",
        remote / local.max(1.0)
    );

    single.shutdown().await;
    for engine in cluster {
        engine.shutdown().await;
    }

    let writes = jobs.max(1);
    let ours = record_writes(url, writes)?;
    println!("cluster: job-record writes (the compare-and-set), x {writes}, one connection");
    println!("  the job store           {ours:>10.0} writes/s");
    match pgbench(url, writes) {
        Ok(theirs) => println!(
            "  pgbench, same statement {theirs:>10.0} writes/s   ours {:.2}x",
            ours / theirs.max(1.0)
        ),
        Err(e) => println!("  pgbench: not run ({e})"),
    }
    Ok(())
}

fn ratio(a: Duration, b: Duration) -> f64 {
    us(a) / us(b).max(1e-3)
}

/// The `SELECT 1` loop across instances: each job submitted on one, waited for and read on the next.
async fn across_instances(cluster: &[Engine], jobs: usize) -> Result<Vec<Duration>, EngineError> {
    let mut through = Vec::with_capacity(jobs);
    for n in 0..jobs {
        let (on, via) = (&cluster[n % 3], &cluster[(n + 1) % 3]);
        let t = Instant::now();
        let id = on
            .submit(JobSpec::new("SELECT 1", Principal::user("bench"), "bench"))
            .await?;
        let record = via.wait(id, Duration::from_secs(10)).await?;
        if record.state != JobState::Succeeded {
            return Err(EngineError::internal(format!(
                "bench job ended {:?}",
                record.state
            )));
        }
        let rows: usize = via
            .read(id)?
            .map(|b| b.map(|b| b.num_rows()))
            .sum::<Result<_, _>>()?;
        through.push(t.elapsed());
        if rows != 1 {
            return Err(EngineError::internal(format!(
                "bench job answered {rows} rows"
            )));
        }
        via.remove(id)?;
    }
    Ok(through)
}

/// Status polls per second of one finished job started on `on`, polled through `via`.
async fn polls_per_second(on: &Engine, via: &Engine, seconds: f64) -> Result<f64, EngineError> {
    let id = on
        .submit(JobSpec::new("SELECT 1", Principal::user("bench"), "bench"))
        .await?;
    on.wait(id, Duration::from_secs(10)).await?;
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    let mut polls = 0u64;
    let started = Instant::now();
    while Instant::now() < until {
        crate::sql::guard::blocking(|| via.poll(id))?;
        polls += 1;
    }
    on.remove(id)?;
    Ok(polls as f64 / started.elapsed().as_secs_f64())
}

/// A record like a finished `SELECT 1` job's, numbered `n` (finished, so that no instance takes it
/// for an orphan).
fn bench_record(n: u64) -> JobRecord {
    let spec = JobSpec::new("SELECT 1", Principal::user("bench"), "bench");
    let mut record = JobRecord::new(
        JobId {
            uuid: u128::from(n) | (0xbe7c4u128 << 64),
            seq: n,
        },
        spec,
        chrono::Utc::now(),
    );
    record.state = JobState::Succeeded;
    record
}

/// Job-record writes per second through the store (one connection, each a new job).
fn record_writes(url: &str, writes: usize) -> Result<f64, EngineError> {
    let store = PgJobStore::connect(url)?;
    let started = Instant::now();
    for n in 0..writes {
        store.save(&bench_record(1_000_000_000 + n as u64))?;
    }
    Ok(writes as f64 / started.elapsed().as_secs_f64())
}

/// The same statement through `pgbench` (one client, `writes` transactions, each a new job with a
/// record of the same size), in transactions per second; an error when pgbench is not installed.
fn pgbench(url: &str, writes: usize) -> Result<f64, String> {
    let pgbench = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|d| {
            let mut found: Vec<_> = d
                .flatten()
                .map(|e| e.path().join("bin/pgbench"))
                .filter(|p| p.exists())
                .collect();
            found.sort();
            found.pop()
        })
        .ok_or("no pgbench under /usr/lib/postgresql")?;
    let record = serde_json::to_string(&bench_record(0))
        .map_err(|e| e.to_string())?
        .replace('\'', "''");
    let statement = SAVE_JOB
        .replace("$8", "NULL")
        .replace("$7", "'\"bench\"'")
        .replace("$6", "'pgbench'")
        .replace("$5", "0")
        .replace("$4", "'succeeded'")
        .replace("$3", &format!("'{record}'"))
        .replace("$2", ":n")
        .replace("$1", "'pgbench-' || :n")
        .replace('\n', " ");
    let script = tempfile::NamedTempFile::new().map_err(|e| e.to_string())?;
    std::fs::write(
        script.path(),
        format!("\\set n random(1, 1000000000)\n{statement};\n"),
    )
    .map_err(|e| e.to_string())?;
    let out = std::process::Command::new(pgbench)
        .args(["-n", "-c", "1", "-t", &writes.to_string(), "-f"])
        .arg(script.path())
        .arg(url)
        .output()
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .ok_or_else(|| format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
}
