//! The job engine, driven directly: lifecycle, cancellation, timeouts, restart, expiry, reshaping.

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
    let e = engine.submit(spec("SELEC 1")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Syntax);
    assert!(e.message.contains("SELEC"), "{e}");
    let e = engine.submit(spec("CREATE TABLE t (a INT)")).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Unsupported);
    let e = engine.submit(spec("SELECT 1; SELECT 2")).unwrap_err();
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
    let id = engine.submit(spec(sql)).unwrap();
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
async fn a_timeout_ends_the_job_and_its_cpu_work() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::engine_config(dir.path());
    config.thread_name = "pq-timeout".into();
    let engine = Engine::start(config, support::executor().await).unwrap();
    let mut s = spec(LONG_AGGREGATE);
    s.limits.timeout = Some(Duration::from_millis(600));
    let (_, record) = run(&engine, s).await;
    assert_eq!(record.state, JobState::TimedOut);
    assert_eq!(record.error.unwrap().kind, ErrorKind::TimedOut);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let settled = support::thread_cpu_seconds("pq-timeout");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(
        support::thread_cpu_seconds("pq-timeout") - settled < 0.1,
        "CPU still burning after the timeout"
    );
}

#[tokio::test]
async fn a_full_queue_answers_busy_and_leaves_other_jobs_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = support::engine_config(dir.path());
    config.workers = 1;
    config.queue_length = 1;
    let engine = Engine::start(config, support::executor().await).unwrap();
    let running = engine.submit(spec(LONG_SCAN)).unwrap();
    wait_for_state(&engine, running, JobState::Running).await;
    let queued = engine.submit(spec("SELECT 1")).unwrap();
    let e = engine.submit(spec("SELECT 2")).unwrap_err();
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
    let blocker = engine.submit(spec(LONG_SCAN)).unwrap();
    wait_for_state(&engine, blocker, JobState::Running).await;
    let queued = engine.submit(spec("SELECT 1")).unwrap();
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
        let running = engine.submit(spec(LONG_SCAN)).unwrap();
        wait_for_state(&engine, running, JobState::Running).await;
        // A copy of the data directory taken now is what a process killed at this moment leaves behind.
        copy_dir(dir.path(), crashed.path());
        let bytes = std::fs::read(engine.result_path(done)).unwrap();
        engine.shutdown();
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
        let next = engine.submit(spec("SELECT 1")).unwrap();
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
    let mut stream = engine.reshape(id, &reshape).await.unwrap();
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
        .reshape(id, &reshape)
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
    let (engine, _dir) = engine().await;
    let (id, _) = run(&engine, spec("SELECT 42")).await;
    assert_eq!(
        engine.find_identical(
            &Principal::user("tester"),
            "SELECT 42",
            Duration::from_secs(60)
        ),
        Some(id)
    );
    assert_eq!(
        engine.find_identical(
            &Principal::user("someone else"),
            "SELECT 42",
            Duration::from_secs(60)
        ),
        None
    );
    assert_eq!(
        engine.find_identical(
            &Principal::user("tester"),
            "SELECT 43",
            Duration::from_secs(60)
        ),
        None
    );
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(
        engine.find_identical(
            &Principal::user("tester"),
            "SELECT 42",
            Duration::from_millis(1)
        ),
        None
    );
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
