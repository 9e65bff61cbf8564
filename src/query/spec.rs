//! The typed description of a job: what a dialect says when it submits one.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::params::Params;
use super::principal::Principal;

/// How long a job may run, how long its result is kept, and how many rows it may keep.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// `None` = unlimited.
    #[serde(with = "opt_millis")]
    pub timeout: Option<Duration>,
    /// How long a finished job (and its result) is kept before it expires.
    #[serde(with = "millis")]
    pub keep_for: Duration,
    /// Rows beyond this are not kept; `None` = all.
    pub row_limit: Option<u64>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: None,
            keep_for: Duration::from_secs(3600),
            row_limit: None,
        }
    }
}

/// Everything a dialect says when it submits a job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct JobSpec {
    /// The SQL the client sent, shown back to it as is.
    pub sql: String,
    /// The SQL the executor runs (the dialect's rewrite into the engine's dialect); empty = `sql`.
    #[serde(default)]
    pub exec_sql: String,
    pub params: Params,
    /// The principal that owns the job; other principals cannot see it.
    pub owner: Principal,
    /// The wire that started it (`luminesce`, `asterixdb`, `looker`, `kylin`, `cli`, ...).
    pub dialect: String,
    /// A client-chosen name (Luminesce `queryName`), if any.
    pub name: Option<String>,
    pub limits: Limits,
    /// What the wire that started the job keeps for its later reads (AsterixDB's output options,
    /// Kylin's file options, a Looker task's query and format), typed by that wire: see
    /// [`WireMeta`]. Stored with the job as JSON; other wires ignore it.
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub meta: serde_json::Value,
    /// Files the job writes before its own query runs (Luminesce's `Drive.SaveAs`), in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub saves: Vec<SaveStep>,
    /// A pause before the job's work begins (Luminesce's `WAIT`), under its timeout and cancel.
    #[serde(default, with = "opt_millis", skip_serializing_if = "Option::is_none")]
    pub wait: Option<Duration>,
}

/// A query whose rows a job writes to a file before its own query runs: under the job's worker,
/// timeout and cancel, written whole through the engine's save area (or not at all).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SaveStep {
    /// The query whose rows are written, in the executor's SQL (bound to the job's parameters).
    pub sql: String,
    /// The save area's directory, and the file's path inside it (relative, checked by the front).
    pub root: std::path::PathBuf,
    pub path: std::path::PathBuf,
    /// The encoder's format name (`crate::encode::Format::name`).
    pub format: String,
    /// Writes no file when the query has no rows.
    pub skip_if_empty: bool,
    /// The named parameter that tells the job's own query how many rows were written.
    pub rows_param: String,
}

/// A wire's own metadata about its jobs. Each wire has one such type, read back only from the jobs
/// that wire started.
pub trait WireMeta: Serialize + serde::de::DeserializeOwned {
    /// The wire (`JobSpec::dialect`) whose jobs carry it.
    const DIALECT: &'static str;
}

impl JobSpec {
    pub fn new(sql: impl Into<String>, owner: Principal, dialect: impl Into<String>) -> Self {
        JobSpec {
            sql: sql.into(),
            exec_sql: String::new(),
            params: Params::default(),
            owner,
            dialect: dialect.into(),
            name: None,
            limits: Limits::default(),
            meta: serde_json::Value::Null,
            saves: Vec::new(),
            wait: None,
        }
    }

    /// Keeps the wire's metadata with the job.
    pub fn set_meta<M: WireMeta>(&mut self, meta: &M) {
        self.meta = serde_json::to_value(meta).unwrap_or_default();
    }

    /// The wire's metadata, when this job is that wire's (and its metadata reads as `M`).
    pub fn meta<M: WireMeta>(&self) -> Option<M> {
        if self.dialect != M::DIALECT || self.meta.is_null() {
            return None;
        }
        M::deserialize(&self.meta).ok()
    }

    /// The SQL to execute.
    pub fn runnable_sql(&self) -> &str {
        if self.exec_sql.is_empty() {
            &self.sql
        } else {
            &self.exec_sql
        }
    }
}

mod millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis().min(u64::MAX as u128) as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis().min(u64::MAX as u128) as u64)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Kept {
        format: String,
    }

    impl WireMeta for Kept {
        const DIALECT: &'static str = "one";
    }

    #[test]
    fn a_wire_reads_back_only_its_own_metadata() {
        let kept = Kept {
            format: "csv".into(),
        };
        let mut own = JobSpec::new("select 1", Principal::user("u"), "one");
        assert_eq!(own.meta::<Kept>(), None, "nothing kept yet");
        own.set_meta(&kept);
        let reloaded: JobSpec =
            serde_json::from_str(&serde_json::to_string(&own).unwrap()).unwrap();
        assert_eq!(reloaded.meta::<Kept>(), Some(kept));
        let mut other = JobSpec::new("select 1", Principal::user("u"), "two");
        other.meta = own.meta.clone();
        assert_eq!(other.meta::<Kept>(), None, "another wire's job");
    }
}
