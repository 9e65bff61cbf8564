//! Which fields and metrics each profile prints, and what they are made of.

use super::*;

/// The timings a response's metrics report.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Measures {
    pub(super) elapsed: Duration,
    pub(super) execution: Duration,
    pub(super) compile: Duration,
    pub(super) queue_wait: Duration,
    pub(super) counts: Counts,
    pub(super) errors: u64,
}

/// Which metrics a response carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum MetricSet {
    Full,
    /// master's async answer: elapsed, compile and queue-wait time only.
    AsyncReduced,
    /// The new API's status of a job still going: the four times.
    StatusRunning,
    /// The new API's status of a finished job: the four times and processedObjects.
    StatusDone,
}

/// What a request's `plans` field shows.
#[derive(Clone, Debug, Default)]
pub(super) struct PlanRequest {
    pub(super) asked: Vec<&'static str>,
    pub(super) jdbc: bool,
    pub(super) engine_sql: String,
    /// `compile-only`: the statement's parameters, and that nothing ran.
    pub(super) compiled: Option<Vec<Value>>,
}

impl PlanRequest {
    pub(super) fn new(params: &QueryRequest, engine_sql: &str) -> Self {
        PlanRequest {
            asked: params.plans_asked.clone(),
            jdbc: params.jdbc,
            engine_sql: engine_sql.to_string(),
            compiled: None,
        }
    }
}

/// Which fields and metrics a profile prints; small enough to be copied into a streaming tail.
#[derive(Clone, Copy, Debug)]
pub(super) struct FieldRules {
    pub(super) profile: Profile,
}

impl FieldRules {
    /// `plans` (not in the docs profile): each plan the request asked for, as the SQL the engine
    /// runs, and `statementCategory` for JDBC clients; `{}` when nothing was asked.
    pub(super) fn plans(self, envelope: &mut Envelope, plans: &PlanRequest) {
        if self.profile == Profile::Docs {
            return;
        }
        let mut object = serde_json::Map::new();
        for key in &plans.asked {
            object.insert((*key).to_string(), json!(plans.engine_sql));
        }
        if plans.jdbc {
            object.insert("statementCategory".into(), json!("query"));
        }
        if let Some(parameters) = &plans.compiled {
            object.insert("statementParameters".into(), json!(parameters));
            object.insert("explainOnly".into(), json!(false));
        }
        envelope.plans(&Value::Object(object));
    }

    /// `cachedPlan`: master only.
    pub(super) fn cached_plan(self, envelope: &mut Envelope) {
        if self.profile == Profile::Master {
            envelope.field("cachedPlan", &json!(false));
        }
    }

    pub(super) fn metrics(self, envelope: &mut Envelope, m: &Measures, set: MetricSet) {
        let d = |d: Duration| json!(printer::duration(d, self.profile));
        let mut lines = vec![("elapsedTime", d(m.elapsed))];
        match (self.profile, set) {
            (Profile::Master, MetricSet::AsyncReduced) => {
                lines.push(("compileTime", d(m.compile)));
                lines.push(("queueWaitTime", d(m.queue_wait)));
            }
            (_, MetricSet::StatusRunning | MetricSet::StatusDone) => {
                lines.push(("executionTime", d(m.execution)));
                lines.push(("compileTime", d(m.compile)));
                lines.push(("queueWaitTime", d(m.queue_wait)));
                if set == MetricSet::StatusDone {
                    lines.push(("processedObjects", json!(0)));
                }
            }
            (Profile::Docs, _) => {
                lines.push(("executionTime", d(m.execution)));
                lines.push(("resultCount", json!(m.counts.rows)));
                lines.push(("resultSize", json!(m.counts.size)));
            }
            _ => {
                lines.push(("executionTime", d(m.execution)));
                lines.push(("compileTime", d(m.compile)));
                lines.push(("queueWaitTime", d(m.queue_wait)));
                lines.push(("resultCount", json!(m.counts.rows)));
                lines.push(("resultSize", json!(m.counts.size)));
                lines.push(("processedObjects", json!(0)));
                if m.errors > 0 {
                    lines.push(("bufferCacheHitRatio", json!("0.00%")));
                    lines.push(("bufferCachePageReadCount", json!(0)));
                }
            }
        }
        if m.errors > 0 {
            lines.push(("errorCount", json!(m.errors)));
        }
        envelope.metrics(&lines);
    }
}

/// The envelope after the records of a result read (0.9.9 and master).
pub(super) fn result_tail(
    profile: Profile,
    m: &Measures,
    timings: Option<&JobRecord>,
    created: Option<String>,
) -> String {
    let rules = FieldRules { profile };
    let mut envelope = Envelope::default();
    rules.cached_plan(&mut envelope);
    rules.metrics(&mut envelope, m, MetricSet::Full);
    if let Some(job) = timings {
        envelope.field("profile", &job_profile(job));
    }
    if let Some(created) = created {
        envelope.string("createdAt", &created);
    }
    format!(",\n{}\n}}\n", envelope.joined())
}

/// What `profile=timings` reports about a job: its id and when it was created, started and ended.
pub(super) fn job_profile(job: &JobRecord) -> Value {
    let millis = |t: Option<DateTime<Utc>>| t.map(|t| t.timestamp_millis());
    json!({
        "job-id": format!("JID:{}", job.id.seq),
        "create-time": job.created.timestamp_millis(),
        "start-time": millis(job.started),
        "end-time": millis(job.finished),
    })
}
