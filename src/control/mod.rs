//! The control plane for contract tests, under `/_polyquery/`: reset, fault rules, the traffic
//! journal and `verify`, and the jobs dashboard. It is off on non-loopback listeners unless enabled,
//! and behind the admin credentials when they are configured.

mod api;
pub mod journal;
pub mod rules;

use std::net::SocketAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::engine::Engine;
use crate::wire::Request;
pub use api::handle;
use journal::Journal;
use rules::{BadRule, RuleSet, RuleSpec};

/// Where the admin API and the dashboard live.
pub const PREFIX: &str = "/_polyquery";

/// Whether a path is the control plane's.
pub fn owns(path: &str) -> bool {
    path == PREFIX || path.starts_with("/_polyquery/")
}

/// Whether a request comes from no page at all (curl, a test suite) or from a page served by this
/// server: a browser names the page's origin on every cross-origin request, and a page elsewhere
/// must not reset polyquery or cancel its jobs.
pub fn same_origin(request: &Request) -> bool {
    let Some(origin) = request.headers().get(hyper::header::ORIGIN) else {
        return true;
    };
    let host = request.headers().get(hyper::header::HOST);
    let origin = origin.to_str().unwrap_or_default();
    let own = |scheme: &str| {
        host.and_then(|h| h.to_str().ok())
            .is_some_and(|h| origin.strip_prefix(scheme) == Some(h))
    };
    own("http://") || own("https://")
}

/// The `[admin]` settings.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// `auto`: served on loopback listeners only; `on`: on every listener; `off`: nowhere.
    pub enabled: Enabled,
    /// Admin credentials: HTTP Basic with this user and password, or `Authorization: Bearer <token>`.
    /// None configured: the admin API asks for none (allowed on loopback listeners only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Requests the journal keeps, and bytes kept of each request and response body.
    pub journal_size: usize,
    pub journal_body_bytes: usize,
    /// Fault rules that may be in force at once.
    pub max_rules: usize,
    /// Seeds every rule's latencies that gives no seed of its own (plus the rule's id).
    pub seed: u64,
    /// Fault rules in force from the start (and again after each reset).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<RuleSpec>,
}

/// Whether the control plane is served.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Enabled {
    #[default]
    Auto,
    On,
    Off,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            enabled: Enabled::Auto,
            user: None,
            password: None,
            token: None,
            journal_size: 1000,
            journal_body_bytes: 4096,
            max_rules: 100,
            seed: 0,
            faults: Vec::new(),
        }
    }
}

impl Settings {
    /// Whether a listener bound to `local` serves the control plane.
    pub fn served_on(&self, local: SocketAddr) -> bool {
        match self.enabled {
            Enabled::On => true,
            Enabled::Off => false,
            Enabled::Auto => local.ip().is_loopback(),
        }
    }

    /// Refuses configured fault rules that would not compile.
    pub fn check(&self) -> Result<(), BadRule> {
        RuleSet::new(self.faults.clone(), self.seed, self.max_rules).map(|_| ())
    }

    pub fn has_credentials(&self) -> bool {
        self.token.is_some() || (self.user.is_some() && self.password.is_some())
    }
}

/// The control plane's state: its settings, the rules in force and the journal.
pub struct ControlPlane {
    pub settings: Settings,
    pub rules: Arc<RuleSet>,
    pub journal: Journal,
}

impl ControlPlane {
    /// The control plane with the configured rules in force, installed as the engine's fault source.
    /// Configured rules that do not compile are left out (`Settings::check` refuses them when the
    /// configuration is loaded).
    pub fn new(settings: Settings, engine: &Engine) -> ControlPlane {
        let rules = RuleSet::new(settings.faults.clone(), settings.seed, settings.max_rules)
            .unwrap_or_else(|e| {
                tracing::warn!(error = %e, "the configured fault rules are not in force");
                RuleSet::empty(settings.seed, settings.max_rules)
            });
        let rules = Arc::new(rules);
        engine.set_faults(rules.clone());
        ControlPlane {
            journal: Journal::new(settings.journal_size, settings.journal_body_bytes),
            rules,
            settings,
        }
    }

    /// Whether the request carries the admin credentials (any request does when none are configured).
    pub fn authorized(&self, request: &Request) -> bool {
        let s = &self.settings;
        if !s.has_credentials() {
            return true;
        }
        let bearer = crate::wire::token_credentials(request, &["bearer"]);
        let basic = crate::wire::basic_credentials(request);
        let token_ok = match (s.token.as_deref(), bearer) {
            (Some(t), Some(given)) => same_secret(t, given),
            _ => false,
        };
        let basic_ok = match (&s.user, &s.password, basic) {
            (Some(u), Some(p), Some((name, password))) => *u == name && same_secret(p, &password),
            _ => false,
        };
        token_ok || basic_ok
    }
}

/// Compares secrets in a time that does not depend on where they differ, so that response times
/// do not give the admin token away a byte at a time.
fn same_secret(expected: &str, given: &str) -> bool {
    let differ = expected
        .bytes()
        .zip(given.bytes())
        .fold(0u8, |acc, (a, b)| acc | (a ^ b));
    expected.len() == given.len() && differ == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)]) -> Request {
        let mut builder = hyper::Request::builder();
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.body(bytes::Bytes::new()).unwrap()
    }

    #[test]
    fn where_the_control_plane_is_served() {
        let settings = |enabled| Settings {
            enabled,
            ..Settings::default()
        };
        for (enabled, addr, served) in [
            (Enabled::Auto, "127.0.0.1:1", true),
            (Enabled::Auto, "[::1]:1", true),
            (Enabled::Auto, "0.0.0.0:1", false),
            (Enabled::Auto, "10.0.0.5:1", false),
            (Enabled::On, "0.0.0.0:1", true),
            (Enabled::Off, "127.0.0.1:1", false),
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(
                settings(enabled).served_on(addr),
                served,
                "{enabled:?} {addr}"
            );
        }
    }

    #[test]
    fn admin_credentials_and_origins() {
        assert!(same_secret("s3cret", "s3cret"));
        assert!(!same_secret("s3cret", "s3creT"));
        assert!(!same_secret("s3cret", "s3cret!"));
        assert!(!same_secret("s3cret", ""));
        for (headers, same) in [
            (vec![], true),
            (vec![("host", "127.0.0.1:8080")], true),
            (
                vec![
                    ("host", "127.0.0.1:8080"),
                    ("origin", "http://127.0.0.1:8080"),
                ],
                true,
            ),
            (
                vec![
                    ("host", "127.0.0.1:8080"),
                    ("origin", "http://127.0.0.1:9090"),
                ],
                false,
            ),
            (vec![("host", "127.0.0.1:8080"), ("origin", "null")], false),
            (vec![("origin", "http://127.0.0.1:8080")], false),
        ] {
            assert_eq!(same_origin(&request(&headers)), same, "{headers:?}");
        }
    }
}
