//! Apache AsterixDB `/query/service` (issue #4; not built yet).

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Front, Unbuilt};
use crate::config::Config;
use crate::engine::Engine;

/// Which AsterixDB the responses follow: the vendor page, the 0.9.9 release, or master.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub enum Profile {
    #[default]
    #[serde(rename = "docs")]
    Docs,
    #[serde(rename = "0.9.9")]
    V099,
    #[serde(rename = "master")]
    Master,
}

/// `[asterixdb]` settings.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// An extra address serving only this dialect (AsterixDB's own port is 19002).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    pub profile: Profile,
}

pub fn front(_engine: &Engine, _config: &Arc<Config>) -> Arc<dyn Front> {
    Arc::new(Unbuilt {
        name: "asterixdb",
        vendor: "AsterixDB query service",
        issue: 4,
        prefixes: &["/query/service", "/admin/requests/running"],
    })
}
