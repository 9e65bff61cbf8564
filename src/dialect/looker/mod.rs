//! Looker API 4.0 query tasks: login, queries on a model's explores, query tasks with their
//! 202/204/404 result semantics, synchronous runs, SQL Runner and running-query kills, served at
//! `/api/4.0/…` (and `/api/logout`) for the official SDKs.
//!
//! - `session`: access tokens; `query`: stored queries and their compilation to SQL; `filter`:
//!   Looker filter expressions; `pivot`: one-dimension pivots; `semantic`: models and explores; `results`: the result formats;
//!   `error`: the one error wire and the engine-error mapping; `api`: the endpoints.

mod api;
mod error;
mod expiring;
mod expression;
pub(crate) mod filter;
mod looks;
mod pivot;
mod query;
mod results;
pub(crate) mod semantic;
mod session;
mod table_calc;
mod users;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::{Front, FrontContext};

pub use error::{DOCUMENTATION_URL, LookerError};
pub use results::ResultFormat;
pub use semantic::{CATALOG_MODEL, Models};

/// `[looker]` settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// An extra address serving only this dialect.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    /// What `/query_tasks/{id}/results` answers while not ready: 202 (Looker 25+) or 204 (24 and earlier).
    pub not_ready_status: u16,
    /// A folder of extra model files (`*.toml`), served beside `polyquery`, `thelook` and `system__activity`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_dir: Option<PathBuf>,
    /// Seconds an access token lives (`expires_in` of the login answer).
    pub token_lifetime_secs: u64,
    /// Seconds a stored query, a SQL Runner query and the memory of a task id are kept after
    /// their last use.
    pub retain_secs: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            listen: None,
            not_ready_status: 202,
            model_dir: None,
            token_lifetime_secs: 3600,
            retain_secs: 86_400,
        }
    }
}

pub use api::model_and_explore;

pub fn front(context: FrontContext<Settings>) -> Arc<dyn Front> {
    Arc::new(api::LookerFront::new(context))
}
