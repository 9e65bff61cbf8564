//! The job engine. It knows nothing of any wire: submit a job, watch its state and progress, cancel
//! it, read or reshape its result, and let it expire. Queries run on a runtime of their own, apart
//! from the one serving HTTP, so a busy operator can never stall a status poll.

mod id;
mod job;
mod persist;
mod results;
mod state;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

pub use crate::query::{EngineError, ErrorKind, JobSpec, Limits, ParamValue, Params, Principal};
pub use id::{JobId, JobRef};
pub use job::{JobRecord, LogEntry};
pub use results::ResultReader;
pub use state::{IllegalTransition, JobEvent, JobState};

use crate::exec::Executor;
use crate::exec::reshape::StoredResult;
use crate::sql::reshape::Reshape;
use persist::JobIndex;
use results::ResultStore;

/// The reason given for jobs that were queued or running when the server stopped.
pub const INTERRUPTED: &str = "interrupted by restart";

/// The engine's settings (a part of the server's configuration).
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub data_dir: PathBuf,
    /// Jobs that run at once.
    pub workers: usize,
    /// Jobs that may wait for a worker; beyond this, submit answers Busy.
    pub queue_length: usize,
    /// Bytes of results held in memory across all jobs; the rest is read from disk.
    pub result_memory_budget: usize,
    /// How often expired jobs are swept away.
    pub reaper_interval: Duration,
    /// Threads of the query runtime.
    pub exec_threads: usize,
    /// The name of the query runtime's threads (what `top -H` shows).
    pub thread_name: String,
}

impl EngineConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        EngineConfig {
            data_dir,
            workers: 4,
            queue_length: 1000,
            result_memory_budget: 256 << 20,
            reaper_interval: Duration::from_secs(1),
            exec_threads: 2,
            thread_name: "pq-query".into(),
        }
    }
}

/// A cheap, cloneable handle on the engine.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: RwLock<HashMap<u128, Arc<JobCell>>>,
    by_seq: RwLock<HashMap<u64, u128>>,
    next_seq: AtomicU64,
    executor: Arc<dyn Executor>,
    results: ResultStore,
    index: JobIndex,
    queue: mpsc::Sender<Arc<JobCell>>,
    runtime: QueryRuntime,
    stop: CancellationToken,
    data_dir: PathBuf,
}

/// One job: its record behind a lock, a channel announcing state changes, and its cancel switch.
struct JobCell {
    id: JobId,
    record: Mutex<JobRecord>,
    state: watch::Sender<JobState>,
    cancel: CancellationToken,
}

impl JobCell {
    fn new(record: JobRecord) -> Self {
        let (state, _) = watch::channel(record.state);
        JobCell {
            id: record.id,
            record: Mutex::new(record),
            state,
            cancel: CancellationToken::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, JobRecord> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The query runtime; shut down in the background so dropping the engine never blocks.
struct QueryRuntime(Option<tokio::runtime::Runtime>);

impl Drop for QueryRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl Engine {
    /// Opens the data directory (restoring persisted jobs), then starts the workers and the reaper.
    pub fn start(config: EngineConfig, executor: Arc<dyn Executor>) -> Result<Engine, EngineError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.exec_threads.max(1))
            .thread_name(config.thread_name.clone())
            .thread_stack_size(crate::sql::guard::STACK_SIZE)
            .enable_all()
            .build()?;
        let (queue, rx) = mpsc::channel(config.queue_length.max(1));
        let inner = Arc::new(Inner {
            jobs: RwLock::new(HashMap::new()),
            by_seq: RwLock::new(HashMap::new()),
            next_seq: AtomicU64::new(1),
            executor,
            results: ResultStore::new(
                config.data_dir.join("results"),
                config.result_memory_budget,
            )?,
            index: JobIndex::new(config.data_dir.join("jobs"))?,
            queue,
            runtime: QueryRuntime(Some(runtime)),
            stop: CancellationToken::new(),
            data_dir: config.data_dir.clone(),
        });
        inner.restore()?;
        let handle = inner
            .runtime
            .0
            .as_ref()
            .map(|rt| rt.handle().clone())
            .ok_or_else(|| EngineError::internal("no runtime"))?;
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        for _ in 0..config.workers.max(1) {
            handle.spawn(Inner::work(Arc::downgrade(&inner), rx.clone()));
        }
        handle.spawn(Inner::reap(Arc::downgrade(&inner), config.reaper_interval));
        Ok(Engine { inner })
    }

    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.inner.executor
    }

    /// Accepts a job: checks that its SQL parses (a syntax error is answered at once), queues it, and
    /// returns its id. A full queue answers `Busy`.
    pub fn submit(&self, spec: JobSpec) -> Result<JobId, EngineError> {
        self.inner.executor.check(spec.runnable_sql())?;
        let id = JobId {
            uuid: uuid::Uuid::new_v4().as_u128(),
            seq: self.inner.next_seq.fetch_add(1, Ordering::Relaxed),
        };
        let record = JobRecord::new(id, spec, Utc::now());
        self.inner.index.save(&record)?;
        let cell = Arc::new(JobCell::new(record));
        self.inner.insert(cell.clone());
        if self.inner.queue.try_send(cell).is_err() {
            self.inner.forget(id);
            return Err(EngineError::new(
                ErrorKind::Busy,
                "the job queue is full; try again later",
            ));
        }
        Ok(id)
    }

    /// Finds the job a client's reference names, if it is still known.
    pub fn resolve(&self, job: JobRef) -> Option<JobId> {
        let uuid = match job {
            JobRef::Uuid(u) => u,
            JobRef::Seq(s) => *read(&self.inner.by_seq).get(&s)?,
        };
        read(&self.inner.jobs).get(&uuid).map(|c| c.id)
    }

    /// A snapshot of the job. Expired jobs are gone even before the reaper has swept them.
    pub fn get(&self, id: JobId) -> Result<JobRecord, EngineError> {
        let cell = self.inner.cell(id)?;
        let record = cell.lock().clone();
        Ok(record)
    }

    /// Like [`Engine::get`], but someone else's job is as unknown as one that never existed.
    pub fn get_for(&self, id: JobId, owner: &Principal) -> Result<JobRecord, EngineError> {
        self.get(id).and_then(|r| {
            if r.spec.owner == *owner {
                Ok(r)
            } else {
                Err(EngineError::not_found())
            }
        })
    }

    /// Waits up to `max` for the job to finish, then answers its snapshot either way.
    pub async fn wait(&self, id: JobId, max: Duration) -> Result<JobRecord, EngineError> {
        let cell = self.inner.cell(id)?;
        let mut rx = cell.state.subscribe();
        let _ = tokio::time::timeout(max, rx.wait_for(|s| s.is_terminal())).await;
        self.get(id)
    }

    /// Cancels a queued or running job: reported at once, and its query stops at its next yield
    /// point. Answers the job as it was before. A finished job is left as it is.
    pub fn cancel(&self, id: JobId) -> Result<JobRecord, EngineError> {
        let cell = self.inner.cell(id)?;
        let before = cell.lock().clone();
        let cancelled = self.inner.transition(&cell, JobEvent::Cancel, |r| {
            r.error = Some(EngineError::new(
                ErrorKind::Cancelled,
                "the query was cancelled",
            ));
            r.note("Query cancelled");
        });
        if cancelled.is_ok() {
            cell.cancel.cancel();
        }
        Ok(before)
    }

    /// Cancels the job if it is still going, then forgets it and deletes its result. Answers the job
    /// as it was before.
    pub fn remove(&self, id: JobId) -> Result<JobRecord, EngineError> {
        let before = self.cancel(id)?;
        self.inner.forget(id);
        Ok(before)
    }

    /// The feedback this reader has not seen yet (or all of it), oldest first.
    pub fn feedback(
        &self,
        id: JobId,
        reader: &Principal,
        all: bool,
    ) -> Result<Vec<LogEntry>, EngineError> {
        let cell = self.inner.cell(id)?;
        // Keyed by the typed principal, so no user name can share an anonymous caller's cursor.
        let reader = serde_json::to_string(reader).map_err(EngineError::internal)?;
        let mut record = cell.lock();
        let seen = if all {
            0
        } else {
            record.feedback_seen.get(&reader).copied().unwrap_or(0)
        };
        let fresh = record.log.get(seen..).unwrap_or_default().to_vec();
        let total = record.log.len();
        record.feedback_seen.insert(reader, total);
        Ok(fresh)
    }

    /// Every live job, most recent first, optionally only one owner's.
    pub fn list(&self, owner: Option<&Principal>) -> Vec<JobRecord> {
        let now = Utc::now();
        let mut jobs: Vec<JobRecord> = read(&self.inner.jobs)
            .values()
            .map(|c| c.lock().clone())
            .filter(|r| owner.is_none_or(|o| r.spec.owner == *o))
            .filter(|r| r.expires_at().is_none_or(|e| e > now))
            .collect();
        jobs.sort_by_key(|r| std::cmp::Reverse(r.id.seq));
        jobs
    }

    /// A job of this owner with exactly this SQL that is still going, or that succeeded no longer
    /// than `within` ago: identical-query reuse.
    pub fn find_identical(&self, owner: &Principal, sql: &str, within: Duration) -> Option<JobId> {
        let since =
            Utc::now() - chrono::Duration::from_std(within).unwrap_or(chrono::Duration::MAX);
        self.list(Some(owner)).into_iter().find_map(|r| {
            let reusable = match r.state {
                JobState::Queued | JobState::Running => true,
                JobState::Succeeded => r.finished.is_some_and(|f| f >= since),
                _ => false,
            };
            (reusable && r.spec.sql == sql).then_some(r.id)
        })
    }

    /// The finished result, batch by batch. A job that has not succeeded answers `NotReady`, or the
    /// error it ended with.
    pub fn read(&self, id: JobId) -> Result<ResultReader, EngineError> {
        let record = self.get(id)?;
        match record.state {
            JobState::Succeeded => self.inner.results.open(id),
            JobState::Queued | JobState::Running => Err(EngineError::new(
                ErrorKind::NotReady,
                "the query has not finished yet",
            )),
            _ => Err(record.end_error()),
        }
    }

    /// The finished result reshaped (select, filter, group, sort, page) by running SQL over it.
    pub async fn reshape(
        &self,
        id: JobId,
        reshape: &Reshape,
    ) -> Result<SendableRecordBatchStream, EngineError> {
        let reader = self.read(id)?;
        if reshape.is_identity() {
            return Ok(reader.into_stream());
        }
        let source = match reader {
            ResultReader::Memory {
                schema, batches, ..
            } => StoredResult::Memory { schema, batches },
            ResultReader::File(file) => StoredResult::ArrowFile {
                schema: file.schema(),
                path: self.inner.results.path(id),
            },
        };
        crate::exec::reshape::run(source, reshape).await
    }

    /// The data directory; a dialect that keeps files of its own (Kylin's result files) puts them under it.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    /// Where a finished job's Arrow IPC result file lives.
    pub fn result_path(&self, id: JobId) -> std::path::PathBuf {
        self.inner.results.path(id)
    }

    /// Bytes of results held in memory now.
    pub fn result_memory_used(&self) -> usize {
        self.inner.results.memory_used()
    }

    /// Jobs counted by (dialect, state), for metrics.
    pub fn counts(&self) -> HashMap<(String, JobState), u64> {
        let mut counts = HashMap::new();
        for cell in read(&self.inner.jobs).values() {
            let r = cell.lock();
            *counts.entry((r.spec.dialect.clone(), r.state)).or_insert(0) += 1;
        }
        counts
    }

    /// Marks every queued or running job as interrupted and stops their queries (graceful shutdown).
    pub fn shutdown(&self) {
        self.inner.stop.cancel();
        let cells: Vec<_> = read(&self.inner.jobs).values().cloned().collect();
        for cell in cells {
            if self
                .inner
                .transition(&cell, JobEvent::Fail, interrupted)
                .is_ok()
            {
                cell.cancel.cancel();
            }
        }
    }
}

fn interrupted(r: &mut JobRecord) {
    r.error = Some(EngineError::new(ErrorKind::Interrupted, INTERRUPTED));
    r.note(format!("Query failed: {INTERRUPTED}"));
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

/// How a running job's work ended.
enum Outcome {
    Done(Result<u64, EngineError>),
    Cancelled,
    TimedOut,
}

impl Inner {
    fn insert(&self, cell: Arc<JobCell>) {
        write(&self.by_seq).insert(cell.id.seq, cell.id.uuid);
        write(&self.jobs).insert(cell.id.uuid, cell);
    }

    /// Removes a job and everything it left on disk.
    fn forget(&self, id: JobId) {
        write(&self.jobs).remove(&id.uuid);
        write(&self.by_seq).remove(&id.seq);
        self.results.remove(id);
        self.index.remove(id);
    }

    fn cell(&self, id: JobId) -> Result<Arc<JobCell>, EngineError> {
        let cell = read(&self.jobs)
            .get(&id.uuid)
            .cloned()
            .ok_or_else(EngineError::not_found)?;
        let expired = cell.lock().expires_at().is_some_and(|e| e <= Utc::now());
        if expired {
            Err(EngineError::not_found())
        } else {
            Ok(cell)
        }
    }

    /// The only way a job's state changes: the state machine decides, the record is stamped,
    /// persisted, and watchers are told.
    fn transition(
        &self,
        cell: &JobCell,
        event: JobEvent,
        update: impl FnOnce(&mut JobRecord),
    ) -> Result<JobState, IllegalTransition> {
        let mut record = cell.lock();
        let next = record.state.apply(event)?;
        record.state = next;
        let now = Utc::now();
        if next == JobState::Running {
            record.started = Some(now);
        } else if next.is_terminal() {
            record.finished = Some(now);
        }
        update(&mut record);
        if let Err(e) = self.index.save(&record) {
            tracing::error!(job = %record.id, error = %e, "could not persist job record");
        }
        drop(record);
        cell.state.send_replace(next);
        Ok(next)
    }

    /// Loads persisted jobs: expired ones are deleted, unfinished ones are failed as interrupted.
    fn restore(&self) -> Result<(), EngineError> {
        let now = Utc::now();
        let mut max_seq = 0;
        for mut record in self.index.load_all()? {
            let id = record.id;
            max_seq = max_seq.max(id.seq);
            if record.expires_at().is_some_and(|e| e <= now) {
                self.results.remove(id);
                self.index.remove(id);
                continue;
            }
            if record.state == JobState::Succeeded {
                match self.results.open(id) {
                    Ok(reader) => record.schema = Some(reader.schema()),
                    Err(e) => {
                        tracing::warn!(job = %id, error = %e, "dropping a job whose result file is gone");
                        self.index.remove(id);
                        continue;
                    }
                }
            }
            let cell = Arc::new(JobCell::new(record));
            let _ = self.transition(&cell, JobEvent::Fail, interrupted);
            self.insert(cell);
        }
        self.next_seq.store(max_seq + 1, Ordering::Relaxed);
        Ok(())
    }

    async fn work(
        inner: std::sync::Weak<Inner>,
        rx: Arc<tokio::sync::Mutex<mpsc::Receiver<Arc<JobCell>>>>,
    ) {
        loop {
            let next = rx.lock().await.recv().await;
            let (Some(cell), Some(inner)) = (next, inner.upgrade()) else {
                return;
            };
            inner.run(cell).await;
        }
    }

    async fn reap(inner: std::sync::Weak<Inner>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Some(inner) = inner.upgrade() else { return };
            let now = Utc::now();
            let expired: Vec<JobId> = read(&inner.jobs)
                .values()
                .filter(|c| c.lock().expires_at().is_some_and(|e| e <= now))
                .map(|c| c.id)
                .collect();
            for id in expired {
                tracing::debug!(job = %id, "expired");
                inner.forget(id);
            }
        }
    }

    async fn run(self: &Arc<Self>, cell: Arc<JobCell>) {
        if self.stop.is_cancelled()
            || self
                .transition(&cell, JobEvent::Start, |r| r.note("Query started"))
                .is_err()
        {
            return; // cancelled while it waited
        }
        let (sql, params, limits) = {
            let r = cell.lock();
            (
                r.spec.runnable_sql().to_string(),
                r.spec.params.clone(),
                r.spec.limits.clone(),
            )
        };
        let started = Instant::now();
        let timeout = async {
            match limits.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let outcome = tokio::select! {
            r = self.execute(&cell, &sql, &params, limits.row_limit) => Outcome::Done(r),
            _ = cell.cancel.cancelled() => Outcome::Cancelled,
            _ = timeout => Outcome::TimedOut,
        };
        // The query's stream is dropped by now: DataFusion stops at its next yield point.
        let elapsed = started.elapsed();
        let ended = match outcome {
            Outcome::Done(Ok(rows)) => self.transition(&cell, JobEvent::Finish, |r| {
                r.rows = rows;
                r.row_count = Some(rows);
                r.note(format!(
                    "Query completed: {rows} rows in {} ms",
                    elapsed.as_millis()
                ));
            }),
            Outcome::Done(Err(e)) => self.transition(&cell, JobEvent::Fail, |r| {
                r.note(format!("Query failed: {}", e.message));
                r.error = Some(e);
            }),
            Outcome::Cancelled => Ok(JobState::Cancelled),
            Outcome::TimedOut => self.transition(&cell, JobEvent::TimeOut, |r| {
                let limit = limits.timeout.unwrap_or_default();
                let message = format!("the query ran past its timeout of {} ms", limit.as_millis());
                r.note(format!("Query timed out: {message}"));
                r.error = Some(EngineError::new(ErrorKind::TimedOut, message));
            }),
        };
        if ended != Ok(JobState::Succeeded) {
            // Cancelled or interrupted while the last batch was stored: keep no orphan result.
            self.results.remove(cell.id);
        }
    }

    /// Runs the query and stores its result, counting rows as they arrive.
    async fn execute(
        &self,
        cell: &JobCell,
        sql: &str,
        params: &Params,
        row_limit: Option<u64>,
    ) -> Result<u64, EngineError> {
        let mut stream = self.executor.execute(sql, params).await?;
        let schema = stream.schema();
        cell.lock().schema = Some(schema.clone());
        let mut writer = self.results.writer(cell.id, schema)?;
        let mut rows = 0u64;
        while let Some(batch) = stream.next().await {
            let mut batch = batch?;
            if let Some(limit) = row_limit {
                let room = limit.saturating_sub(rows);
                if room == 0 {
                    break;
                }
                if (batch.num_rows() as u64) > room {
                    batch = batch.slice(0, room as usize);
                }
            }
            writer.write(&batch)?;
            rows += batch.num_rows() as u64;
            cell.lock().rows = rows;
        }
        writer.finish()?;
        Ok(rows)
    }
}
