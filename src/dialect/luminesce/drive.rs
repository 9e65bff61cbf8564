//! `GET /{id}/drive`: saves a result into a local directory that stands in for FINBOURNE Drive.
//!
//! `driveLocationAndFileName` is a path inside that directory (a leading `/` is the directory
//! itself); missing folders are made, the extension is the chosen format's, and a path that would
//! leave the directory (`..`, a drive prefix) is refused.

use std::path::{Component, Path, PathBuf};

use futures::StreamExt;
use http_body_util::BodyStream;
use tokio::io::AsyncWriteExt;

use super::errors::LuminesceError;
use super::fetch::Output;
use crate::wire::Body;

/// The longest file or folder name in a Drive path, in bytes (file systems allow 255; a save's
/// temporary name adds to it).
pub const MAX_NAME_BYTES: usize = 200;
/// The longest Drive path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// What a temporary file's name ends with until it is renamed into place.
const PARTIAL: &str = ".partial";

/// The file a save goes to: inside `root`, with the format's extension. Answers it and the
/// Drive path shown back to the client.
pub fn target(
    root: &Path,
    requested: &str,
    output: Output,
) -> Result<(PathBuf, String), LuminesceError> {
    let refuse = |why: &str| {
        LuminesceError::bad_parameter(
            "driveLocationAndFileName",
            format!("driveLocationAndFileName '{requested}' {why}"),
        )
    };
    let relative = Path::new(requested.trim().trim_start_matches(['/', '\\']));
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            _ => return Err(refuse("must stay inside Drive (no '..' or drive prefixes)")),
        }
    }
    if clean.file_name().is_none() || requested.contains('\0') {
        return Err(refuse("must name a file"));
    }
    clean.set_extension(output.extension());
    if clean
        .components()
        .any(|c| c.as_os_str().len() > MAX_NAME_BYTES)
    {
        return Err(refuse(&format!(
            "has a file or folder name longer than {MAX_NAME_BYTES} bytes"
        )));
    }
    if clean.as_os_str().len() > MAX_PATH_BYTES {
        return Err(refuse(&format!("is longer than {MAX_PATH_BYTES} bytes")));
    }
    let shown = format!("/{}", clean.to_string_lossy().replace('\\', "/"));
    Ok((root.join(clean), shown))
}

/// Writes an encoded result to `path` through a temporary file of its own (so that saves to one
/// path never share one), then moves it into place in one step: the last save to finish wins,
/// whole. Without `may_overwrite` the move fails rather than replace a file that exists.
pub async fn save(body: Body, path: &Path, may_overwrite: bool) -> Result<u64, LuminesceError> {
    let internal = |e: &dyn std::fmt::Display| {
        LuminesceError::from(crate::engine::EngineError::internal(format!(
            "saving to Drive failed: {e}"
        )))
    };
    let exists = || {
        LuminesceError::new(
            hyper::StatusCode::CONFLICT,
            "DriveFileExists",
            "The Drive file already exists",
            "the file already exists; pass mayOverwrite=True to replace it",
        )
    };
    if !may_overwrite && tokio::fs::try_exists(path).await.unwrap_or(false) {
        return Err(exists());
    }
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| internal(&e))?;
    }
    let mut partial = path.as_os_str().to_owned();
    partial.push(format!(".{}{PARTIAL}", uuid::Uuid::new_v4().simple()));
    let partial = PathBuf::from(partial);
    let written = match write(body, &partial).await {
        Ok(written) => written,
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            return Err(internal(&e));
        }
    };
    let placed = if may_overwrite {
        tokio::fs::rename(&partial, path).await
    } else {
        // A link fails when the name exists, where a rename would replace it.
        let linked = tokio::fs::hard_link(&partial, path).await;
        let _ = tokio::fs::remove_file(&partial).await;
        linked
    };
    match placed {
        Ok(()) => Ok(written),
        Err(e) => {
            let _ = tokio::fs::remove_file(&partial).await;
            Err(if e.kind() == std::io::ErrorKind::AlreadyExists {
                exists()
            } else {
                internal(&e)
            })
        }
    }
}

async fn write(body: Body, partial: &Path) -> Result<u64, crate::wire::BoxError> {
    let mut file = tokio::fs::File::create_new(partial).await?;
    let mut frames = BodyStream::new(body);
    let mut written = 0u64;
    while let Some(frame) = frames.next().await {
        if let Some(data) = frame?.data_ref() {
            file.write_all(data).await?;
            written += data.len() as u64;
        }
    }
    file.sync_all().await?;
    Ok(written)
}

/// Removes the temporary files of saves a crash interrupted, anywhere under `root`.
pub fn remove_leftovers(root: &Path) {
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
                            tracing::info!(path = %path.display(), "removed an unfinished Drive save")
                        }
                        Err(e) => {
                            tracing::warn!(path = %path.display(), error = %e, "could not remove an unfinished Drive save")
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
    fn paths_stay_inside_drive() {
        let root = Path::new("/srv/drive");
        let (path, shown) = target(root, "/reports/q1.txt", Output::Csv).unwrap();
        assert_eq!(path, Path::new("/srv/drive/reports/q1.csv"));
        assert_eq!(shown, "/reports/q1.csv");
        for bad in ["../etc/passwd", "/a/../../b", "/", ""] {
            assert!(target(root, bad, Output::Csv).is_err(), "{bad}");
        }
        let long = format!("/{}.csv", "n".repeat(300));
        let e = target(root, &long, Output::Csv).unwrap_err();
        assert_eq!(e.status, hyper::StatusCode::BAD_REQUEST);
        assert!(target(root, &format!("/{}", "d/".repeat(600)), Output::Csv).is_err());
    }

    #[test]
    fn leftovers_of_interrupted_saves_are_removed() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("a/b")).unwrap();
        for name in ["a/b/x.csv.0123.partial", "y.partial", "a/keep.csv"] {
            std::fs::write(root.path().join(name), "x").unwrap();
        }
        remove_leftovers(root.path());
        assert!(root.path().join("a/keep.csv").exists());
        assert!(!root.path().join("y.partial").exists());
        assert!(!root.path().join("a/b/x.csv.0123.partial").exists());
    }
}
