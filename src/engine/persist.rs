//! The job index on disk: one small JSON file per job, rewritten atomically on every state change, so
//! that jobs and their results survive a restart.

use std::fs;
use std::path::PathBuf;

use super::id::JobId;
use super::job::JobRecord;
use crate::query::EngineError;

/// The directory of job records.
pub struct JobIndex {
    dir: PathBuf,
}

impl JobIndex {
    pub fn new(dir: PathBuf) -> Result<Self, EngineError> {
        fs::create_dir_all(&dir)?;
        Ok(JobIndex { dir })
    }

    fn path(&self, id: JobId) -> PathBuf {
        self.dir.join(format!("{}.json", id.to_uuid()))
    }

    /// Writes the record to a temporary file and renames it over the old one.
    pub fn save(&self, record: &JobRecord) -> Result<(), EngineError> {
        let path = self.path(record.id);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(record).map_err(EngineError::internal)?;
        fs::write(&tmp, bytes)?;
        fs::rename(&tmp, &path)?;
        Ok(())
    }

    pub fn remove(&self, id: JobId) {
        let _ = fs::remove_file(self.path(id));
    }

    /// Every readable record; unreadable files are reported and skipped, never fatal.
    pub fn load_all(&self) -> Result<Vec<JobRecord>, EngineError> {
        let mut records = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
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
}
