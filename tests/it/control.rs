//! The control plane: every fault act seen through every wire in that wire's own shape, reset,
//! the journal and verify, and who may reach the admin API at all.

use std::time::Duration;

use polyquery::config::Config;
use polyquery::control::Enabled;
use polyquery::engine::{JobRecord, JobRef, JobState};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::cross_wire::{ALICE, BOB, Caller, Seen, WIRES, Wire, result_path, status_path};
use crate::support::TestServer;

fn dialect(wire: Wire) -> &'static str {
    match wire {
        Wire::Luminesce => "luminesce",
        Wire::Kylin => "kylin",
        Wire::Looker => "looker",
        Wire::AsterixDb => "asterixdb",
    }
}

async fn admin(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let response = Client::new()
        .request(method, server.url(&format!("/_polyquery{path}")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn admin_get(server: &TestServer, path: &str) -> (StatusCode, Value) {
    admin(server, reqwest::Method::GET, path, Value::Null).await
}

async fn reset_with(server: &TestServer, rule: Value) {
    let (status, body) = admin(server, reqwest::Method::POST, "/reset", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = admin(server, reqwest::Method::POST, "/faults", rule).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

fn record(server: &TestServer, uuid: &str) -> JobRecord {
    let id = server.engine.resolve(JobRef::parse(uuid).unwrap()).unwrap();
    server.engine.get(id).unwrap()
}

/// What one act must make a wire's client see.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// The job succeeds, having run at least this long.
    SlowSuccess(Duration),
    /// The job ends failed with the rule's message.
    Failure,
    /// At least this many status polls say "running" before one says it succeeded.
    RunningPolls(usize),
    /// The job is gone once it ended.
    Expired,
    /// Status reads answer this status with Retry-After, in the wire's error shape, then normally.
    Throttled(u16),
    /// The result's body breaks off.
    CutBody,
}

fn acts() -> Vec<(Value, Expect)> {
    vec![
        (
            json!({"type": "latency", "ms": 300}),
            Expect::SlowSuccess(Duration::from_millis(300)),
        ),
        (
            json!({"type": "fail", "message": "injected by the test"}),
            Expect::Failure,
        ),
        (
            json!({"type": "not_ready", "polls": 3}),
            Expect::RunningPolls(3),
        ),
        (json!({"type": "expire", "after_ms": 200}), Expect::Expired),
        (
            json!({"type": "throttle", "status": 429, "retry_after_secs": 1}),
            Expect::Throttled(429),
        ),
        (
            json!({"type": "throttle", "status": 503, "retry_after_secs": 2}),
            Expect::Throttled(503),
        ),
        (json!({"type": "cut", "after_bytes": 5}), Expect::CutBody),
    ]
}

/// The status `wire` shows for a job, in its own words, and the whole body it came in.
async fn status_word(caller: &Caller, wire: Wire, uuid: &str) -> (String, Value) {
    let response = caller
        .get(wire, &status_path(wire, uuid))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let word = match wire {
        Wire::Kylin => &body["data"]["status"],
        _ => &body["status"],
    };
    (word.as_str().unwrap_or_default().to_string(), body)
}

/// How each wire spells a job not finished yet (queued or running), and a failed one.
fn words(wire: Wire) -> (&'static [&'static str], &'static str) {
    match wire {
        Wire::Luminesce => (&["WaitingForActivation"], "Faulted"),
        Wire::Kylin => (&["RUNNING"], "FAILED"),
        Wire::Looker => (&["added", "running"], "error"),
        Wire::AsterixDb => (&["queued", "running"], "failed"),
    }
}

/// AsterixDB's `POST /query/service` with a form, as alice (the parameters the caller needs are
/// not all in `Caller::start`).
async fn query_service(server: &TestServer, form: &'static str) -> Value {
    let response = Client::new()
        .post(server.url("/query/service"))
        .basic_auth("alice", Some("pw"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form)
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    response.json().await.unwrap()
}

/// The key a wire's "busy" error body carries, and whether it carries the rule's words too (Kylin
/// answers its own fixed text for "too many async queries").
fn busy_shape(wire: Wire) -> (&'static str, bool) {
    match wire {
        Wire::Luminesce => ("detail", true),
        Wire::Kylin => ("error_code", false),
        Wire::Looker => ("message", true),
        Wire::AsterixDb => ("errors", true),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_act_is_seen_through_every_wire_in_its_own_shape() {
    let server = TestServer::start(crate::cross_wire::users_config()).await;
    for (act, expect) in acts() {
        for wire in WIRES {
            let cell = format!("{act} through {wire:?}");
            let mut rule = json!({"dialect": dialect(wire), "act": act, "name": "under-test"});
            match expect {
                // Only the status reads, not the submission.
                Expect::Throttled(_) => {
                    rule["method"] = json!("GET");
                    rule["times"] = json!(2);
                }
                Expect::CutBody => rule["route"] = json!("result|/csv$"),
                _ => {}
            }
            reset_with(&server, rule).await;
            let caller = Caller::new(&server, ALICE).await;
            let uuid = caller.start(wire, false).await;
            match expect {
                Expect::SlowSuccess(at_least) => {
                    assert_eq!(caller.settled(wire, &uuid).await, Seen::Succeeded, "{cell}");
                    let r = record(&server, &uuid);
                    let ran = (r.finished.unwrap() - r.started.unwrap()).to_std().unwrap();
                    assert!(ran >= at_least, "{cell}: ran {ran:?}");
                }
                Expect::Failure => {
                    assert_eq!(caller.settled(wire, &uuid).await, Seen::Ended, "{cell}");
                    let r = record(&server, &uuid);
                    assert_eq!(r.state, JobState::Failed, "{cell}");
                    assert_eq!(r.error.unwrap().message, "injected by the test", "{cell}");
                    let (word, status) = status_word(&caller, wire, &uuid).await;
                    assert_eq!(word, words(wire).1, "{cell}: {status}");
                    let result = caller
                        .get(wire, &result_path(wire, &uuid))
                        .send()
                        .await
                        .unwrap();
                    let (code, text) = (result.status(), result.text().await.unwrap());
                    let told = format!("{status} {text}");
                    assert!(
                        told.contains("injected by the test"),
                        "{cell}: {code} {told}"
                    );
                }
                Expect::RunningPolls(n) => {
                    let (word, status) = status_word(&caller, wire, &uuid).await;
                    assert!(words(wire).0.contains(&word.as_str()), "{cell}: {status}");
                    let mut running = 1;
                    let seen = loop {
                        match caller.status(wire, &uuid).await {
                            Seen::Going => running += 1,
                            seen => break seen,
                        }
                        assert!(running < 500, "{cell}: never finished");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    };
                    assert_eq!(seen, Seen::Succeeded, "{cell}");
                    assert!(running >= n, "{cell}: {running} polls said running");
                }
                Expect::Expired => {
                    // Seen while it runs and just after, then gone well before its hour is up.
                    let mut polls = 0;
                    while caller.status(wire, &uuid).await != Seen::Invisible {
                        polls += 1;
                        assert!(polls < 500, "{cell}: never expired");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                    assert!(
                        server
                            .engine
                            .resolve(JobRef::parse(&uuid).unwrap())
                            .is_none()
                            || polls > 0,
                        "{cell}"
                    );
                }
                Expect::Throttled(code) => {
                    for _ in 0..2 {
                        let response = caller
                            .get(wire, &status_path(wire, &uuid))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status().as_u16(), code, "{cell}");
                        let retry = response
                            .headers()
                            .get("retry-after")
                            .map(|v| v.to_str().unwrap().to_string());
                        let expected = act["retry_after_secs"].to_string();
                        assert_eq!(retry.as_deref(), Some(expected.as_str()), "{cell}");
                        let body: Value = response.json().await.unwrap();
                        let (key, says_rule) = busy_shape(wire);
                        assert!(!body[key].is_null(), "{cell}: {body}");
                        let said = body.to_string().contains("fault rule under-test");
                        assert_eq!(said, says_rule, "{cell}: {body}");
                    }
                    // Both are in the journal, with the rule that acted on them.
                    let query = format!("/journal?dialect={}&status={code}", dialect(wire));
                    let (_, journal) = admin_get(&server, &query).await;
                    let faults: Vec<&Value> = journal
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|e| &e["fault"])
                        .collect();
                    assert_eq!(faults, [&json!("under-test"); 2], "{cell}: {journal}");
                    // Spent: the client's next poll is answered as usual.
                    assert_eq!(caller.settled(wire, &uuid).await, Seen::Succeeded, "{cell}");
                }
                Expect::CutBody => {
                    assert_eq!(caller.settled(wire, &uuid).await, Seen::Succeeded, "{cell}");
                    // The head and the first bytes may go in one write: then even the head is lost.
                    let cut = match caller.get(wire, &result_path(wire, &uuid)).send().await {
                        Ok(response) => response.bytes().await.is_err(),
                        Err(e) => e.is_request(),
                    };
                    assert!(cut, "{cell}: the body was not cut");
                }
            }
        }
    }
}

#[tokio::test]
async fn reset_drops_one_principals_jobs_or_everything() {
    let server = TestServer::start(crate::cross_wire::users_config()).await;
    let (alice, bob) = (
        Caller::new(&server, ALICE).await,
        Caller::new(&server, BOB).await,
    );
    let mine = alice.start(Wire::Kylin, false).await;
    let theirs = bob.start(Wire::Luminesce, false).await;
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        "/reset",
        json!({"principal": "alice"}),
    )
    .await;
    assert_eq!(
        (status, body["jobs_removed"].as_u64()),
        (StatusCode::OK, Some(1)),
        "{body}"
    );
    assert_eq!(alice.status(Wire::Kylin, &mine).await, Seen::Invisible);
    assert_ne!(bob.status(Wire::Luminesce, &theirs).await, Seen::Invisible);
    let (_, body) = admin(
        &server,
        reqwest::Method::POST,
        "/reset",
        json!({"dialect": "kylin"}),
    )
    .await;
    assert_eq!(body["jobs_removed"], 0, "{body}");
    let looker = |who: &Caller| who.get(Wire::Looker, "/api/4.0/queries/1").send();
    let status = |sent: reqwest::Result<reqwest::Response>| sent.unwrap().status();
    // Alice's Looker session went with her reset; Bob's is there (no query 1, but a session).
    assert_eq!(status(looker(&alice).await), StatusCode::UNAUTHORIZED);
    assert_eq!(status(looker(&bob).await), StatusCode::NOT_FOUND);
    let (_, body) = admin(&server, reqwest::Method::POST, "/reset", Value::Null).await;
    assert_eq!(body["jobs_removed"], 1, "{body}");
    assert_eq!(bob.status(Wire::Luminesce, &theirs).await, Seen::Invisible);
    assert_eq!(
        status(looker(&bob).await),
        StatusCode::UNAUTHORIZED,
        "every session went"
    );
}

#[tokio::test]
async fn verify_counts_what_the_journal_saw() {
    let server = TestServer::start(crate::cross_wire::users_config()).await;
    let caller = Caller::new(&server, ALICE).await;
    let uuid = caller.start(Wire::AsterixDb, false).await;
    for _ in 0..3 {
        caller.status(Wire::AsterixDb, &uuid).await;
    }
    let pattern =
        json!({"dialect": "asterixdb", "method": "GET", "path": "^/query/service/status/"});
    for (expectation, status, ok) in [
        (json!({"count": 3}), StatusCode::OK, true),
        (json!({"at_least": 1, "at_most": 3}), StatusCode::OK, true),
        (json!({"count": 2}), StatusCode::CONFLICT, false),
        (json!({"at_least": 4}), StatusCode::CONFLICT, false),
    ] {
        let mut request = expectation.clone();
        request["request"] = pattern.clone();
        let (got, body) = admin(&server, reqwest::Method::POST, "/journal/verify", request).await;
        assert_eq!(
            (got, body["ok"].as_bool()),
            (status, Some(ok)),
            "{expectation}: {body}"
        );
        assert_eq!(body["count"], 3, "{body}");
    }
    let (_, body) = admin_get(&server, "/journal?dialect=asterixdb&limit=1").await;
    let entry = &body[0];
    assert_eq!(entry["method"], "GET", "{entry}");
    assert_eq!(entry["principal"], "alice", "{entry}");
    let (_, body) = admin(
        &server,
        reqwest::Method::POST,
        "/journal/verify",
        json!({"request": {"principal": "bob"}, "count": 0}),
    )
    .await;
    assert_eq!(body["ok"], true, "{body}");
    assert!(
        entry["headers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h[0] == "authorization" && h[1] == "***"),
        "{entry}"
    );
    assert!(
        entry["response_body"]
            .as_str()
            .unwrap()
            .contains("\"status\""),
        "{entry}"
    );
}

#[tokio::test]
async fn bad_admin_input_gets_a_clear_json_4xx() {
    let server = TestServer::start(Config::default()).await;
    let http = Client::new();
    for (method, path, body, status, says) in [
        ("POST", "/faults", "not json", 400, "not JSON"),
        (
            "POST",
            "/faults",
            r#"{"act": {"type": "nope"}}"#,
            400,
            "unknown variant",
        ),
        (
            "POST",
            "/faults",
            r#"{"sql": "(", "act": {"type": "latency", "ms": 1}}"#,
            400,
            "regular expression",
        ),
        (
            "POST",
            "/faults",
            r#"[{"act": {"type": "latency", "ms": 1}}, {"act": {"type": "throttle", "status": 418}}]"#,
            400,
            "rule 2",
        ),
        ("DELETE", "/faults/999", "", 404, "no fault rule"),
        ("GET", "/jobs/not-a-job", "", 404, "no job"),
        ("GET", "/jobs?bogus=1", "", 400, "unknown field"),
        ("GET", "/journal?status=abc", "", 400, "query string"),
        ("POST", "/journal/verify", "{}", 400, "at_least"),
        (
            "POST",
            "/journal/verify",
            r#"{"request": {"path": "["}, "count": 1}"#,
            400,
            "regular expression",
        ),
        (
            "POST",
            "/reset",
            r#"{"dialect": "oracle"}"#,
            400,
            "no dialect",
        ),
        ("PUT", "/faults", "", 405, "not served"),
        ("GET", "/nothing", "", 404, "no admin route"),
    ] {
        let response = http
            .request(
                method.parse().unwrap(),
                server.url(&format!("/_polyquery{path}")),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{method} {path} {body}");
        let answer: Value = response.json().await.unwrap();
        let error = answer["error"].as_str().unwrap_or_default();
        assert!(error.contains(says), "{method} {path} {body}: {answer}");
    }
    // A page of another origin may not post to it; the dashboard's own may.
    let url = server.url("/_polyquery/reset");
    let own = format!("http://{}", server.addr);
    for (origin, status) in [("http://evil.example", 403), (own.as_str(), 200)] {
        let response = http
            .post(&url)
            .header("origin", origin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "{origin}");
    }
    let (status, _) = admin_get(&server, "/faults").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the rule list is untouched by refused rules"
    );
}

#[tokio::test]
async fn admin_credentials_are_required_when_configured() {
    let mut config = Config::default();
    config.admin.token = Some("admin-token".into());
    config.admin.user = Some("root".into());
    config.admin.password = Some("hunter2".into());
    let server = TestServer::start(config).await;
    let http = Client::new();
    let url = server.url("/_polyquery/faults");
    for (request, status) in [
        (http.get(&url), 401),
        (http.get(&url).bearer_auth("wrong"), 401),
        (http.get(&url).basic_auth("root", Some("wrong")), 401),
        (http.get(&url).bearer_auth("admin-token"), 200),
        (http.get(&url).basic_auth("root", Some("hunter2")), 200),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        if status == 401 {
            assert!(response.headers().contains_key("www-authenticate"));
        }
    }
}

#[tokio::test]
async fn the_admin_api_is_absent_on_a_non_loopback_listener_unless_enabled() {
    for (listen, enabled, token, status) in [
        ("0.0.0.0:0", Enabled::Auto, None, 404),
        ("0.0.0.0:0", Enabled::On, Some("t"), 401),
        ("127.0.0.1:0", Enabled::Off, None, 404),
        ("127.0.0.1:0", Enabled::Auto, None, 200),
    ] {
        let mut config = Config {
            listen: listen.parse().unwrap(),
            ..Config::default()
        };
        config.admin.enabled = enabled;
        config.admin.token = token.map(str::to_string);
        let server = TestServer::start(config).await;
        let url = format!("http://127.0.0.1:{}/_polyquery/journal", server.addr.port());
        let got = Client::new().get(&url).send().await.unwrap().status();
        assert_eq!(got.as_u16(), status, "{listen} {enabled:?}");
    }
    // Enabled beyond loopback without credentials is refused at start.
    let mut config = Config {
        listen: "0.0.0.0:8080".parse().unwrap(),
        allow_anonymous: true,
        ..Config::default()
    };
    config.admin.enabled = Enabled::On;
    assert!(
        config
            .check_exposure()
            .unwrap_err()
            .to_string()
            .contains("admin")
    );
}

#[tokio::test]
async fn seeded_latencies_from_the_config_file_repeat_run_after_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("polyquery.toml");
    std::fs::write(
        &file,
        r#"
[admin]
seed = 42

[[admin.faults]]
name = "jitter"
dialect = "luminesce"
act = { type = "log_normal", median_ms = 20, sigma = 0.5 }
"#,
    )
    .unwrap();
    let mut runs = Vec::new();
    for _ in 0..2 {
        let config = Config::load(Some(&file), Vec::new(), &[]).unwrap();
        let server = TestServer::start(config).await;
        let caller = Caller::new(&server, crate::cross_wire::ADMIN).await;
        let mut latencies = Vec::new();
        for _ in 0..5 {
            let uuid = caller.start(Wire::Luminesce, false).await;
            let log = record(&server, &uuid).log;
            let note = log
                .iter()
                .find(|e| e.message.starts_with("Fault rule jitter"))
                .unwrap();
            latencies.push(note.message.clone());
        }
        runs.push(latencies);
    }
    assert_eq!(runs[0], runs[1]);
    assert!(runs[0].windows(2).any(|w| w[0] != w[1]), "{:?}", runs[0]);
}

#[tokio::test]
async fn the_dashboard_is_one_page_served_without_a_build_step() {
    let server = TestServer::start(Config::default()).await;
    let response = reqwest::get(server.url("/_polyquery/ui")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/html; charset=utf-8"
    );
    let page = response.text().await.unwrap();
    assert!(
        page.contains("/_polyquery") && !page.contains("https://"),
        "no CDN"
    );
}

/// Runs `tests/sdk/faults_check.py` in `mode` with the pinned SDKs; it must print `<mode>: ok`.
async fn sdk_sees(server: &TestServer, mode: &str, args: &[&str]) {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/faults_check.py");
    let output = tokio::process::Command::new(crate::support::sdk_python())
        .arg(&script)
        .arg(mode)
        .arg(server.url(""))
        .args(args)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains(&format!("{mode}: ok")),
        "{mode}:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_official_sdks_see_the_faults_with_their_code_unchanged() {
    let server = TestServer::start(crate::cross_wire::users_config()).await;
    for (rule, mode, args, verify) in [
        (
            json!({"dialect": "luminesce", "method": "GET", "times": 2, "act": {"type": "throttle", "status": 429, "retry_after_secs": 0}}),
            "luminesce-throttled",
            vec!["alice", "alice-token"],
            Some(json!({"request": {"dialect": "luminesce", "status": 429}, "count": 2})),
        ),
        (
            json!({"dialect": "looker", "model": "polyquery", "explore": "Testing1K", "act": {"type": "not_ready", "polls": 4}}),
            "looker-not-ready",
            vec!["alice", "pw", "4"],
            None,
        ),
        (
            json!({"dialect": "kylin", "sql": "(?i)kylin_sales", "act": {"type": "fail", "message": "injected by the rule"}}),
            "kylin-failure",
            vec!["alice", "pw"],
            None,
        ),
    ] {
        reset_with(&server, rule).await;
        sdk_sees(&server, mode, &args).await;
        if let Some(expectation) = verify {
            let (status, body) = admin(
                &server,
                reqwest::Method::POST,
                "/journal/verify",
                expectation,
            )
            .await;
            assert_eq!(status, StatusCode::OK, "{mode}: {body}");
        }
    }
}

#[tokio::test]
async fn an_asterixdb_async_job_times_out_when_a_rule_slows_it() {
    let server = TestServer::start(crate::cross_wire::users_config()).await;
    reset_with(
        &server,
        json!({"dialect": "asterixdb", "act": {"type": "latency", "ms": 5000}}),
    )
    .await;
    let caller = Caller::new(&server, ALICE).await;
    let started = query_service(
        &server,
        "statement=select+1+as+n%3B&mode=async&timeout=500ms",
    )
    .await;
    let uuid = started["requestID"].as_str().unwrap().to_string();
    assert_eq!(caller.settled(Wire::AsterixDb, &uuid).await, Seen::Ended);
    let (word, status) = status_word(&caller, Wire::AsterixDb, &uuid).await;
    assert_eq!(word, "timeout", "{status}");
    assert_eq!(record(&server, &uuid).state, JobState::TimedOut);
}

/// The dashboard in headless Chromium: it lists jobs from the four wires, opens one and cancels it.
/// The screenshot is kept in the test's target directory (and where `POLYQUERY_SCREENSHOT` says:
/// `scripts/dashboard-screenshot` makes the README's that way).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_in_a_browser_lists_opens_and_cancels_jobs() {
    crate::support::sdk_python(); // installs Chromium and puppeteer-core
    let server = TestServer::start(crate::cross_wire::users_config()).await;
    reset_with(
        &server,
        json!({"name": "flaky-kylin", "dialect": "kylin", "sql": "(?i)missing", "act": {"type": "fail", "message": "injected"}}),
    )
    .await;
    let caller = Caller::new(&server, ALICE).await;
    for wire in WIRES {
        let uuid = caller.start(wire, false).await;
        caller.settled(wire, &uuid).await;
    }
    let running = caller.start(Wire::Luminesce, true).await;
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk/dashboard");
    let output = tokio::process::Command::new("node")
        .arg(script.join("dashboard_check.js"))
        .arg(server.url(""))
        .arg(&running)
        .arg(&shot)
        .current_dir(&script)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("dashboard: ok"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(record(&server, &running).state, JobState::Cancelled);
    if let Ok(to) = std::env::var("POLYQUERY_SCREENSHOT") {
        std::fs::copy(&shot, to).unwrap();
    }
}

#[tokio::test]
async fn a_synchronous_request_is_not_held_by_not_ready_polls() {
    let server = TestServer::start(crate::cross_wire::users_config()).await;
    reset_with(
        &server,
        json!({"dialect": "asterixdb", "act": {"type": "not_ready", "polls": 5}}),
    )
    .await;
    let answer = query_service(&server, "statement=select+1+as+n%3B").await;
    assert_eq!(answer["status"], "success", "{answer}");
    assert_eq!(answer["results"], json!([{"n": 1}]), "{answer}");
}
