//! Where job records live. The engine keeps every live job in memory (the status poll reads that) and
//! hands each change to the `JobStore` through one writer thread, so no record is ever written on an
//! async thread or under a lock a reader needs, and writes land in the order the changes were made.

use std::fs;
use std::path::PathBuf;
use std::sync::mpsc;

use super::id::JobId;
use super::job::JobRecord;
use crate::query::EngineError;

/// Durable job records and the sequence that numbers jobs. Implementations: the data directory now;
/// a database shared by several instances later (then `save` is a compare-and-set on the state the
/// engine last saw, which a single process need not check: it is the only writer).
pub trait JobStore: Send + Sync + 'static {
    /// Writes a job's record (insert or replace).
    fn save(&self, record: &JobRecord) -> Result<(), EngineError>;

    /// Deletes a job's record; a record that is gone already is fine.
    fn remove(&self, id: JobId) -> Result<(), EngineError>;

    /// Every readable record, for restart.
    fn load_all(&self) -> Result<Vec<JobRecord>, EngineError>;

    /// The highest sequence number ever handed out (0 when none), so numbers never go back even when
    /// the newest job has been removed.
    fn sequence_high_water(&self) -> Result<u64, EngineError>;

    /// Records that sequence numbers up to `seq` have been handed out.
    fn raise_sequence_high_water(&self, seq: u64) -> Result<(), EngineError>;
}

/// The data directory's store: one small JSON file per job, rewritten atomically on every change,
/// and a file holding the sequence's high-water mark.
pub struct FileJobStore {
    dir: PathBuf,
}

impl FileJobStore {
    pub fn new(dir: PathBuf) -> Result<Self, EngineError> {
        fs::create_dir_all(&dir)?;
        Ok(FileJobStore { dir })
    }

    fn path(&self, id: JobId) -> PathBuf {
        self.dir.join(format!("{}.json", id.to_uuid()))
    }

    fn sequence_path(&self) -> PathBuf {
        self.dir.join("sequence")
    }

    /// Writes to a temporary file and renames it over the old one, so a crash leaves old or new.
    fn replace(&self, path: PathBuf, bytes: &[u8]) -> Result<(), EngineError> {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, bytes)?;
        fs::rename(&tmp, &path)?;
        Ok(())
    }
}

impl JobStore for FileJobStore {
    fn save(&self, record: &JobRecord) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec(record).map_err(EngineError::internal)?;
        self.replace(self.path(record.id), &bytes)
    }

    fn remove(&self, id: JobId) -> Result<(), EngineError> {
        match fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Unreadable files are reported and skipped, never fatal; leftovers of interrupted writes go.
    fn load_all(&self) -> Result<Vec<JobRecord>, EngineError> {
        let mut records = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            match path.extension().and_then(|e| e.to_str()) {
                Some("json") => {}
                Some("tmp") => {
                    let _ = fs::remove_file(&path);
                    continue;
                }
                _ => continue,
            }
            match fs::read(&path).map_err(EngineError::from).and_then(|b| {
                serde_json::from_slice::<JobRecord>(&b).map_err(EngineError::internal)
            }) {
                Ok(r) => records.push(r),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable job record")
                }
            }
        }
        Ok(records)
    }

    fn sequence_high_water(&self) -> Result<u64, EngineError> {
        match fs::read_to_string(self.sequence_path()) {
            Ok(text) => text.trim().parse().map_err(|e| {
                EngineError::internal(format!("the sequence file is unreadable: {e}"))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(e.into()),
        }
    }

    fn raise_sequence_high_water(&self, seq: u64) -> Result<(), EngineError> {
        self.replace(self.sequence_path(), seq.to_string().as_bytes())
    }
}

/// One change for the writer thread.
enum Write {
    /// A record to write, and who to tell once it is written.
    Save(Box<JobRecord>, Option<tokio::sync::oneshot::Sender<()>>),
    Remove(JobId),
    /// Answers once every change sent before it is written.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The writer thread in front of a store: changes are queued without waiting (cheap enough to do
/// under a job's lock, which keeps them in the order they were made) and written in that order.
pub struct StoreWriter {
    tx: mpsc::Sender<Write>,
}

impl StoreWriter {
    pub fn start(store: std::sync::Arc<dyn JobStore>) -> Result<StoreWriter, EngineError> {
        let (tx, rx) = mpsc::channel::<Write>();
        std::thread::Builder::new()
            .name("pq-store".into())
            .spawn(move || {
                let mut high_water = store.sequence_high_water().unwrap_or(0);
                for write in rx {
                    let outcome = match write {
                        Write::Save(record, written) => {
                            // The high-water mark goes first: a record never outruns it.
                            let raised = if record.id.seq > high_water {
                                high_water = record.id.seq;
                                store.raise_sequence_high_water(high_water)
                            } else {
                                Ok(())
                            };
                            let saved = raised.and_then(|()| store.save(&record));
                            if let Some(written) = written {
                                let _ = written.send(());
                            }
                            saved
                        }
                        Write::Remove(id) => store.remove(id),
                        Write::Flush(done) => {
                            let _ = done.send(());
                            Ok(())
                        }
                    };
                    if let Err(e) = outcome {
                        tracing::error!(error = %e, "could not persist a job record");
                    }
                }
            })?;
        Ok(StoreWriter { tx })
    }

    pub fn save(&self, record: &JobRecord) {
        let _ = self.tx.send(Write::Save(Box::new(record.clone()), None));
    }

    /// Queues the record and waits until it, and everything queued before it, is written (not
    /// what is queued after it).
    pub async fn save_and_wait(&self, record: &JobRecord) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self
            .tx
            .send(Write::Save(Box::new(record.clone()), Some(done)))
            .is_ok()
        {
            let _ = written.await;
        }
    }

    pub fn remove(&self, id: JobId) {
        let _ = self.tx.send(Write::Remove(id));
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.tx.send(Write::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }
}
