//! Looker API 4.0 query tasks (issue #5; not built yet).

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Front, Unbuilt};
use crate::config::Config;
use crate::engine::Engine;

/// `[looker]` settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// An extra address serving only this dialect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// What `/query_tasks/{id}/results` answers while not ready: 202 (Looker 25+) or 204 (24 and earlier).
    pub not_ready_status: u16,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: None,
            not_ready_status: 202,
        }
    }
}

pub fn front(_engine: &Engine, _config: &Arc<Config>) -> Arc<dyn Front> {
    Arc::new(Unbuilt {
        name: "looker",
        vendor: "Looker API 4.0",
        issue: 5,
        prefixes: &["/api/4.0/", "/api/logout"],
    })
}
