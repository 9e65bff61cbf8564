//! Where job records live. The engine keeps every live job in memory (the status poll reads that) and
//! hands each change to the `JobStore` through one writer thread, so no record is ever written on an
//! async thread or under a lock a reader needs, and writes land in the order the changes were made.

use std::fs;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use super::id::{JobId, JobRef};
use super::job::JobRecord;
use super::state::JobState;
use crate::query::{EngineError, Principal};

/// Durable job records and the sequence that numbers jobs. Implementations: the data directory, which
/// one process owns, and PostgreSQL, which several instances share. A shared store's `save` is a
/// compare-and-set: a record that ended is never given another end, and a later attempt's record is
/// never overwritten by an earlier one's (a frozen instance's late writes are refused).
pub trait JobStore: Send + Sync + 'static {
    /// Writes a job's record (insert or replace); answers false when a shared store refused it as
    /// stale (the stored job ended otherwise, or a later attempt owns it).
    fn save(&self, record: &JobRecord) -> Result<bool, EngineError>;

    /// Deletes a job's record; a record that is gone already is fine.
    fn remove(&self, id: JobId) -> Result<(), EngineError>;

    /// Every readable record, for restart.
    fn load_all(&self) -> Result<Vec<JobRecord>, EngineError>;

    /// The highest sequence number ever handed out (0 when none), so numbers never go back even when
    /// the newest job has been removed.
    fn sequence_high_water(&self) -> Result<u64, EngineError>;

    /// Records that sequence numbers up to `seq` have been handed out; a lower `seq` changes nothing.
    fn raise_sequence_high_water(&self, seq: u64) -> Result<(), EngineError>;

    /// Writes a side record (insert or replace): a small record a front keeps beside the jobs (a
    /// Looker stored query, a look), `table` naming its kind and `key` the record.
    fn save_side(
        &self,
        table: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), EngineError>;

    /// Deletes a side record; one that is gone already is fine.
    fn remove_side(&self, table: &str, key: &str) -> Result<(), EngineError>;

    /// Every readable side record of `table`, for restart.
    fn load_side(&self, table: &str) -> Result<Vec<(String, serde_json::Value)>, EngineError>;

    /// One side record of `table`.
    fn load_side_one(
        &self,
        table: &str,
        key: &str,
    ) -> Result<Option<serde_json::Value>, EngineError> {
        Ok(self
            .load_side(table)?
            .into_iter()
            .find_map(|(k, v)| (k == key).then_some(v)))
    }

    /// Lets go of the store (a connection, a lock) at shutdown, so that the next instance may have
    /// it at once; what comes after is refused.
    fn close(&self) {}

    /// Whether the store can be reached now (answered at once, without waiting on it).
    fn reachable(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// True when several instances share the store: a job this instance does not hold may be
    /// another's, and is read from the store. The methods below matter only then.
    fn shared(&self) -> bool {
        false
    }

    /// One job's record, by id or by sequence number.
    fn load(&self, _job: JobRef) -> Result<Option<JobRecord>, EngineError> {
        Ok(None)
    }

    /// The records of one owner's jobs (or everyone's).
    fn load_owned(&self, _owner: Option<&Principal>) -> Result<Vec<JobRecord>, EngineError> {
        Ok(Vec::new())
    }

    /// Hands out the next sequence number, unique across the instances.
    fn next_seq(&self) -> Result<u64, EngineError> {
        Err(EngineError::internal(
            "this job store does not hand out sequence numbers",
        ))
    }

    /// Takes over a job for a new attempt: writes `record` only if the stored job is unfinished and
    /// still at attempt `from` (so that one survivor, not two, re-runs it).
    fn claim(&self, _record: &JobRecord, _from: u32) -> Result<bool, EngineError> {
        Ok(false)
    }

    /// Renews `instance`'s heartbeat, and answers the unfinished jobs of instances that have not
    /// renewed theirs within `lease` (their owner is gone).
    fn heartbeat(&self, _instance: &str, _lease: Duration) -> Result<Vec<JobRecord>, EngineError> {
        Ok(Vec::new())
    }

    /// Deletes the records of jobs that have expired, answering their ids.
    fn take_expired(&self) -> Result<Vec<JobId>, EngineError> {
        Ok(Vec::new())
    }

    /// What other instances do to jobs (end, cancel, remove them), as it happens.
    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        None
    }
}

/// A change to a job in a shared store: the job's uuid, and its new state (`None`: removed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreEvent {
    pub uuid: u128,
    pub state: Option<JobState>,
}

/// A side table's name: plain, so that it is a directory name (or a table name) as it is.
pub(super) fn side_table_name(table: &str) -> Result<&str, EngineError> {
    let plain = !table.is_empty()
        && table.len() <= 64
        && table
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        Ok(table)
    } else {
        Err(EngineError::internal(format!(
            "not a side table name: {table:?}"
        )))
    }
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

    /// A side record's file: its key in hex (keys are a front's ids and slugs, never paths).
    fn side_path(&self, table: &str, key: &str) -> Result<PathBuf, EngineError> {
        let table = side_table_name(table)?;
        if key.is_empty() || key.len() > 100 {
            return Err(EngineError::internal(format!(
                "a side record key must be 1 to 100 bytes: {key:?}"
            )));
        }
        let hex: String = key.bytes().map(|b| format!("{b:02x}")).collect();
        Ok(self
            .dir
            .join("side")
            .join(table)
            .join(format!("{hex}.json")))
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
    fn save(&self, record: &JobRecord) -> Result<bool, EngineError> {
        let bytes = serde_json::to_vec(record).map_err(EngineError::internal)?;
        self.replace(self.path(record.id), &bytes)?;
        Ok(true)
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

    /// Never lowers the mark (several writers may raise it).
    fn raise_sequence_high_water(&self, seq: u64) -> Result<(), EngineError> {
        if seq <= self.sequence_high_water()? {
            return Ok(());
        }
        self.replace(self.sequence_path(), seq.to_string().as_bytes())
    }

    fn save_side(
        &self,
        table: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), EngineError> {
        let path = self.side_path(table, key)?;
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let bytes = serde_json::to_vec(&serde_json::json!({"key": key, "value": value}))
            .map_err(EngineError::internal)?;
        self.replace(path, &bytes)
    }

    fn remove_side(&self, table: &str, key: &str) -> Result<(), EngineError> {
        match fs::remove_file(self.side_path(table, key)?) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Unreadable files are reported and skipped, as job records are.
    fn load_side(&self, table: &str) -> Result<Vec<(String, serde_json::Value)>, EngineError> {
        let dir = self.dir.join("side").join(side_table_name(table)?);
        let entries = match fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut records = Vec::new();
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                let _ = fs::remove_file(&path);
                continue;
            }
            let read = fs::read(&path)
                .map_err(EngineError::from)
                .and_then(|b| serde_json::from_slice(&b).map_err(EngineError::internal));
            match read {
                Ok(serde_json::Value::Object(mut record)) => {
                    match (record.remove("key"), record.remove("value")) {
                        (Some(serde_json::Value::String(key)), Some(value)) => {
                            records.push((key, value))
                        }
                        _ => {
                            tracing::warn!(path = %path.display(), "skipping a malformed side record")
                        }
                    }
                }
                Ok(_) => tracing::warn!(path = %path.display(), "skipping a malformed side record"),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping an unreadable side record")
                }
            }
        }
        Ok(records)
    }
}

/// One change for the writer thread.
enum Write {
    /// A record to write, and who to tell once it is written.
    Save(Box<JobRecord>, Option<tokio::sync::oneshot::Sender<()>>),
    Remove(JobId),
    SaveSide(&'static str, String, serde_json::Value),
    RemoveSide(&'static str, String),
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
                            // A refused write is a frozen owner's: the store's event about
                            // what ended the job tells the engine.
                            if let Ok(false) = saved {
                                tracing::warn!(job = %record.id, "a stale write of a job was refused");
                            }
                            saved.map(|_| ())
                        }
                        Write::Remove(id) => store.remove(id),
                        Write::SaveSide(table, key, value) => store.save_side(table, &key, &value),
                        Write::RemoveSide(table, key) => store.remove_side(table, &key),
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

    pub fn save_side(&self, table: &'static str, key: String, value: serde_json::Value) {
        let _ = self.tx.send(Write::SaveSide(table, key, value));
    }

    pub fn remove_side(&self, table: &'static str, key: String) {
        let _ = self.tx.send(Write::RemoveSide(table, key));
    }

    /// Waits until everything queued so far is written.
    pub async fn flush(&self) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.tx.send(Write::Flush(done)).is_ok() {
            let _ = written.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn side_records_round_trip_per_table_and_bad_names_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileJobStore::new(dir.path().to_path_buf()).unwrap();
        store.save_side("t", "1", &json!({"a": 1})).unwrap();
        store.save_side("t", "../x/é", &json!("odd key")).unwrap();
        store.save_side("t", "1", &json!({"a": 2})).unwrap();
        store.save_side("u", "1", &json!(null)).unwrap();
        store.remove_side("u", "1").unwrap();
        store.remove_side("u", "never").unwrap();
        let reopened = FileJobStore::new(dir.path().to_path_buf()).unwrap();
        let mut t = reopened.load_side("t").unwrap();
        t.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            t,
            vec![
                ("../x/é".to_string(), json!("odd key")),
                ("1".to_string(), json!({"a": 2}))
            ]
        );
        assert!(reopened.load_side("u").unwrap().is_empty());
        assert!(reopened.load_side("none_yet").unwrap().is_empty());
        for bad in ["", "../t", "T", &"x".repeat(65)] {
            assert!(store.save_side(bad, "k", &json!(1)).is_err(), "{bad:?}");
        }
        assert!(store.save_side("t", "", &json!(1)).is_err());
        assert!(store.save_side("t", &"k".repeat(101), &json!(1)).is_err());
    }
}
