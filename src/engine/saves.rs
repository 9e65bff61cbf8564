//! Saved files: results a client asked to keep at a path of its choosing (Luminesce's Drive),
//! under a directory the engine owns. A save goes to a temporary file of its own (so that saves to
//! one path never share one) and moves into place in one step: the last save to finish wins, whole.
//! Temporaries a crash left behind are removed when the area is opened.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

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

    /// An area other instances write to as well: their saves in progress are not leftovers.
    pub fn shared(root: PathBuf) -> SaveArea {
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
        let written = match write(chunks, &partial).await {
            Ok(written) => written,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(failed(&e));
            }
        };
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
