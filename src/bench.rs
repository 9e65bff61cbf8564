//! `polyquery bench`: each figure beside a reference measured in the same run, because these
//! machines are noisy and only ratios travel. Build with `--release` before reading anything into it.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::SessionContext;

use crate::encode::{self, EncodeOptions, Format};
use crate::engine::{
    Engine, EngineConfig, EngineError, JobId, JobRecord, JobSpec, JobState, JobStore, Principal,
};
use crate::exec::Executor;
use crate::exec::datafusion::{DataFusionExecutor, TableFormat, UserTable, default_partitions};

mod cluster;
mod wire;

/// Rows shaped like a typical result: an integer, a float, a short string and a small category.
fn rows_sql(n: usize) -> String {
    format!(
        "SELECT value AS id, value * 1.5 AS amount, concat('name-', CAST(value AS VARCHAR)) AS name, value % 100 AS cat FROM range({n})"
    )
}

/// What `polyquery bench` measures, and how much of it (its command-line options).
#[derive(clap::Args, Debug)]
pub struct BenchSizes {
    /// Rows for the encoder benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    pub rows: usize,
    /// Rows for the streaming-memory benchmark.
    #[arg(long, default_value_t = 5_000_000)]
    pub stream_rows: usize,
    /// Jobs for the engine-overhead benchmark.
    #[arg(long, default_value_t = 2_000)]
    pub jobs: usize,
    /// Rows of the CSV file for the group-by benchmark.
    #[arg(long, default_value_t = 5_000_000)]
    pub group_rows: usize,
    /// Times each wire flow runs.
    #[arg(long, default_value_t = 1_000)]
    pub flows: usize,
    /// Seconds of each status-poll load.
    #[arg(long, default_value_t = 3.0)]
    pub poll_seconds: f64,
    /// A PostgreSQL URL: measure only the cluster's figures, on this database (`scripts/cluster
    /// --bench` starts one).
    #[arg(long)]
    pub store_url: Option<String>,
}

pub async fn run(sizes: BenchSizes) -> Result<(), EngineError> {
    let dir = tempfile::tempdir()?;
    let executor = Arc::new(DataFusionExecutor::new(default_partitions(), &[]).await?);
    let engine = Engine::start(EngineConfig::new(dir.path().join("data")), executor.clone())?;
    if cfg!(debug_assertions) {
        println!("note: this is a debug build; figures mean little (cargo run --release -- bench)");
    }
    println!(
        "{} cores, default partitions {}",
        default_partitions(),
        default_partitions()
    );
    if let Some(url) = &sizes.store_url {
        return cluster::run(executor, dir.path(), url, sizes.jobs, sizes.poll_seconds).await;
    }
    let server = wire::BenchServer::start(&dir.path().join("server")).await?;
    wire::flows(&server, sizes.flows).await?;
    wire::polls(&server, sizes.poll_seconds).await?;
    drop(server);
    engine_overhead(&engine, executor.context(), sizes.jobs).await?;
    record_persistence(executor.clone(), dir.path(), sizes.jobs).await?;
    group_by(dir.path(), sizes.group_rows).await?;
    encoders(executor.context(), sizes.rows, dir.path()).await?;
    streaming_memory(&engine, sizes.stream_rows).await?;
    Ok(())
}

/// The `SELECT 1` job loop, timed per job: submit, wait for success, read every batch, remove.
async fn select_one_jobs(engine: &Engine, jobs: usize) -> Result<Vec<Duration>, EngineError> {
    let mut through = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let t = Instant::now();
        let id = engine
            .submit(JobSpec::new("SELECT 1", Principal::user("bench"), "bench"))
            .await?;
        let record = engine.wait(id, Duration::from_secs(10)).await?;
        if record.state != JobState::Succeeded {
            return Err(EngineError::internal(format!(
                "bench job ended {:?}",
                record.state
            )));
        }
        let batches: Vec<RecordBatch> = engine.read(id)?.collect::<Result<_, _>>()?;
        through.push(t.elapsed());
        assert_rows(&batches, 1)?;
        engine.remove(id)?;
    }
    Ok(through)
}

/// What writing job records costs a job: the same loop with the records in the data directory and
/// with a store that keeps nothing.
async fn record_persistence(
    executor: Arc<DataFusionExecutor>,
    dir: &std::path::Path,
    jobs: usize,
) -> Result<(), EngineError> {
    let kept = Engine::start(EngineConfig::new(dir.join("kept")), executor.clone())?;
    let mut with_files = select_one_jobs(&kept, jobs).await?;
    kept.shutdown().await;
    let nothing = Engine::start_with_store(
        EngineConfig::new(dir.join("unkept")),
        executor,
        Arc::new(NoStore),
    )?;
    let mut without = select_one_jobs(&nothing, jobs).await?;
    nothing.shutdown().await;
    let (f50, f99) = percentiles(&mut with_files);
    let (n50, n99) = percentiles(&mut without);
    println!("job records, SELECT 1 x {jobs} (persistence is on the request path today)");
    print_latency("records in the data dir", f50, f99, String::new());
    let cost = format!(
        "   persistence costs {:.1} us a job",
        us(f50.saturating_sub(n50))
    );
    print_latency("records kept nowhere", n50, n99, cost);
    Ok(())
}

/// A job store that keeps nothing: the engine's cost without its record writes.
struct NoStore;

impl JobStore for NoStore {
    fn save(&self, _record: &JobRecord) -> Result<bool, EngineError> {
        Ok(true)
    }
    fn remove(&self, _id: JobId) -> Result<(), EngineError> {
        Ok(())
    }
    fn load_all(&self) -> Result<Vec<JobRecord>, EngineError> {
        Ok(Vec::new())
    }
    fn sequence_high_water(&self) -> Result<u64, EngineError> {
        Ok(0)
    }
    fn raise_sequence_high_water(&self, _seq: u64) -> Result<(), EngineError> {
        Ok(())
    }
    fn save_side(
        &self,
        _table: &str,
        _key: &str,
        _value: &serde_json::Value,
    ) -> Result<(), EngineError> {
        Ok(())
    }
    fn remove_side(&self, _table: &str, _key: &str) -> Result<(), EngineError> {
        Ok(())
    }
    fn load_side(&self, _table: &str) -> Result<Vec<(String, serde_json::Value)>, EngineError> {
        Ok(Vec::new())
    }
}

const GROUP_BY: &str = "select cat, count(*), sum(amount) from t group by cat";

/// The group-by over a CSV file: DataFusion alone (its defaults) against polyquery's executor with
/// its default partitions and with one, each the median of five runs; and whether polyquery's
/// answers were byte for byte the same every time.
async fn group_by(dir: &std::path::Path, rows: usize) -> Result<(), EngineError> {
    let path = dir.join("group.csv");
    let make = SessionContext::new();
    let sql = format!(
        "SELECT value AS id, concat('cat-', CAST(value % 97 AS VARCHAR)) AS cat, (value % 1000) * 0.25 AS amount FROM range({rows})"
    );
    make.sql(&sql)
        .await?
        .write_csv(
            &path.to_string_lossy(),
            DataFrameWriteOptions::new().with_single_file_output(true),
            None,
        )
        .await?;
    let table = UserTable {
        name: "t".into(),
        path: path.clone(),
        format: TableFormat::Csv,
    };
    let alone = SessionContext::new();
    alone
        .register_csv("t", &path.to_string_lossy(), Default::default())
        .await?;
    let parallel =
        DataFusionExecutor::new(default_partitions(), std::slice::from_ref(&table)).await?;
    let single = DataFusionExecutor::new(1, std::slice::from_ref(&table)).await?;
    let mut df = Vec::new();
    let mut ours = Vec::new();
    let mut one = Vec::new();
    let mut answers = std::collections::HashSet::new();
    for _ in 0..5 {
        let t = Instant::now();
        alone.sql(GROUP_BY).await?.collect().await?;
        df.push(t.elapsed());
        let t = Instant::now();
        let batches = collect(&parallel).await?;
        ours.push(t.elapsed());
        answers.insert(csv_bytes(&batches)?);
        let t = Instant::now();
        collect(&single).await?;
        one.push(t.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (d, o, s) = (median(&mut df), median(&mut ours), median(&mut one));
    println!(
        "{GROUP_BY}, {rows}-row CSV (median of 5; goal <= 1.1x DataFusion alone, deterministic)"
    );
    println!(
        "  datafusion alone ({} partitions) {:>7.3} s",
        alone.state().config().target_partitions(),
        d.as_secs_f64()
    );
    println!(
        "  polyquery, {} partitions      {:>7.3} s   ratio {:.2}x   identical answers in 5 runs: {}",
        default_partitions(),
        o.as_secs_f64(),
        o.as_secs_f64() / d.as_secs_f64(),
        if answers.len() == 1 { "yes" } else { "NO" }
    );
    println!(
        "  polyquery, 1 partition         {:>7.3} s   ratio {:.2}x",
        s.as_secs_f64(),
        s.as_secs_f64() / d.as_secs_f64()
    );
    Ok(())
}

async fn collect(executor: &DataFusionExecutor) -> Result<Vec<RecordBatch>, EngineError> {
    let stream = executor.execute(GROUP_BY, &Default::default()).await?;
    Ok(futures::TryStreamExt::try_collect(stream).await?)
}

fn csv_bytes(batches: &[RecordBatch]) -> Result<Vec<u8>, EngineError> {
    let mut out = Vec::new();
    {
        let mut w = datafusion::arrow::csv::Writer::new(&mut out);
        for b in batches {
            w.write(b)?;
        }
    }
    Ok(out)
}

/// 1. `SELECT 1` through the engine (submit → succeeded → read) against DataFusion directly.
async fn engine_overhead(
    engine: &Engine,
    ctx: &SessionContext,
    jobs: usize,
) -> Result<(), EngineError> {
    let mut direct = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let t = Instant::now();
        let batches = ctx.sql("SELECT 1").await?.collect().await?;
        direct.push(t.elapsed());
        assert_rows(&batches, 1)?;
    }
    let mut through = select_one_jobs(engine, jobs).await?;
    let (d50, d99) = percentiles(&mut direct);
    let (t50, t99) = percentiles(&mut through);
    println!("engine overhead, SELECT 1 x {jobs} (goal: <= 1.5x, p99 <= 1 ms)");
    print_latency("datafusion direct", d50, d99, String::new());
    print_latency("polyquery job", t50, t99, String::new());
    println!(
        "  overhead per job       p50 {:>8.1} us   ratio {:.2}x",
        us(t50.saturating_sub(d50)),
        t50.as_secs_f64() / d50.as_secs_f64()
    );
    Ok(())
}

/// 2. Encoder throughput on a `rows`-row result against DataFusion's own writers, both to files.
async fn encoders(
    ctx: &SessionContext,
    rows: usize,
    dir: &std::path::Path,
) -> Result<(), EngineError> {
    let frame = ctx.sql(&rows_sql(rows)).await?;
    let batches = frame.clone().collect().await?;
    let schema = frame.schema().inner().clone();
    println!("encoder throughput, {rows} rows (MB/s of output, higher is better)");
    for (format, extension) in [
        (Format::Csv, "csv"),
        (Format::NdJson, "json"),
        (Format::Parquet, "parquet"),
    ] {
        let ours = dir.join(format!("ours.{extension}"));
        let t = Instant::now();
        let file = io::BufWriter::with_capacity(1 << 20, std::fs::File::create(&ours)?);
        let mut encoder = encode::encoder(
            format,
            &EncodeOptions::default(),
            schema.clone(),
            Box::new(file),
        )
        .map_err(EngineError::internal)?;
        for b in &batches {
            encoder.write_batch(b).map_err(EngineError::internal)?;
        }
        encoder.finish().map_err(EngineError::internal)?;
        let ours_time = t.elapsed();
        let ours_bytes = std::fs::metadata(&ours)?.len();

        let theirs = dir.join(format!("theirs.{extension}"));
        let theirs_path = theirs.to_string_lossy().to_string();
        let mem = ctx.read_batches(batches.clone())?;
        let options = DataFrameWriteOptions::new().with_single_file_output(true);
        let t = Instant::now();
        match format {
            Format::Csv => mem.write_csv(&theirs_path, options, None).await?,
            Format::NdJson => mem.write_json(&theirs_path, options, None).await?,
            _ => mem.write_parquet(&theirs_path, options, None).await?,
        };
        let theirs_time = t.elapsed();
        let theirs_bytes = dir_size(&theirs)?;
        let (a, b) = (
            mb_per_s(ours_bytes, ours_time),
            mb_per_s(theirs_bytes, theirs_time),
        );
        let single = single_threaded_arrow_writer(
            format,
            &batches,
            &dir.join(format!("arrow.{extension}")),
        )?
        .map(|c| {
            format!(
                "   arrow writer on one thread {c:>8.1} MB/s   ratio {:.2}x",
                a / c
            )
        })
        .unwrap_or_default();
        println!(
            "  {extension:<8} polyquery {a:>8.1} MB/s   datafusion writer {b:>8.1} MB/s   ratio {:.2}x (goal >= 1.0x){single}",
            a / b
        );
    }
    Ok(())
}

/// 3. Peak memory while a large finished result streams out as CSV, beside a result 5x smaller.
///
/// Streaming means the peak does not grow with the result.
async fn streaming_memory(engine: &Engine, stream_rows: usize) -> Result<(), EngineError> {
    println!(
        "peak memory streaming a finished result out as CSV (RSS high-water mark above the start)"
    );
    for n in [stream_rows / 5, stream_rows] {
        let id = engine
            .submit(JobSpec::new(rows_sql(n), Principal::user("bench"), "bench"))
            .await?;
        let record = engine.wait(id, Duration::from_secs(600)).await?;
        if record.state != JobState::Succeeded {
            return Err(EngineError::internal(format!(
                "bench job ended {:?}",
                record.state
            )));
        }
        let base = reset_peak_rss();
        let counter = Arc::new(AtomicU64::new(0));
        let stream = engine.read(id)?.into_stream();
        let mut body = crate::wire::body::encoded(stream, Format::Csv, EncodeOptions::default());
        let t = Instant::now();
        while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
            let frame = frame.map_err(EngineError::internal)?;
            if let Some(d) = frame.data_ref() {
                counter.fetch_add(d.len() as u64, Ordering::Relaxed);
            }
        }
        let took = t.elapsed();
        let peak = peak_rss().saturating_sub(base);
        println!(
            "  {n:>9} rows  {:>8.1} MB out in {:>6.2} s   peak +{:>6.1} MB",
            counter.load(Ordering::Relaxed) as f64 / 1e6,
            took.as_secs_f64(),
            peak as f64 / 1e6
        );
        engine.remove(id)?;
    }
    Ok(())
}

/// Arrow's own CSV / NDJSON writer on one thread: DataFusion's writers serialize batches on every
/// core at once, and this is the same writer without that parallelism.
fn single_threaded_arrow_writer(
    format: Format,
    batches: &[RecordBatch],
    path: &std::path::Path,
) -> Result<Option<f64>, EngineError> {
    let t = Instant::now();
    let file = io::BufWriter::new(std::fs::File::create(path)?);
    match format {
        Format::Csv => {
            let mut w = datafusion::arrow::csv::Writer::new(file);
            for b in batches {
                w.write(b)?;
            }
        }
        Format::NdJson => {
            let mut w = datafusion::arrow::json::LineDelimitedWriter::new(file);
            for b in batches {
                w.write(b)?;
            }
            w.finish()?;
        }
        _ => return Ok(None),
    }
    Ok(Some(mb_per_s(std::fs::metadata(path)?.len(), t.elapsed())))
}

fn assert_rows(batches: &[RecordBatch], n: usize) -> Result<(), EngineError> {
    let got: usize = batches.iter().map(|b| b.num_rows()).sum();
    if got == n {
        Ok(())
    } else {
        Err(EngineError::internal(format!(
            "expected {n} rows, got {got}"
        )))
    }
}

/// One line of a latency figure: its label, p50 and p99, and what follows.
fn print_latency(label: &str, p50: Duration, p99: Duration, rest: String) {
    println!(
        "  {label:<23} p50 {:>8.1} us   p99 {:>8.1} us{rest}",
        us(p50),
        us(p99)
    );
}

pub(crate) fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    samples.sort();
    let at = |p: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * p) as usize)
            .copied()
            .unwrap_or_default()
    };
    (at(0.5), at(0.99))
}

pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

/// A file, or a directory of files (DataFusion may write either).
fn dir_size(path: &std::path::Path) -> io::Result<u64> {
    let meta = std::fs::metadata(path)?;
    if meta.is_file() {
        return Ok(meta.len());
    }
    let mut total = 0;
    for entry in std::fs::read_dir(path)? {
        total += dir_size(&entry?.path())?;
    }
    Ok(total)
}

/// Resets the kernel's RSS high-water mark (Linux) and answers the current RSS.
fn reset_peak_rss() -> u64 {
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .write(true)
        .open("/proc/self/clear_refs")
    {
        let _ = f.write_all(b"5");
    }
    status_kb("VmRSS:") * 1024
}

fn peak_rss() -> u64 {
    status_kb("VmHWM:") * 1024
}

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
