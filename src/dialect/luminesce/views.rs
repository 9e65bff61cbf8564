//! Luminesce views: queries saved by `Sys.Admin.SetupView` under a name, then read as tables.
//!
//! A view is one JSON file in `<data_dir>/luminesce-views`, named by the view's name in lower case
//! (names ignore case). It is written when the script that sets it up succeeds (an engine end hook;
//! progress and fetch make sure of it too, so a client that sees the script finish always finds
//! the view), removed by `DELETE /api/View/update`, and listed by `GET /api/View/list`. Views are
//! the domain's, not one user's, as in Luminesce.

use std::path::{Path, PathBuf};

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use super::errors::LuminesceError;
use super::script::ViewSetup;
use crate::engine::{JobRecord, JobState};
use crate::exec::Catalog;

/// The longest view name, in bytes.
const MAX_NAME_BYTES: usize = 200;
/// The most views a domain may hold (each is read on every query start).
const MAX_VIEWS: usize = 1000;

/// A saved view.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct View {
    pub name: String,
    pub description: Option<String>,
    /// The view's query, as written.
    pub sql: String,
    /// The `use Sys.Admin.SetupView … enduse` text that set it up.
    pub setup: String,
    /// Its columns and their Luminesce data types, as the setup's run found them.
    pub columns: Vec<(String, String)>,
    /// What its query reads as `#PARAMETERVALUE(Name)`.
    #[serde(default)]
    pub parameters: Vec<super::view_parameters::ViewParameter>,
    pub created_by: String,
    /// RFC 3339 in UTC with milliseconds (so the text orders as the time does).
    pub created_at: String,
    pub updated_by: String,
    pub updated_at: String,
    /// The execution id of the script that last set it up.
    pub execution_id: String,
}

/// The directory of saved views.
#[derive(Clone, Debug)]
pub struct Views {
    dir: PathBuf,
}

impl Views {
    pub fn new(data_dir: &Path) -> Self {
        Views {
            dir: data_dir.join("luminesce-views"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{}.json", name.to_ascii_lowercase()))
    }

    /// Every saved view, by name. An unreadable file is skipped (and logged).
    pub fn all(&self) -> Vec<View> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut views: Vec<View> = entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
            .take(MAX_VIEWS)
            .filter_map(|e| {
                let text = std::fs::read(e.path()).ok()?;
                serde_json::from_slice(&text)
                    .inspect_err(|err| {
                        tracing::warn!(file = %e.path().display(), error = %err, "unreadable view")
                    })
                    .ok()
            })
            .collect();
        views.sort_by_key(|v: &View| v.name.to_ascii_lowercase());
        views
    }

    pub fn get(&self, name: &str) -> Option<View> {
        valid_name(name).ok()?;
        let text = std::fs::read(self.path(name)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Writes a view through a temporary file moved into place, so readers never see half of one.
    pub fn save(&self, view: &View) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let path = self.path(&view.name);
        let partial = path.with_extension(format!("{}.partial", uuid::Uuid::new_v4()));
        let text = serde_json::to_vec_pretty(view).map_err(std::io::Error::other)?;
        std::fs::write(&partial, text)?;
        std::fs::rename(&partial, &path).inspect_err(|_| {
            let _ = std::fs::remove_file(&partial);
        })
    }

    /// Removes a view; answers whether there was one.
    pub fn remove(&self, name: &str) -> bool {
        valid_name(name).is_ok() && std::fs::remove_file(self.path(name)).is_ok()
    }

    /// The views a finished job set up, saved if it succeeded and they are not saved yet (or
    /// were saved by an older job). Idempotent: the end hook, progress and fetch all call it.
    pub fn settle(&self, record: &JobRecord) {
        if record.state != JobState::Succeeded {
            return;
        }
        let setups = super::models::LuminesceJob::of(&record.spec).views;
        if setups.is_empty() {
            return;
        }
        let at = record
            .finished
            .unwrap_or(record.created)
            .to_rfc3339_opts(SecondsFormat::Millis, true);
        let execution_id = record.id.to_uuid();
        for (setup, columns) in setups {
            let earlier = self.get(&setup.name);
            if setup.delete {
                // Only a view older than the script that deletes it: a later setup stays.
                if earlier.is_some_and(|e| e.updated_at < at) {
                    self.remove(&setup.name);
                }
                continue;
            }
            if earlier
                .as_ref()
                .is_some_and(|e| e.execution_id == execution_id || e.updated_at > at)
            {
                continue;
            }
            let by = record.spec.owner.name();
            let view = View {
                name: setup.name,
                description: setup.description,
                sql: setup.sql,
                setup: setup.setup,
                columns,
                parameters: setup.parameters,
                created_by: earlier
                    .as_ref()
                    .map_or(by.clone(), |e| e.created_by.clone()),
                created_at: earlier
                    .as_ref()
                    .map_or(at.clone(), |e| e.created_at.clone()),
                updated_by: by,
                updated_at: at.clone(),
                execution_id: execution_id.clone(),
            };
            if let Err(e) = self.save(&view) {
                tracing::error!(view = %view.name, error = %e, "a view could not be saved");
            }
        }
    }
}

/// A view's name: letters, digits, `_` and `.`, starting with a letter, at most 200 bytes.
pub fn valid_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= MAX_NAME_BYTES
        && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "'{name}' is not a view name: letters, digits, '_' and '.', starting with a letter, at most {MAX_NAME_BYTES} bytes"
        ))
    }
}

/// A view a script sets up may be saved under its name: a valid name that is not a table's or a
/// `Sys` table's, and room for it among the `saved` ones.
pub fn check_setup(
    setup: &ViewSetup,
    catalog: &Catalog,
    saved: &[View],
) -> Result<(), LuminesceError> {
    valid_name(&setup.name).map_err(LuminesceError::bad_request)?;
    let replaces = saved
        .iter()
        .any(|v| v.name.eq_ignore_ascii_case(&setup.name));
    if !setup.delete && !replaces && saved.len() >= MAX_VIEWS {
        return Err(LuminesceError::bad_request(format!(
            "there are {MAX_VIEWS} views already, the most polyquery keeps: delete one first"
        )));
    }
    let lower = setup.name.to_ascii_lowercase();
    if catalog.table(&setup.name).is_some() || lower.starts_with("sys.") {
        return Err(LuminesceError::bad_request(format!(
            "'{}' is a provider's name: a view cannot replace it",
            setup.name
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["V", "Views.My_View1", "a.b.c"] {
            assert!(valid_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "1x", "a/b", "../x", "a b", "x\0", &"x".repeat(201)] {
            assert!(valid_name(bad).is_err(), "{bad}");
        }
    }
}
