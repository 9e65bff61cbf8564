//! The job engine. It knows nothing of any wire: submit a job, watch its state and progress, cancel
//! it, read or reshape its result, and let it expire. Queries run on a runtime of their own, apart
//! from the one serving HTTP, so a busy operator can never stall a status poll.

mod exports;
mod fault;
mod id;
mod job;
mod pg_store;
mod pool;
mod results;
mod saves;
mod state;
mod store;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use chrono::Utc;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use crate::query::{
    EngineError, ErrorKind, JobSpec, Limits, ParamValue, Params, Principal, SaveStep, WireMeta,
};
pub use id::{JobId, JobRef};
pub use job::{JobRecord, LogEntry};
pub use results::ResultReader;
pub use saves::{SaveArea, SaveError};
pub use state::{IllegalTransition, JobEvent, JobState};

pub use exports::{ExportState, ExportWriter};
pub use fault::{FaultSource, JobFault};
pub use pg_store::{PgJobStore, SAVE_JOB};
pub use store::{FileJobStore, JobStore, StoreEvent};

use crate::exec::{Described, Executor, StoredResult};
use crate::sql::reshape::{RESULT_TABLE, Reshape};
use exports::Exports;
use fault::Hold;
use pool::Pool;
use results::ResultStore;
use store::StoreWriter;

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
    /// The most bytes and rows one job's result may have; a job past either fails.
    pub max_result_bytes: u64,
    pub max_result_rows: u64,
    /// The most bytes the result files of all jobs may take on disk; a job that would go past it fails.
    pub disk_budget: u64,
    /// The most live jobs one principal may have; more are refused as `Busy`.
    pub max_jobs_per_principal: usize,
    /// The longest any job is kept after it ends, whatever its wire asked for.
    pub max_keep_for: Duration,
    /// How often expired jobs are swept away.
    pub reaper_interval: Duration,
    /// Threads of the query runtime.
    pub exec_threads: usize,
    /// The name of the query runtime's threads (what `top -H` shows).
    pub thread_name: String,
    /// Where results and exports are written: the data directory, or a directory every instance of
    /// a cluster shares.
    pub results_dir: Option<PathBuf>,
    /// With a shared store: how long an instance's jobs stay its own without a heartbeat.
    pub lease: Duration,
    /// With a shared store: re-run a dead instance's unfinished jobs (once) instead of failing them.
    pub rerun_orphans: bool,
}

impl EngineConfig {
    pub fn new(data_dir: PathBuf) -> Self {
        EngineConfig {
            data_dir,
            workers: 4,
            queue_length: 1000,
            result_memory_budget: 256 << 20,
            max_result_bytes: 2 << 30,
            max_result_rows: 100_000_000,
            disk_budget: 20 << 30,
            max_jobs_per_principal: 10_000,
            max_keep_for: Duration::from_secs(31 * 24 * 3600),
            reaper_interval: Duration::from_secs(1),
            exec_threads: 2,
            thread_name: "pq-query".into(),
            results_dir: None,
            lease: Duration::from_secs(5),
            rerun_orphans: false,
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
    exports: Exports,
    /// The most bytes and rows one job's result may have.
    max_result: (u64, u64),
    max_jobs_per_principal: usize,
    max_keep_for: Duration,
    /// Told of every job that ends (fronts that keep something per job subscribe).
    on_end: RwLock<Vec<EndHook>>,
    /// The control plane's fault rules, asked once per submitted job.
    faults: RwLock<Option<Arc<dyn FaultSource>>>,
    store: StoreWriter,
    /// The store itself, for reading side records (every write goes through `store`).
    records: Arc<dyn JobStore>,
    /// The workers and the queue in front of them, shared by jobs and reshapes.
    pool: Pool,
    runtime: QueryRuntime,
    stop: CancellationToken,
    data_dir: PathBuf,
    /// Where results, exports and saved files go: the data directory, or one a cluster shares.
    shared_dir: PathBuf,
    /// Set when the store is shared with other instances (cluster mode).
    cluster: Option<Cluster>,
}

/// This instance's part in a cluster.
struct Cluster {
    /// This process's id in the store's heartbeats and job records.
    instance: String,
    /// How long the last heartbeat's round trip to the store took, in microseconds.
    heartbeat_micros: AtomicU64,
    lease: Duration,
    /// Whether a dead instance's jobs are re-run (once) rather than failed.
    rerun: bool,
}

/// One job: its record behind a lock, a channel announcing state changes, and its cancel switch.
struct JobCell {
    id: JobId,
    /// A snapshot of another instance's job, read from the shared store: its changes are written
    /// straight to the store, and its query runs elsewhere.
    remote: bool,
    record: Mutex<JobRecord>,
    state: watch::Sender<JobState>,
    cancel: CancellationToken,
    /// The fault injected into it (none for most jobs).
    fault: JobFault,
    hold: Mutex<Hold>,
}

impl JobCell {
    fn new(record: JobRecord) -> Self {
        JobCell::with_fault(record, JobFault::default())
    }

    fn with_fault(record: JobRecord, fault: JobFault) -> Self {
        let (state, _) = watch::channel(record.state);
        let hold = Hold {
            needed: fault.not_ready_polls,
            ..Hold::default()
        };
        JobCell {
            id: record.id,
            remote: false,
            record: Mutex::new(record),
            state,
            cancel: CancellationToken::new(),
            fault,
            hold: Mutex::new(hold),
        }
    }

    fn remote(record: JobRecord) -> Self {
        JobCell {
            remote: true,
            ..JobCell::new(record)
        }
    }

    fn lock(&self) -> MutexGuard<'_, JobRecord> {
        self.record.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn hold(&self) -> MutexGuard<'_, Hold> {
        self.hold.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps a complete result from being announced while polls are still owed; true if parked.
    fn park(&self, rows: u64, note: &str) -> bool {
        let mut hold = self.hold();
        if hold.seen < hold.needed {
            hold.parked = Some((rows, note.to_string()));
            true
        } else {
            false
        }
    }

    /// Owes no more polls; answers the parked finish, if any.
    fn unhold(&self) -> Option<(u64, String)> {
        let mut hold = self.hold();
        hold.needed = 0;
        hold.parked.take()
    }

    /// Counts a status poll; answers the parked finish once the owed polls have been seen.
    fn count_poll(&self) -> Option<(u64, String)> {
        let mut hold = self.hold();
        hold.seen = hold.seen.saturating_add(1);
        if hold.seen > hold.needed {
            hold.parked.take()
        } else {
            None
        }
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

/// How far back identical-query reuse looks.
#[derive(Clone, Copy, Debug)]
pub struct Reuse {
    /// How long ago the earlier job may have succeeded.
    pub within: Duration,
    /// Whether a job still queued or running may be reused (its reader waits for it).
    pub unfinished: bool,
}

/// One table of side records, typed by the front that owns it.
pub struct SideTable<T> {
    engine: Engine,
    table: &'static str,
    of: std::marker::PhantomData<fn() -> T>,
}

impl<T: serde::Serialize + serde::de::DeserializeOwned> SideTable<T> {
    /// Every record as it was last saved; unreadable ones are reported and skipped.
    pub fn load(&self) -> Vec<(String, T)> {
        let records = match self.engine.inner.records.load_side(self.table) {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(table = self.table, error = %e, "could not read side records");
                return Vec::new();
            }
        };
        records
            .into_iter()
            .filter_map(|(key, value)| match serde_json::from_value(value) {
                Ok(record) => Some((key, record)),
                Err(e) => {
                    tracing::warn!(table = self.table, key, error = %e, "skipping an unreadable side record");
                    None
                }
            })
            .collect()
    }

    /// One record, read from the store (in a cluster, another instance may have written it).
    pub fn get(&self, key: &str) -> Option<T> {
        let records = &self.engine.inner.records;
        match crate::sql::guard::blocking(|| records.load_side_one(self.table, key)) {
            Ok(value) => value.and_then(|v| serde_json::from_value(v).ok()),
            Err(e) => {
                tracing::error!(table = self.table, key, error = %e, "could not read a side record");
                None
            }
        }
    }

    /// Whether other instances share these records (then a record missing from a front's memory
    /// may be in the store, and numbers must come from [`SideTable::next_number`]).
    pub fn shared(&self) -> bool {
        self.engine.inner.cluster.is_some()
    }

    /// A number no other instance hands out (the store's sequence).
    pub fn next_number(&self) -> Result<u64, EngineError> {
        let records = &self.engine.inner.records;
        crate::sql::guard::blocking(|| records.next_seq())
    }

    /// Saves (inserts or replaces) a record: in the background, or in a cluster before it returns
    /// (the client's next request may reach another instance).
    pub fn save(&self, key: &str, record: &T) {
        let value = match serde_json::to_value(record) {
            Ok(value) => value,
            Err(e) => {
                tracing::error!(table = self.table, key, error = %e, "could not encode a side record");
                return;
            }
        };
        if self.shared() {
            let records = &self.engine.inner.records;
            if let Err(e) =
                crate::sql::guard::blocking(|| records.save_side(self.table, key, &value))
            {
                tracing::error!(table = self.table, key, error = %e, "could not save a side record");
            }
        } else {
            self.engine
                .inner
                .store
                .save_side(self.table, key.to_string(), value);
        }
    }

    /// Removes a record: in the background, or in a cluster before it returns.
    pub fn remove(&self, key: &str) {
        if self.shared() {
            let records = &self.engine.inner.records;
            if let Err(e) = crate::sql::guard::blocking(|| records.remove_side(self.table, key)) {
                tracing::error!(table = self.table, key, error = %e, "could not remove a side record");
            }
        } else {
            self.engine
                .inner
                .store
                .remove_side(self.table, key.to_string());
        }
    }

    /// Waits until every save and removal made so far is written.
    pub async fn flush(&self) {
        self.engine.inner.store.flush().await;
    }
}

impl Engine {
    /// Opens the data directory (restoring persisted jobs), then starts the workers and the reaper.
    pub fn start(config: EngineConfig, executor: Arc<dyn Executor>) -> Result<Engine, EngineError> {
        let store = Arc::new(FileJobStore::new(config.data_dir.join("jobs"))?);
        Engine::start_with_store(config, executor, store)
    }

    /// Like [`Engine::start`], with the job records kept in `store`.
    pub fn start_with_store(
        config: EngineConfig,
        executor: Arc<dyn Executor>,
        store: Arc<dyn JobStore>,
    ) -> Result<Engine, EngineError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(config.exec_threads.max(1))
            .thread_name(config.thread_name.clone())
            .thread_stack_size(crate::sql::guard::STACK_SIZE)
            .enable_all()
            .build()?;
        let cluster = store.shared().then(|| Cluster {
            instance: uuid::Uuid::new_v4().to_string(),
            heartbeat_micros: AtomicU64::new(0),
            lease: config.lease,
            rerun: config.rerun_orphans,
        });
        // In a cluster the store is the truth: nothing is taken into memory, and no instance's
        // start may touch what another is doing.
        let records = if cluster.is_some() {
            Vec::new()
        } else {
            store.load_all()?
        };
        let high_water = store.sequence_high_water()?;
        let results_dir = config
            .results_dir
            .clone()
            .unwrap_or_else(|| config.data_dir.clone());
        let inner = Arc::new(Inner {
            jobs: RwLock::new(HashMap::new()),
            by_seq: RwLock::new(HashMap::new()),
            next_seq: AtomicU64::new(1),
            executor,
            results: ResultStore::new(
                results_dir.join("results"),
                config.result_memory_budget,
                config.disk_budget,
                cluster.is_none(),
            )?,
            max_result: (config.max_result_bytes, config.max_result_rows),
            max_jobs_per_principal: config.max_jobs_per_principal.max(1),
            max_keep_for: config.max_keep_for,
            exports: Exports::new(results_dir.join("exports"))?,
            on_end: RwLock::new(Vec::new()),
            faults: RwLock::new(None),
            store: StoreWriter::start(store.clone())?,
            records: store,
            pool: Pool::new(config.workers, config.queue_length),
            runtime: QueryRuntime(Some(runtime)),
            stop: CancellationToken::new(),
            data_dir: config.data_dir.clone(),
            shared_dir: results_dir.clone(),
            cluster,
        });
        inner.restore(records, high_water);
        if let Some(cluster) = &inner.cluster {
            // Alive before the first job is taken, so that no survivor takes this one's jobs for
            // orphans.
            inner.records.heartbeat(&cluster.instance, cluster.lease)?;
        }
        if let Some(events) = inner.records.events() {
            inner
                .runtime()?
                .spawn(Inner::follow(Arc::downgrade(&inner), events));
        }
        inner
            .runtime()?
            .spawn(Inner::reap(Arc::downgrade(&inner), config.reaper_interval));
        Ok(Engine { inner })
    }

    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.inner.executor
    }

    /// Accepts a job: checks that its SQL parses (a syntax error is answered at once), queues it, and
    /// returns its id once its record is durable. A full queue answers `Busy`.
    pub async fn submit(&self, mut spec: JobSpec) -> Result<JobId, EngineError> {
        crate::sql::guard::cpu_bound(|| self.inner.executor.check(spec.runnable_sql()))?;
        spec.limits.keep_for = spec.limits.keep_for.min(self.inner.max_keep_for);
        let owned = read(&self.inner.jobs)
            .values()
            .filter(|c| c.lock().spec.owner == spec.owner)
            .count();
        if owned >= self.inner.max_jobs_per_principal {
            return Err(EngineError::new(
                ErrorKind::Busy,
                format!(
                    "{} keeps {owned} jobs, the most one principal may; remove some or let them expire",
                    spec.owner
                ),
            ));
        }
        let ticket = self.inner.pool.admit()?;
        let fault = read(&self.inner.faults)
            .as_ref()
            .and_then(|f| f.job_fault(&spec))
            .unwrap_or_default();
        if let Some(keep) = fault.expire_after {
            spec.limits.keep_for = spec.limits.keep_for.min(keep);
        }
        let seq = match &self.inner.cluster {
            Some(_) => crate::sql::guard::blocking(|| self.inner.records.next_seq())?,
            None => self.inner.next_seq.fetch_add(1, Ordering::Relaxed),
        };
        let id = JobId {
            uuid: uuid::Uuid::new_v4().as_u128(),
            seq,
        };
        let mut record = JobRecord::new(id, spec, Utc::now());
        record.instance = self.inner.cluster.as_ref().map(|c| c.instance.clone());
        if fault != JobFault::default() {
            record.note(fault.describe());
        }
        // Durable before anyone hears of the job (its later changes may queue behind this write).
        self.inner.store.save_and_wait(&record).await;
        self.inner
            .launch(Arc::new(JobCell::with_fault(record, fault)), ticket)?;
        Ok(id)
    }

    /// Finds the job a client's reference names, if it is still known.
    pub fn resolve(&self, job: JobRef) -> Option<JobId> {
        let local = match job {
            JobRef::Uuid(u) => Some(u),
            JobRef::Seq(s) => read(&self.inner.by_seq).get(&s).copied(),
        };
        if let Some(id) = local.and_then(|u| read(&self.inner.jobs).get(&u).map(|c| c.id)) {
            return Some(id);
        }
        self.inner.remote(job).ok().flatten().map(|cell| cell.id)
    }

    /// A snapshot of the job. Expired jobs are gone even before the reaper has swept them.
    pub fn get(&self, id: JobId) -> Result<JobRecord, EngineError> {
        let cell = self.inner.cell(id)?;
        let record = cell.lock().clone();
        Ok(record)
    }

    /// A client polls the job's state (a wire's status route): counted against a fault's
    /// `not_ready_polls`, whose held finish the first poll past them announces. Then its snapshot.
    pub fn poll(&self, id: JobId) -> Result<JobRecord, EngineError> {
        let cell = self.inner.cell(id)?;
        if let Some(parked) = cell.count_poll() {
            self.inner.finish_parked(&cell, parked);
        }
        let record = cell.lock().clone();
        Ok(record)
    }

    /// The job is waited for by the request that started it, which never polls: a fault's
    /// not-ready polls do not hold it back.
    pub fn unhold(&self, id: JobId) {
        if let Ok(cell) = self.inner.cell(id)
            && let Some(parked) = cell.unhold()
        {
            self.inner.finish_parked(&cell, parked);
        }
    }

    /// Like [`Engine::poll`], but someone else's job is as unknown as one that never existed (and
    /// its poll is not counted).
    pub fn poll_for(&self, id: JobId, owner: &Principal) -> Result<JobRecord, EngineError> {
        self.get_for(id, owner)?;
        self.poll(id)
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
        if cell.remote {
            return self.wait_remote(id, max).await;
        }
        let mut rx = cell.state.subscribe();
        let _ = tokio::time::timeout(max, rx.wait_for(|s| s.is_terminal())).await;
        self.get(id)
    }

    /// [`Engine::wait`] for another instance's job: its record is read again whenever the store
    /// announces a change to it (and now and then, should an announcement be missed).
    async fn wait_remote(&self, id: JobId, max: Duration) -> Result<JobRecord, EngineError> {
        const RECHECK: Duration = Duration::from_millis(250);
        let deadline = tokio::time::Instant::now() + max;
        let mut events = self.inner.records.events();
        loop {
            let record = self.get(id)?;
            let now = tokio::time::Instant::now();
            if record.state.is_terminal() || now >= deadline {
                return Ok(record);
            }
            let heard = async {
                match events.as_mut() {
                    Some(rx) => loop {
                        match rx.recv().await {
                            Ok(event) if event.uuid == id.uuid => return,
                            Err(tokio::sync::broadcast::error::RecvError::Closed) => {
                                std::future::pending::<()>().await
                            }
                            _ => {}
                        }
                    },
                    None => std::future::pending().await,
                }
            };
            let _ = tokio::time::timeout((deadline - now).min(RECHECK), heard).await;
        }
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
            self.inner.release(id);
            if cell.hold().parked.take().is_some() {
                self.inner.results.remove(id);
            }
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
        // In a cluster, the reader's earlier polls may have reached other instances: their
        // cursors are in the store.
        let stored_seen = match &self.inner.cluster {
            Some(_) if !cell.remote => {
                crate::sql::guard::blocking(|| self.inner.records.load(JobRef::Uuid(id.uuid)))
                    .ok()
                    .flatten()
                    .and_then(|r| r.feedback_seen.get(&reader).copied())
            }
            _ => None,
        };
        let mut record = cell.lock();
        if let Some(stored) = stored_seen {
            let seen = record.feedback_seen.entry(reader.clone()).or_insert(0);
            *seen = (*seen).max(stored);
        }
        let seen = if all {
            0
        } else {
            record.feedback_seen.get(&reader).copied().unwrap_or(0)
        };
        let fresh = record.log.get(seen..).unwrap_or_default().to_vec();
        let total = record.log.len();
        record.feedback_seen.insert(reader, total);
        // In a cluster the reader's next poll may reach another instance, which reads the cursor
        // from the store.
        if self.inner.cluster.is_some() {
            self.inner.save_now(&record);
        }
        Ok(fresh)
    }

    /// Removes every job (or only one owner's, or one wire's), cancelling those still going; answers
    /// how many went. The control plane's reset between tests.
    pub fn reset(&self, owner: Option<&Principal>, dialect: Option<&str>) -> usize {
        let doomed: Vec<JobId> = self
            .list(owner)
            .into_iter()
            .filter(|r| dialect.is_none_or(|d| r.spec.dialect == d))
            .map(|r| r.id)
            .collect();
        for id in &doomed {
            let _ = self.remove(*id);
        }
        doomed.len()
    }

    /// Installs the source of job faults (the control plane's rules), replacing any before.
    pub fn set_faults(&self, source: Arc<dyn FaultSource>) {
        *write(&self.inner.faults) = Some(source);
    }

    /// Every live job, most recent first, optionally only one owner's.
    pub fn list(&self, owner: Option<&Principal>) -> Vec<JobRecord> {
        let now = Utc::now();
        let local: Vec<JobRecord> = read(&self.inner.jobs)
            .values()
            .map(|c| c.lock().clone())
            .filter(|r| owner.is_none_or(|o| r.spec.owner == *o))
            .collect();
        let mut jobs = match &self.inner.cluster {
            None => local,
            // The store has every instance's jobs; this instance's own are fresher in memory.
            Some(_) => {
                let mut stored =
                    crate::sql::guard::blocking(|| self.inner.records.load_owned(owner))
                        .unwrap_or_else(|e| {
                            tracing::warn!(error = %e, "could not list the shared store's jobs");
                            Vec::new()
                        });
                stored.retain(|r| !local.iter().any(|l| l.id == r.id));
                stored.extend(local);
                stored
            }
        };
        jobs.retain(|r| r.expires_at().is_none_or(|e| e > now));
        jobs.sort_by_key(|r| std::cmp::Reverse(r.id.seq));
        jobs
    }

    /// Identical-query reuse, the one policy every wire applies: the newest job of `spec`'s owner
    /// with exactly its SQL and parameters that succeeded no longer than `reuse.within` ago (or, with
    /// `reuse.unfinished`, is still going), and that the wire takes for the same (`same` compares
    /// the wire's own metadata: a Looker task's format, a Luminesce lineage request).
    pub fn find_reusable(
        &self,
        spec: &JobSpec,
        reuse: Reuse,
        same: impl Fn(&JobSpec) -> bool,
    ) -> Option<JobId> {
        let since =
            Utc::now() - chrono::Duration::from_std(reuse.within).unwrap_or(chrono::Duration::MAX);
        self.list(Some(&spec.owner)).into_iter().find_map(|r| {
            let in_time = match r.state {
                JobState::Queued | JobState::Running => reuse.unfinished,
                JobState::Succeeded => r.finished.is_some_and(|f| f >= since),
                _ => false,
            };
            let identical = r.spec.sql == spec.sql && r.spec.params == spec.params;
            (in_time && identical && same(&r.spec)).then_some(r.id)
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

    /// The finished result reshaped (select, filter, group, sort, page) by a query over it, run by the
    /// executor under the same workers and queue as jobs. It stops when `within` has passed (the
    /// stream then ends with a `TimedOut` error) and as soon as the returned stream is dropped (the
    /// client went away).
    pub async fn reshape(
        &self,
        id: JobId,
        reshape: &Reshape,
        within: Duration,
    ) -> Result<SendableRecordBatchStream, EngineError> {
        let reader = self.read(id)?;
        if reshape.is_identity() {
            return Ok(reader.into_stream());
        }
        let deadline = tokio::time::Instant::now() + within;
        let sql = reshape.to_sql(&reader.schema())?;
        let source = match reader {
            ResultReader::Memory {
                schema, batches, ..
            } => StoredResult::Memory { schema, batches },
            ResultReader::File(file) => StoredResult::ArrowFile {
                schema: file.schema(),
                path: self.inner.results.path(id),
            },
        };
        let ticket = self.inner.pool.admit()?;
        let inner = self.inner.clone();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (tx, rx) = tokio::sync::mpsc::channel(2);
        let timed_out = move || {
            EngineError::new(
                ErrorKind::TimedOut,
                format!(
                    "reshaping the result took longer than {} ms",
                    within.as_millis()
                ),
            )
        };
        let task = self.inner.runtime()?.spawn(async move {
            let started = async {
                let permit = inner.pool.acquire(ticket).await.ok_or_else(|| {
                    EngineError::new(ErrorKind::Interrupted, "the engine is stopping")
                })?;
                let stream = inner
                    .executor
                    .execute_over(&sql, RESULT_TABLE, source)
                    .await?;
                Ok::<_, EngineError>((permit, stream))
            };
            // The permit is held for as long as the query runs.
            let (_permit, mut stream) = match tokio::time::timeout_at(deadline, started).await {
                Ok(Ok(started)) => started,
                Ok(Err(e)) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
                Err(_) => {
                    let _ = ready_tx.send(Err(timed_out()));
                    return;
                }
            };
            if ready_tx.send(Ok(stream.schema())).is_err() {
                return;
            }
            loop {
                let next = tokio::select! {
                    next = stream.next() => next,
                    _ = tokio::time::sleep_until(deadline) => Some(Err(DataFusionError::External(Box::new(timed_out())))),
                    _ = tx.closed() => return,
                };
                let Some(next) = next else { return };
                let failed = next.is_err();
                if tx.send(next).await.is_err() || failed {
                    return;
                }
            }
        });
        let abort = AbortOnDrop(task);
        let schema = match ready_rx.await {
            Ok(ready) => ready?,
            Err(_) => return Err(EngineError::internal("the reshape stopped before it began")),
        };
        let batches = futures::stream::unfold((rx, abort), |(mut rx, abort)| async move {
            rx.recv().await.map(|batch| (batch, (rx, abort)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    /// The data directory; a dialect that keeps files of its own (Kylin's result files) puts them under it.
    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.data_dir
    }

    /// A front's side records of `table` (its stored queries, looks…), kept in the job store beside
    /// the jobs so that they outlive a restart. Writes go through the store's writer thread.
    pub fn side_table<T: serde::Serialize + serde::de::DeserializeOwned>(
        &self,
        table: &'static str,
    ) -> SideTable<T> {
        SideTable {
            engine: self.clone(),
            table,
            of: std::marker::PhantomData,
        }
    }

    /// What `sql` is once planned (the tables it really reads, its result's columns), planned on
    /// the query runtime (planning the longest texts takes a while), never run.
    pub async fn describe(&self, sql: &str, params: &Params) -> Result<Described, EngineError> {
        let executor = self.inner.executor.clone();
        let (sql, params) = (sql.to_string(), params.clone());
        self.inner
            .runtime()?
            .spawn(async move { executor.describe(&sql, &params).await })
            .await
            .map_err(EngineError::internal)?
    }

    /// Where files every instance must see go (Luminesce's Drive): the data directory, or the
    /// directory a cluster shares (`results.url`).
    pub fn shared_dir(&self) -> &std::path::Path {
        &self.inner.shared_dir
    }

    /// The area of saved files at `root` (Luminesce's Drive), cleaned of interrupted saves (unless
    /// other instances of a cluster write to it too).
    pub fn save_area(&self, root: std::path::PathBuf) -> SaveArea {
        match self.inner.cluster {
            Some(_) => SaveArea::at(root),
            None => SaveArea::open(root),
        }
    }

    /// Where a finished job's Arrow IPC result file lives.
    pub fn result_path(&self, id: JobId) -> std::path::PathBuf {
        self.inner.results.path(id)
    }

    /// Subscribes to the end of every job (succeeded, failed, cancelled or timed out). The hook runs
    /// on the query runtime and must not block.
    pub fn on_end(&self, hook: impl Fn(&Engine, &JobRecord) + Send + Sync + 'static) {
        write(&self.inner.on_end).push(Arc::new(hook));
    }

    /// Where export `name` of a succeeded job stands, starting to write it (in the background,
    /// under the worker pool) when it was never started. A job that has not succeeded answers its
    /// state's error, as [`Engine::read`] does.
    pub fn export(
        &self,
        id: JobId,
        name: &str,
        writer: ExportWriter,
    ) -> Result<ExportState, EngineError> {
        self.read(id)?;
        if let Some(state) = self.inner.exports.state(id, name)? {
            return Ok(state);
        }
        let Ok(ticket) = self.inner.pool.admit() else {
            // The queue is full: nothing is started, and the next look tries again.
            return Ok(ExportState::Writing);
        };
        if !self.inner.exports.claim(id, name) {
            return Ok(ExportState::Writing);
        }
        let inner = self.inner.clone();
        let name = name.to_string();
        self.inner.runtime()?.spawn(async move {
            if let Some(_permit) = inner.pool.acquire(ticket).await {
                let job = inner.clone();
                let export = name.clone();
                let written = tokio::task::spawn_blocking(move || {
                    let reader = job.results.open(id)?;
                    job.exports.write(id, &export, reader, &writer)
                })
                .await;
                if let Ok(Err(e)) | Err(e) = written.map_err(EngineError::internal) {
                    tracing::warn!(job = %id, export = %name, error = %e, "an export failed");
                }
            }
            inner.exports.release(id, &name);
        });
        Ok(ExportState::Writing)
    }

    /// A ready export's size and its bytes, streamed.
    pub async fn open_export(
        &self,
        id: JobId,
        name: &str,
    ) -> Result<
        (
            u64,
            impl futures::Stream<Item = std::io::Result<bytes::Bytes>> + use<>,
        ),
        EngineError,
    > {
        self.inner.cell(id)?;
        self.inner.exports.open(id, name).await
    }

    /// The directory a job's exports are written to (Kylin's `result_path`).
    pub fn export_location(&self, id: JobId) -> std::path::PathBuf {
        self.inner.exports.dir(id)
    }

    /// Whether this instance can serve: its job store is reachable (`/readyz`).
    pub fn ready(&self) -> Result<(), EngineError> {
        self.inner.records.reachable()
    }

    /// In a cluster: this instance's id, how many jobs it runs under its lease, and how long its
    /// last heartbeat to the store took (for the metrics).
    pub fn cluster_status(&self) -> Option<(String, usize, Duration)> {
        let cluster = self.inner.cluster.as_ref()?;
        let leases = read(&self.inner.jobs)
            .values()
            .filter(|c| !c.lock().state.is_terminal())
            .count();
        let heartbeat = Duration::from_micros(cluster.heartbeat_micros.load(Ordering::Relaxed));
        Some((cluster.instance.clone(), leases, heartbeat))
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

    /// Marks every queued or running job as interrupted, stops their queries, and waits until every
    /// record is written (graceful shutdown).
    pub async fn shutdown(&self) {
        self.inner.stop.cancel();
        self.inner.pool.close();
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
        self.inner.store.flush().await;
        self.inner.records.close();
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

/// A subscriber to the end of jobs.
type EndHook = Arc<dyn Fn(&Engine, &JobRecord) + Send + Sync>;

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
        self.drop_files(id);
        if self.cluster.is_some() {
            // Gone for every instance before the caller answers.
            if let Err(e) = crate::sql::guard::blocking(|| self.records.remove(id)) {
                tracing::error!(job = %id, error = %e, "could not remove a job record");
            }
        } else {
            self.store.remove(id);
        }
    }

    /// In a cluster, a job that ended leaves this instance's memory: the store has it, and reads
    /// of it go there (so that its removal or expiry anywhere is seen here at once).
    fn release(&self, id: JobId) {
        if self.cluster.is_some() {
            write(&self.jobs).remove(&id.uuid);
            write(&self.by_seq).remove(&id.seq);
        }
    }

    /// Removes a job from memory, with its result and exports.
    fn drop_files(&self, id: JobId) {
        write(&self.jobs).remove(&id.uuid);
        write(&self.by_seq).remove(&id.seq);
        self.results.remove(id);
        self.exports.remove(id);
    }

    /// Follows what other instances do to this instance's jobs: a job they ended (cancelled, or
    /// failed because this instance was taken for dead) stops here too, taking the store's record;
    /// a job they removed is forgotten.
    async fn follow(
        inner: std::sync::Weak<Inner>,
        mut events: tokio::sync::broadcast::Receiver<StoreEvent>,
    ) {
        loop {
            let event = match events.recv().await {
                Ok(event) => event,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(missed, "missed announcements of job changes");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let Some(inner) = inner.upgrade() else { return };
            let Some(cell) = read(&inner.jobs).get(&event.uuid).cloned() else {
                continue;
            };
            match event.state {
                None => inner.drop_files(cell.id),
                Some(state) if state.is_terminal() && !cell.lock().state.is_terminal() => {
                    inner.adopt_stored_end(&cell);
                }
                Some(_) => {}
            }
        }
    }

    fn cell(&self, id: JobId) -> Result<Arc<JobCell>, EngineError> {
        let local = read(&self.jobs).get(&id.uuid).cloned();
        let cell = match local {
            // In a cluster, a running job may have been ended through another instance a moment
            // ago (the announcement may not be in yet): the store has the last word.
            Some(cell) if self.cluster.is_some() && !cell.lock().state.is_terminal() => {
                if !self.adopt_stored_end(&cell) {
                    return Err(EngineError::not_found());
                }
                cell
            }
            Some(cell) => cell,
            None => self
                .remote(JobRef::Uuid(id.uuid))?
                .ok_or_else(EngineError::not_found)?,
        };
        let expired = cell.lock().expires_at().is_some_and(|e| e <= Utc::now());
        if expired {
            Err(EngineError::not_found())
        } else {
            Ok(cell)
        }
    }

    /// Another instance's job, read from the shared store (never one outside a cluster).
    fn remote(&self, job: JobRef) -> Result<Option<Arc<JobCell>>, EngineError> {
        if self.cluster.is_none() {
            return Ok(None);
        }
        let Some(mut record) = crate::sql::guard::blocking(|| self.records.load(job))? else {
            return Ok(None);
        };
        // The schema is not in the record: the result file has it.
        if record.state == JobState::Succeeded {
            record.schema = self.results.open(record.id).ok().map(|r| r.schema());
        }
        Ok(Some(Arc::new(JobCell::remote(record))))
    }

    /// Hands a changed record to the store: this instance's jobs through the writer thread (in
    /// order, without waiting), another instance's straight to the shared store, so that the
    /// change is there when the call returns.
    fn persist(&self, cell: &JobCell, record: &JobRecord) {
        // In a cluster the client's next request may reach another instance: every change is in
        // the store before it is announced.
        if cell.remote || self.cluster.is_some() {
            self.save_now(record);
        } else {
            self.store.save(record);
        }
    }

    /// Writes a record straight to the store, before the caller answers.
    fn save_now(&self, record: &JobRecord) {
        match crate::sql::guard::blocking(|| self.records.save(record)) {
            Ok(true) => {}
            Ok(false) => {
                tracing::debug!(job = %record.id, "the job changed meanwhile; the store kept its change")
            }
            Err(e) => {
                tracing::error!(job = %record.id, error = %e, "could not persist a job record")
            }
        }
    }

    /// A job this instance runs that another instance ended (cancelled it, or failed it taking
    /// this instance for dead) stops here too, taking the store's record.
    /// Answers false when the job was removed meanwhile (it is then stopped and forgotten here).
    fn adopt_stored_end(&self, cell: &JobCell) -> bool {
        let stored = crate::sql::guard::blocking(|| self.records.load(JobRef::Uuid(cell.id.uuid)));
        match stored {
            Ok(Some(stored)) if stored.state.is_terminal() => {
                tracing::info!(job = %cell.id, state = stored.state.as_str(), "the job was ended by another instance");
                let state = stored.state;
                *cell.lock() = stored;
                cell.state.send_replace(state);
                cell.cancel.cancel();
                true
            }
            Ok(None) => {
                cell.cancel.cancel();
                self.drop_files(cell.id);
                false
            }
            // Re-run elsewhere while this instance was taken for dead: its run here stops, and
            // the job is read from the store from now on.
            Ok(Some(stored)) if stored.attempt > cell.lock().attempt => {
                cell.cancel.cancel();
                self.release(cell.id);
                true
            }
            _ => true,
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
        let next = self.change(cell, event, update)?;
        cell.state.send_replace(next);
        Ok(next)
    }

    /// A transition whose watchers are told only once the record is durable: a client that saw a
    /// job end finds it ended after a crash too.
    async fn transition_durably(
        &self,
        cell: &JobCell,
        event: JobEvent,
        update: impl FnOnce(&mut JobRecord),
    ) -> Result<JobState, IllegalTransition> {
        let next = self.change(cell, event, update)?;
        self.store.flush().await;
        cell.state.send_replace(next);
        Ok(next)
    }

    fn change(
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
        // Under the lock, so that writes land in order.
        self.persist(cell, &record);
        Ok(next)
    }

    fn runtime(&self) -> Result<&tokio::runtime::Handle, EngineError> {
        self.runtime
            .0
            .as_ref()
            .map(|rt| rt.handle())
            .ok_or_else(|| EngineError::internal("the query runtime is gone"))
    }

    /// Takes persisted jobs back: expired ones are deleted, unfinished ones are failed as
    /// interrupted. Sequence numbers continue past every number ever handed out.
    fn restore(&self, records: Vec<JobRecord>, high_water: u64) {
        let now = Utc::now();
        let mut max_seq = high_water;
        for mut record in records {
            let id = record.id;
            max_seq = max_seq.max(id.seq);
            if record.expires_at().is_some_and(|e| e <= now) {
                self.results.remove(id);
                self.store.remove(id);
                continue;
            }
            if record.state == JobState::Succeeded {
                match self.results.open(id) {
                    Ok(reader) => record.schema = Some(reader.schema()),
                    Err(e) => {
                        tracing::warn!(job = %id, error = %e, "dropping a job whose result file is gone");
                        self.store.remove(id);
                        continue;
                    }
                }
            }
            let cell = Arc::new(JobCell::new(record));
            let _ = self.transition(&cell, JobEvent::Fail, interrupted);
            self.insert(cell);
        }
        self.next_seq.store(max_seq + 1, Ordering::Relaxed);
    }

    async fn reap(inner: std::sync::Weak<Inner>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let Some(inner) = inner.upgrade() else { return };
            // After shutdown the store is closed: nothing more to sweep or renew.
            if inner.stop.is_cancelled() {
                return;
            }
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
            if let Some(cluster) = &inner.cluster {
                inner.keep_cluster(cluster);
            }
        }
    }

    /// A cluster's housekeeping, done by every instance: renew this one's heartbeat, fail the jobs
    /// of instances that stopped renewing theirs (the store's compare-and-set lets one survivor
    /// win), and sweep jobs that expired wherever they ran.
    /// Takes a job this instance holds into memory and queues it for a worker.
    fn launch(
        self: &Arc<Self>,
        cell: Arc<JobCell>,
        ticket: pool::Ticket,
    ) -> Result<(), EngineError> {
        self.insert(cell.clone());
        let inner = self.clone();
        self.runtime()?.spawn(async move {
            // A job cancelled while it waits gives its place in the queue back at once.
            let permit = tokio::select! {
                permit = inner.pool.acquire(ticket) => permit,
                _ = cell.cancel.cancelled() => return,
            };
            if let Some(_permit) = permit {
                // A panic inside the query fails this job alone; the worker's permit is released
                // as the task unwinds, so the pool never shrinks.
                let ran = std::panic::AssertUnwindSafe(inner.run(cell.clone()))
                    .catch_unwind()
                    .await;
                if let Err(panic) = ran {
                    let what = crate::query::panic_text(panic.as_ref()).to_string();
                    inner.panicked(&cell, what).await;
                }
            }
        });
        Ok(())
    }

    /// Re-runs, here, a job whose instance is gone: once, and only a job that writes nothing but
    /// its result (no Drive saves). Answers false when it is not re-run (then it fails): it was
    /// re-run before, it writes files, there is no room in the queue, or another survivor took it
    /// first (the store's claim is a compare-and-set on the attempt).
    fn rerun(self: &Arc<Self>, cluster: &Cluster, record: &JobRecord) -> bool {
        if record.attempt > 0 || !record.spec.saves.is_empty() {
            return false;
        }
        let Ok(ticket) = self.pool.admit() else {
            return false;
        };
        let mut claimed = JobRecord::new(record.id, record.spec.clone(), record.created);
        claimed.log = record.log.clone();
        claimed.note("Query re-run: the instance running it is gone");
        claimed.attempt = record.attempt + 1;
        claimed.instance = Some(cluster.instance.clone());
        match crate::sql::guard::blocking(|| self.records.claim(&claimed, record.attempt)) {
            Ok(true) => {
                tracing::info!(job = %record.id, "re-running the job of an instance that is gone");
                self.launch(Arc::new(JobCell::new(claimed)), ticket).is_ok()
            }
            // Another survivor has it: nothing to do here.
            Ok(false) => true,
            Err(e) => {
                tracing::error!(job = %record.id, error = %e, "could not claim a job to re-run it");
                false
            }
        }
    }

    fn keep_cluster(self: &Arc<Self>, cluster: &Cluster) {
        let started = Instant::now();
        let orphans = crate::sql::guard::blocking(|| {
            self.records.heartbeat(&cluster.instance, cluster.lease)
        });
        cluster.heartbeat_micros.store(
            u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        match orphans {
            Ok(orphans) => {
                for record in orphans {
                    tracing::warn!(job = %record.id, instance = ?record.instance, "the instance running the job is gone");
                    if cluster.rerun && self.rerun(cluster, &record) {
                        continue;
                    }
                    let cell = JobCell::remote(record);
                    let _ = self.transition(&cell, JobEvent::Fail, interrupted);
                }
            }
            Err(e) => tracing::error!(error = %e, "could not renew this instance's heartbeat"),
        }
        match crate::sql::guard::blocking(|| self.records.take_expired()) {
            Ok(expired) => {
                for id in expired {
                    self.drop_files(id);
                }
            }
            Err(e) => tracing::error!(error = %e, "could not sweep expired jobs"),
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
        let (sql, params, limits, saves, wait) = {
            let r = cell.lock();
            (
                r.spec.runnable_sql().to_string(),
                r.spec.params.clone(),
                r.spec.limits.clone(),
                r.spec.saves.clone(),
                r.spec.wait,
            )
        };
        let started = Instant::now();
        let timeout = async {
            match limits.timeout {
                Some(t) => tokio::time::sleep(t).await,
                None => std::future::pending().await,
            }
        };
        let work = async {
            if let Some(latency) = cell.fault.latency {
                tokio::time::sleep(latency).await;
            }
            if let Some(wait) = wait {
                tokio::time::sleep(wait).await;
            }
            match &cell.fault.fail {
                Some(e) => Err(e.clone()),
                None => {
                    let params = self.save_all(&cell, &saves, params).await?;
                    self.execute(&cell, &sql, &params, limits.row_limit).await
                }
            }
        };
        let outcome = tokio::select! {
            r = work => Outcome::Done(r),
            _ = cell.cancel.cancelled() => Outcome::Cancelled,
            _ = timeout => Outcome::TimedOut,
        };
        // The query's stream is dropped by now: DataFusion stops at its next yield point.
        let elapsed = started.elapsed();
        let ended = match outcome {
            Outcome::Done(Ok(rows)) => {
                let note = format!("Query completed: {rows} rows in {} ms", elapsed.as_millis());
                if cell.park(rows, &note) {
                    return; // a fault holds it back: the last poll it owes finishes it
                }
                self.transition_durably(&cell, JobEvent::Finish, |r| {
                    r.rows = rows;
                    r.row_count = Some(rows);
                    r.note(note);
                })
                .await
            }
            Outcome::Done(Err(e)) => {
                self.transition_durably(&cell, JobEvent::Fail, |r| {
                    r.note(format!("Query failed: {}", e.message));
                    r.error = Some(e);
                })
                .await
            }
            Outcome::Cancelled => Ok(JobState::Cancelled),
            Outcome::TimedOut => {
                self.transition_durably(&cell, JobEvent::TimeOut, |r| {
                    let limit = limits.timeout.unwrap_or_default();
                    let message =
                        format!("the query ran past its timeout of {} ms", limit.as_millis());
                    r.note(format!("Query timed out: {message}"));
                    r.error = Some(EngineError::new(ErrorKind::TimedOut, message));
                })
                .await
            }
        };
        self.ended(&cell, ended);
        self.release(cell.id);
    }

    /// Announces the finish a fault's not-ready polls held back.
    fn finish_parked(self: &Arc<Self>, cell: &JobCell, (rows, note): (u64, String)) {
        let ended = self.transition(cell, JobEvent::Finish, |r| {
            r.rows = rows;
            r.row_count = Some(rows);
            r.note(note);
        });
        self.ended(cell, ended);
    }

    /// After a job's last transition: no orphan result, and the end-of-job hooks told.
    fn ended(self: &Arc<Self>, cell: &JobCell, ended: Result<JobState, IllegalTransition>) {
        if ended != Ok(JobState::Succeeded) {
            // Cancelled or interrupted while the last batch was stored: keep no orphan result.
            self.results.remove(cell.id);
        }
        let hooks: Vec<EndHook> = read(&self.on_end).clone();
        if !hooks.is_empty() {
            let engine = Engine {
                inner: self.clone(),
            };
            let record = cell.lock().clone();
            for hook in hooks {
                hook(&engine, &record);
            }
        }
    }

    /// A job whose query panicked fails with an internal error (and keeps no partial result).
    async fn panicked(&self, cell: &JobCell, what: String) {
        tracing::error!(job = %cell.id, panic = %what, "a query panicked");
        let _ = self
            .transition_durably(cell, JobEvent::Fail, |r| {
                let message = format!("the query failed inside polyquery: {what}");
                r.note(format!("Query failed: {message}"));
                r.error = Some(EngineError::new(ErrorKind::Internal, message));
            })
            .await;
        self.results.remove(cell.id);
        self.release(cell.id);
    }

    /// Writes the job's files, in order, before its own query runs; each tells that query how
    /// many rows it wrote through its named parameter.
    async fn save_all(
        &self,
        cell: &JobCell,
        saves: &[SaveStep],
        mut params: Params,
    ) -> Result<Params, EngineError> {
        for step in saves {
            let saved =
                saves::run_step(self.executor.as_ref(), step, &params, self.max_result).await?;
            let path = step.path.display();
            cell.lock().note(if saved.written {
                format!("Saved {} rows to {path}", saved.rows)
            } else {
                format!("Wrote no file {path}: the query has no rows")
            });
            params
                .named
                .insert(step.rows_param.clone(), ParamValue::from(saved.rows));
        }
        Ok(params)
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
            let (max_bytes, max_rows) = self.max_result;
            if writer.bytes() > max_bytes || rows > max_rows {
                // The writer is dropped on the way out, and its partial file with it.
                return Err(EngineError::new(
                    ErrorKind::Limit,
                    format!(
                        "the result is larger than a job may keep ({} MB, {max_rows} rows)",
                        max_bytes >> 20
                    ),
                ));
            }
        }
        writer.finish()?;
        Ok(rows)
    }
}

/// Aborts a task when dropped: a reshape's query stops when its reader goes away.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
