//! FINBOURNE Luminesce `SqlBackground` (issue #3; not built yet).

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Front, Unbuilt};
use crate::config::Config;
use crate::engine::Engine;

/// `[luminesce]` settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// An extra address serving only this dialect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

pub fn front(_engine: &Engine, _config: &Arc<Config>) -> Arc<dyn Front> {
    Arc::new(Unbuilt {
        name: "luminesce",
        vendor: "Luminesce SqlBackground",
        issue: 3,
        prefixes: &["/honeycomb/"],
    })
}
