//! Fault rules: which requests or jobs a rule matches, and what it does to them. Job acts (latency,
//! fail, not ready, expire) are handed to the engine when a job is submitted; request acts (throttle,
//! cut) are applied by the server around the front's answer. Every rule draws its latencies from a
//! random generator of its own, seeded, so a run is reproducible.

use std::sync::Mutex;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::SeedableRng;
use rand_distr::{Distribution, LogNormal, Normal, Uniform};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::engine::{FaultSource, JobFault};
use crate::query::{EngineError, ErrorKind, JobSpec};

/// The longest latency a rule may add (a distribution's draws are clamped to it).
pub const MAX_LATENCY: Duration = Duration::from_secs(600);
/// The longest regular expression a rule may carry, and the most memory it may compile to.
const MAX_PATTERN_CHARS: usize = 1000;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A fault rule as the admin API and the configuration file spell it.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// A name for logs, the journal and the dashboard; default `rule-<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `luminesce`, `asterixdb`, `looker` or `kylin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dialect: Option<String>,
    /// The HTTP method (any case).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// A regular expression searched in the request path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The principal's name (a user name, or `anonymous@<ip>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// A regular expression searched in the job's SQL (the client's own, before any rewrite).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// Regular expressions searched in a Looker query's model and explore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explore: Option<String>,
    /// Applies to the next N matches only (requests for request acts, jobs for job acts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u32>,
    /// Seeds this rule's latencies; default: the configured `admin.seed` plus the rule's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    pub act: Act,
}

/// What a rule does.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Act {
    /// The job runs `ms` longer.
    Latency { ms: u64 },
    /// The job runs longer by a draw from a uniform distribution.
    Uniform { min_ms: f64, max_ms: f64 },
    /// ... from a normal distribution (negative draws count as 0).
    Normal { mean_ms: f64, std_dev_ms: f64 },
    /// ... from a log-normal distribution of this median and shape (σ of the log).
    LogNormal { median_ms: f64, sigma: f64 },
    /// The job fails with this error, which each wire renders as its own failure.
    Fail {
        #[serde(default = "execution")]
        kind: ErrorKind,
        message: String,
    },
    /// The job's status polls answer "running" this many times after its result is complete.
    NotReady { polls: u32 },
    /// The request is answered with the wire's own 429 or 503 and `Retry-After`.
    Throttle {
        status: u16,
        #[serde(default = "one")]
        retry_after_secs: u64,
    },
    /// The response is cut off after this many body bytes (the connection closes mid-body).
    Cut { after_bytes: usize },
    /// The job expires this long after it ends.
    Expire { after_ms: u64 },
}

impl Default for Act {
    fn default() -> Self {
        Act::Latency { ms: 0 }
    }
}

fn execution() -> ErrorKind {
    ErrorKind::Execution
}

fn one() -> u64 {
    1
}

impl Act {
    /// Whether the act is done to a request (by the server) rather than to a job (by the engine).
    fn on_request(&self) -> bool {
        matches!(self, Act::Throttle { .. } | Act::Cut { .. })
    }
}

/// A request act, for the server to apply.
#[derive(Clone, Debug, PartialEq)]
pub enum RequestAct {
    Throttle {
        status: hyper::StatusCode,
        retry_after_secs: u64,
    },
    Cut {
        after_bytes: usize,
    },
}

/// What a rule is matched against: the request being answered (known for requests, and for jobs
/// submitted while one is answered) and the job.
#[derive(Clone, Debug, Default)]
pub struct Facts {
    pub dialect: String,
    pub method: String,
    pub path: String,
    /// The principal, when the credentials name it without a session (Bearer, Basic).
    pub principal: Option<String>,
}

tokio::task_local! {
    /// The request the current task answers, so that a job submitted while answering it can be
    /// matched by route too.
    pub static REQUEST: Facts;
}

/// A rule as kept: its spec, its compiled patterns, what is left of it, and its random generator.
struct Rule {
    id: u64,
    spec: RuleSpec,
    route: Option<Regex>,
    sql: Option<Regex>,
    model: Option<Regex>,
    explore: Option<Regex>,
    latency: Option<Sampler>,
    remaining: Option<u32>,
    hits: u64,
    rng: ChaCha8Rng,
}

/// A latency distribution, validated.
#[derive(Clone, Copy)]
enum Sampler {
    Fixed(f64),
    Uniform(Uniform<f64>),
    Normal(Normal<f64>),
    LogNormal(LogNormal<f64>),
}

impl Sampler {
    fn draw(&self, rng: &mut ChaCha8Rng) -> Duration {
        let ms = match self {
            Sampler::Fixed(ms) => *ms,
            Sampler::Uniform(d) => d.sample(rng),
            Sampler::Normal(d) => d.sample(rng),
            Sampler::LogNormal(d) => d.sample(rng),
        };
        Duration::from_secs_f64((ms.max(0.0) / 1000.0).min(MAX_LATENCY.as_secs_f64()))
    }
}

/// A rule the admin API or the configuration refuses, said for the caller.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct BadRule(pub String);

pub(super) fn pattern(field: &str, text: &Option<String>) -> Result<Option<Regex>, BadRule> {
    let Some(text) = text else { return Ok(None) };
    if text.chars().count() > MAX_PATTERN_CHARS {
        return Err(BadRule(format!(
            "`{field}` is longer than {MAX_PATTERN_CHARS} characters"
        )));
    }
    RegexBuilder::new(text)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map(Some)
        .map_err(|e| BadRule(format!("`{field}` is not a usable regular expression: {e}")))
}

fn sampler(act: &Act) -> Result<Option<Sampler>, BadRule> {
    let bad = |e: &dyn std::fmt::Display| BadRule(format!("the latency distribution: {e}"));
    let finite = |values: &[f64]| {
        if values.iter().all(|v| v.is_finite() && *v >= 0.0) {
            Ok(())
        } else {
            Err(BadRule(
                "latency parameters must be finite and not negative".into(),
            ))
        }
    };
    Ok(Some(match *act {
        Act::Latency { ms } => Sampler::Fixed(ms as f64),
        Act::Uniform { min_ms, max_ms } => {
            finite(&[min_ms, max_ms])?;
            Sampler::Uniform(Uniform::new_inclusive(min_ms, max_ms).map_err(|e| bad(&e))?)
        }
        Act::Normal {
            mean_ms,
            std_dev_ms,
        } => {
            finite(&[mean_ms, std_dev_ms])?;
            Sampler::Normal(Normal::new(mean_ms, std_dev_ms).map_err(|e| bad(&e))?)
        }
        Act::LogNormal { median_ms, sigma } => {
            finite(&[median_ms, sigma])?;
            if median_ms <= 0.0 {
                return Err(BadRule("`median_ms` must be more than 0".into()));
            }
            Sampler::LogNormal(LogNormal::new(median_ms.ln(), sigma).map_err(|e| bad(&e))?)
        }
        _ => return Ok(None),
    }))
}

impl Rule {
    fn new(id: u64, mut spec: RuleSpec, default_seed: u64) -> Result<Rule, BadRule> {
        const DIALECTS: [&str; 4] = ["luminesce", "asterixdb", "looker", "kylin"];
        if let Some(d) = &spec.dialect
            && !DIALECTS.contains(&d.as_str())
        {
            return Err(BadRule(format!(
                "`dialect` is `{d}`; it is one of {}",
                DIALECTS.join(", ")
            )));
        }
        if spec.act.on_request()
            && (spec.sql.is_some() || spec.model.is_some() || spec.explore.is_some())
        {
            return Err(BadRule(
                "a throttle or cut matches requests, which have no SQL, model or explore to match"
                    .into(),
            ));
        }
        match &spec.act {
            Act::Throttle { status, .. } if *status != 429 && *status != 503 => {
                return Err(BadRule(format!(
                    "a throttle answers 429 or 503, not {status}"
                )));
            }
            Act::Fail { message, .. } if message.trim().is_empty() => {
                return Err(BadRule("a fail act needs a `message`".into()));
            }
            Act::Latency { ms } if *ms > MAX_LATENCY.as_millis() as u64 => {
                return Err(BadRule(format!(
                    "latency is at most {} ms",
                    MAX_LATENCY.as_millis()
                )));
            }
            _ => {}
        }
        let seed = spec.seed.unwrap_or(default_seed.wrapping_add(id));
        spec.name.get_or_insert_with(|| format!("rule-{id}"));
        Ok(Rule {
            id,
            route: pattern("route", &spec.route)?,
            sql: pattern("sql", &spec.sql)?,
            model: pattern("model", &spec.model)?,
            explore: pattern("explore", &spec.explore)?,
            latency: sampler(&spec.act)?,
            remaining: spec.times,
            hits: 0,
            rng: ChaCha8Rng::seed_from_u64(seed),
            spec,
        })
    }

    fn name(&self) -> &str {
        self.spec.name.as_deref().unwrap_or_default()
    }

    fn live(&self) -> bool {
        self.remaining != Some(0)
    }

    /// Whether the request (or the request a job came with) matches this rule's request fields.
    fn matches_request(&self, facts: Option<&Facts>) -> bool {
        let s = &self.spec;
        let needs_request = s.method.is_some() || s.route.is_some();
        match facts {
            None => !needs_request,
            Some(f) => {
                s.method
                    .as_ref()
                    .is_none_or(|m| m.eq_ignore_ascii_case(&f.method))
                    && self.route.as_ref().is_none_or(|r| r.is_match(&f.path))
            }
        }
    }

    fn matches_job(&self, spec: &JobSpec, facts: Option<&Facts>) -> bool {
        let s = &self.spec;
        let looker = || crate::dialect::looker::model_and_explore(spec);
        s.dialect.as_ref().is_none_or(|d| *d == spec.dialect)
            && s.principal.as_ref().is_none_or(|p| *p == spec.owner.name())
            && self.sql.as_ref().is_none_or(|r| r.is_match(&spec.sql))
            && self
                .model
                .as_ref()
                .is_none_or(|m| looker().is_some_and(|(model, _)| m.is_match(&model)))
            && self
                .explore
                .as_ref()
                .is_none_or(|e| looker().is_some_and(|(_, explore)| e.is_match(&explore)))
            && self.matches_request(facts)
    }

    /// Counts a match against `times`.
    fn spend(&mut self) {
        self.hits += 1;
        if let Some(n) = self.remaining.as_mut() {
            *n = n.saturating_sub(1);
        }
    }
}

/// A rule as the admin API shows it.
#[derive(Clone, Debug, Serialize)]
pub struct RuleView {
    pub id: u64,
    #[serde(flatten)]
    pub spec: RuleSpec,
    /// Matches left (when `times` was given).
    pub remaining: Option<u32>,
    /// Requests or jobs it has matched.
    pub hits: u64,
}

/// The rules in force, in the order they are tried. Bounded; behind one lock, held only to match.
pub struct RuleSet {
    inner: Mutex<Rules>,
    max_rules: usize,
    seed: u64,
    configured: Vec<RuleSpec>,
}

struct Rules {
    list: Vec<Rule>,
    next_id: u64,
}

impl RuleSet {
    /// The rule set with the configured rules in force.
    pub fn new(configured: Vec<RuleSpec>, seed: u64, max_rules: usize) -> Result<RuleSet, BadRule> {
        let set = RuleSet {
            max_rules: max_rules.max(configured.len()),
            configured,
            ..RuleSet::empty(seed, max_rules)
        };
        set.restore()?;
        Ok(set)
    }

    /// No rules at all (and none to restore).
    pub fn empty(seed: u64, max_rules: usize) -> RuleSet {
        RuleSet {
            inner: Mutex::new(Rules {
                list: Vec::new(),
                next_id: 1,
            }),
            max_rules,
            seed,
            configured: Vec::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Rules> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Back to the configured rules, their counts and random generators afresh.
    pub fn restore(&self) -> Result<(), BadRule> {
        let mut rules = self.lock();
        rules.list.clear();
        rules.next_id = 1;
        drop(rules);
        self.add(self.configured.clone()).map(|_| ())
    }

    /// Adds rules after those in force (all or none); answers them as kept.
    pub fn add(&self, specs: Vec<RuleSpec>) -> Result<Vec<RuleView>, BadRule> {
        let mut rules = self.lock();
        if rules.list.len() + specs.len() > self.max_rules {
            return Err(BadRule(format!(
                "at most {} rules may be in force; {} are",
                self.max_rules,
                rules.list.len()
            )));
        }
        let mut added = Vec::with_capacity(specs.len());
        for (i, spec) in specs.into_iter().enumerate() {
            let id = rules.next_id + i as u64;
            added.push(
                Rule::new(id, spec, self.seed)
                    .map_err(|e| BadRule(format!("rule {}: {}", i + 1, e.0)))?,
            );
        }
        rules.next_id += added.len() as u64;
        let views = added.iter().map(view).collect();
        rules.list.extend(added);
        Ok(views)
    }

    /// Removes one rule; false if there was none of that id.
    pub fn remove(&self, id: u64) -> bool {
        let mut rules = self.lock();
        let before = rules.list.len();
        rules.list.retain(|r| r.id != id);
        rules.list.len() != before
    }

    /// Removes every rule, configured ones too (until the next reset).
    pub fn clear(&self) {
        self.lock().list.clear();
    }

    pub fn list(&self) -> Vec<RuleView> {
        self.lock().list.iter().map(view).collect()
    }

    /// The request act of the first live rule the request matches (spending one of its times).
    pub fn request_act(&self, facts: &Facts) -> Option<(String, RequestAct)> {
        let mut rules = self.lock();
        let rule = rules.list.iter_mut().find(|r| {
            r.live()
                && r.spec.act.on_request()
                && r.spec.dialect.as_ref().is_none_or(|d| *d == facts.dialect)
                && r.spec
                    .principal
                    .as_ref()
                    .is_none_or(|p| facts.principal.as_ref() == Some(p))
                && r.matches_request(Some(facts))
        })?;
        rule.spend();
        let act = match rule.spec.act {
            Act::Throttle {
                status,
                retry_after_secs,
            } => RequestAct::Throttle {
                status: hyper::StatusCode::from_u16(status)
                    .unwrap_or(hyper::StatusCode::SERVICE_UNAVAILABLE),
                retry_after_secs,
            },
            Act::Cut { after_bytes } => RequestAct::Cut { after_bytes },
            _ => return None,
        };
        Some((rule.name().to_string(), act))
    }

    /// The fault of a job: each kind of act from the first live rule that matches and has one.
    pub fn job_fault(&self, spec: &JobSpec, facts: Option<&Facts>) -> Option<JobFault> {
        let mut rules = self.lock();
        let mut fault = JobFault::default();
        let mut names = Vec::new();
        for rule in rules.list.iter_mut() {
            if !rule.live() || rule.spec.act.on_request() || !rule.matches_job(spec, facts) {
                continue;
            }
            let applied = match &rule.spec.act {
                Act::Fail { kind, message } if fault.fail.is_none() => {
                    fault.fail = Some(EngineError::new(*kind, message.clone()));
                    true
                }
                Act::NotReady { polls } if fault.not_ready_polls == 0 => {
                    fault.not_ready_polls = *polls;
                    true
                }
                Act::Expire { after_ms } if fault.expire_after.is_none() => {
                    fault.expire_after = Some(Duration::from_millis(*after_ms));
                    true
                }
                _ => match rule.latency {
                    Some(sampler) if fault.latency.is_none() => {
                        fault.latency = Some(sampler.draw(&mut rule.rng));
                        true
                    }
                    _ => false,
                },
            };
            if applied {
                rule.spend();
                names.push(rule.name().to_string());
            }
        }
        (!names.is_empty()).then(|| JobFault {
            rule: names.join(", "),
            ..fault
        })
    }
}

fn view(rule: &Rule) -> RuleView {
    RuleView {
        id: rule.id,
        spec: rule.spec.clone(),
        remaining: rule.remaining,
        hits: rule.hits,
    }
}

impl FaultSource for RuleSet {
    fn job_fault(&self, spec: &JobSpec) -> Option<JobFault> {
        let facts = REQUEST.try_with(Facts::clone).ok();
        RuleSet::job_fault(self, spec, facts.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::Principal;

    fn rule(json: serde_json::Value) -> RuleSpec {
        serde_json::from_value(json).unwrap()
    }

    fn job(dialect: &str, owner: &str, sql: &str) -> JobSpec {
        JobSpec::new(sql, Principal::user(owner), dialect)
    }

    fn latencies(set: &RuleSet, n: usize) -> Vec<Duration> {
        (0..n)
            .map(|_| {
                set.job_fault(&job("kylin", "a", "select 1"), None)
                    .and_then(|f| f.latency)
                    .unwrap()
            })
            .collect()
    }

    #[test]
    fn seeded_distributions_repeat_their_draws() {
        for act in [
            serde_json::json!({"type": "uniform", "min_ms": 10, "max_ms": 500}),
            serde_json::json!({"type": "normal", "mean_ms": 200, "std_dev_ms": 50}),
            serde_json::json!({"type": "log_normal", "median_ms": 100, "sigma": 0.8}),
        ] {
            let spec = rule(serde_json::json!({ "act": act }));
            let one = RuleSet::new(vec![spec.clone()], 7, 10).unwrap();
            let two = RuleSet::new(vec![spec.clone()], 7, 10).unwrap();
            let other = RuleSet::new(vec![spec], 8, 10).unwrap();
            let drawn = latencies(&one, 20);
            assert_eq!(drawn, latencies(&two, 20), "{act}");
            assert_ne!(drawn, latencies(&other, 20), "{act}");
            // A reset restores the generator: the same draws again.
            one.restore().unwrap();
            assert_eq!(drawn, latencies(&one, 20), "{act}");
        }
    }

    #[test]
    fn bad_rules_are_refused_with_a_reason() {
        for (json, reason) in [
            (
                serde_json::json!({"sql": "(", "act": {"type": "latency", "ms": 1}}),
                "regular expression",
            ),
            (
                serde_json::json!({"sql": "a".repeat(1001), "act": {"type": "latency", "ms": 1}}),
                "longer than",
            ),
            (
                serde_json::json!({"sql": "\\w{1000}{1000}", "act": {"type": "latency", "ms": 1}}),
                "regular expression",
            ),
            (
                serde_json::json!({"dialect": "oracle", "act": {"type": "latency", "ms": 1}}),
                "`dialect`",
            ),
            (
                serde_json::json!({"act": {"type": "throttle", "status": 500}}),
                "429 or 503",
            ),
            (
                serde_json::json!({"sql": "x", "act": {"type": "cut", "after_bytes": 1}}),
                "no SQL",
            ),
            (
                serde_json::json!({"act": {"type": "fail", "message": " "}}),
                "message",
            ),
            (
                serde_json::json!({"act": {"type": "normal", "mean_ms": 1, "std_dev_ms": -1}}),
                "not negative",
            ),
            (
                serde_json::json!({"act": {"type": "uniform", "min_ms": 5, "max_ms": 1}}),
                "distribution",
            ),
            (
                serde_json::json!({"act": {"type": "latency", "ms": 600001}}),
                "at most",
            ),
        ] {
            let spec = rule(json.clone());
            let err = RuleSet::new(vec![spec], 0, 10).err().unwrap();
            assert!(err.0.contains(reason), "{json}: {err}");
        }
        let too_many = vec![rule(serde_json::json!({"act": {"type": "latency", "ms": 1}})); 3];
        let set = RuleSet::new(Vec::new(), 0, 2).unwrap();
        assert!(set.add(too_many).is_err());
        assert!(set.list().is_empty(), "all or nothing");
    }

    #[test]
    fn job_rules_match_dialect_principal_sql_and_times() {
        let set = RuleSet::new(
            vec![
                rule(serde_json::json!({"dialect": "kylin", "principal": "alice", "sql": "(?i)from\\s+orders", "times": 2, "act": {"type": "fail", "message": "boom"}})),
                rule(serde_json::json!({"route": "^/x", "act": {"type": "not_ready", "polls": 3}})),
                rule(serde_json::json!({"act": {"type": "expire", "after_ms": 5}})),
            ],
            0,
            10,
        )
        .unwrap();
        let facts = |path: &str| Facts {
            path: path.into(),
            ..Facts::default()
        };
        let fails = |d: &str, who: &str, sql: &str| {
            set.job_fault(&job(d, who, sql), Some(&facts("/y")))
                .and_then(|f| f.fail)
                .is_some()
        };
        assert!(!fails("looker", "alice", "select * FROM orders"));
        assert!(!fails("kylin", "bob", "select * FROM orders"));
        assert!(!fails("kylin", "alice", "select * FROM users"));
        assert!(fails("kylin", "alice", "select * FROM orders"));
        assert!(fails("kylin", "alice", "select * from  orders"));
        assert!(
            !fails("kylin", "alice", "select * from orders"),
            "times spent"
        );
        let fault = set
            .job_fault(&job("kylin", "a", "s"), Some(&facts("/x/1")))
            .unwrap();
        assert_eq!(fault.not_ready_polls, 3);
        assert_eq!(fault.expire_after, Some(Duration::from_millis(5)));
        // A job submitted outside any request never matches a route.
        assert_eq!(
            set.job_fault(&job("kylin", "a", "s"), None)
                .unwrap()
                .not_ready_polls,
            0
        );
    }

    #[test]
    fn request_rules_count_down_and_match_the_request() {
        let set = RuleSet::new(
            vec![rule(serde_json::json!({"dialect": "looker", "method": "get", "route": "/query_tasks/", "times": 2, "act": {"type": "throttle", "status": 503, "retry_after_secs": 3}}))],
            0,
            10,
        )
        .unwrap();
        let facts = |dialect: &str, method: &str| Facts {
            dialect: dialect.into(),
            method: method.into(),
            path: "/api/4.0/query_tasks/abc".into(),
            principal: None,
        };
        assert_eq!(set.request_act(&facts("kylin", "GET")), None);
        assert_eq!(set.request_act(&facts("looker", "POST")), None);
        let expected = Some((
            "rule-1".to_string(),
            RequestAct::Throttle {
                status: hyper::StatusCode::SERVICE_UNAVAILABLE,
                retry_after_secs: 3,
            },
        ));
        assert_eq!(set.request_act(&facts("looker", "GET")), expected);
        assert_eq!(set.request_act(&facts("looker", "GET")), expected);
        assert_eq!(set.request_act(&facts("looker", "GET")), None);
        assert_eq!(set.list()[0].hits, 2);
    }
}
