//! Configuration: one struct, read from an optional TOML file, then `POLYQUERY_*` environment
//! variables, then command-line flags, each overriding the one before.
//!
//! Every setting has a dotted key (`engine.workers`). The environment spells it `POLYQUERY_ENGINE__WORKERS`
//! (double underscore between levels) and the command line `--set engine.workers=8`; the most common ones
//! also have flags of their own (`--listen`, `--data-dir`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::dialect;
use crate::engine::EngineConfig;
use crate::exec::datafusion::UserTable;
pub use crate::query::User;
pub use crate::wire::HttpLimits as Limits;

/// Everything polyquery can be told.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where all four dialects are served.
    pub listen: SocketAddr,
    /// Job records and results; default: the user's cache directory, else ./polyquery-data.
    pub data_dir: PathBuf,
    /// Serve on a non-loopback address without configured users.
    pub allow_anonymous: bool,
    /// `text` or `json` log lines.
    pub log_format: LogFormat,
    pub engine: EngineSettings,
    pub store: StoreSettings,
    pub results: ResultsSettings,
    pub cluster: ClusterSettings,
    pub limits: Limits,
    /// The user's own tables, served beside the fixtures.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tables: Vec<UserTable>,
    /// Users and their credentials; none configured = any credentials accepted (see README).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<User>,
    pub luminesce: dialect::luminesce::Settings,
    pub asterixdb: dialect::asterixdb::Settings,
    pub looker: dialect::looker::Settings,
    pub kylin: dialect::kylin::Settings,
    /// The control plane for contract tests (`/_polyquery/`): admin API, fault rules, dashboard.
    pub admin: crate::control::Settings,
}

/// Where job records and the fronts' side records are kept.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// A PostgreSQL URL (`postgres://user@host:port/db`); absent = the data directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Where results and exports are written.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ResultsSettings {
    /// `file:///path`, a directory every instance of a cluster shares; absent = the data
    /// directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl ResultsSettings {
    /// The directory `url` names, if any.
    pub fn dir(&self) -> Result<Option<PathBuf>, String> {
        let Some(url) = &self.url else {
            return Ok(None);
        };
        match url.strip_prefix("file://") {
            Some(path) if path.starts_with('/') => Ok(Some(PathBuf::from(path))),
            _ if url.starts_with("s3://") => Err(format!(
                "results.url = {url:?}: results on S3 are not built yet; use file:///path"
            )),
            _ => Err(format!(
                "results.url = {url:?}: expected file:///absolute/path"
            )),
        }
    }
}

/// How the instances of a cluster (several on one `store.url`) keep track of each other.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSettings {
    /// How long an instance's jobs stay its own without a heartbeat; then a survivor takes over.
    pub lease_ms: u64,
    /// What a survivor does with the unfinished jobs of an instance that is gone.
    pub on_owner_loss: OwnerLoss,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            lease_ms: 5000,
            on_owner_loss: OwnerLoss::Fail,
        }
    }
}

/// What happens to the unfinished jobs of a dead instance.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OwnerLoss {
    /// They fail with the "interrupted" error.
    #[default]
    Fail,
    /// A survivor runs them again, once (a job that writes Drive files is failed instead).
    Rerun,
}

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The job engine's knobs.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    /// Queries that run at once.
    pub workers: usize,
    /// Queries that may wait for a worker before submissions are refused as busy.
    pub queue_length: usize,
    /// Megabytes of results kept in memory; beyond it results are read from their files.
    pub result_memory_mb: usize,
    /// DataFusion partitions per query (default: one per core). Any number returns the same rows
    /// in the same order on every run.
    pub partitions: usize,
    /// Threads of the query runtime (apart from the HTTP runtime).
    pub exec_threads: usize,
    /// Milliseconds between sweeps for expired jobs.
    pub reaper_interval_ms: u64,
    /// The largest result one job may keep, in megabytes and in rows; a job past either fails.
    pub max_result_mb: u64,
    pub max_result_rows: u64,
    /// Megabytes all result files together may take in the data directory.
    pub data_budget_mb: u64,
    /// Live jobs one principal may have at once.
    pub max_jobs_per_principal: usize,
    /// The longest a finished job is kept, in seconds, whatever its wire asked for.
    pub max_keep_for_secs: u64,
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            workers: 4,
            queue_length: 1000,
            result_memory_mb: 256,
            partitions: crate::exec::datafusion::default_partitions(),
            exec_threads: 2,
            reaper_interval_ms: 1000,
            max_result_mb: 2048,
            max_result_rows: 100_000_000,
            data_budget_mb: 20_480,
            max_jobs_per_principal: 10_000,
            max_keep_for_secs: 31 * 24 * 3600,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: default_data_dir(),
            allow_anonymous: false,
            log_format: LogFormat::Text,
            engine: EngineSettings::default(),
            store: StoreSettings::default(),
            results: ResultsSettings::default(),
            cluster: ClusterSettings::default(),
            limits: Limits::default(),
            tables: Vec::new(),
            users: Vec::new(),
            luminesce: Default::default(),
            asterixdb: Default::default(),
            looker: Default::default(),
            kylin: Default::default(),
            admin: Default::default(),
        }
    }
}

/// The user's cache directory when there is one, else ./polyquery-data.
fn default_data_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    match cache {
        Some(dir) if dir.is_dir() => dir.join("polyquery"),
        _ => PathBuf::from("polyquery-data"),
    }
}

/// A configuration problem, said in one line naming the source, the key and the problem.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// The prefix of polyquery's environment variables.
pub const ENV_PREFIX: &str = "POLYQUERY_";

/// Variables with the prefix that are not settings: the configuration file's path, the log filter
/// (`POLYQUERY_LOG=debug`), and the tooling's (`scripts/sdk-env` reads `POLYQUERY_VENV`,
/// `scripts/test` exports `POLYQUERY_PYTHON`, `scripts/cluster` reads `POLYQUERY_BIN`).
const NOT_SETTINGS: [&str; 5] = ["BIN", "CONFIG", "LOG", "PYTHON", "VENV"];

impl Config {
    /// Builds the configuration: the file (if any), then the environment, then `overrides`
    /// (`key=value` pairs from the command line), later ones winning.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &[(String, String)],
    ) -> Result<Config, ConfigError> {
        let mut table = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| ConfigError(format!("{}: cannot read: {e}", path.display())))?;
                toml::from_str::<toml::Table>(&text).map_err(|e| {
                    ConfigError(format!("{}: {}", path.display(), one_line(e.message())))
                })?
            }
            None => toml::Table::new(),
        };
        for (name, value) in env {
            let Some(key) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            if key.is_empty() || NOT_SETTINGS.contains(&key) {
                continue;
            }
            let key = key.to_lowercase().replace("__", ".");
            set(&mut table, &key, &value)
                .map_err(|e| ConfigError(format!("environment {name}: {e}")))?;
        }
        for (key, value) in overrides {
            set(&mut table, key, value).map_err(|e| ConfigError(format!("--set {key}: {e}")))?;
        }
        let source = file
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "configuration".into());
        // Deserialized from text, so that an error carries a position to name its key by.
        let text = toml::to_string(&table).map_err(|e| ConfigError(format!("{source}: {e}")))?;
        toml::from_str::<Config>(&text)
            .map_err(|e| {
                let key = e
                    .span()
                    .map(|span| key_at(&text, span.start))
                    .unwrap_or_default();
                ConfigError(format!("{source}: {key}{}", one_line(e.message())))
            })
            .and_then(|config| {
                config
                    .admin
                    .check()
                    .map_err(|e| ConfigError(format!("{source}: admin.faults: {e}")))?;
                Ok(config)
            })
    }

    pub fn engine_config(&self) -> Result<EngineConfig, String> {
        Ok(EngineConfig {
            data_dir: self.data_dir.clone(),
            workers: self.engine.workers,
            queue_length: self.engine.queue_length,
            result_memory_budget: self.engine.result_memory_mb.saturating_mul(1 << 20),
            max_result_bytes: self.engine.max_result_mb.saturating_mul(1 << 20),
            max_result_rows: self.engine.max_result_rows,
            disk_budget: self.engine.data_budget_mb.saturating_mul(1 << 20),
            max_jobs_per_principal: self.engine.max_jobs_per_principal,
            max_keep_for: Duration::from_secs(self.engine.max_keep_for_secs),
            reaper_interval: Duration::from_millis(self.engine.reaper_interval_ms.max(10)),
            exec_threads: self.engine.exec_threads,
            thread_name: "pq-query".into(),
            results_dir: self.results.dir()?,
            lease: Duration::from_millis(self.cluster.lease_ms.max(100)),
            rerun_orphans: self.cluster.on_owner_loss == OwnerLoss::Rerun,
        })
    }

    /// Every address polyquery binds, with its key: `listen` and each dialect's own `listen`.
    pub fn bound_addresses(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut addresses = vec![("listen", self.listen)];
        let extra = [
            ("luminesce.listen", self.luminesce.listen),
            ("asterixdb.listen", self.asterixdb.listen),
            ("looker.listen", self.looker.listen),
            ("kylin.listen", self.kylin.listen),
        ];
        addresses.extend(extra.into_iter().filter_map(|(k, a)| a.map(|a| (k, a))));
        addresses
    }

    /// Refuses to serve anonymously beyond this machine: every bound address must be a loopback
    /// one, unless users are configured or `allow_anonymous` says so.
    pub fn check_exposure(&self) -> Result<(), ConfigError> {
        if !self.admin.has_credentials()
            && let Some((key, addr)) = self
                .bound_addresses()
                .into_iter()
                .find(|(_, addr)| self.admin.served_on(*addr) && !addr.ip().is_loopback())
        {
            return Err(ConfigError(format!(
                "refusing to serve the admin API on {addr} (`{key}`) without admin credentials: \
                 anyone could reset polyquery. Set admin.token (or admin.user and admin.password)"
            )));
        }
        if !self.users.is_empty() || self.allow_anonymous {
            return Ok(());
        }
        match self
            .bound_addresses()
            .into_iter()
            .find(|(_, addr)| !addr.ip().is_loopback())
        {
            Some((key, addr)) => Err(ConfigError(format!(
                "refusing to serve {addr} (`{key}`) without users configured: anyone could run \
                 queries. Configure [[users]] or pass --allow-anonymous"
            ))),
            None => Ok(()),
        }
    }

    /// Every dotted key with its default value, for `serve --help` and the README.
    pub fn documented_keys() -> Vec<(String, String)> {
        let mut keys = Vec::new();
        if let Ok(toml::Value::Table(t)) = toml::Value::try_from(Config::default()) {
            flatten("", &t, &mut keys);
        }
        keys
    }
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => flatten(&key, t, out),
            other => out.push((key, other.to_string())),
        }
    }
}

/// Sets a dotted key, reading the value as a TOML value when it is one (numbers, booleans) and as a
/// string otherwise.
fn set(table: &mut toml::Table, key: &str, raw: &str) -> Result<(), String> {
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut parts: Vec<&str> = key.split('.').collect();
    let Some(last) = parts.pop() else {
        return Err("empty key".into());
    };
    let mut node = table;
    for part in parts {
        let entry = node
            .entry(part.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(t) => t,
            _ => return Err(format!("`{part}` is not a section")),
        };
    }
    node.insert(last.to_string(), value);
    Ok(())
}

/// The dotted key on the line holding byte `at` of a TOML text, as "`key`: " (empty if none).
fn key_at(text: &str, at: usize) -> String {
    let before = &text[..at.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let Some((key, _)) = line.split_once('=') else {
        return String::new();
    };
    let section = before[..line_start]
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .map(|s| s.trim_matches(|c| c == '[' || c == ']'));
    match section {
        Some(s) => format!("`{s}.{}`: ", key.trim()),
        None => format!("`{}`: ", key.trim()),
    }
}

fn one_line(message: &str) -> String {
    message.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn file_then_environment_then_flags() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("polyquery.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:9000\"\n[engine]\nworkers = 2\nqueue_length = 5\n",
        )
        .unwrap();
        let config = Config::load(
            Some(&file),
            env(&[
                ("POLYQUERY_ENGINE__WORKERS", "3"),
                ("POLYQUERY_DATA_DIR", "/tmp/x"),
                ("POLYQUERY_PYTHON", "/venv/bin/python"),
                ("HOME", "/root"),
            ]),
            &[("engine.workers".into(), "7".into())],
        )
        .unwrap();
        assert_eq!(config.listen, "127.0.0.1:9000".parse().unwrap());
        assert_eq!(config.engine.workers, 7);
        assert_eq!(config.engine.queue_length, 5);
        assert_eq!(config.data_dir, PathBuf::from("/tmp/x"));
    }

    #[test]
    fn a_bad_key_names_the_file_and_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "[engine]\nwrokers = 2\n").unwrap();
        let e = Config::load(Some(&file), env(&[]), &[]).unwrap_err().0;
        assert!(e.starts_with(&file.display().to_string()), "{e}");
        assert!(e.contains("`engine.wrokers`: unknown field"), "{e}");
        assert!(!e.contains('\n'));
        let e = Config::load(None, env(&[("POLYQUERY_ENGINE__WORKERS", "many")]), &[])
            .unwrap_err()
            .0;
        assert!(e.contains("`engine.workers`") && e.contains("many"), "{e}");
    }

    #[test]
    fn every_bound_address_must_be_loopback_when_anonymous() {
        let load = |pairs: &[(&str, &str)]| {
            let flags: Vec<(String, String)> = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            Config::load(None, env(&[]), &flags).unwrap()
        };
        assert!(load(&[]).check_exposure().is_ok());
        assert!(
            load(&[("asterixdb.listen", "\"127.0.0.1:19002\"")])
                .check_exposure()
                .is_ok()
        );
        for key in [
            "listen",
            "luminesce.listen",
            "asterixdb.listen",
            "looker.listen",
            "kylin.listen",
        ] {
            let config = load(&[(key, "\"0.0.0.0:19002\"")]);
            let e = config.check_exposure().unwrap_err().0;
            assert!(e.contains(key) && e.contains("0.0.0.0:19002"), "{e}");
            let mut allowed = config.clone();
            allowed.allow_anonymous = true;
            assert!(allowed.check_exposure().is_ok());
            let mut with_users = config;
            with_users.users.push(User {
                name: "alice".into(),
                password: Some("secret".into()),
                token: None,
                admin: false,
            });
            assert!(with_users.check_exposure().is_ok(), "{key}");
        }
    }

    #[test]
    fn every_key_is_documented_with_its_default() {
        let keys = Config::documented_keys();
        for key in [
            "listen",
            "data_dir",
            "engine.workers",
            "limits.max_body_bytes",
            "asterixdb.profile",
        ] {
            assert!(
                keys.iter().any(|(k, _)| k == key),
                "{key} missing from {keys:?}"
            );
        }
    }
}
