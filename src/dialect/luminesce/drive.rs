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
    let shown = format!("/{}", clean.to_string_lossy().replace('\\', "/"));
    Ok((root.join(clean), shown))
}

/// Writes an encoded result to `path` (through a temporary file, renamed when complete).
pub async fn save(body: Body, path: &Path, may_overwrite: bool) -> Result<u64, LuminesceError> {
    let internal = |e: &dyn std::fmt::Display| {
        LuminesceError::from(crate::engine::EngineError::internal(format!(
            "saving to Drive failed: {e}"
        )))
    };
    if !may_overwrite && tokio::fs::try_exists(path).await.unwrap_or(false) {
        return Err(LuminesceError::new(
            hyper::StatusCode::CONFLICT,
            "DriveFileExists",
            "The Drive file already exists",
            "the file already exists; pass mayOverwrite=True to replace it",
        ));
    }
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| internal(&e))?;
    }
    let partial = path.with_extension("partial");
    let mut file = tokio::fs::File::create(&partial)
        .await
        .map_err(|e| internal(&e))?;
    let mut frames = BodyStream::new(body);
    let mut written = 0u64;
    while let Some(frame) = frames.next().await {
        let frame = match frame {
            Ok(f) => f,
            Err(e) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(internal(&e));
            }
        };
        if let Some(data) = frame.data_ref() {
            file.write_all(data).await.map_err(|e| internal(&e))?;
            written += data.len() as u64;
        }
    }
    file.flush().await.map_err(|e| internal(&e))?;
    drop(file);
    tokio::fs::rename(&partial, path)
        .await
        .map_err(|e| internal(&e))?;
    Ok(written)
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
    }
}
