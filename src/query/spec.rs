//! The typed description of a job: what a dialect says when it submits one.

use std::collections::BTreeMap;
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
    /// Wire metadata the dialect needs again later (AsterixDB `client_context_id`, Kylin's file options).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
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
            tags: BTreeMap::new(),
        }
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
