//! The result store: every finished result is an Arrow IPC file in the data directory (so it survives a
//! restart), and results are also held in memory while they fit in a configurable budget.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;

use super::id::JobId;
use crate::query::{EngineError, ErrorKind};

/// Stored results, keyed by job.
pub struct ResultStore {
    dir: PathBuf,
    budget: usize,
    used: AtomicUsize,
    /// Bytes the data directory may hold in result files, and how many it holds now.
    disk_budget: u64,
    disk_used: AtomicU64,
    cache: Mutex<HashMap<u128, CachedResult>>,
}

struct CachedResult {
    schema: SchemaRef,
    batches: Arc<Vec<RecordBatch>>,
    bytes: usize,
}

impl ResultStore {
    /// `budget` is how many bytes of results may be held in memory across all jobs, `disk_budget`
    /// how many the result files may take on disk. Leftovers of writes a crash interrupted go,
    /// when `owned` (no other instance writes to `dir`).
    pub fn new(
        dir: PathBuf,
        budget: usize,
        disk_budget: u64,
        owned: bool,
    ) -> Result<Self, EngineError> {
        fs::create_dir_all(&dir)?;
        let mut on_disk = 0u64;
        for entry in fs::read_dir(&dir)?.flatten() {
            let path = entry.path();
            if owned && path.extension().is_some_and(|e| e == "partial") {
                let _ = fs::remove_file(&path);
            } else if let Ok(meta) = entry.metadata() {
                on_disk = on_disk.saturating_add(meta.len());
            }
        }
        Ok(ResultStore {
            dir,
            budget,
            used: AtomicUsize::new(0),
            disk_budget,
            disk_used: AtomicU64::new(on_disk),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Takes `bytes` of the disk budget; false when the data directory would go over it.
    fn reserve_disk(&self, bytes: u64) -> bool {
        self.disk_used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(bytes).filter(|&n| n <= self.disk_budget)
            })
            .is_ok()
    }

    fn release_disk(&self, bytes: u64) {
        let _ = self
            .disk_used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                Some(u.saturating_sub(bytes))
            });
    }

    /// Where a job's result file lives.
    pub fn path(&self, id: JobId) -> PathBuf {
        self.dir.join(format!("{}.arrow", id.to_uuid()))
    }

    /// Bytes of results currently held in memory.
    pub fn memory_used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Starts writing a job's result. Nothing is visible to readers until [`ResultWriter::finish`].
    pub fn writer(&self, id: JobId, schema: SchemaRef) -> Result<ResultWriter<'_>, EngineError> {
        let partial = self.dir.join(format!("{}.arrow.partial", id.to_uuid()));
        let file = Counting {
            inner: BufWriter::new(File::create(&partial)?),
            bytes: 0,
        };
        let ipc = FileWriter::try_new(file, &schema)?;
        Ok(ResultWriter {
            store: self,
            id,
            partial,
            ipc,
            schema,
            cached: Some(Vec::new()),
            cached_bytes: 0,
            disk_bytes: 0,
        })
    }

    /// Opens a finished result for reading, from memory when it is there.
    pub fn open(&self, id: JobId) -> Result<ResultReader, EngineError> {
        if let Some(c) = self.lock_cache().get(&id.uuid) {
            return Ok(ResultReader::Memory {
                schema: c.schema.clone(),
                batches: c.batches.clone(),
                next: 0,
            });
        }
        let file = File::open(self.path(id)).map_err(|e| {
            EngineError::internal(format!("result of job {id} is not readable: {e}"))
        })?;
        Ok(ResultReader::File(FileReader::try_new(
            BufReader::new(file),
            None,
        )?))
    }

    /// Deletes a job's result from memory and disk.
    pub fn remove(&self, id: JobId) {
        if let Some(c) = self.lock_cache().remove(&id.uuid) {
            self.used.fetch_sub(c.bytes, Ordering::Relaxed);
        }
        if let Ok(meta) = fs::metadata(self.path(id))
            && fs::remove_file(self.path(id)).is_ok()
        {
            self.release_disk(meta.len());
        }
        let _ = fs::remove_file(self.dir.join(format!("{}.arrow.partial", id.to_uuid())));
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<u128, CachedResult>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reserves `bytes` of the memory budget; false when it would go over.
    fn reserve(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |u| {
                u.checked_add(bytes).filter(|&n| n <= self.budget)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// Writes one job's result batch by batch: always to its IPC file, and to memory while the budget allows.
pub struct ResultWriter<'a> {
    store: &'a ResultStore,
    id: JobId,
    partial: PathBuf,
    ipc: FileWriter<Counting<BufWriter<File>>>,
    schema: SchemaRef,
    cached: Option<Vec<RecordBatch>>,
    cached_bytes: usize,
    /// Bytes of the disk budget this file has taken so far.
    disk_bytes: u64,
}

/// A writer that counts the bytes that pass through it.
struct Counting<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(data)?;
        self.bytes = self.bytes.saturating_add(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl ResultWriter<'_> {
    /// Bytes written to the result file so far.
    pub fn bytes(&self) -> u64 {
        self.ipc.get_ref().bytes
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        self.ipc.write(batch)?;
        let grown = self.bytes().saturating_sub(self.disk_bytes);
        if !self.store.reserve_disk(grown) {
            return Err(EngineError::new(
                ErrorKind::Limit,
                format!(
                    "the data directory is full: results may take {} MB in all",
                    self.store.disk_budget >> 20
                ),
            ));
        }
        self.disk_bytes += grown;
        if let Some(cached) = &mut self.cached {
            let bytes = batch.get_array_memory_size();
            if self.store.reserve(bytes) {
                self.cached_bytes += bytes;
                cached.push(batch.clone());
            } else {
                // Over budget: this result is served from its file alone.
                self.cached = None;
                self.store.release(std::mem::take(&mut self.cached_bytes));
            }
        }
        Ok(())
    }

    /// Seals the file and publishes the result.
    pub fn finish(mut self) -> Result<(), EngineError> {
        self.ipc.finish()?;
        // The footer's bytes count too; the file keeps its share of the budget from now on.
        let grown = self.bytes().saturating_sub(self.disk_bytes);
        self.store.disk_used.fetch_add(grown, Ordering::Relaxed);
        self.disk_bytes = 0;
        fs::rename(&self.partial, self.store.path(self.id))?;
        if let Some(batches) = self.cached.take() {
            let cached = CachedResult {
                schema: self.schema.clone(),
                batches: Arc::new(batches),
                bytes: self.cached_bytes,
            };
            self.cached_bytes = 0;
            self.store.lock_cache().insert(self.id.uuid, cached);
        }
        Ok(())
    }
}

impl Drop for ResultWriter<'_> {
    fn drop(&mut self) {
        // An unfinished writer (failed or cancelled job) leaves nothing behind.
        self.store.release(self.cached_bytes);
        self.store.release_disk(self.disk_bytes);
        let _ = fs::remove_file(&self.partial);
    }
}

/// A finished result, read batch by batch.
pub enum ResultReader {
    Memory {
        schema: SchemaRef,
        batches: Arc<Vec<RecordBatch>>,
        next: usize,
    },
    File(FileReader<BufReader<File>>),
}

impl std::fmt::Debug for ResultReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResultReader::Memory { batches, next, .. } => write!(
                f,
                "ResultReader::Memory({} batches, at {next})",
                batches.len()
            ),
            ResultReader::File(_) => f.write_str("ResultReader::File"),
        }
    }
}

impl ResultReader {
    pub fn schema(&self) -> SchemaRef {
        match self {
            ResultReader::Memory { schema, .. } => schema.clone(),
            ResultReader::File(r) => r.schema(),
        }
    }

    /// The result as an async batch stream (for reshaping and encoding).
    pub fn into_stream(self) -> SendableRecordBatchStream {
        let schema = self.schema();
        let batches = self.map(|r| r.map_err(Into::into));
        Box::pin(RecordBatchStreamAdapter::new(
            schema,
            futures::stream::iter(batches),
        ))
    }
}

impl Iterator for ResultReader {
    type Item = Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            ResultReader::Memory { batches, next, .. } => {
                let batch = batches.get(*next).cloned();
                *next += 1;
                batch.map(Ok)
            }
            ResultReader::File(r) => r.next(),
        }
    }
}
