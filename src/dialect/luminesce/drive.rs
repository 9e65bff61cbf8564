//! `GET /{id}/drive`: saves a result into a local directory that stands in for FINBOURNE Drive.
//!
//! `driveLocationAndFileName` is a path inside that directory (a leading `/` is the directory
//! itself); missing folders are made, the extension is the chosen format's, and a path that would
//! leave the directory (`..`, a drive prefix) is refused.

use std::path::{Component, Path, PathBuf};

use futures::StreamExt;
use http_body_util::BodyStream;

use super::errors::LuminesceError;
use super::fetch::Output;
use crate::engine::{SaveArea, SaveError};
use crate::wire::Body;

/// The longest file or folder name in a Drive path, in bytes (file systems allow 255; a save's
/// temporary name adds to it).
pub const MAX_NAME_BYTES: usize = 200;
/// The longest Drive path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;

/// The file a save goes to, relative to Drive's root, with the format's extension. Answers it and
/// the Drive path shown back to the client.
pub fn target(requested: &str, output: Output) -> Result<(PathBuf, String), LuminesceError> {
    file(requested, |clean| {
        clean.set_extension(output.extension());
    })
    .map_err(|why| {
        LuminesceError::bad_parameter(
            "driveLocationAndFileName",
            format!("driveLocationAndFileName '{requested}' {why}"),
        )
    })
}

/// A Drive path made a file inside Drive: `requested` (after `adjust`) relative to Drive's root, and
/// the path shown back to the client; or why it cannot be one.
pub fn file(
    requested: &str,
    adjust: impl FnOnce(&mut PathBuf),
) -> Result<(PathBuf, String), String> {
    let relative = Path::new(requested.trim().trim_start_matches(['/', '\\']));
    let mut clean = PathBuf::new();
    for component in relative.components() {
        match component {
            Component::Normal(part) => clean.push(part),
            Component::CurDir => {}
            _ => return Err("must stay inside Drive (no '..' or drive prefixes)".into()),
        }
    }
    if clean.file_name().is_none() || requested.contains('\0') {
        return Err("must name a file".into());
    }
    adjust(&mut clean);
    if clean
        .components()
        .any(|c| c.as_os_str().len() > MAX_NAME_BYTES)
    {
        return Err(format!(
            "has a file or folder name longer than {MAX_NAME_BYTES} bytes"
        ));
    }
    if clean.as_os_str().len() > MAX_PATH_BYTES {
        return Err(format!("is longer than {MAX_PATH_BYTES} bytes"));
    }
    let shown = format!("/{}", clean.to_string_lossy().replace('\\', "/"));
    Ok((clean, shown))
}

/// Saves an encoded result at `relative` in the Drive area: the engine writes it, the answer is
/// in Luminesce's shapes.
pub async fn save(
    area: &SaveArea,
    relative: &Path,
    body: Body,
    may_overwrite: bool,
) -> Result<u64, LuminesceError> {
    let chunks = BodyStream::new(body).filter_map(|frame| {
        std::future::ready(match frame {
            Ok(frame) => frame.into_data().ok().map(Ok),
            Err(e) => Some(Err(e)),
        })
    });
    match area.save(relative, Box::pin(chunks), may_overwrite).await {
        Ok(written) => Ok(written),
        Err(SaveError::Exists) => Err(LuminesceError::new(
            hyper::StatusCode::CONFLICT,
            "DriveFileExists",
            "The Drive file already exists",
            "the file already exists; pass mayOverwrite=True to replace it",
        )),
        Err(SaveError::Failed(e)) => Err(LuminesceError::from(
            crate::engine::EngineError::internal(format!("saving to Drive failed: {e}")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_inside_drive() {
        let (path, shown) = target("/reports/q1.txt", Output::Csv).unwrap();
        assert_eq!(path, Path::new("reports/q1.csv"));
        assert_eq!(shown, "/reports/q1.csv");
        for bad in ["../etc/passwd", "/a/../../b", "/", ""] {
            assert!(target(bad, Output::Csv).is_err(), "{bad}");
        }
        let long = format!("/{}.csv", "n".repeat(300));
        let e = target(&long, Output::Csv).unwrap_err();
        assert_eq!(e.status, hyper::StatusCode::BAD_REQUEST);
        assert!(target(&format!("/{}", "d/".repeat(600)), Output::Csv).is_err());
    }
}
