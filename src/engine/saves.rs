//! Saved files: results a client asked to keep at a path of its choosing (Luminesce's Drive),
//! under a directory the engine owns. A save goes to a temporary file of its own (so that saves to
//! one path never share one) and moves into place in one step: the last save to finish wins, whole.
//! Temporaries a crash left behind are removed when the area is opened.

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::record_batch::RecordBatch;
use bytes::Bytes;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::encode::{EncodeOptions, Encoder, Format};
use crate::exec::Executor;
use crate::query::{EngineError, ErrorKind, Params, SaveStep};

/// What a temporary file's name ends with until it is moved into place.
const PARTIAL: &str = ".partial";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a save failed.
#[derive(Debug)]
pub enum SaveError {
    /// The file exists and the save may not replace it.
    Exists,
    Failed(String),
}

/// A directory of saved files.
pub struct SaveArea {
    root: PathBuf,
}

impl SaveArea {
    /// Opens the area at `root`, removing what interrupted saves left there.
    pub fn open(root: PathBuf) -> SaveArea {
        remove_leftovers(&root);
        SaveArea { root }
    }

    /// The area at `root` as it is, without removing leftovers: a job's save step (the front opened
    /// the area at start), or an area the other instances of a cluster write to as well.
    pub(super) fn at(root: PathBuf) -> SaveArea {
        SaveArea { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes `chunks` to `relative` (a path the front has checked stays inside the area). Without
    /// `may_overwrite` the move fails rather than replace a file that exists. Answers the bytes
    /// written.
    pub async fn save(
        &self,
        relative: &Path,
        chunks: impl Stream<Item = Result<Bytes, BoxError>> + Unpin,
        may_overwrite: bool,
    ) -> Result<u64, SaveError> {
        let path = self.root.join(relative);
        let failed = |e: &dyn std::fmt::Display| SaveError::Failed(e.to_string());
        if !may_overwrite && tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Err(SaveError::Exists);
        }
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| failed(&e))?;
        }
        let mut partial = path.as_os_str().to_owned();
        partial.push(format!(".{}{PARTIAL}", uuid::Uuid::new_v4().simple()));
        let partial = PathBuf::from(partial);
        // A save dropped half-way (its job cancelled or timed out) leaves no temporary behind.
        let mut leftover = Leftover(Some(partial.clone()));
        let written = match write(chunks, &partial).await {
            Ok(written) => written,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(failed(&e));
            }
        };
        leftover.0 = None;
        let placed = if may_overwrite {
            tokio::fs::rename(&partial, &path).await
        } else {
            // A link fails when the name exists, where a rename would replace it.
            let linked = tokio::fs::hard_link(&partial, &path).await;
            let _ = tokio::fs::remove_file(&partial).await;
            linked
        };
        match placed {
            Ok(()) => Ok(written),
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
                    SaveError::Exists
                } else {
                    failed(&e)
                })
            }
        }
    }
}

/// What a job's save step did: the rows its query gave, and whether a file was written.
pub(super) struct Saved {
    pub rows: u64,
    pub written: bool,
}

/// Runs a job's save step: its query's rows, encoded in the step's format, written through the
/// area (replacing a file that exists). At most `max_bytes` and `max_rows`, as a job's result.
pub(super) async fn run_step(
    executor: &dyn Executor,
    step: &SaveStep,
    params: &Params,
    (max_bytes, max_rows): (u64, u64),
) -> Result<Saved, EngineError> {
    let format = Format::parse(&step.format)
        .ok_or_else(|| EngineError::internal(format!("no format '{}' to save in", step.format)))?;
    // The front checked the path; a step read back from a store is checked once more.
    let inside = step.path.file_name().is_some()
        && step
            .path
            .components()
            .all(|c| matches!(c, Component::Normal(_)));
    if !inside {
        return Err(EngineError::internal(format!(
            "the save path '{}' is not a file inside the save area",
            step.path.display()
        )));
    }
    let mut batches = executor.execute(&step.sql, params).await?;
    // The first rows before any file exists, so that an empty result can be skipped.
    let mut first = None;
    while let Some(batch) = batches.next().await {
        let batch = batch?;
        if batch.num_rows() > 0 {
            first = Some(batch);
            break;
        }
    }
    if first.is_none() && step.skip_if_empty {
        return Ok(Saved {
            rows: 0,
            written: false,
        });
    }
    let buffer = Buffer::default();
    let encoder = crate::encode::encoder(
        format,
        &EncodeOptions::default(),
        batches.schema(),
        Box::new(buffer.clone()),
    )
    .map_err(encode_failed)?;
    let tally = Arc::new(Mutex::new(Tally::default()));
    let writing = Writing {
        first,
        batches,
        encoder: Some(encoder),
        buffer,
        bytes: 0,
        max: (max_bytes, max_rows),
        tally: tally.clone(),
    };
    let chunks = futures::stream::unfold(Some(writing), |state| async move {
        let mut writing = state?;
        match writing.next_chunk().await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(writing))),
            Ok(None) => None,
            Err(e) => {
                let message: BoxError = e.message.clone().into();
                writing.tally().why = Some(e);
                Some((Err(message), None))
            }
        }
    });
    let saved = SaveArea::at(step.root.clone())
        .save(&step.path, Box::pin(chunks), true)
        .await;
    let mut tally = tally.lock().unwrap_or_else(|p| p.into_inner());
    match saved {
        Ok(_) => Ok(Saved {
            rows: tally.rows,
            written: true,
        }),
        Err(e) => Err(tally.why.take().unwrap_or_else(|| {
            let why = match e {
                SaveError::Exists => "the file exists".to_string(),
                SaveError::Failed(why) => why,
            };
            EngineError::internal(format!("saving to {} failed: {why}", step.path.display()))
        })),
    }
}

/// What the writing stream leaves for its step: rows written, and why it stopped early.
#[derive(Default)]
struct Tally {
    rows: u64,
    why: Option<EngineError>,
}

/// A save step's rows on their way into the file, a chunk of encoded bytes at a time.
struct Writing {
    /// The first non-empty batch, read before the file was begun.
    first: Option<RecordBatch>,
    batches: SendableRecordBatchStream,
    /// Taken when the result has ended and the encoder has finished.
    encoder: Option<Box<dyn Encoder>>,
    buffer: Buffer,
    bytes: u64,
    max: (u64, u64),
    tally: Arc<Mutex<Tally>>,
}

impl Writing {
    fn tally(&self) -> std::sync::MutexGuard<'_, Tally> {
        self.tally.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The next encoded bytes; `None` once the encoder has finished and everything was handed on.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, EngineError> {
        loop {
            let Some(encoder) = self.encoder.as_mut() else {
                return Ok(None);
            };
            let batch = match self.first.take() {
                Some(batch) => Some(batch),
                None => self.batches.next().await.transpose()?,
            };
            let rows = match batch {
                Some(batch) => {
                    encoder.write_batch(&batch).map_err(encode_failed)?;
                    let mut tally = self.tally();
                    tally.rows += batch.num_rows() as u64;
                    tally.rows
                }
                None => {
                    if let Some(encoder) = self.encoder.take() {
                        encoder.finish().map_err(encode_failed)?;
                    }
                    self.tally().rows
                }
            };
            let bytes = self.buffer.take();
            self.bytes += bytes.len() as u64;
            let (max_bytes, max_rows) = self.max;
            if self.bytes > max_bytes || rows > max_rows {
                return Err(EngineError::new(
                    ErrorKind::Limit,
                    format!(
                        "the saved file is larger than a job may write ({} MB, {max_rows} rows)",
                        max_bytes >> 20
                    ),
                ));
            }
            if !bytes.is_empty() {
                return Ok(Some(bytes));
            }
        }
    }
}

fn encode_failed(e: crate::encode::EncodeError) -> EngineError {
    EngineError::internal(format!("encoding the saved file failed: {e}"))
}

/// The bytes an encoder has written and the file has not taken yet.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Buffer {
    fn take(&self) -> Bytes {
        Bytes::from(std::mem::take(
            &mut *self.0.lock().unwrap_or_else(|p| p.into_inner()),
        ))
    }
}

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Removes a temporary file when dropped before the save finished writing it.
struct Leftover(Option<PathBuf>);

impl Drop for Leftover {
    fn drop(&mut self) {
        if let Some(path) = self.0.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}

async fn write(
    mut chunks: impl Stream<Item = Result<Bytes, BoxError>> + Unpin,
    partial: &Path,
) -> Result<u64, BoxError> {
    let mut file = tokio::fs::File::create_new(partial).await?;
    let mut written = 0u64;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?;
        file.write_all(&chunk).await?;
        written += chunk.len() as u64;
    }
    file.sync_all().await?;
    Ok(written)
}

/// Removes the temporary files of saves a crash interrupted, anywhere under `root`.
fn remove_leftovers(root: &Path) {
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() && path.to_string_lossy().ends_with(PARTIAL) => {
                    match std::fs::remove_file(&path) {
                        Ok(()) => {
                            tracing::info!(path = %path.display(), "removed an unfinished save")
                        }
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "could not remove an unfinished save")
                        }
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_interrupted_saves_are_removed() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        for name in ["a/b/x.csv.0123.partial", "y.partial", "a/keep.csv"] {
            std::fs::write(root.path().join(name), "x").unwrap();
        }
        SaveArea::open(root.path().to_path_buf());
        assert!(root.path().join("a/keep.csv").exists());
        assert!(!root.path().join("y.partial").exists());
        assert!(!root.path().join("a/b/x.csv.0123.partial").exists());
    }

    #[tokio::test]
    async fn a_save_lands_whole_and_refuses_to_replace_unless_allowed() {
        let root = tempfile::tempdir().unwrap();
        let area = SaveArea::open(root.path().to_path_buf());
        let chunks =
            |text: &'static str| futures::stream::iter([Ok::<_, BoxError>(Bytes::from(text))]);
        let to = Path::new("a/b.csv");
        assert_eq!(area.save(to, chunks("one"), false).await.unwrap(), 3);
        assert!(matches!(
            area.save(to, chunks("two"), false).await,
            Err(SaveError::Exists)
        ));
        assert_eq!(area.save(to, chunks("three"), true).await.unwrap(), 5);
        assert_eq!(
            std::fs::read_to_string(root.path().join(to)).unwrap(),
            "three"
        );
        let broken = futures::stream::iter([
            Ok::<_, BoxError>(Bytes::from("x")),
            Err::<Bytes, BoxError>("cut".into()),
        ]);
        assert!(matches!(
            area.save(Path::new("c.csv"), broken, true).await,
            Err(SaveError::Failed(_))
        ));
        assert!(!root.path().join("c.csv").exists());
    }
}
