//! Looks: a saved query with a title, created, found, updated, run and deleted through `/looks`.
//! Kept in the engine's side records, like stored queries, so they outlive a restart.

use std::sync::Mutex;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::engine::SideTable;

/// What a client sends to create or update a look (`WriteLookWithQuery`); absent keys keep their
/// value on update. Read-only and unknown keys are ignored.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WriteLook {
    pub title: Option<String>,
    pub description: Option<String>,
    pub query_id: Option<Value>,
    pub is_run_on_load: Option<bool>,
    pub public: Option<bool>,
    pub deleted: Option<bool>,
    pub folder_id: Option<Value>,
    pub space_id: Option<Value>,
}

/// A stored look (kept in the engine's side records too, so that it outlives a restart).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Look {
    pub id: u64,
    pub title: String,
    pub description: Option<String>,
    pub query_id: String,
    pub model: String,
    pub is_run_on_load: bool,
    pub public: bool,
    pub deleted: bool,
    pub folder_id: String,
    pub user_id: String,
    #[serde(with = "crate::query::rfc3339")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "crate::query::rfc3339")]
    pub updated_at: DateTime<Utc>,
}

/// An id the API may send as a string or a number.
pub fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl Look {
    /// `LookWithQuery`, `query` being the stored query's JSON.
    pub fn to_json(&self, query: Value) -> Value {
        let at = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, false);
        json!({
            "can": {"show": true, "run": true, "update": true, "destroy": true},
            "content_metadata_id": self.id.to_string(),
            "id": self.id.to_string(),
            "title": self.title,
            "user_id": self.user_id,
            "content_favorite_id": null,
            "created_at": at(self.created_at),
            "deleted": self.deleted,
            "deleted_at": null,
            "deleter_id": null,
            "description": self.description,
            "embed_url": format!("/embed/looks/{}", self.id),
            "excel_file_url": format!("/looks/{}.xlsx", self.id),
            "favorite_count": 0,
            "google_spreadsheet_formula": null,
            "image_embed_url": null,
            "is_run_on_load": self.is_run_on_load,
            "last_accessed_at": null,
            "last_updater_id": self.user_id,
            "last_viewed_at": null,
            "model": {"id": self.model, "label": self.model},
            "public": self.public,
            "public_slug": null,
            "public_url": null,
            "query_id": self.query_id,
            "short_url": format!("/x/{}", self.id),
            "folder": {"id": self.folder_id, "name": "Shared"},
            "folder_id": self.folder_id,
            "space_id": self.folder_id,
            "updated_at": at(self.updated_at),
            "user": {"id": self.user_id},
            "view_count": 0,
            "query": query,
            "url": format!("/looks/{}", self.id),
        })
    }

    /// Applies an update's present keys (the query is checked by the caller).
    pub fn apply(&mut self, write: &WriteLook, query: Option<(String, String)>) {
        if let Some(t) = &write.title {
            self.title = t.clone();
        }
        if write.description.is_some() {
            self.description = write.description.clone();
        }
        if let Some((id, model)) = query {
            self.query_id = id;
            self.model = model;
        }
        if let Some(v) = write.is_run_on_load {
            self.is_run_on_load = v;
        }
        if let Some(v) = write.public {
            self.public = v;
        }
        if let Some(v) = write.deleted {
            self.deleted = v;
        }
        if let Some(folder) = write
            .folder_id
            .as_ref()
            .or(write.space_id.as_ref())
            .and_then(id_text)
        {
            self.folder_id = folder;
        }
        self.updated_at = Utc::now();
    }
}

/// Every look.
pub struct LookStore {
    inner: Mutex<(u64, Vec<Look>)>,
    saved: SideTable<Look>,
}

impl LookStore {
    /// The store, starting with the looks `saved` holds.
    pub fn new(saved: SideTable<Look>) -> LookStore {
        let mut looks: Vec<Look> = saved.load().into_iter().map(|(_, look)| look).collect();
        looks.sort_by_key(|l| l.id);
        let last = looks.last().map_or(0, |l| l.id);
        LookStore {
            inner: Mutex::new((last, looks)),
            saved,
        }
    }

    /// The looks, as every instance of a cluster last saved them (the store is the truth there).
    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Vec<Look>)> {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if self.saved.shared() {
            let mut looks: Vec<Look> = self.saved.load().into_iter().map(|(_, l)| l).collect();
            looks.sort_by_key(|l| l.id);
            inner.1 = looks;
        }
        inner
    }

    /// Forgets every look; ids start again from 1 (the control plane's reset).
    pub fn clear(&self) {
        let (_, looks) = std::mem::take(&mut *self.lock());
        for look in looks {
            self.saved.remove(&look.id.to_string());
        }
    }

    /// Stores a new look for `user_id` on the query `(id, model)`.
    pub fn create(&self, write: &WriteLook, query: (String, String), user_id: String) -> Look {
        let mut inner = self.lock();
        // In a cluster, ids come from the store's sequence, so no two instances give out one.
        inner.0 = match self.saved.shared() {
            true => self.saved.next_number().unwrap_or(inner.0 + 1),
            false => inner.0 + 1,
        };
        let now = Utc::now();
        let mut look = Look {
            id: inner.0,
            title: String::new(),
            description: None,
            query_id: String::new(),
            model: String::new(),
            is_run_on_load: false,
            public: false,
            deleted: false,
            folder_id: "1".into(),
            user_id,
            created_at: now,
            updated_at: now,
        };
        look.apply(write, Some(query));
        self.saved.save(&look.id.to_string(), &look);
        inner.1.push(look.clone());
        look
    }

    pub fn get(&self, id: &str) -> Option<Look> {
        let id: u64 = id.trim().parse().ok()?;
        self.lock().1.iter().find(|l| l.id == id).cloned()
    }

    /// Updates a look in place; `None` when there is none with this id.
    pub fn update(&self, id: &str, f: impl FnOnce(&mut Look)) -> Option<Look> {
        let id: u64 = id.trim().parse().ok()?;
        let mut inner = self.lock();
        let look = inner.1.iter_mut().find(|l| l.id == id)?;
        f(look);
        self.saved.save(&look.id.to_string(), look);
        Some(look.clone())
    }

    pub fn delete(&self, id: &str) -> bool {
        let Ok(id) = id.trim().parse::<u64>() else {
            return false;
        };
        let mut inner = self.lock();
        let before = inner.1.len();
        inner.1.retain(|l| l.id != id);
        self.saved.remove(&id.to_string());
        inner.1.len() != before
    }

    /// Looks matching `search_looks`' filters: `title`/`description` patterns (`%` any run,
    /// `_` one character, case ignored), `user_id`, `query_id`, `deleted` (default false).
    pub fn search(&self, filter: &dyn Fn(&str) -> Option<String>) -> Vec<Look> {
        let deleted = filter("deleted").is_some_and(|d| d == "true");
        self.lock()
            .1
            .iter()
            .filter(|l| l.deleted == deleted)
            .filter(|l| filter("title").is_none_or(|p| like(&p, &l.title)))
            .filter(|l| {
                filter("description")
                    .is_none_or(|p| like(&p, l.description.as_deref().unwrap_or_default()))
            })
            .filter(|l| filter("user_id").is_none_or(|u| u == l.user_id))
            .filter(|l| filter("query_id").is_none_or(|q| q == l.query_id))
            .filter(|l| filter("id").is_none_or(|i| i == l.id.to_string()))
            .cloned()
            .collect()
    }

    pub fn all(&self) -> Vec<Look> {
        self.lock().1.clone()
    }
}

/// Looker's search pattern: `%` any run of characters, `_` one, case ignored; iterative, so a
/// client's pattern cannot recurse deeply.
fn like(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '_' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '%' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_patterns() {
        for (pattern, text, hit) in [
            ("An SDK%", "An SDK look", true),
            ("an sdk%", "An SDK look", true),
            ("%look", "An SDK look", true),
            ("_n SDK look", "An SDK look", true),
            ("SDK%", "An SDK look", false),
            ("%", "", true),
        ] {
            assert_eq!(like(pattern, text), hit, "{pattern} ~ {text}");
        }
    }
}
