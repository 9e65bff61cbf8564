//! Luminesce views: queries saved by `Sys.Admin.SetupView` under a name, then read as tables.
//!
//! A view is one of the engine's side records (`luminesce_views`), keyed by the view's name in lower
//! case (names ignore case), so it outlives a restart and lives wherever the job store does. It is
//! written when the script that sets it up succeeds (an engine end hook;
//! progress and fetch make sure of it too, so a client that sees the script finish always finds
//! the view), removed by `DELETE /api/View/update`, and listed by `GET /api/View/list`. Views are
//! the domain's, not one user's, as in Luminesce.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::SecondsFormat;
use serde::{Deserialize, Serialize};

use super::errors::LuminesceError;
use super::script::ViewSetup;
use crate::engine::{Engine, JobRecord, JobState, SideTable};
use crate::exec::Catalog;

/// The longest view name, in bytes.
const MAX_NAME_BYTES: usize = 100;
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

/// The saved views: held in memory, kept in the engine's side records.
#[derive(Clone)]
pub struct Views {
    inner: Arc<ViewsInner>,
}

struct ViewsInner {
    /// By name in lower case.
    by_name: Mutex<BTreeMap<String, View>>,
    saved: SideTable<View>,
}

impl Views {
    pub fn new(engine: &Engine) -> Self {
        let saved = engine.side_table("luminesce_views");
        let by_name = saved.load().into_iter().take(MAX_VIEWS).collect();
        Views {
            inner: Arc::new(ViewsInner {
                by_name: Mutex::new(by_name),
                saved,
            }),
        }
    }

    /// The views, as every instance of a cluster last saved them (the store is the truth there).
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, View>> {
        let mut by_name = self.inner.by_name.lock().unwrap_or_else(|p| p.into_inner());
        if self.inner.saved.shared() {
            *by_name = self
                .inner
                .saved
                .load()
                .into_iter()
                .take(MAX_VIEWS)
                .collect();
        }
        by_name
    }

    /// Every saved view, by name.
    pub fn all(&self) -> Vec<View> {
        self.lock().values().cloned().collect()
    }

    pub fn get(&self, name: &str) -> Option<View> {
        valid_name(name).ok()?;
        self.lock().get(&name.to_ascii_lowercase()).cloned()
    }

    pub fn save(&self, view: View) {
        let key = view.name.to_ascii_lowercase();
        self.inner.saved.save(&key, &view);
        self.lock().insert(key, view);
    }

    /// Forgets every view (the control plane's reset).
    pub fn clear(&self) {
        for key in std::mem::take(&mut *self.lock()).into_keys() {
            self.inner.saved.remove(&key);
        }
    }

    /// Removes a view; answers whether there was one.
    pub fn remove(&self, name: &str) -> bool {
        let key = name.to_ascii_lowercase();
        let removed = self.lock().remove(&key).is_some();
        if removed {
            self.inner.saved.remove(&key);
        }
        removed
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
            self.save(view);
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
        for bad in ["", "1x", "a/b", "../x", "a b", "x\0", &"x".repeat(101)] {
            assert!(valid_name(bad).is_err(), "{bad}");
        }
    }
}
