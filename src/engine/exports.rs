//! Exports: files written from a finished job's result in a wire's own format (Kylin's result
//! files), owned by the engine like the result itself. One is written once, under the worker pool,
//! to a temporary name and renamed when complete, so its presence means "ready"; a write that fails
//! leaves its reason beside it. Exports go when their job goes.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::Stream;

use super::id::JobId;
use super::results::ResultReader;
use crate::query::{EngineError, ErrorKind};

/// Writes one export's bytes from a result's batches to its sink, flushing before it returns (runs
/// on a blocking thread).
pub type ExportWriter =
    Arc<dyn Fn(ResultReader, Box<dyn Write + Send>) -> Result<(), EngineError> + Send + Sync>;

/// Where an export stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExportState {
    Ready { size: u64 },
    Writing,
    Failed(String),
}

/// The directory of every job's exports, and the exports being written now.
pub struct Exports {
    root: PathBuf,
    writing: Mutex<HashSet<(u128, String)>>,
}

/// Export names are chosen by fronts, never by clients; still, only relative paths of plain
/// names are allowed (a front may lay its files out as its vendor does: `a/b/file.csv`).
fn checked(name: &str) -> Result<&str, EngineError> {
    let plain = |part: &str| {
        !part.is_empty()
            && !part.starts_with(['.', '_'])
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if name.split('/').all(plain) {
        Ok(name)
    } else {
        Err(EngineError::internal(format!(
            "not an export name: {name:?}"
        )))
    }
}

impl Exports {
    pub fn new(root: PathBuf) -> Result<Exports, EngineError> {
        fs::create_dir_all(&root)?;
        Ok(Exports {
            root,
            writing: Mutex::new(HashSet::new()),
        })
    }

    /// The directory of one job's exports (what Kylin's `result_path` names).
    pub fn dir(&self, id: JobId) -> PathBuf {
        self.root.join(id.to_uuid())
    }

    /// A file beside the export, named after it with a `_` prefix (never taken for an export).
    fn beside(&self, id: JobId, name: &str, suffix: &str) -> PathBuf {
        let path = self.dir(id).join(name);
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().to_string())
            .unwrap_or_default();
        path.with_file_name(format!("_{file}.{suffix}"))
    }

    fn failure_path(&self, id: JobId, name: &str) -> PathBuf {
        self.beside(id, name, "failed")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<(u128, String)>> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the export stands; `None` when it was never started.
    pub fn state(&self, id: JobId, name: &str) -> Result<Option<ExportState>, EngineError> {
        let name = checked(name)?;
        if let Ok(meta) = fs::metadata(self.dir(id).join(name)) {
            return Ok(Some(ExportState::Ready { size: meta.len() }));
        }
        if let Ok(reason) = fs::read_to_string(self.failure_path(id, name)) {
            return Ok(Some(ExportState::Failed(reason)));
        }
        if self.lock().contains(&(id.uuid, name.to_string())) {
            return Ok(Some(ExportState::Writing));
        }
        Ok(None)
    }

    /// Claims the export for writing; false when someone else is writing it.
    pub fn claim(&self, id: JobId, name: &str) -> bool {
        self.lock().insert((id.uuid, name.to_string()))
    }

    pub fn release(&self, id: JobId, name: &str) {
        self.lock().remove(&(id.uuid, name.to_string()));
    }

    /// Writes the export (blocking). A failure is recorded beside it as well as returned.
    pub fn write(
        &self,
        id: JobId,
        name: &str,
        reader: ResultReader,
        writer: &ExportWriter,
    ) -> Result<(), EngineError> {
        let name = checked(name)?;
        let path = self.dir(id).join(name);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let partial = self.beside(id, name, "partial");
        let written = File::create(&partial)
            .map_err(EngineError::from)
            .and_then(|file| writer(reader, Box::new(BufWriter::new(file))))
            .and_then(|()| fs::rename(&partial, &path).map_err(EngineError::from));
        if let Err(e) = &written {
            let _ = fs::remove_file(&partial);
            let _ = fs::write(self.failure_path(id, name), e.to_string());
        }
        written
    }

    /// A ready export's size and bytes, read in chunks.
    pub async fn open(
        &self,
        id: JobId,
        name: &str,
    ) -> Result<(u64, impl Stream<Item = std::io::Result<Bytes>> + use<>), EngineError> {
        let path = self.dir(id).join(checked(name)?);
        let file = tokio::fs::File::open(&path).await.map_err(|_| {
            EngineError::new(ErrorKind::NotReady, "the export has not been written")
        })?;
        let size = file.metadata().await?.len();
        let chunks = futures::stream::unfold(Some(file), |file| async move {
            use tokio::io::AsyncReadExt;
            let mut file = file?;
            let mut buf = vec![0u8; 64 << 10];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok(Bytes::from(buf)), Some(file)))
                }
                Err(e) => Some((Err(e), None)),
            }
        });
        Ok((size, chunks))
    }

    /// Deletes every export of a job.
    pub fn remove(&self, id: JobId) {
        let _ = fs::remove_dir_all(self.dir(id));
    }
}
