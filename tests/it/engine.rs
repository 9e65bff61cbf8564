//! The job engine, driven directly: lifecycle, cancellation, timeouts, restart, expiry, reshaping.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::array::{Array, Int64Array, StringArray};
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use polyquery::engine::{
    Engine, ErrorKind, INTERRUPTED, JobRef, JobState, Limits, Params, Principal,
};
use polyquery::sql::reshape::Reshape;

use crate::support::{self, engine, run, spec, wait_for_state};

/// Far more work than any test waits for: only cancellation or a timeout ends it.
const LONG_SCAN: &str = "SELECT value FROM range(100000000000) WHERE value < 0";
const LONG_AGGREGATE: &str =
    "SELECT value % 7 AS k, sum(value) AS s FROM range(100000000000) GROUP BY value % 7";
/// A join that multiplies its input: one batch in, thousands out, every one of them written.
const LONG_CROSS_JOIN: &str =
    "SELECT a.value AS x, b.value AS y FROM range(100000) a CROSS JOIN range(100000) b";
/// The same inside an aggregate, so nothing is written and nothing reaches the job's own loop.
const LONG_CROSS_SUM: &str =
    "SELECT sum(a.value + b.value) AS s FROM range(1000000) a CROSS JOIN range(1000000) b";

fn rows(engine: &Engine, id: polyquery::engine::JobId) -> Vec<RecordBatch> {
    engine
        .read(id)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap()
}

fn ints(batches: &[RecordBatch], column: usize) -> Vec<i64> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column(column)
                .as_any()
                .downcast_ref::<Int64Array>()
                .expect("an Int64 column")
                .clone();
            (0..a.len()).map(move |i| a.value(i))
        })
        .collect()
}

#[tokio::test]
async fn a_job_goes_queued_running_succeeded_and_keeps_its_rows() {
    let (engine, _dir) = engine().await;
    let id = engine
        .submit(spec("SELECT value * 2 AS doubled FROM range(5)"))
        .await
        .unwrap();
    let first = engine.get(id).unwrap();
    assert!(matches!(
        first.state,
        JobState::Queued | JobState::Running | JobState::Succeeded
    ));
    let done = engine.wait(id, Duration::from_secs(30)).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.row_count, Some(5));
    assert!(
        done.created <= done.started.unwrap() && done.started.unwrap() <= done.finished.unwrap()
    );
    assert_eq!(done.schema.as_ref().unwrap().field(0).name(), "doubled");
    assert_eq!(ints(&rows(&engine, id), 0), vec![0, 2, 4, 6, 8]);
    let log: Vec<&str> = done.log.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(log[0], "Query queued");
    assert_eq!(log[1], "Query started");
    assert!(log[2].starts_with("Query completed: 5 rows"), "{log:?}");
}

#[tokio::test]
async fn syntax_errors_are_refused_at_submit_and_plan_errors_fail_the_job() {
    let (engine, _dir) = engine().await;
    let e = engine.submit(spec("SELEC 1")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert!(e.message.contains("SELEC"), "{e}");
    let e = engine
        .submit(spec("CREATE TABLE t (a INT)"))
        .await
        .unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    let e = engine.submit(spec("SELECT 1; SELECT 2")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);

    let (id, record) = run(&engine, spec("SELECT * FROM no_such_table")).await;
    assert_eq!(record.state, JobState::Failed);
    let error = record.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Plan);
    assert!(error.message.contains("no_such_table"), "{error:?}");
    assert_eq!(engine.read(id).unwrap_err().kind, ErrorKind::Plan);
}

#[tokio::test]
async fn a_runtime_error_fails_the_job_with_its_message() {
    let (engine, _dir) = engine().await;
    let (_, record) = run(&engine, spec("SELECT CAST('not a number' AS INT) AS n")).await;
    assert_eq!(record.state, JobState::Failed);
    let error = record.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Execution, "{error:?}");
    assert!(error.message.contains("not a number"), "{error:?}");
}

#[tokio::test]
async fn parameters_bind_by_position_and_by_name() {
    let (engine, _dir) = engine().await;
    let mut s = spec("SELECT $1 + 1 AS a, $2 AS b");
    s.params = Params {
        positional: vec![41.into(), "x".into()],
        ..Default::default()
    };
    let (id, record) = run(&engine, s).await;
    assert_eq!(record.state, JobState::Succeeded, "{record:?}");
    assert_eq!(ints(&rows(&engine, id), 0), vec![42]);

    let mut s = spec("SELECT value FROM range(10) WHERE value > $low");
    s.params.named.insert("low".into(), 7.into());
    let (id, _) = run(&engine, s).await;
    assert_eq!(ints(&rows(&engine, id), 0), vec![8, 9]);
}

#[tokio::test]
async fn the_same_query_returns_the_same_rows_in_the_same_order() {
    let (engine, _dir) = engine().await;
    let sql = "SELECT value % 13 AS k, count(*) AS n FROM range(200000) GROUP BY value % 13";
    let (a, _) = run(&engine, spec(sql)).await;
    let (b, _) = run(&engine, spec(sql)).await;
    let (ra, rb) = (rows(&engine, a), rows(&engine, b));
    assert_eq!(ints(&ra, 0), ints(&rb, 0));
    assert_eq!(ints(&ra, 0).len(), 13);
}

#[tokio::test]
async fn every_wire_form_of_an_id_names_the_same_job() {
    let (engine, _dir) = engine().await;
    let (id, _) = run(&engine, spec("SELECT 1")).await;
    for form in [id.to_uuid(), id.to_hex(), id.to_handle()] {
        assert_eq!(
            engine.resolve(JobRef::parse(&form).unwrap()),
            Some(id),
            "{form}"
        );
    }
    assert_eq!(engine.resolve(JobRef::Seq(id.seq + 1000)), None);
}

/// Cancels a job that burns CPU and checks that its threads stop burning it within a second.
async fn cancel_stops_the_work(sql: &str, thread_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::engine_config(dir.path());
    config.thread_name = thread_name.into();
    let engine = Engine::start(config, support::executor().await).unwrap();
    let id = engine.submit(spec(sql)).await.unwrap();
    wait_for_state(&engine, id, JobState::Running).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    let busy = support::thread_cpu_seconds(thread_name);
    assert!(
        busy > 0.1,
        "the query should be burning CPU before the cancel ({busy} s)"
    );

    let before = engine.cancel(id).unwrap();
    assert_eq!(before.state, JobState::Running);
    let now = engine.get(id).unwrap();
    assert_eq!(now.state, JobState::Cancelled, "cancel is reported at once");
    assert_eq!(now.error.unwrap().kind, ErrorKind::Cancelled);

    tokio::time::sleep(Duration::from_millis(1000)).await;
    let settled = support::thread_cpu_seconds(thread_name);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = support::thread_cpu_seconds(thread_name);
    assert!(
        after - settled < 0.1,
        "CPU still burning a second after cancel: {settled} s -> {after} s"
    );
    assert_eq!(engine.read(id).unwrap_err().kind, ErrorKind::Cancelled);
    assert_no_result_files(dir.path(), "a cancelled job");
}

/// Asserts that the data directory holds no result file (a job that ended early left none).
fn assert_no_result_files(dir: &std::path::Path, what: &str) {
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("results")).unwrap().collect();
    assert!(leftovers.is_empty(), "{what} left files: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_long_scan_stops_its_cpu_work() {
    cancel_stops_the_work(LONG_SCAN, "pq-cancel-scan").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_long_aggregate_stops_its_cpu_work() {
    cancel_stops_the_work(LONG_AGGREGATE, "pq-cancel-agg").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_cross_join_stops_its_cpu_work_and_its_writing() {
    cancel_stops_the_work(LONG_CROSS_JOIN, "pq-cancel-cross").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_cross_join_aggregate_stops_its_cpu_work() {
    cancel_stops_the_work(LONG_CROSS_SUM, "pq-cancel-csum").await;
}

/// Runs `sql` with a 600 ms timeout and checks that the job times out and its threads go idle.
async fn timeout_stops_the_work(sql: &str, thread_name: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::engine_config(dir.path());
    config.thread_name = thread_name.into();
    let engine = Engine::start(config, support::executor().await).unwrap();
    let mut s = spec(sql);
    s.limits.timeout = Some(Duration::from_millis(600));
    let (_, record) = run(&engine, s).await;
    assert_eq!(record.state, JobState::TimedOut);
    assert_eq!(record.error.unwrap().kind, ErrorKind::TimedOut);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = support::thread_cpu_seconds(thread_name);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        support::thread_cpu_seconds(thread_name) - settled < 0.1,
        "CPU still burning after the timeout"
    );
    assert_no_result_files(dir.path(), "a timed-out job");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_ends_the_job_and_its_cpu_work() {
    timeout_stops_the_work(LONG_AGGREGATE, "pq-timeout").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_ends_a_cross_join_and_its_writing() {
    timeout_stops_the_work(LONG_CROSS_JOIN, "pq-timeout-cross").await;
}

#[tokio::test]
async fn a_full_queue_answers_busy_and_leaves_other_jobs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::engine_config(dir.path());
    config.workers = 1;
    config.queue_length = 1;
    let engine = Engine::start(config, support::executor().await).unwrap();
    let running = engine.submit(spec(LONG_SCAN)).await.unwrap();
    wait_for_state(&engine, running, JobState::Running).await;
    let queued = engine.submit(spec("SELECT 1")).await.unwrap();
    let e = engine.submit(spec("SELECT 2")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Busy);
    assert_eq!(engine.get(queued).unwrap().state, JobState::Queued);
    engine.cancel(running).unwrap();
    let done = engine.wait(queued, Duration::from_secs(30)).await.unwrap();
    assert_eq!(done.state, JobState::Succeeded);
}

#[tokio::test]
async fn a_queued_job_can_be_cancelled_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::engine_config(dir.path());
    config.workers = 1;
    let engine = Engine::start(config, support::executor().await).unwrap();
    let blocker = engine.submit(spec(LONG_SCAN)).await.unwrap();
    wait_for_state(&engine, blocker, JobState::Running).await;
    let queued = engine.submit(spec("SELECT 1")).await.unwrap();
    assert_eq!(engine.cancel(queued).unwrap().state, JobState::Queued);
    engine.cancel(blocker).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let r = engine.get(queued).unwrap();
    assert_eq!(r.state, JobState::Cancelled);
    assert!(r.started.is_none(), "a cancelled queued job never starts");
}

#[tokio::test]
async fn row_limit_keeps_only_that_many_rows() {
    let (engine, _dir) = engine().await;
    let mut s = spec("SELECT value FROM range(100000)");
    s.limits.row_limit = Some(10_001);
    let (id, record) = run(&engine, s).await;
    assert_eq!(record.row_count, Some(10_001));
    assert_eq!(ints(&rows(&engine, id), 0).len(), 10_001);
}

#[tokio::test]
async fn feedback_gives_each_reader_only_what_it_has_not_seen() {
    let (engine, _dir) = engine().await;
    let (id, _) = run(&engine, spec("SELECT 1")).await;
    let first = engine
        .feedback(id, &Principal::user("alice"), false)
        .unwrap();
    assert_eq!(first.len(), 3);
    assert!(
        engine
            .feedback(id, &Principal::user("alice"), false)
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        engine
            .feedback(id, &Principal::user("bob"), false)
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        engine
            .feedback(id, &Principal::user("alice"), true)
            .unwrap()
            .len(),
        3
    );
}

#[tokio::test]
async fn results_survive_a_restart_byte_for_byte_and_unfinished_jobs_fail_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let crashed = tempfile::tempdir().unwrap();
    let (done, file_bytes, running) = {
        let engine = Engine::start(
            support::engine_config(dir.path()),
            support::executor().await,
        )
        .unwrap();
        let (done, _) = run(
            &engine,
            spec("SELECT value, concat('row ', CAST(value AS VARCHAR)) AS label FROM range(1000)"),
        )
        .await;
        let running = engine.submit(spec(LONG_SCAN)).await.unwrap();
        wait_for_state(&engine, running, JobState::Running).await;
        // A copy of the data directory taken now is what a process killed at this moment leaves behind.
        copy_dir(dir.path(), crashed.path());
        let bytes = std::fs::read(engine.result_path(done)).unwrap();
        engine.shutdown().await;
        let r = engine.get(running).unwrap();
        assert_eq!(
            r.state,
            JobState::Failed,
            "graceful shutdown marks running jobs interrupted"
        );
        (done, bytes, running)
    };
    for data in [dir.path(), crashed.path()] {
        let engine =
            Engine::start(support::engine_config(data), support::executor().await).unwrap();
        let r = engine.get(done).unwrap();
        assert_eq!(r.state, JobState::Succeeded);
        assert_eq!(r.row_count, Some(1000));
        assert_eq!(r.schema.unwrap().field(1).name(), "label");
        assert_eq!(std::fs::read(engine.result_path(done)).unwrap(), file_bytes);
        assert_eq!(ints(&rows(&engine, done), 0), (0..1000).collect::<Vec<_>>());
        let r = engine.get(running).unwrap();
        assert_eq!(r.state, JobState::Failed);
        let error = r.error.unwrap();
        assert_eq!(error.kind, ErrorKind::Interrupted);
        assert_eq!(error.message, INTERRUPTED);
        let next = engine.submit(spec("SELECT 1")).await.unwrap();
        assert!(
            next.seq > running.seq,
            "sequence numbers continue after a restart"
        );
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[tokio::test]
async fn an_expired_job_is_gone_with_its_files() {
    let (engine, dir) = engine().await;
    let mut s = spec("SELECT 1 AS one");
    s.limits = Limits {
        keep_for: Duration::from_millis(300),
        ..Default::default()
    };
    let (id, _) = run(&engine, s).await;
    let result = engine.result_path(id);
    let record = dir
        .path()
        .join("jobs")
        .join(format!("{}.json", id.to_uuid()));
    assert!(result.exists() && record.exists());
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(engine.get(id).unwrap_err().kind, ErrorKind::NotFound);
    assert!(!result.exists(), "result file removed");
    assert!(!record.exists(), "job record removed");
    assert!(engine.list(None).iter().all(|r| r.id != id));
}

#[tokio::test]
async fn results_over_the_memory_budget_are_read_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::engine_config(dir.path());
    config.result_memory_budget = 0;
    let engine = Engine::start(config, support::executor().await).unwrap();
    let (id, _) = run(&engine, spec("SELECT value FROM range(50000)")).await;
    assert_eq!(engine.result_memory_used(), 0);
    assert_eq!(ints(&rows(&engine, id), 0), (0..50000).collect::<Vec<_>>());
}

const PEOPLE: &str = "SELECT * FROM (VALUES (1, 'ann', 'x'), (2, 'bob', 'y'), (3, 'cy', 'x'), (4, 'di', 'x'), (5, 'ed', 'y')) AS t(Id, Name, Team)";

async fn reshaped(
    engine: &Engine,
    id: polyquery::engine::JobId,
    reshape: Reshape,
) -> Vec<RecordBatch> {
    let mut stream = engine
        .reshape(id, &reshape, Duration::from_secs(60))
        .await
        .unwrap();
    let mut out = Vec::new();
    while let Some(b) = stream.next().await {
        out.push(b.unwrap());
    }
    out
}

fn strings(batches: &[RecordBatch], column: usize) -> Vec<String> {
    batches
        .iter()
        .flat_map(|b| {
            let a = b
                .column(column)
                .as_any()
                .downcast_ref::<StringArray>()
                .expect("a string column")
                .clone();
            (0..a.len()).map(move |i| a.value(i).to_string())
        })
        .collect()
}

async fn filter_error(engine: &Engine, id: polyquery::engine::JobId, filter: &str) -> ErrorKind {
    let reshape = Reshape {
        filter: vec![filter.into()],
        ..Default::default()
    };
    engine
        .reshape(id, &reshape, Duration::from_secs(60))
        .await
        .err()
        .expect("the filter should be refused")
        .kind
}

#[tokio::test]
async fn reshaping_selects_filters_sorts_groups_and_pages_a_finished_result() {
    for budget in [256 << 20, 0] {
        let dir = tempfile::tempdir().unwrap();
        let mut config = support::engine_config(dir.path());
        config.result_memory_budget = budget;
        let engine = Engine::start(config, support::executor().await).unwrap();
        let (id, record) = run(&engine, spec(PEOPLE)).await;
        assert_eq!(record.state, JobState::Succeeded, "{record:?}");

        let out = reshaped(
            &engine,
            id,
            Reshape {
                filter: vec!["team = 'x'".into()],
                sort: Reshape::parse_sort("-id").unwrap(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(strings(&out, 1), ["di", "cy", "ann"]);

        let out = reshaped(
            &engine,
            id,
            Reshape {
                select: Some("name".into()),
                sort: Reshape::parse_sort("1").unwrap(),
                limit: Some(2),
                offset: Some(2),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(strings(&out, 0), ["cy", "di"]);

        let out = reshaped(
            &engine,
            id,
            Reshape {
                select: Some("Team, count(*) as n".into()),
                group_by: Some("1".into()),
                sort: Reshape::parse_sort("-n").unwrap(),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(strings(&out, 0), ["x", "y"]);
        assert_eq!(ints(&out, 1), [3, 2]);
        assert_eq!(out[0].schema().field(1).name(), "n");

        assert_eq!(
            filter_error(&engine, id, "nosuch > 1").await,
            ErrorKind::Plan
        );
        assert_eq!(filter_error(&engine, id, "id >").await, ErrorKind::Syntax);
    }
}

#[tokio::test]
async fn identical_queries_of_one_owner_are_reused_within_the_window() {
    use polyquery::engine::{JobId, JobSpec, ParamValue, Reuse};
    let (engine, _dir) = engine().await;
    let (id, _) = run(&engine, spec("SELECT 42")).await;
    let running = engine.submit(spec(LONG_SCAN)).await.unwrap();
    wait_for_state(&engine, running, JobState::Running).await;
    tokio::time::sleep(Duration::from_millis(30)).await;
    let minute = Duration::from_secs(60);
    let someone_else = |mut s: JobSpec| {
        s.owner = Principal::user("someone else");
        s
    };
    let with_param = |mut s: JobSpec| {
        s.params
            .named
            .insert("p".into(), ParamValue::String("x".into()));
        s
    };
    // (what, the new job, within, unfinished, the wire takes the earlier for the same, expected)
    type Case = (&'static str, JobSpec, Duration, bool, bool, Option<JobId>);
    let cases: Vec<Case> = vec![
        (
            "identical",
            spec("SELECT 42"),
            minute,
            false,
            true,
            Some(id),
        ),
        (
            "another owner",
            someone_else(spec("SELECT 42")),
            minute,
            false,
            true,
            None,
        ),
        ("other SQL", spec("SELECT 43"), minute, false, true, None),
        (
            "other parameters",
            with_param(spec("SELECT 42")),
            minute,
            false,
            true,
            None,
        ),
        (
            "the wire says not the same",
            spec("SELECT 42"),
            minute,
            false,
            false,
            None,
        ),
        (
            "past the window",
            spec("SELECT 42"),
            Duration::from_millis(1),
            false,
            true,
            None,
        ),
        (
            "still running, allowed",
            spec(LONG_SCAN),
            minute,
            true,
            true,
            Some(running),
        ),
        (
            "still running, not allowed",
            spec(LONG_SCAN),
            minute,
            false,
            true,
            None,
        ),
    ];
    for (what, new, within, unfinished, same, expected) in cases {
        let reuse = Reuse { within, unfinished };
        assert_eq!(
            engine.find_reusable(&new, reuse, |_| same),
            expected,
            "{what}"
        );
    }
    engine.cancel(running).unwrap();
}

#[tokio::test]
async fn removing_a_job_forgets_it_and_someone_elses_job_is_unknown() {
    let (engine, _dir) = engine().await;
    let (id, _) = run(&engine, spec("SELECT 1")).await;
    assert_eq!(
        engine
            .get_for(id, &Principal::user("intruder"))
            .unwrap_err()
            .kind,
        ErrorKind::NotFound
    );
    assert!(engine.get_for(id, &Principal::user("tester")).is_ok());
    let before = engine.remove(id).unwrap();
    assert_eq!(before.state, JobState::Succeeded);
    assert_eq!(engine.get(id).unwrap_err().kind, ErrorKind::NotFound);
    assert!(!engine.result_path(id).exists());
}

// ---- work inside the engine's limits --------------------------------------------------------------

/// A reshape piece that reads the result three times over (a billion rows from a 1000-row result;
/// a sum, since a count would be answered from the tables' statistics without reading a row).
const CROSS_JOIN_FILTER: &str =
    r#"(SELECT sum(a."Int" + b."Int" + c."Int") FROM result a, result b, result c) > 0"#;

/// A server with one worker, whose query threads are named `thread_name`, and a finished
/// 1000-row Luminesce job on it.
async fn one_worker_server(
    thread_name: &str,
    request_timeout_secs: u64,
) -> (support::TestServer, reqwest::Client, String) {
    let mut config = polyquery::config::Config::default();
    config.engine.workers = 1;
    config.limits.request_timeout_secs = request_timeout_secs;
    let server = support::TestServer::start_with(config, thread_name, None).await;
    let http = reqwest::Client::new();
    let started: serde_json::Value = http
        .put(server.url("/honeycomb/api/SqlBackground"))
        .bearer_auth("me")
        .body("select [Int] from Testing1K")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["executionId"].as_str().unwrap().to_string();
    let job = server.engine.resolve(JobRef::parse(&id).unwrap()).unwrap();
    server
        .engine
        .wait(job, Duration::from_secs(30))
        .await
        .unwrap();
    (server, http, id)
}

fn cross_join_fetch(server: &support::TestServer, id: &str) -> String {
    let filter: String = url_escape(CROSS_JOIN_FILTER);
    server.url(&format!(
        "/honeycomb/api/SqlBackground/{id}/csv?sqlFilter={filter}"
    ))
}

fn url_escape(text: &str) -> String {
    serde_urlencoded::to_string([("x", text)]).unwrap()[2..].to_string()
}

/// With the single worker free again, a new job runs at once; and the query threads are idle.
async fn the_worker_is_free_and_idle(server: &support::TestServer, thread_name: &str) {
    let (_, record) = tokio::time::timeout(
        Duration::from_secs(5),
        run(&server.engine, spec("SELECT 1")),
    )
    .await
    .expect("a job behind the stopped reshape never ran");
    assert_eq!(record.state, JobState::Succeeded);
    let settled = support::thread_cpu_seconds(thread_name);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let after = support::thread_cpu_seconds(thread_name);
    assert!(
        after - settled < 0.2,
        "the reshape still burns CPU: {settled} s -> {after} s"
    );
}

#[tokio::test]
async fn a_reshape_stops_at_the_request_timeout_and_frees_its_worker() {
    let (server, http, id) = one_worker_server("pq-reshape-timeout", 3).await;
    let began = std::time::Instant::now();
    let response = http
        .get(cross_join_fetch(&server, &id))
        .bearer_auth("me")
        .send()
        .await
        .unwrap();
    let answered = began.elapsed();
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert!(
        answered < Duration::from_secs(6),
        "the reshape ran past its timeout: {answered:?}"
    );
    assert_eq!(
        status,
        reqwest::StatusCode::BAD_REQUEST,
        "a reshape that timed out before its first row is Luminesce's error: {body}"
    );
    assert!(body.contains("longer than"), "{body}");
    the_worker_is_free_and_idle(&server, "pq-reshape-timeout").await;
}

#[tokio::test]
async fn a_reshape_stops_when_its_client_hangs_up() {
    let (server, _, id) = one_worker_server("pq-reshape-hangup", 120).await;
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(800))
        .build()
        .unwrap();
    let gave_up = impatient
        .get(cross_join_fetch(&server, &id))
        .bearer_auth("me")
        .send()
        .await;
    assert!(
        gave_up.is_err(),
        "the client should have given up before any answer"
    );
    the_worker_is_free_and_idle(&server, "pq-reshape-hangup").await;
}

/// A job store whose writes of succeeded jobs wait until the test lets them go.
struct StallingStore {
    inner: polyquery::engine::FileJobStore,
    stalled: std::sync::Mutex<bool>,
    released: std::sync::Condvar,
}

impl polyquery::engine::JobStore for StallingStore {
    fn save(
        &self,
        record: &polyquery::engine::JobRecord,
    ) -> Result<bool, polyquery::engine::EngineError> {
        if record.state == JobState::Succeeded {
            let mut stalled = self.stalled.lock().unwrap();
            while *stalled {
                stalled = self.released.wait(stalled).unwrap();
            }
        }
        self.inner.save(record)
    }
    fn remove(&self, id: polyquery::engine::JobId) -> Result<(), polyquery::engine::EngineError> {
        self.inner.remove(id)
    }
    fn load_all(
        &self,
    ) -> Result<Vec<polyquery::engine::JobRecord>, polyquery::engine::EngineError> {
        self.inner.load_all()
    }
    fn sequence_high_water(&self) -> Result<u64, polyquery::engine::EngineError> {
        self.inner.sequence_high_water()
    }
    fn raise_sequence_high_water(&self, seq: u64) -> Result<(), polyquery::engine::EngineError> {
        self.inner.raise_sequence_high_water(seq)
    }
    fn save_side(
        &self,
        table: &str,
        key: &str,
        value: &serde_json::Value,
    ) -> Result<(), polyquery::engine::EngineError> {
        self.inner.save_side(table, key, value)
    }
    fn remove_side(&self, table: &str, key: &str) -> Result<(), polyquery::engine::EngineError> {
        self.inner.remove_side(table, key)
    }
    fn load_side(
        &self,
        table: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, polyquery::engine::EngineError> {
        self.inner.load_side(table)
    }
}

#[tokio::test]
async fn a_status_poll_answers_while_a_job_record_is_being_written() {
    let records = tempfile::tempdir().unwrap();
    let store = Arc::new(StallingStore {
        inner: polyquery::engine::FileJobStore::new(records.path().to_path_buf()).unwrap(),
        stalled: std::sync::Mutex::new(true),
        released: std::sync::Condvar::new(),
    });
    let server = support::TestServer::start_with(
        polyquery::config::Config::default(),
        "pq-stalled-store",
        Some(store.clone()),
    )
    .await;
    let http = reqwest::Client::new();
    let started: serde_json::Value = http
        .put(server.url("/honeycomb/api/SqlBackground"))
        .bearer_auth("me")
        .body("select 1 as x")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = started["executionId"].as_str().unwrap().to_string();
    let job = server.engine.resolve(JobRef::parse(&id).unwrap()).unwrap();
    wait_for_state(&server.engine, job, JobState::Succeeded).await;
    // The record of the finished job is still being written (the store holds it): polls answer.
    for _ in 0..5 {
        let poll = tokio::time::timeout(
            Duration::from_secs(2),
            http.get(server.url(&format!("/honeycomb/api/SqlBackground/{id}")))
                .bearer_auth("me")
                .send(),
        )
        .await
        .expect("a status poll waited on a record write")
        .unwrap();
        assert_eq!(poll.status(), reqwest::StatusCode::OK);
    }
    *store.stalled.lock().unwrap() = false;
    store.released.notify_all();
    let record = server
        .engine
        .wait(job, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(record.state, JobState::Succeeded);
}

#[tokio::test]
async fn sequence_numbers_never_go_back_after_the_newest_job_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let removed = {
        let engine = Engine::start(
            support::engine_config(dir.path()),
            support::executor().await,
        )
        .unwrap();
        run(&engine, spec("SELECT 1")).await;
        let (newest, _) = run(&engine, spec("SELECT 2")).await;
        engine.remove(newest).unwrap();
        engine.shutdown().await;
        newest
    };
    let engine = Engine::start(
        support::engine_config(dir.path()),
        support::executor().await,
    )
    .unwrap();
    let next = engine.submit(spec("SELECT 3")).await.unwrap();
    assert!(
        next.seq > removed.seq,
        "handle {} was handed out again after a restart",
        removed.to_handle()
    );
}

/// The fixtures' executor, except that a query containing `PANIC` panics while it runs.
struct PanickingExecutor(Arc<polyquery::exec::datafusion::DataFusionExecutor>);

impl polyquery::exec::Executor for PanickingExecutor {
    fn check(&self, sql: &str) -> Result<(), polyquery::engine::EngineError> {
        self.0.check(sql)
    }
    fn execute<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params,
    ) -> futures::future::BoxFuture<
        'a,
        Result<datafusion::execution::SendableRecordBatchStream, polyquery::engine::EngineError>,
    > {
        if sql.contains("PANIC") {
            Box::pin(async { panic!("boom inside the executor") })
        } else {
            self.0.execute(sql, params)
        }
    }
    fn execute_over<'a>(
        &'a self,
        sql: &'a str,
        table: &'a str,
        source: polyquery::exec::StoredResult,
    ) -> futures::future::BoxFuture<
        'a,
        Result<datafusion::execution::SendableRecordBatchStream, polyquery::engine::EngineError>,
    > {
        self.0.execute_over(sql, table, source)
    }
    fn describe<'a>(
        &'a self,
        sql: &'a str,
        params: &'a Params,
    ) -> futures::future::BoxFuture<
        'a,
        Result<polyquery::exec::Described, polyquery::engine::EngineError>,
    > {
        self.0.describe(sql, params)
    }
    fn catalog(&self) -> &polyquery::exec::Catalog {
        self.0.catalog()
    }
}

#[tokio::test]
async fn a_panicking_query_fails_its_job_alone_and_the_workers_stay() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::engine_config(dir.path());
    config.workers = 1;
    let engine = Engine::start(
        config,
        Arc::new(PanickingExecutor(support::executor().await)),
    )
    .unwrap();
    // More panics than workers: none of them may take a worker with it.
    for _ in 0..4 {
        let (_, record) = run(&engine, spec("SELECT 'PANIC' AS x")).await;
        assert_eq!(record.state, JobState::Failed);
        let error = record.error.unwrap();
        assert_eq!(error.kind, ErrorKind::Internal);
        assert!(
            error.message.contains("boom inside the executor"),
            "{}",
            error.message
        );
    }
    let (_, record) = run(&engine, spec("SELECT 1")).await;
    assert_eq!(record.state, JobState::Succeeded);
}

#[tokio::test]
async fn a_result_past_its_caps_fails_and_leaves_no_file() {
    let cases = [
        (
            "bytes",
            1u64 << 20,
            u64::MAX,
            "SELECT value FROM range(1000000)",
        ),
        ("rows", u64::MAX, 1000, "SELECT value FROM range(5000)"),
    ];
    for (cap, max_bytes, max_rows, sql) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut config = support::engine_config(dir.path());
        config.max_result_bytes = max_bytes;
        config.max_result_rows = max_rows;
        let engine = Engine::start(config, support::executor().await).unwrap();
        let (_, record) = run(&engine, spec(sql)).await;
        assert_eq!(record.state, JobState::Failed, "{cap}");
        let error = record.error.unwrap();
        assert_eq!(error.kind, ErrorKind::Limit, "{cap}: {}", error.message);
        assert!(
            error.message.contains("larger than a job may keep"),
            "{cap}: {}",
            error.message
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("results"))
            .unwrap()
            .collect();
        assert!(leftovers.is_empty(), "{cap}: {leftovers:?}");
        let (_, small) = run(&engine, spec("SELECT 1")).await;
        assert_eq!(small.state, JobState::Succeeded, "{cap}");
    }
}

#[tokio::test]
async fn the_data_directory_budget_fails_the_job_that_would_pass_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::engine_config(dir.path());
    config.disk_budget = 1 << 20;
    let engine = Engine::start(config, support::executor().await).unwrap();
    // About 0.8 MB each: the first fits, the second does not while the first is kept.
    let big = "SELECT value FROM range(100000)";
    let (first, record) = run(&engine, spec(big)).await;
    assert_eq!(record.state, JobState::Succeeded);
    let (_, record) = run(&engine, spec(big)).await;
    assert_eq!(record.state, JobState::Failed);
    let error = record.error.unwrap();
    assert_eq!(error.kind, ErrorKind::Limit);
    assert!(
        error.message.contains("data directory is full"),
        "{}",
        error.message
    );
    engine.remove(first).unwrap();
    let (_, record) = run(&engine, spec(big)).await;
    assert_eq!(
        record.state,
        JobState::Succeeded,
        "removing a result frees its share"
    );
}

#[tokio::test]
async fn one_principal_may_keep_only_so_many_jobs_and_none_for_ever() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::engine_config(dir.path());
    config.max_jobs_per_principal = 2;
    config.max_keep_for = Duration::from_secs(60);
    let engine = Engine::start(config, support::executor().await).unwrap();
    let mut kept_for_ever = spec("SELECT 1");
    kept_for_ever.limits.keep_for = Duration::from_secs(u64::MAX / 4);
    let (first, record) = run(&engine, kept_for_ever).await;
    assert_eq!(record.spec.limits.keep_for, Duration::from_secs(60));
    run(&engine, spec("SELECT 2")).await;
    let e = engine.submit(spec("SELECT 3")).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Busy, "{}", e.message);
    let mut other = spec("SELECT 4");
    other.owner = Principal::user("someone else");
    assert!(
        engine.submit(other).await.is_ok(),
        "the cap is per principal"
    );
    engine.remove(first).unwrap();
    assert!(engine.submit(spec("SELECT 5")).await.is_ok());
}

/// What a wire that scopes tables checks: the tables a statement reads once planned, with CTEs that
/// shadow a table name, aliases and subqueries resolved to what they really read.
#[tokio::test]
async fn tables_read_are_the_planned_statements_real_tables() {
    let (engine, _dir) = engine().await;
    let cases = [
        ("SELECT 1", vec![]),
        (
            r#"SELECT count(*) FROM (WITH "Testing1K" AS (SELECT 1 AS x) SELECT x FROM "Testing1K") q CROSS JOIN "Testing1K""#,
            vec!["Testing1K"],
        ),
        (
            r#"SELECT * FROM "Testing1K" t WHERE t."Int" IN (SELECT "Int" FROM "Testing1K") AND EXISTS (SELECT 1 FROM "Testing1K")"#,
            vec!["Testing1K"; 3],
        ),
    ];
    for (sql, expected) in cases {
        let mut read = engine
            .describe(sql, &Params::default())
            .await
            .unwrap()
            .tables;
        read.sort();
        assert_eq!(read, expected, "{sql}");
    }
}

/// The result of `sql` as CSV bytes, run as a job of `engine`.
async fn csv_of(engine: &Engine, sql: &str) -> Vec<u8> {
    let (id, record) = run(engine, spec(sql)).await;
    assert_eq!(record.state, JobState::Succeeded, "{sql}: {record:?}");
    let mut out = Vec::new();
    {
        let mut writer = datafusion::arrow::csv::Writer::new(&mut out);
        for batch in rows(engine, id) {
            writer.write(&batch).unwrap();
        }
    }
    engine.remove(id).unwrap();
    out
}

/// Parallel yet deterministic: unordered scans, filters, limits, aggregates and a join over a CSV
/// file split across four partitions answer the same bytes on each of 20 runs, and the scans the
/// same bytes as one partition does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unordered_queries_over_several_partitions_answer_the_same_bytes_every_run() {
    use polyquery::exec::datafusion::{DataFusionExecutor, TableFormat, UserTable};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.csv");
    let mut csv = String::from("id,cat,amount,name\n");
    for i in 0..100_000u64 {
        // About 4 MB: DataFusion splits a file into byte ranges past 1 MB.
        let line = format!(
            "{i},cat-{},{}.25,name-{:08}-{}\n",
            i % 37,
            i % 1000,
            i * 7919 % 100_000,
            "x".repeat(i as usize % 9)
        );
        csv.push_str(&line);
    }
    std::fs::write(&path, csv).unwrap();
    let table = UserTable {
        name: "t".into(),
        path,
        format: TableFormat::Csv,
    };
    let engine_over = |partitions: usize, data: &str| {
        let table = table.clone();
        let data = dir.path().join(data);
        async move {
            let executor = DataFusionExecutor::new(partitions, &[table]).await.unwrap();
            (
                executor.context().clone(),
                Engine::start(support::engine_config(&data), Arc::new(executor)).unwrap(),
            )
        }
    };
    let (context, parallel) = engine_over(4, "parallel").await;
    let (_, single) = engine_over(1, "single").await;
    // The plans really run on four partitions.
    let plan = context
        .sql("select cat, count(*) from t group by cat")
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let shown = datafusion::physical_plan::displayable(plan.as_ref())
        .indent(true)
        .to_string();
    assert!(shown.contains("InOrderConcatExec"), "{shown}");
    assert!(!shown.contains("RepartitionExec"), "{shown}");
    let scans = [
        "select * from t",
        "select id, name from t where id % 7 = 3",
        "select * from t limit 1000",
    ];
    let others = [
        "select cat, count(*), sum(amount) from t group by cat",
        "select name, count(*) as n, min(id) from t group by name",
        "select distinct cat from t",
        "select a.id, b.cat from t a join (select cat, min(id) as id from t group by cat) b on a.id = b.id",
        "select a.id, b.n from t a left join (select cat, count(*) as n from t where id < 50 group by cat) b on a.cat = b.cat where a.id < 5000",
        "select cat, amount from t order by cat limit 50",
    ];
    for sql in scans.iter().chain(others.iter()) {
        let first = csv_of(&parallel, sql).await;
        assert!(
            first.len() > 20,
            "{sql}: {}",
            String::from_utf8_lossy(&first)
        );
        for run in 1..20 {
            assert!(
                csv_of(&parallel, sql).await == first,
                "{sql}: run {run} answered other bytes than run 0"
            );
        }
        if scans.contains(sql) {
            assert!(
                csv_of(&single, sql).await == first,
                "{sql}: four partitions answered other bytes than one"
            );
        }
    }
}
