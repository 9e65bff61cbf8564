//! Prometheus metrics: requests and their latency by dialect and route, bytes sent by format, and
//! jobs by state and dialect (read from the engine at scrape time).

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::engine::{Engine, JobState};

const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 30.0];

/// Counters and histograms kept by the server.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
    bytes: Mutex<BTreeMap<String, u64>>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    pub fn record_request(&self, dialect: &str, route: &str, status: u16, took: Duration) {
        *lock(&self.requests)
            .entry((dialect.into(), route.into(), status))
            .or_default() += 1;
        let mut latency = lock(&self.latency);
        let h = latency.entry((dialect.into(), route.into())).or_default();
        let secs = took.as_secs_f64();
        for (i, le) in BUCKETS.iter().enumerate() {
            if secs <= *le {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += secs;
    }

    pub fn record_bytes(&self, format: &str, n: u64) {
        *lock(&self.bytes).entry(format.into()).or_default() += n;
    }

    /// The Prometheus text exposition.
    pub fn render(&self, engine: &Engine) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP polyquery_requests_total HTTP requests answered.\n# TYPE polyquery_requests_total counter"
        );
        for ((dialect, route, status), n) in lock(&self.requests).iter() {
            let _ = writeln!(
                out,
                "polyquery_requests_total{{dialect=\"{dialect}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP polyquery_request_duration_seconds Time to answer a request (until the response head).\n# TYPE polyquery_request_duration_seconds histogram"
        );
        for ((dialect, route), h) in lock(&self.latency).iter() {
            let labels = format!("dialect=\"{dialect}\",route=\"{route}\"");
            for (le, n) in BUCKETS.iter().zip(h.counts) {
                let _ = writeln!(
                    out,
                    "polyquery_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "polyquery_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "polyquery_request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "polyquery_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP polyquery_bytes_sent_total Result bytes sent, by format.\n# TYPE polyquery_bytes_sent_total counter"
        );
        for (format, n) in lock(&self.bytes).iter() {
            let _ = writeln!(out, "polyquery_bytes_sent_total{{format=\"{format}\"}} {n}");
        }
        let counts = engine.counts();
        let _ = writeln!(
            out,
            "# HELP polyquery_jobs Jobs known, by dialect and state.\n# TYPE polyquery_jobs gauge"
        );
        let mut jobs: Vec<_> = counts.iter().collect();
        jobs.sort_by(|a, b| (&a.0.0, a.0.1.as_str()).cmp(&(&b.0.0, b.0.1.as_str())));
        for ((dialect, state), n) in jobs {
            let _ = writeln!(
                out,
                "polyquery_jobs{{dialect=\"{dialect}\",state=\"{}\"}} {n}",
                state.as_str()
            );
        }
        let queued: u64 = counts
            .iter()
            .filter(|((_, s), _)| *s == JobState::Queued)
            .map(|(_, n)| n)
            .sum();
        let _ = writeln!(
            out,
            "# HELP polyquery_queue_depth Jobs waiting for a worker.\n# TYPE polyquery_queue_depth gauge\npolyquery_queue_depth {queued}"
        );
        let _ = writeln!(
            out,
            "# HELP polyquery_result_memory_bytes Result bytes held in memory.\n# TYPE polyquery_result_memory_bytes gauge\npolyquery_result_memory_bytes {}",
            engine.result_memory_used()
        );
        if let Some((instance, leases, heartbeat)) = engine.cluster_status() {
            let _ = writeln!(
                out,
                "# HELP polyquery_instance_info This instance's id in its cluster.\n# TYPE polyquery_instance_info gauge\npolyquery_instance_info{{instance=\"{instance}\"}} 1"
            );
            let _ = writeln!(
                out,
                "# HELP polyquery_leases Jobs this instance runs under its lease.\n# TYPE polyquery_leases gauge\npolyquery_leases {leases}"
            );
            let _ = writeln!(
                out,
                "# HELP polyquery_store_heartbeat_seconds The last heartbeat's round trip to the job store.\n# TYPE polyquery_store_heartbeat_seconds gauge\npolyquery_store_heartbeat_seconds {}",
                heartbeat.as_secs_f64()
            );
        }
        out
    }
}
