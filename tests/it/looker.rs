//! The Looker API 4.0 dialect end to end: the official Python looker-sdk and Node @looker/sdk
//! driving a real polyquery, the wire details they depend on (status codes, content types, error
//! shapes), the semantic layer's SQL and values, and the contract cases.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use polyquery::config::{Config, User};
use polyquery::engine::{JobRef, JobSpec, JobState};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::support::{self, TestServer};

const ID: &str = "alice";
const SECRET: &str = "s3cret";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A login form body, encoded as the SDKs encode it.
fn form(id: &str, secret: &str) -> String {
    serde_urlencoded::to_string([("client_id", id), ("client_secret", secret)]).unwrap()
}

fn config(not_ready_status: u16) -> Config {
    let mut config = Config {
        users: vec![User {
            name: ID.into(),
            password: Some(SECRET.into()),
            token: None,
            admin: false,
        }],
        ..Config::default()
    };
    config.looker.not_ready_status = not_ready_status;
    config.looker.model_dir = Some(repo().join("tests/sdk/looker/models"));
    config
}

async fn server(not_ready_status: u16) -> TestServer {
    TestServer::start(config(not_ready_status)).await
}

/// A server, an HTTP client, and a live access token.
struct Session {
    server: TestServer,
    http: Client,
    token: String,
}

impl Session {
    async fn start(not_ready_status: u16) -> Session {
        Session::on(server(not_ready_status).await).await
    }

    async fn on(server: TestServer) -> Session {
        let http = Client::new();
        let login: Value = http
            .post(server.url("/api/4.0/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form(ID, SECRET))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["access_token"].as_str().unwrap().to_string();
        Session {
            server,
            http,
            token,
        }
    }

    fn url(&self, path: &str) -> String {
        self.server.url(&format!("/api/4.0{path}"))
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn create_query(&self, body: Value) -> String {
        let response = self.post("/queries", body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let query: Value = response.json().await.unwrap();
        query["id"].as_str().unwrap().to_string()
    }

    async fn create_task(&self, query_id: &str, format: &str) -> String {
        let response = self
            .post(
                "/query_tasks",
                json!({"query_id": query_id, "result_format": format}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let task: Value = response.json().await.unwrap();
        task["id"].as_str().unwrap().to_string()
    }

    /// Polls the task until its status is one of `statuses`.
    async fn wait_for(&self, task: &str, statuses: &[&str]) -> Value {
        for _ in 0..600 {
            let t = self.json(&format!("/query_tasks/{task}")).await;
            if statuses.contains(&t["status"].as_str().unwrap_or_default()) {
                return t;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("task {task} never reached {statuses:?}");
    }

    /// Runs a query body inline and answers the status and body text.
    async fn run_inline(&self, format: &str, body: Value) -> (StatusCode, String) {
        let response = self.post(&format!("/queries/run/{format}"), body).await;
        (response.status(), response.text().await.unwrap())
    }
}

/// Asserts the Looker error shape: `message` and `documentation_url`, and one in each `errors[]` item.
async fn looker_error(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        response.headers()["content-type"],
        "application/json; charset=utf-8"
    );
    let body: Value = response.json().await.unwrap();
    assert!(body["message"].is_string(), "{body}");
    assert!(body["documentation_url"].is_string(), "{body}");
    for item in body["errors"].as_array().into_iter().flatten() {
        assert!(item["documentation_url"].is_string(), "{body}");
        assert!(item["message"].is_string(), "{body}");
    }
    body
}

fn run_python(server: &TestServer, mode: &str) {
    run_python_as(server, mode, ID, SECRET);
}

fn run_python_as(server: &TestServer, mode: &str, id: &str, secret: &str) {
    let python = support::sdk_python();
    let script = repo().join("tests/sdk/looker/sdk_flow.py");
    let base_url = format!("http://{}", server.addr);
    let output = Command::new(&python)
        .arg(&script)
        .args([base_url.as_str(), id, secret, mode])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {python}: {e}"));
    assert!(
        output.status.success(),
        "looker-sdk {mode} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

// --- the official SDKs ------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_full_flow() {
    let server = server(202).await;
    tokio::task::spawn_blocking(move || run_python(&server, "full"))
        .await
        .unwrap();
}

/// sdk-codegen's tests that touch queries, users and sessions, as an admin (they sudo as alice).
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_sdk_codegen_query_tests() {
    let mut config = config(202);
    config.users.push(User {
        name: "root".into(),
        password: Some("r00t".into()),
        token: None,
        admin: true,
    });
    let server = TestServer::start(config).await;
    tokio::task::spawn_blocking(move || run_python_as(&server, "codegen", "root", "r00t"))
        .await
        .unwrap();
}

/// With no users configured, `me()` is whoever logged in, the one user there is.
#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_me_without_configured_users() {
    let server = TestServer::start(Config::default()).await;
    tokio::task::spawn_blocking(move || run_python_as(&server, "me-open", "carol", "anything"))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn python_sdk_reads_202_and_204_as_not_ready() {
    for status in [202, 204] {
        let server = server(status).await;
        tokio::task::spawn_blocking(move || run_python(&server, "not-ready"))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn node_sdk_full_flow() {
    // scripts/sdk-env also runs `npm ci` in tests/sdk/looker-node.
    support::sdk_python();
    let server = server(202).await;
    let base_url = format!("http://{}", server.addr);
    let output = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .current_dir(repo().join("tests/sdk/looker-node"))
            .args(["sdk_flow.js", base_url.as_str(), ID, SECRET])
            .output()
            .unwrap_or_else(|e| panic!("cannot run node: {e}"))
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "@looker/sdk-node flow failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The SDK logs a line about AbortSignal per call on stdout; the script's verdict is the last.
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().last(), Some("ok"));
}

// --- login and auth ---------------------------------------------------------------------------

#[tokio::test]
async fn login_answers_an_access_token_and_bad_credentials_404() {
    let server = server(202).await;
    let http = Client::new();
    let response = http
        .post(server.url("/api/4.0/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(ID, SECRET))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let token: Value = response.json().await.unwrap();
    assert_eq!(token["token_type"], "Bearer");
    assert_eq!(token["expires_in"], 3600);
    assert_eq!(token["refresh_token"], Value::Null);
    let keys: Vec<&String> = token.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["access_token", "token_type", "expires_in", "refresh_token"]
    );

    // The deprecated query-parameter form.
    let response = http
        .post(server.url(&format!(
            "/api/4.0/login?client_id={ID}&client_secret={SECRET}"
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let response = http
        .post(server.url("/api/4.0/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(ID, "wrong"))
        .send()
        .await
        .unwrap();
    let body = looker_error(response, StatusCode::NOT_FOUND).await;
    assert_eq!(body["message"], "Not found");
}

#[tokio::test]
async fn api_calls_need_a_bearer_or_token_header() {
    let s = Session::start(202).await;
    for header in [format!("Bearer {}", s.token), format!("token {}", s.token)] {
        let response = s
            .http
            .get(s.url("/running_queries"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    for header in [
        None,
        Some(format!("Basic {}", s.token)),
        Some("Bearer nonsense".to_string()),
    ] {
        let mut request = s.http.get(s.url("/running_queries"));
        if let Some(h) = header {
            request = request.header("authorization", h);
        }
        let body = looker_error(request.send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
        assert_eq!(body["message"], "Requires authentication.");
    }
    // Logout (both paths) revokes the token: 204 with no body and no Content-Type.
    let response = s
        .http
        .delete(s.server.url("/api/logout"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert!(response.headers().get("content-type").is_none());
    looker_error(s.get("/running_queries").await, StatusCode::UNAUTHORIZED).await;
    let s = Session::on(s.server).await;
    let response = s
        .http
        .delete(s.url("/logout"))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let mut config = config(202);
    config.looker.token_lifetime_secs = 1;
    let s = Session::on(TestServer::start(config).await).await;
    assert_eq!(s.get("/running_queries").await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    looker_error(s.get("/running_queries").await, StatusCode::UNAUTHORIZED).await;
}

// --- query tasks ------------------------------------------------------------------------------

fn states_query() -> Value {
    json!({
        "model": "thelook",
        "view": "order_items",
        "fields": ["users.state", "order_items.count"],
        "sorts": ["order_items.count desc"],
        "limit": "5",
    })
}

fn slow_query() -> Value {
    json!({"model": "pqtest", "view": "slow", "fields": ["sleepy.nap"]})
}

#[tokio::test]
async fn a_task_goes_from_added_to_complete_with_looker_keys_in_order() {
    let s = Session::start(202).await;
    let query = s.create_query(states_query()).await;
    assert_eq!(
        s.create_query(states_query()).await,
        query,
        "identical queries share an id"
    );
    let response = s
        .post(
            "/query_tasks",
            json!({"query_id": query, "result_format": "json"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let task: Value = response.json().await.unwrap();
    let keys: Vec<&str> = task
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "query_id",
            "query",
            "generate_links",
            "force_production",
            "path_prefix",
            "cache",
            "server_table_calcs",
            "cache_only",
            "cache_key",
            "status",
            "source",
            "runtime",
            "rebuild_pdts",
            "result_source",
            "look_id",
            "dashboard_id",
            "result_format",
            "id",
            "can"
        ]
    );
    let id = task["id"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    assert_eq!(task["source"], "api");
    assert!(matches!(
        task["status"].as_str(),
        Some("added" | "running" | "complete")
    ));
    let done = s.wait_for(id, &["complete"]).await;
    assert_eq!(done["result_source"], "query");
    assert!(done["runtime"].is_number());
    let response = s.get(&format!("/query_tasks/{id}/results")).await;
    assert_eq!(response.headers()["content-type"], "application/json");
    let rows: Vec<Value> = response.json().await.unwrap();
    assert_eq!(rows.len(), 5);

    // The same answer from SQL over the fixtures: the rows are real, not canned.
    let (_, record) = support::run(
        &s.server.engine,
        JobSpec::new(
            "SELECT u.state, COUNT(*) AS n FROM order_items o LEFT JOIN users u ON o.user_id = u.id \
             GROUP BY u.state ORDER BY n DESC LIMIT 1",
            polyquery::query::Principal::user("tester"),
            "test",
        ),
    )
    .await;
    assert_eq!(record.state, JobState::Succeeded);
    let top: Vec<Value> = s
        .get(&format!("/query_tasks/{id}/results"))
        .await
        .json()
        .await
        .unwrap();
    let reader = s.server.engine.read(record.id).unwrap();
    let batch = futures::StreamExt::next(&mut reader.into_stream())
        .await
        .unwrap()
        .unwrap();
    let expected_count = batch
        .column(1)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(top[0]["order_items.count"], expected_count);

    // fields= partial responses.
    let partial = s.json(&format!("/query_tasks/{id}?fields=id,status")).await;
    assert_eq!(partial, json!({"id": id, "status": "complete"}));
}

#[tokio::test]
async fn results_not_ready_answer_202_or_204_with_no_body() {
    for status in [StatusCode::ACCEPTED, StatusCode::NO_CONTENT] {
        let s = Session::start(status.as_u16()).await;
        let query = s.create_query(slow_query()).await;
        let task = s.create_task(&query, "json").await;
        let response = s.get(&format!("/query_tasks/{task}/results")).await;
        assert_eq!(response.status(), status);
        assert!(response.headers().get("content-type").is_none());
        assert_eq!(response.text().await.unwrap(), "");
        let response = s
            .http
            .delete(s.url(&format!("/running_queries/{task}")))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
}

#[tokio::test]
async fn kill_stops_the_job_and_the_task_reads_killed() {
    let s = Session::start(202).await;
    let query = s.create_query(slow_query()).await;
    let task = s.create_task(&query, "json").await;
    s.wait_for(&task, &["running"]).await;
    let running: Vec<Value> = s.json("/running_queries").await.as_array().unwrap().clone();
    assert!(running.iter().any(|r| r["query_task_id"] == task.as_str()));
    let response = s
        .http
        .delete(s.url(&format!("/running_queries/{task}")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(s.wait_for(&task, &["killed"]).await["status"], "killed");
    let id = s
        .server
        .engine
        .resolve(JobRef::parse(&task).unwrap())
        .unwrap();
    let record = support::wait_for_state(&s.server.engine, id, JobState::Cancelled).await;
    assert!(record.finished.is_some());
    // The worker is free again: a quick task still completes.
    let quick = s.create_query(states_query()).await;
    let quick_task = s.create_task(&quick, "csv").await;
    s.wait_for(&quick_task, &["complete"]).await;
    let running: Vec<Value> = s.json("/running_queries").await.as_array().unwrap().clone();
    assert!(running.is_empty(), "{running:?}");
    // Killing a finished task is a 404.
    let response = s
        .http
        .delete(s.url(&format!("/running_queries/{task}")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    looker_error(response, StatusCode::NOT_FOUND).await;
}

#[tokio::test]
async fn a_failing_query_is_200_with_errors_for_json_detail_and_400_otherwise() {
    let s = Session::start(202).await;
    let query = s
        .create_query(json!({"model": "pqtest", "view": "users", "fields": ["users.broken"]}))
        .await;
    let detail_task = s.create_task(&query, "json_detail").await;
    let csv_task = s.create_task(&query, "csv").await;
    s.wait_for(&detail_task, &["error"]).await;
    s.wait_for(&csv_task, &["error"]).await;
    let response = s.get(&format!("/query_tasks/{detail_task}/results")).await;
    assert_eq!(response.status(), StatusCode::OK);
    let detail: Value = response.json().await.unwrap();
    assert_eq!(detail["data"], json!([]));
    let error = &detail["errors"][0];
    assert!(error["message_details"].as_str().unwrap().contains("Cast"));
    assert!(error["documentation_url"].is_string());
    let body = looker_error(
        s.get(&format!("/query_tasks/{csv_task}/results")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("Cast"));
}

#[tokio::test]
async fn unknown_tasks_are_404_and_missing_in_multi_results() {
    let s = Session::start(202).await;
    let unknown = "0123456789abcdef0123456789abcdef";
    for path in [
        format!("/query_tasks/{unknown}"),
        format!("/query_tasks/{unknown}/results"),
        "/query_tasks/not-an-id".to_string(),
        "/queries/999999".to_string(),
        "/no_such_endpoint".to_string(),
    ] {
        let body = looker_error(s.get(&path).await, StatusCode::NOT_FOUND).await;
        assert_eq!(body["message"], "Not found", "{path}");
    }
    let query = s.create_query(states_query()).await;
    let task = s.create_task(&query, "json_bi").await;
    s.wait_for(&task, &["complete"]).await;
    for ids in [
        format!("{task},{unknown}"),
        format!("[\"{task}\",\"{unknown}\"]"),
    ] {
        let multi = s
            .json(&format!(
                "/query_tasks/multi_results?query_task_ids={}",
                urlencode(&ids)
            ))
            .await;
        assert_eq!(multi[unknown], json!({"status": "missing"}), "{ids}");
        assert_eq!(multi[&task]["status"], "complete");
        assert_eq!(multi[&task]["result_source"], "query");
        assert_eq!(multi[&task]["data"]["rows"].as_array().unwrap().len(), 5);
    }
    // Someone else's task is as unknown as one that never existed.
    let other = s
        .server
        .engine
        .submit({
            let mut spec = JobSpec::new(
                "SELECT 1",
                polyquery::query::Principal::user("mallory"),
                "looker",
            );
            spec.meta = json!({"kind": "task"});
            spec
        })
        .await
        .unwrap();
    looker_error(
        s.get(&format!("/query_tasks/{}", other.to_hex())).await,
        StatusCode::NOT_FOUND,
    )
    .await;
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("x", text)]).unwrap()[2..].to_string()
}

/// A `filter_expression` filters what the same condition as `filters` does; over a measure it
/// filters groups; a bad or too deeply nested one is a 422 naming `filter_expression`.
#[tokio::test]
async fn filter_expressions_filter_like_filters() {
    let s = Session::start(202).await;
    let base = json!({"model": "thelook", "view": "users", "fields": ["users.state", "users.count"], "sorts": ["users.state"], "limit": "500"});
    let with = |key: &str, value: Value| {
        let mut body = base.clone();
        body[key] = value;
        body
    };
    let rows = |text: String| serde_json::from_str::<Vec<Value>>(&text).unwrap();
    let (_, by_filters) = s
        .run_inline(
            "json",
            with("filters", json!({"users.state": "California,Texas"})),
        )
        .await;
    let (status, by_expression) = s
        .run_inline(
            "json",
            with(
                "filter_expression",
                json!(r#"${users.state} = "California" OR (contains(${users.state}, "xas") AND NOT is_null(${users.state}))"#),
            ),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{by_expression}");
    assert_eq!(rows(by_expression), rows(by_filters.clone()));
    assert_eq!(rows(by_filters).len(), 2);
    let (_, big) = s
        .run_inline(
            "json",
            with("filter_expression", json!("${users.count} * 2 >= 100")),
        )
        .await;
    let big = rows(big);
    assert!(!big.is_empty());
    assert!(
        big.iter().all(|r| r["users.count"].as_i64().unwrap() >= 50),
        "{big:?}"
    );
    let deep = format!("{}1 = 1{}", "(".repeat(500), ")".repeat(500));
    for bad in [
        "${users.nope} = 1",
        "${users.state} = ",
        "frobnicate(${users.state})",
        deep.as_str(),
    ] {
        let response = s
            .post("/queries", with("filter_expression", json!(bad)))
            .await;
        let error = looker_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error["errors"][0]["field"], "filter_expression", "{bad}");
    }
}

// --- bad input --------------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_gets_looker_errors() {
    let s = Session::start(202).await;
    let cases = [
        (
            json!({"model": "nope", "view": "x", "fields": ["x.y"]}),
            "model",
        ),
        (
            json!({"model": "thelook", "view": "nope", "fields": ["x.y"]}),
            "view",
        ),
        (
            json!({"model": "thelook", "view": "users", "fields": ["users.nope"]}),
            "fields",
        ),
        (
            json!({"model": "thelook", "view": "users", "fields": ["users.id"], "filters": {"users.age": ">>3"}}),
            "filters",
        ),
        (
            json!({"model": "thelook", "view": "users", "fields": ["users.id"], "filters": {"users.created_at": "someday"}}),
            "filters",
        ),
        (
            json!({"model": "thelook", "view": "users", "fields": ["users.id"], "sorts": ["users.age"]}),
            "sorts",
        ),
        (
            json!({"model": "thelook", "view": "users", "fields": ["users.id"], "limit": "ten"}),
            "limit",
        ),
        (json!({"view": "users", "fields": ["users.id"]}), "model"),
        (
            json!({"model": "thelook", "view": "users", "fields": ["users.state", "users.count"], "subtotals": ["users.state"]}),
            "subtotals",
        ),
    ];
    for (body, field) in cases {
        let response = s.post("/queries", body.clone()).await;
        let error = looker_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error["message"], "Validation Failed");
        assert_eq!(error["errors"][0]["field"], field, "{body}");
    }
    // Malformed JSON.
    let response = s
        .http
        .post(s.url("/queries"))
        .bearer_auth(&s.token)
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    looker_error(response, StatusCode::BAD_REQUEST).await;
    // A bad result format: 400 on a run, 422 on a task.
    let query = s.create_query(states_query()).await;
    looker_error(
        s.get(&format!("/queries/{query}/run/pdf")).await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let response = s
        .post(
            "/query_tasks",
            json!({"query_id": query, "result_format": "pdf"}),
        )
        .await;
    let error = looker_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    assert_eq!(error["errors"][0]["field"], "result_format");
    let response = s
        .post(
            "/query_tasks",
            json!({"query_id": "424242", "result_format": "json"}),
        )
        .await;
    looker_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
    let response = s
        .http
        .get(s.url(&format!("/queries/{query}/run/json?limit=lots")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    looker_error(response, StatusCode::BAD_REQUEST).await;
}

#[tokio::test]
async fn a_filter_value_cannot_change_the_statement() {
    let s = Session::start(202).await;
    let hostile = [
        "x' OR '1'='1",
        "x'; DROP TABLE users; --",
        "%' UNION SELECT email FROM users --",
        "\\' OR 1=1 --",
    ];
    for value in hostile {
        let query = json!({
            "model": "thelook",
            "view": "users",
            "fields": ["users.count"],
            "filters": {"users.first_name": value},
        });
        let (status, body) = s.run_inline("json", query.clone()).await;
        assert_eq!(status, StatusCode::OK, "{value}: {body}");
        let rows: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(rows, json!([{"users.count": 0}]), "{value}");
        let (_, sql) = s.run_inline("sql", query).await;
        let statements =
            sqlparser::parser::Parser::parse_sql(&sqlparser::dialect::GenericDialect {}, &sql)
                .unwrap();
        assert_eq!(statements.len(), 1, "{sql}");
        assert!(
            !sql.contains("UNION") || sql.contains("'%'' UNION"),
            "{sql}"
        );
    }
    // Also in a number field: not a number, so a validation error, never SQL.
    let (status, _) = s
        .run_inline(
            "json",
            json!({"model": "thelook", "view": "users", "fields": ["users.count"], "filters": {"users.age": "1 OR 1=1"}}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

// --- the semantic layer -----------------------------------------------------------------------

/// Runs SQL straight on the engine and answers its rows as JSON.
async fn sql_rows(s: &Session, sql: &str) -> Value {
    let response = s
        .post(
            "/sql_queries",
            json!({"connection_name": "polyquery", "sql": sql}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let created: Value = response.json().await.unwrap();
    let slug = created["slug"].as_str().unwrap();
    let response = s
        .http
        .post(s.url(&format!("/sql_queries/{slug}/run/json")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn measures_filters_and_sorts_compute_what_sql_computes() {
    let s = Session::start(202).await;
    let (status, body) = s
        .run_inline(
            "json",
            json!({
                "model": "thelook",
                "view": "order_items",
                "fields": ["products.category", "order_items.count", "order_items.total_sale_price",
                           "order_items.min_sale_price", "order_items.max_sale_price",
                           "order_items.order_count", "order_items.average_sale_price"],
                "filters": {"products.category": "Jeans,Pants", "order_items.sale_price": ">=50",
                            "order_items.created_at": "2020-01-01 to 2024-01-01"},
                "sorts": ["products.category"],
                "limit": "-1",
            }),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let ours: Value = serde_json::from_str(&body).unwrap();
    let expected = sql_rows(
        &s,
        "SELECT p.category AS c, COUNT(*) AS n, SUM(o.sale_price) AS total, MIN(o.sale_price) AS lo, \
         MAX(o.sale_price) AS hi, COUNT(DISTINCT o.order_id) AS orders, AVG(o.sale_price) AS avg \
         FROM order_items o LEFT JOIN inventory_items i ON o.inventory_item_id = i.id \
         LEFT JOIN products p ON i.product_id = p.id \
         WHERE p.category IN ('Jeans', 'Pants') AND o.sale_price >= 50 \
           AND o.created_at >= TIMESTAMP '2020-01-01 00:00:00' AND o.created_at < TIMESTAMP '2024-01-01 00:00:00' \
         GROUP BY p.category ORDER BY p.category",
    )
    .await;
    let ours = ours.as_array().unwrap();
    let expected = expected.as_array().unwrap();
    assert_eq!(ours.len(), 2);
    assert_eq!(ours.len(), expected.len());
    for (a, b) in ours.iter().zip(expected) {
        assert_eq!(a["products.category"], b["c"]);
        assert_eq!(a["order_items.count"], b["n"]);
        assert_eq!(a["order_items.min_sale_price"], b["lo"]);
        assert_eq!(a["order_items.max_sale_price"], b["hi"]);
        assert_eq!(a["order_items.order_count"], b["orders"]);
        let close = |x: &Value, y: &Value| (x.as_f64().unwrap() - y.as_f64().unwrap()).abs() < 1e-6;
        assert!(close(&a["order_items.total_sale_price"], &b["total"]));
        assert!(close(&a["order_items.average_sale_price"], &b["avg"]));
    }
    // Negation, wildcards and NULL in string filters.
    let count = |filter: &'static str| {
        let s = &s;
        async move {
            let (status, body) = s
                .run_inline(
                    "json",
                    json!({"model": "thelook", "view": "users", "fields": ["users.count"],
                           "filters": {"users.country": filter}}),
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let rows: Value = serde_json::from_str(&body).unwrap();
            rows[0]["users.count"].as_i64().unwrap()
        }
    };
    let all = count("").await;
    let us = count("United States").await;
    let united = count("United%").await;
    let not_us = count("-United States").await;
    assert_eq!(all, 1000);
    assert!(us > 0 && united > us);
    assert_eq!(us + not_us, all);
    assert_eq!(count("NULL").await, 0);
    assert_eq!(count("-NULL").await, all);
}

#[tokio::test]
async fn every_catalog_table_is_an_explore_of_the_polyquery_model() {
    let s = Session::start(202).await;
    let tables: Vec<String> = s
        .server
        .engine
        .executor()
        .catalog()
        .tables
        .iter()
        .map(|t| t.name.clone())
        .collect();
    assert!(tables.len() >= 5);
    for table in tables {
        let first_column = s
            .server
            .engine
            .executor()
            .catalog()
            .table(&table)
            .unwrap()
            .schema
            .field(0)
            .name()
            .clone();
        let (status, body) = s
            .run_inline(
                "json_detail",
                json!({"model": "polyquery", "view": table,
                       "fields": [format!("{table}.{first_column}"), format!("{table}.count")],
                       "limit": "3"}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{table}: {body}");
        let detail: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(detail["explore"]["name"], table.as_str());
        assert_eq!(
            detail["fields"]["measures"][0]["name"],
            format!("{table}.count")
        );
        assert!(!detail["data"].as_array().unwrap().is_empty(), "{table}");
    }
}

// --- formats ----------------------------------------------------------------------------------

#[tokio::test]
async fn every_format_has_its_content_type_and_text_types_name_utf8() {
    let s = Session::start(202).await;
    let query = s.create_query(states_query()).await;
    let expected = [
        ("json", "application/json"),
        ("json_detail", "application/json"),
        ("json_bi", "application/json"),
        ("inline_json", "application/json"),
        ("csv", "text/csv; charset=utf-8"),
        ("txt", "text/plain; charset=utf-8"),
        ("md", "text/markdown; charset=utf-8"),
        ("html", "text/html; charset=utf-8"),
        (
            "xlsx",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
        ("sql", "application/sql; charset=utf-8"),
    ];
    for (format, content_type) in expected {
        let response = s.get(&format!("/queries/{query}/run/{format}")).await;
        assert_eq!(response.status(), StatusCode::OK, "{format}");
        assert_eq!(response.headers()["content-type"], content_type, "{format}");
        let bytes = response.bytes().await.unwrap();
        assert!(!bytes.is_empty(), "{format}");
    }
    let csv = s
        .get(&format!("/queries/{query}/run/csv?limit=2"))
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert_eq!(lines[0], "Users State,Order Items Count");
    assert_eq!(csv.matches('\n').count(), 3);
    let formatted: Value = s
        .get(&format!(
            "/queries/{query}/run/json?apply_formatting=true&limit=1"
        ))
        .await
        .json()
        .await
        .unwrap();
    assert!(formatted[0]["order_items.count"].is_string());
    let unlimited: Vec<Value> = s
        .get(&format!("/queries/{query}/run/json?limit=-1"))
        .await
        .json()
        .await
        .unwrap();
    assert!(unlimited.len() > 5);
}

// --- contract cases ---------------------------------------------------------------------------

#[tokio::test]
async fn contract_cases_pass() {
    let server = TestServer::start(Config::default()).await;
    let dir = polyquery::contract::default_dir("looker");
    let outcomes = polyquery::contract::replay(&dir, &format!("http://{}", server.addr))
        .await
        .unwrap();
    assert!(outcomes.len() >= 5, "{outcomes:?}");
    let failures: Vec<_> = outcomes.iter().filter(|o| o.failure.is_some()).collect();
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Table calculations: columns computed over the result, after the fields, in every format;
/// a calculation may use an earlier one; a bad one is a 422 naming `dynamic_fields`.
#[tokio::test]
async fn table_calculations_compute_over_the_result() {
    let s = Session::start(202).await;
    let calcs = json!([
        {"table_calculation": "avg_price", "label": "Average Price",
         "expression": "${order_items.total_sale_price} / ${order_items.count}"},
        {"table_calculation": "big", "label": "Big",
         "expression": "if(${avg_price} > 130, yes, no)"},
    ]);
    let query = |dynamic: String, pivots: Value| {
        json!({
            "model": "thelook",
            "view": "order_items",
            "fields": ["users.country", "order_items.count", "order_items.total_sale_price"],
            "pivots": pivots,
            "dynamic_fields": dynamic,
            "limit": "5",
        })
    };
    let (status, body) = s
        .run_inline("json", query(calcs.to_string(), Value::Null))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(rows.len(), 5);
    for row in &rows {
        let count = row["order_items.count"].as_f64().unwrap();
        let total = row["order_items.total_sale_price"].as_f64().unwrap();
        let avg = row["avg_price"].as_f64().unwrap();
        assert!((avg - total / count).abs() < 1e-6, "{row}");
        assert_eq!(row["big"], avg > 130.0, "{row}");
    }
    // Functions over the result's rows: its order for offset and running_total, all of it for sum.
    let rows_calcs = json!([
        {"table_calculation": "prev", "expression": "offset(${order_items.count}, -1)"},
        {"table_calculation": "run", "expression": "running_total(${order_items.count})"},
        {"table_calculation": "share", "expression": "${order_items.count} / sum(${order_items.count})"},
    ]);
    let (_, body) = s
        .run_inline("json", query(rows_calcs.to_string(), Value::Null))
        .await;
    let rows: Vec<Value> = serde_json::from_str(&body).unwrap();
    let counts: Vec<i64> = rows
        .iter()
        .map(|r| r["order_items.count"].as_i64().unwrap())
        .collect();
    let total: i64 = counts.iter().sum();
    for (i, row) in rows.iter().enumerate() {
        let previous = i
            .checked_sub(1)
            .map(|p| json!(counts[p]))
            .unwrap_or(Value::Null);
        assert_eq!(row["prev"], previous, "{row}");
        assert_eq!(row["run"], counts[..=i].iter().sum::<i64>(), "{row}");
        let share = row["share"].as_f64().unwrap();
        assert!(
            (share - counts[i] as f64 / total as f64).abs() < 1e-9,
            "{row}"
        );
    }
    let (_, csv) = s
        .run_inline("csv", query(calcs.to_string(), Value::Null))
        .await;
    assert!(
        csv.starts_with(
            "Users Country,Order Items Count,Order Items Total Sale Price,Average Price,Big\n"
        ),
        "{csv}"
    );
    let (_, body) = s
        .run_inline("json_detail", query(calcs.to_string(), Value::Null))
        .await;
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["fields"]["table_calculations"][1]["name"], "big");
    for bad in [
        json!([{"table_calculation": "x", "expression": "${users.nope} + 1"}]).to_string(),
        json!([{"table_calculation": "x", "expression": "offset(${order_items.count}, ${order_items.count})"}])
            .to_string(),
        "not json".to_string(),
    ] {
        let response = s.post("/queries", query(bad.clone(), Value::Null)).await;
        let error = looker_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
        assert_eq!(error["errors"][0]["field"], "dynamic_fields", "{bad}");
    }
    let response = s
        .post(
            "/queries",
            query(calcs.to_string(), json!(["users.country"])),
        )
        .await;
    looker_error(response, StatusCode::UNPROCESSABLE_ENTITY).await;
}

/// `total: true`: `json_detail` carries `totals_data`, each measure over every row the dimension
/// filters keep, whatever the limit (the sum of every group's count).
#[tokio::test]
async fn totals_cover_every_row_the_filters_keep() {
    let s = Session::start(202).await;
    let query = |total: bool, limit: &str, pivots: Value| {
        json!({
            "model": "thelook",
            "view": "order_items",
            "fields": ["users.country", "users.gender", "order_items.count"],
            "filters": {"users.country": "-France"},
            "pivots": pivots,
            "total": total,
            "limit": limit,
        })
    };
    let (_, body) = s.run_inline("json", query(false, "-1", Value::Null)).await;
    let all: Vec<Value> = serde_json::from_str(&body).unwrap();
    let sum: i64 = all
        .iter()
        .map(|r| r["order_items.count"].as_i64().unwrap())
        .sum();
    for pivots in [Value::Null, json!(["users.gender"])] {
        let (status, body) = s
            .run_inline("json_detail", query(true, "2", pivots.clone()))
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let detail: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(detail["has_totals"], true, "{pivots}");
        assert_eq!(
            detail["totals_data"]["order_items.count"]["value"], sum,
            "{pivots}"
        );
    }
    let (_, body) = s
        .run_inline("json_detail", query(false, "2", Value::Null))
        .await;
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["has_totals"], false);
    assert!(detail.get("totals_data").is_none());

    // `row_total` on a pivot: one more key per measure, the group's count across every pivot value.
    let mut body = query(false, "-1", json!(["users.gender"]));
    body["row_total"] = json!("right");
    let (_, text) = s.run_inline("json", body.clone()).await;
    let rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert!(!rows.is_empty());
    for row in &rows {
        let cells = row["order_items.count"].as_object().unwrap();
        let total = cells["$$$_row_total_$$$"].as_i64().unwrap();
        let parts: i64 = cells
            .iter()
            .filter(|(k, _)| k.as_str() != "$$$_row_total_$$$")
            .filter_map(|(_, v)| v.as_i64())
            .sum();
        assert_eq!(total, parts, "{row}");
    }
    let (_, text) = s.run_inline("json_detail", body).await;
    let detail: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(detail["has_row_totals"], true);
    let last = detail["pivots"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["key"], "$$$_row_total_$$$");
    assert_eq!(last["is_total"], true);
}

/// Asserts that every non-null `measure` cell of a pivoted `json` result is one row of the same
/// query grouped flat (matched on `row_dims`, then on the pivot values its key joins with
/// `|FIELD|`), and that nothing else is.
fn assert_pivot_is_flat(
    pivoted: &[Value],
    flat: &[Value],
    row_dims: &[&str],
    pivot_dims: &[&str],
    measure: &str,
) {
    let mut cells = 0;
    for row in pivoted {
        for (key, value) in row[measure].as_object().unwrap() {
            if value.is_null() {
                continue;
            }
            cells += 1;
            let values: Vec<&str> = key.split("|FIELD|").collect();
            assert!(
                flat.iter()
                    .any(|f| row_dims.iter().all(|d| f[*d] == row[*d])
                        && pivot_dims.iter().zip(&values).all(|(d, v)| f[*d] == *v)
                        && &f[measure] == value),
                "{key}: {value}"
            );
        }
    }
    assert_eq!(cells, flat.len());
}

/// Two pivots: each measure is keyed by both values joined with `|FIELD|`, and every cell is one
/// row of the same query grouped flat.
#[tokio::test]
async fn several_pivots_key_cells_by_every_pivot_value() {
    let s = Session::start(202).await;
    let query = |pivots: Value| {
        json!({
            "model": "thelook",
            "view": "order_items",
            "fields": ["users.country", "users.gender", "order_items.status", "order_items.count"],
            "pivots": pivots,
            "sorts": ["users.country"],
            "limit": "-1",
        })
    };
    let (status, body) = s
        .run_inline("json", query(json!(["users.gender", "order_items.status"])))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pivoted: Vec<Value> = serde_json::from_str(&body).unwrap();
    let (_, body) = s.run_inline("json", query(Value::Null)).await;
    let flat: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_pivot_is_flat(
        &pivoted,
        &flat,
        &["users.country"],
        &["users.gender", "order_items.status"],
        "order_items.count",
    );
    let (_, body) = s
        .run_inline(
            "json_detail",
            query(json!(["users.gender", "order_items.status"])),
        )
        .await;
    let detail: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["pivots"][0]["key"], "F|FIELD|Cancelled");
    assert_eq!(
        detail["pivots"][0]["data"],
        json!({"users.gender": "F", "order_items.status": "Cancelled"})
    );
    let (_, csv) = s
        .run_inline("csv", query(json!(["users.gender", "order_items.status"])))
        .await;
    assert!(
        csv.starts_with("Users Country,Order Items Count | F | Cancelled,"),
        "{csv}"
    );
}

#[tokio::test]
async fn a_pivot_spreads_each_measure_over_the_pivot_values() {
    let s = Session::start(202).await;
    let query = |pivots: Value| {
        json!({
            "model": "thelook",
            "view": "order_items",
            "fields": ["products.department", "products.category", "order_items.count"],
            "pivots": pivots,
            "sorts": ["products.category"],
            "limit": "-1",
        })
    };
    let (status, body) = s
        .run_inline("json", query(json!(["products.department"])))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pivoted: Vec<Value> = serde_json::from_str(&body).unwrap();
    let (_, body) = s.run_inline("json", query(Value::Null)).await;
    let flat: Vec<Value> = serde_json::from_str(&body).unwrap();
    // Every flat row is one cell of the pivoted table, and nothing else is.
    assert!(
        pivoted
            .iter()
            .all(|r| r.get("products.department").is_none())
    );
    assert_pivot_is_flat(
        &pivoted,
        &flat,
        &["products.category"],
        &["products.department"],
        "order_items.count",
    );
    assert!(pivoted.len() < flat.len());

    let (_, body) = s
        .run_inline("json_detail", query(json!(["products.department"])))
        .await;
    let detail: Value = serde_json::from_str(&body).unwrap();
    let keys: Vec<&str> = detail["pivots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["Men", "Women"]);
    assert_eq!(detail["fields"]["pivots"][0]["name"], "products.department");
    assert!(detail["data"][0]["order_items.count"]["Men"]["value"].is_number());

    let (_, csv) = s
        .run_inline("csv", query(json!(["products.department"])))
        .await;
    assert_eq!(
        csv.lines().next(),
        Some("Products Category,Order Items Count | Men,Order Items Count | Women")
    );
    // A pivot must be one of the query's dimensions.
    let (status, _) = s.run_inline("json", query(json!(["products.brand"]))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

// --- hardening (issue #10) --------------------------------------------------------------------

#[tokio::test]
async fn sql_runner_ten_times_too_deep_is_a_400_and_the_server_stays_up() {
    let s = Session::start(202).await;
    let response = s
        .post(
            "/sql_queries",
            json!({"connection_name": "polyquery", "sql": crate::support::too_deep()}),
        )
        .await;
    let body = if response.status() == StatusCode::OK {
        let created: Value = response.json().await.unwrap();
        let slug = created["slug"].as_str().unwrap().to_string();
        let response = s
            .http
            .post(s.url(&format!("/sql_queries/{slug}/run/json")))
            .bearer_auth(&s.token)
            .send()
            .await
            .unwrap();
        looker_error(response, StatusCode::BAD_REQUEST).await
    } else {
        looker_error(response, StatusCode::BAD_REQUEST).await
    };
    assert!(
        body["message"].as_str().unwrap().contains("levels deep"),
        "{body}"
    );
    crate::support::assert_alive(&s.server).await;
    let rows = sql_rows(&s, &crate::support::or_chain(900)).await;
    assert_eq!(rows.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn filters_ten_times_too_long_are_a_422_and_long_ones_still_run() {
    let s = Session::start(202).await;
    let query = |filter: String| {
        json!({"model": "thelook", "view": "users", "fields": ["users.state"],
               "filters": {"users.state": filter}, "limit": "1"})
    };
    let list = |n: usize| vec!["CA"; n].join(",");
    let error = looker_error(
        s.post("/queries/run/json", query(list(10_000))).await,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await;
    assert_eq!(error["errors"][0]["field"], "filters", "{error}");
    crate::support::assert_alive(&s.server).await;
    // What crashed the server before: 3,000 terms, 3,000 backslashes.
    for filter in [list(1000), "\\".repeat(3000)] {
        let (status, body) = s.run_inline("json", query(filter)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    crate::support::assert_alive(&s.server).await;
}

/// Alice's session on a server that also knows bob, and bob's token.
async fn alice_and_bob(retain_secs: u64) -> (Session, String) {
    let mut config = config(202);
    config.users.push(User {
        name: "bob".into(),
        password: Some("b0b".into()),
        token: None,
        admin: false,
    });
    config.looker.retain_secs = retain_secs;
    let alice = Session::on(TestServer::start(config).await).await;
    let login: Value = alice
        .http
        .post(alice.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form("bob", "b0b"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bob = login["access_token"].as_str().unwrap().to_string();
    (alice, bob)
}

#[tokio::test]
async fn sql_runner_queries_are_their_creators_and_multi_results_is_no_oracle() {
    let (alice, bob) = alice_and_bob(86_400).await;
    let created: Value = alice
        .post(
            "/sql_queries",
            json!({"connection_name": "polyquery", "sql": "select 1 as x"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let slug = created["slug"].as_str().unwrap();
    let as_bob = |method: reqwest::Method, path: String| {
        alice
            .http
            .request(method, alice.url(&path))
            .bearer_auth(&bob)
            .send()
    };
    for (method, path) in [
        (reqwest::Method::GET, format!("/sql_queries/{slug}")),
        (
            reqwest::Method::POST,
            format!("/sql_queries/{slug}/run/json"),
        ),
    ] {
        let body = looker_error(
            as_bob(method.clone(), path.clone()).await.unwrap(),
            StatusCode::NOT_FOUND,
        )
        .await;
        assert_eq!(body["message"], "Not found", "{method} {path}");
    }
    assert_eq!(
        alice.get(&format!("/sql_queries/{slug}")).await.status(),
        StatusCode::OK
    );
    // Alice's live task answers bob exactly as an id that never existed.
    let query = alice.create_query(slow_query()).await;
    let task = alice.create_task(&query, "json").await;
    let never = "0123456789abcdef0123456789abcdef";
    let ids = urlencode(&format!("{task},{never}"));
    let multi: Value = as_bob(
        reqwest::Method::GET,
        format!("/query_tasks/multi_results?query_task_ids={ids}"),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(multi[&task], multi[never], "{multi}");
    assert_eq!(multi[never], json!({"status": "missing"}));
    let mine = alice
        .json(&format!("/query_tasks/multi_results?query_task_ids={task}"))
        .await;
    assert_ne!(mine[&task]["status"], "missing", "{mine}");
}

#[tokio::test]
async fn stored_queries_and_sql_runner_queries_expire_unused() {
    let (alice, _) = alice_and_bob(1).await;
    let query = alice.create_query(states_query()).await;
    let created: Value = alice
        .post(
            "/sql_queries",
            json!({"connection_name": "polyquery", "sql": "select 1 as x"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let slug = created["slug"].as_str().unwrap().to_string();
    assert_eq!(
        alice.get(&format!("/queries/{query}")).await.status(),
        StatusCode::OK
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for path in [format!("/queries/{query}"), format!("/sql_queries/{slug}")] {
        looker_error(alice.get(&path).await, StatusCode::NOT_FOUND).await;
    }
    // Creating the same definition again gives a fresh, live query.
    let again = alice.create_query(states_query()).await;
    assert_eq!(
        alice.get(&format!("/queries/{again}")).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn stored_queries_looks_and_sql_runner_queries_outlive_a_restart() {
    let s = Session::start(202).await;
    let query = s
        .create_query(json!({"model": "thelook", "view": "users", "fields": ["users.count"]}))
        .await;
    let query_json = s.json(&format!("/queries/{query}")).await;
    let slug = query_json["slug"].as_str().unwrap().to_string();
    let look = s
        .post(
            "/looks",
            json!({"title": "Orders", "query_id": query, "folder_id": "1"}),
        )
        .await;
    assert_eq!(look.status(), StatusCode::OK);
    let look: Value = look.json().await.unwrap();
    let look_id = look["id"].as_str().unwrap().to_string();
    let sql: Value = s
        .post(
            "/sql_queries",
            json!({"connection_name": "polyquery", "sql": "select 1 as one"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let sql_slug = sql["slug"].as_str().unwrap().to_string();
    let ran = s
        .http
        .post(s.url(&format!("/sql_queries/{sql_slug}/run/json")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(ran.status(), StatusCode::OK);

    let s = Session::on(s.server.restarted(config(202)).await).await;
    assert_eq!(s.json(&format!("/queries/{query}")).await, query_json);
    assert_eq!(
        s.json(&format!("/queries/slug/{slug}")).await["id"],
        json!(query)
    );
    let read = s.json(&format!("/looks/{look_id}")).await;
    assert_eq!(read["title"], "Orders");
    assert_eq!(read["query_id"], json!(query));
    assert_eq!(read["created_at"], look["created_at"]);
    let sql_read = s.json(&format!("/sql_queries/{sql_slug}")).await;
    assert_eq!(sql_read["sql"], "select 1 as one");
    assert_eq!(sql_read["run_count"], 1);
    let again = s
        .create_query(json!({"model": "thelook", "view": "users", "fields": ["users.count"]}))
        .await;
    assert_eq!(
        again, query,
        "an identical query keeps its id across the restart"
    );
    let other = s
        .create_query(json!({"model": "thelook", "view": "users", "fields": ["users.state"]}))
        .await;
    assert_ne!(other, query, "ids are never handed out twice");
    let deleted = s
        .http
        .delete(s.url(&format!("/looks/{look_id}")))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let s = Session::on(s.server.restarted(config(202)).await).await;
    assert_eq!(
        s.get(&format!("/looks/{look_id}")).await.status(),
        StatusCode::NOT_FOUND
    );
}

/// Looker documents `deferred` only as "create the task but defer execution", with no call that
/// starts one: polyquery runs a deferred task at once (README, Looker's "Not yet").
#[tokio::test]
async fn a_deferred_task_runs_at_once() {
    let s = Session::start(202).await;
    let query = s.create_query(states_query()).await;
    let response = s
        .post(
            "/query_tasks",
            json!({"query_id": query, "result_format": "json", "deferred": true}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let task: Value = response.json().await.unwrap();
    let task = task["id"].as_str().unwrap().to_string();
    let done = s.wait_for(&task, &["complete"]).await;
    assert_eq!(done["status"], "complete");
    let rows: Value = s.json(&format!("/query_tasks/{task}/results")).await;
    assert!(rows.as_array().is_some_and(|r| !r.is_empty()), "{rows}");
}
