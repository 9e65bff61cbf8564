//! AsterixDB `/query/service`: the vendor page's curl flows, AsterixDB's own async/deferred test
//! cases, parameter validation and bad input, handles, cancellation, and the contract cases.

use crate::support::keys;
use std::time::{Duration, Instant};

use polyquery::config::Config;
use polyquery::dialect::asterixdb::Profile;
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::TestServer;

/// The Host the vendor page's curl sends; handles are built from it.
const HOST: &str = "localhost:19002";

async fn server(profile: Profile) -> TestServer {
    let mut config = Config::default();
    config.asterixdb.profile = profile;
    TestServer::start(config).await
}

/// One answer: status, content type and text.
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
}

async fn answer(r: reqwest::RequestBuilder) -> Answer {
    let r = r.send().await.unwrap();
    Answer {
        status: r.status(),
        content_type: r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default(),
        text: r.text().await.unwrap(),
    }
}

/// A form body, as `curl --data` sends it.
fn with_form(r: reqwest::RequestBuilder, pairs: &[(&str, &str)]) -> reqwest::RequestBuilder {
    r.header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(pairs).unwrap())
}

/// `curl --data-urlencode … http://localhost:19002/query/service`: a form POST with curl's Host.
async fn post_form(s: &TestServer, form: &[(&str, &str)]) -> Answer {
    answer(with_form(
        reqwest::Client::new()
            .post(s.url("/query/service"))
            .header("host", HOST),
        form,
    ))
    .await
}

async fn post_json(s: &TestServer, body: &str) -> Answer {
    answer(
        reqwest::Client::new()
            .post(s.url("/query/service"))
            .header("host", HOST)
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

/// GETs a handle the server gave out (absolute, with curl's Host), on the test server's port.
async fn get_handle(s: &TestServer, handle: &str) -> Answer {
    let path = handle
        .strip_prefix(&format!("http://{HOST}"))
        .unwrap_or_else(|| panic!("handle not built from the Host header: {handle}"));
    answer(reqwest::Client::new().get(s.url(path)).header("host", HOST)).await
}

async fn get(s: &TestServer, path: &str) -> Answer {
    answer(reqwest::Client::new().get(s.url(path)).header("host", HOST)).await
}

/// Polls a status handle until its `status` is no longer running/queued.
async fn poll_status(s: &TestServer, handle: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = get_handle(s, handle).await;
        let status = a.json()["status"].as_str().unwrap_or("").to_string();
        if (status != "running" && status != "queued") || Instant::now() > deadline {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whitespace runs as one space: the vendor page prints the samples with their layout collapsed.
fn collapsed(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The vendor page's sample with its ids, times and handle numbers replaced by this answer's.
fn sample_with(sample: &str, answer: &Value, sample_handle: Option<&str>) -> String {
    let mut expected = sample.to_string();
    let swaps = [
        ("requestID", answer["requestID"].as_str()),
        ("elapsedTime", answer["metrics"]["elapsedTime"].as_str()),
        ("executionTime", answer["metrics"]["executionTime"].as_str()),
    ];
    for (name, actual) in swaps {
        let Some(actual) = actual else { continue };
        let key = format!("\"{name}\": \"");
        let start = expected.find(&key).map(|i| i + key.len()).unwrap();
        let end = start + expected[start..].find('"').unwrap();
        expected.replace_range(start..end, actual);
    }
    if let (Some(h), Some(actual)) = (sample_handle, answer["handle"].as_str()) {
        expected = expected.replace(h, actual);
    }
    expected
}

fn is_duration(text: &str) -> bool {
    let units = ["ns", "µs", "ms", "s"];
    units.iter().any(|u| {
        text.strip_suffix(u)
            .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok())
    })
}

// ---- the vendor page, docs profile ---------------------------------------------------------------

const IMMEDIATE_SAMPLE: &str = r#"{ "requestID": "5f72e78c-482a-45bf-b174-6443c8273025", "clientContextID": "xyz", "signature": "*", "results": [ { "$1" : 1 } ] , "status": "success", "metrics": { "elapsedTime": "20.263371ms", "executionTime": "19.889389ms", "resultCount": 1, "resultSize": 15 } }"#;
const DEFERRED_SAMPLE: &str = r#"{ "requestID": "6df7afb4-5f83-49b6-8c4b-f11ec84c4d7e", "signature": "*", "handle": "http://localhost:19002/query/service/result/7-0", "status": "success", "metrics": { "elapsedTime": "12.270570ms", "executionTime": "11.948343ms", "resultCount": 0, "resultSize": 0 } }"#;
const ASYNC_SAMPLE: &str = r#"{ "requestID": "c5858420-d821-4c0c-81a4-2364386827c2", "signature": "*", "status": "running", "handle": "http://localhost:19002/query/service/status/9-0", "metrics": { "elapsedTime": "9.727006ms", "executionTime": "9.402282ms", "resultCount": 0, "resultSize": 0 } }"#;
const STATUS_SAMPLE: &str =
    r#"{ "status": "success", "handle": "http://localhost:19002/query/service/result/9-0" }"#;
const RESULT_SAMPLE: &str = r#"[ { "$1": 1 } ]"#;

#[tokio::test]
async fn vendor_page_immediate_answers_the_sample_byte_for_byte() {
    let s = server(Profile::Docs).await;
    let a = post_form(
        &s,
        &[
            ("statement", "select 1;"),
            ("pretty", "true"),
            ("client_context_id", "xyz"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type, "application/json; charset=utf-8");
    let v = a.json();
    let id = v["requestID"].as_str().unwrap();
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().to_string(), id);
    let elapsed = v["metrics"]["elapsedTime"].as_str().unwrap();
    let execution = v["metrics"]["executionTime"].as_str().unwrap();
    // The page's duration format: milliseconds with six decimals.
    for d in [elapsed, execution] {
        let ms = d.strip_suffix("ms").unwrap();
        assert_eq!(ms.split('.').nth(1).map(str::len), Some(6), "{d}");
    }
    assert_eq!(
        collapsed(&a.text),
        collapsed(&sample_with(IMMEDIATE_SAMPLE, &v, None))
    );
    // And the exact bytes AsterixDB prints: tabs, `": "`, the pretty record, `]` then `,` lines.
    let exact = format!(
        "{{\n\t\"requestID\": \"{id}\",\n\t\"clientContextID\": \"xyz\",\n\t\"signature\": \"*\",\n\t\"results\": [ {{\n\t\t\"$1\" : 1\n\t}} ]\n\t,\n\t\"status\": \"success\",\n\t\"metrics\": {{\n\t\t\"elapsedTime\": \"{elapsed}\",\n\t\t\"executionTime\": \"{execution}\",\n\t\t\"resultCount\": 1,\n\t\t\"resultSize\": 15\n\t}}\n}}\n"
    );
    assert_eq!(a.text, exact);
}

#[tokio::test]
async fn vendor_page_deferred_answers_a_result_handle_then_the_bare_array() {
    let s = server(Profile::Docs).await;
    let a = post_form(&s, &[("statement", "select 1;"), ("mode", "deferred")]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type, "application/json; charset=utf-8");
    let v = a.json();
    let handle = v["handle"].as_str().unwrap();
    assert!(
        handle.starts_with("http://localhost:19002/query/service/result/")
            && handle.ends_with("-0"),
        "{handle}"
    );
    assert_eq!(
        collapsed(&a.text),
        collapsed(&sample_with(
            DEFERRED_SAMPLE,
            &v,
            Some("http://localhost:19002/query/service/result/7-0")
        ))
    );
    let r = get_handle(&s, handle).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.content_type, "application/json");
    assert_eq!(collapsed(&r.text), RESULT_SAMPLE);
    // max-result-reads defaults to 1: the result is gone after one read.
    assert_eq!(get_handle(&s, handle).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn vendor_page_async_answers_a_status_handle_then_status_then_result() {
    let s = server(Profile::Docs).await;
    let a = post_form(&s, &[("statement", "select 1;"), ("mode", "async")]).await;
    assert_eq!(a.status, StatusCode::OK);
    let v = a.json();
    let handle = v["handle"].as_str().unwrap();
    assert!(handle.starts_with("http://localhost:19002/query/service/status/"));
    assert_eq!(
        collapsed(&a.text),
        collapsed(&sample_with(
            ASYNC_SAMPLE,
            &v,
            Some("http://localhost:19002/query/service/status/9-0")
        ))
    );
    let st = poll_status(&s, handle).await;
    assert_eq!(st.status, StatusCode::OK);
    assert_eq!(st.content_type, "application/json; charset=utf-8");
    let sv = st.json();
    let result_handle = sv["handle"].as_str().unwrap();
    assert_eq!(
        result_handle,
        handle.replace("/query/service/status/", "/query/service/result/")
    );
    assert_eq!(
        collapsed(&st.text),
        collapsed(&STATUS_SAMPLE.replace(
            "http://localhost:19002/query/service/result/9-0",
            result_handle
        ))
    );
    assert_eq!(
        st.text,
        format!("{{\n\t\"status\": \"success\",\n\t\"handle\": \"{result_handle}\"\n}}\n")
    );
    let r = get_handle(&s, result_handle).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(collapsed(&r.text), RESULT_SAMPLE);
}

// ---- profiles ------------------------------------------------------------------------------------

#[tokio::test]
async fn master_immediate_prints_plans_cached_plan_and_the_full_metrics() {
    let s = server(Profile::Master).await;
    let a = post_form(&s, &[("statement", "from [1, 2] as v select v;")]).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.content_type, "application/json; charset=UTF-8");
    let v = a.json();
    assert_eq!(
        keys(&v),
        [
            "requestID",
            "signature",
            "results",
            "plans",
            "cachedPlan",
            "status",
            "metrics"
        ]
    );
    assert!(
        a.text.contains("\t\"signature\": {\n\t\t\"*\": \"*\"\n\t},\n\t\"results\": [ {\"v\":1},{\"v\":2} ]\n\t,\n\t\"plans\":{},\n\t\"cachedPlan\": false,\n\t\"status\": \"success\",\n"),
        "{}",
        a.text
    );
    let metrics = keys(&v["metrics"]);
    assert_eq!(
        metrics,
        [
            "elapsedTime",
            "executionTime",
            "compileTime",
            "queueWaitTime",
            "resultCount",
            "resultSize",
            "processedObjects"
        ]
    );
    assert_eq!(v["metrics"]["resultCount"], 2);
    assert_eq!(v["metrics"]["resultSize"], 14);
    assert!(is_duration(v["metrics"]["elapsedTime"].as_str().unwrap()));
}

#[tokio::test]
async fn v099_has_no_cached_plan_and_its_async_answer_is_running() {
    let s = server(Profile::V099).await;
    let a = post_form(&s, &[("statement", "select 1;")]).await;
    let v = a.json();
    assert!(v.get("cachedPlan").is_none());
    assert_eq!(v["plans"], serde_json::json!({}));
    let a = post_form(&s, &[("statement", "select 1;"), ("mode", "async")]).await;
    let body = a.json();
    assert_eq!(
        keys(&body),
        [
            "requestID",
            "signature",
            "status",
            "handle",
            "plans",
            "metrics"
        ]
    );
    assert_eq!(a.json()["status"], "running");
}

#[tokio::test]
async fn master_async_answer_is_queued_with_reduced_metrics() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", "select 1;"),
            ("mode", "async"),
            ("client_context_id", "c1"),
        ],
    )
    .await;
    let v = a.json();
    assert_eq!(
        keys(&v),
        [
            "requestID",
            "clientContextID",
            "signature",
            "handle",
            "plans",
            "cachedPlan",
            "status",
            "metrics"
        ]
    );
    assert_eq!(v["status"], "queued");
    let metrics = keys(&v["metrics"]);
    assert_eq!(metrics, ["elapsedTime", "compileTime", "queueWaitTime"]);
}

// ---- AsterixDB's own async-deferred cases (master profile) ---------------------------------------

const RANGE_10: &str = "select i, i * i as i2 from range(1, 10) i;";

fn squares(n: i64) -> Vec<Value> {
    (1..=n)
        .map(|i| serde_json::json!({"i": i, "i2": i * i}))
        .collect()
}

#[tokio::test]
async fn async_deferred_async_status_then_result_envelope() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", RANGE_10),
            ("mode", "async"),
            ("profile", "timings"),
        ],
    )
    .await;
    let st = poll_status(&s, a.json()["handle"].as_str().unwrap()).await;
    // The harness's regexes: one space after the colon.
    assert!(st.text.contains("\"status\": \"success\""), "{}", st.text);
    assert!(st.text.contains("\"handle\": \""));
    let r = get_handle(&s, st.json()["handle"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    let v = r.json();
    assert_eq!(keys(&v), ["results", "cachedPlan", "metrics", "profile"]);
    assert_eq!(v["results"], Value::Array(squares(10)));
}

#[tokio::test]
async fn async_deferred_deferred_reads_once_then_404() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", RANGE_10),
            ("mode", "deferred"),
            ("profile", "timings"),
        ],
    )
    .await;
    let v = a.json();
    assert_eq!(v["status"], "success");
    assert_eq!(v["metrics"]["resultCount"], 0);
    let handle = v["handle"].as_str().unwrap();
    let r = get_handle(&s, handle).await;
    let rv = r.json();
    assert_eq!(keys(&rv), ["results", "cachedPlan", "metrics", "profile"]);
    assert_eq!(rv["results"], Value::Array(squares(10)));
    assert_eq!(rv["metrics"]["resultCount"], 10);
    assert_eq!(get_handle(&s, handle).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn async_deferred_async_repeated_reads_twice_and_matches_immediate() {
    let s = server(Profile::Master).await;
    let result = finished_async_result(&s, "2").await;
    let first = get_handle(&s, &result).await.json()["results"].clone();
    let second = get_handle(&s, &result).await.json()["results"].clone();
    let immediate = post_form(&s, &[("statement", RANGE_10)]).await.json()["results"].clone();
    assert_eq!(first, Value::Array(squares(10)));
    assert_eq!(first, second);
    assert_eq!(first, immediate);
    assert_eq!(get_handle(&s, &result).await.status, StatusCode::NOT_FOUND);
}

/// The result handle of an async `RANGE_10` job allowed `reads` reads, once it has finished.
async fn finished_async_result(s: &TestServer, reads: &str) -> String {
    let a = post_form(
        s,
        &[
            ("statement", RANGE_10),
            ("mode", "async"),
            ("max-result-reads", reads),
        ],
    )
    .await;
    let st = poll_status(s, a.json()["handle"].as_str().unwrap()).await;
    st.json()["handle"].as_str().unwrap().to_string()
}

/// A restart does not give a job its `max-result-reads` again.
#[tokio::test]
async fn result_reads_are_counted_across_a_restart() {
    let s = server(Profile::Master).await;
    let result = finished_async_result(&s, "2").await;
    assert_eq!(get_handle(&s, &result).await.status, StatusCode::OK);
    let mut config = Config::default();
    config.asterixdb.profile = Profile::Master;
    let s = s.restarted(config).await;
    assert_eq!(get_handle(&s, &result).await.status, StatusCode::OK);
    assert_eq!(get_handle(&s, &result).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn async_deferred_async_exhausted_result_second_read_is_404() {
    let s = server(Profile::Master).await;
    let result = finished_async_result(&s, "1").await;
    assert_eq!(get_handle(&s, &result).await.status, StatusCode::OK);
    let again = get_handle(&s, &result).await;
    assert_eq!(again.status, StatusCode::NOT_FOUND);
    assert_eq!(again.text, "");
}

#[tokio::test]
async fn async_deferred_async_json_five_rows() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", "select i, i * i as i2 from range(1, 5) i;"),
            ("mode", "async"),
        ],
    )
    .await;
    let st = poll_status(&s, a.json()["handle"].as_str().unwrap()).await;
    let r = get_handle(&s, st.json()["handle"].as_str().unwrap()).await;
    assert!(
        r.text.contains(r#""results": [ {"i":1,"i2":1},{"i":2,"i2":4},{"i":3,"i2":9},{"i":4,"i2":16},{"i":5,"i2":25} ]"#),
        "{}",
        r.text
    );
}

#[tokio::test]
async fn async_deferred_async_compilation_failed_names_the_dataset() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", "select value g from gargel g;"),
            ("mode", "async"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let v = a.json();
    assert!(v.get("handle").is_none());
    assert_eq!(v["status"], "fatal");
    let msg = v["errors"][0]["msg"].as_str().unwrap();
    assert!(msg.contains("Cannot find dataset gargel"), "{msg}");
    assert_eq!(v["errors"][0]["code"], 1);
    assert_eq!(v["metrics"]["errorCount"], 1);
}

#[tokio::test]
async fn async_deferred_async_not_supported_for_ddl() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", "CREATE COLLECTION Test PRIMARY KEY (id: int);"),
            ("mode", "async"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.json()["errors"][0]["msg"],
        "ASX1253: Async mode not supported for the statement CREATE COLLECTION (in line 1, at column 1)"
    );
}

#[tokio::test]
async fn v099_async_compilation_failed_is_http_200_status_failed() {
    let s = server(Profile::V099).await;
    let a = post_form(
        &s,
        &[
            ("statement", "select value g from gargel g;"),
            ("mode", "async"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["status"], "failed");
}

// ---- handles -------------------------------------------------------------------------------------

#[tokio::test]
async fn query_status_and_result_handle_checks() {
    let s = server(Profile::Master).await;
    for kind in ["status", "result"] {
        for (path, code) in [
            (
                format!("/query/service/{kind}/18_0"),
                StatusCode::BAD_REQUEST,
            ),
            (format!("/query/service/{kind}/"), StatusCode::BAD_REQUEST),
            (format!("/query/service/{kind}"), StatusCode::BAD_REQUEST),
            (
                format!("/query/service/{kind}/x-0"),
                StatusCode::BAD_REQUEST,
            ),
            (format!("/query/service/{kind}/18-0"), StatusCode::NOT_FOUND),
            (format!("/query/service/{kind}/18-1"), StatusCode::NOT_FOUND),
        ] {
            let a = get(&s, &path).await;
            assert_eq!(a.status, code, "{path}");
            assert_eq!(a.text, "", "{path}");
        }
    }
}

// ---- parameters and bad input --------------------------------------------------------------------

async fn error_of(a: &Answer) -> (StatusCode, String, String) {
    let v = a.json();
    (
        a.status,
        v["status"].as_str().unwrap_or("").to_string(),
        v["errors"][0]["msg"].as_str().unwrap_or("").to_string(),
    )
}

#[tokio::test]
async fn request_param_validation_400_bad_prints_the_exact_envelope() {
    let s = server(Profile::Master).await;
    let a = post_json(&s, r#"{"statement": "select 1;", "format": "foo"}"#).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let v = a.json();
    assert_eq!(keys(&v), ["errors", "cachedPlan", "status", "metrics"]);
    let metrics = keys(&v["metrics"]);
    assert_eq!(
        metrics,
        [
            "elapsedTime",
            "executionTime",
            "compileTime",
            "queueWaitTime",
            "resultCount",
            "resultSize",
            "processedObjects",
            "bufferCacheHitRatio",
            "bufferCachePageReadCount",
            "errorCount"
        ]
    );
    assert_eq!(v["metrics"]["bufferCacheHitRatio"], "0.00%");
    assert!(a.text.starts_with(
        "{\n\t\"errors\": [{ \n\t\t\"code\": 1,\t\t\"msg\": \"ASX0047: Invalid value for parameter 'format': foo\"\t} \n\t],\n\t\"cachedPlan\": false,\n\t\"status\": \"fatal\",\n"
    ), "{}", a.text);
}

#[tokio::test]
async fn request_param_validation_messages_via_json_and_form() {
    let s = server(Profile::Master).await;
    let cases = [
        (
            "format",
            "foo",
            "ASX0047: Invalid value for parameter 'format': foo",
        ),
        (
            "pretty",
            "yes",
            "ASX0047: Invalid value for parameter 'pretty': yes",
        ),
        (
            "plan-format",
            "blah",
            "ASX0047: Invalid value for parameter 'plan-format': blah",
        ),
        (
            "max-result-reads",
            "foo",
            "ASX0047: Invalid value for parameter 'max-result-reads': foo",
        ),
        (
            "max-warnings",
            "1.5",
            "ASX0047: Invalid value for parameter 'max-warnings': 1.5",
        ),
        (
            "mode",
            "asyn",
            "ASX0047: Invalid value for parameter 'mode': asyn",
        ),
        (
            "timeout",
            "12",
            "ASX0047: Invalid value for parameter 'timeout': 12",
        ),
        (
            "profile",
            "true",
            "ASX0047: Invalid value for parameter 'profile': true",
        ),
        (
            "args",
            "12",
            "ASX0047: Invalid value for parameter 'args': 12",
        ),
        (
            "$p",
            "{bad",
            "ASX0048: Unable to process JSON content in request",
        ),
    ];
    for (name, value, msg) in cases {
        let a = post_form(&s, &[("statement", "select 1;"), (name, value)]).await;
        assert_eq!(
            error_of(&a).await,
            (StatusCode::BAD_REQUEST, "fatal".into(), msg.into()),
            "form {name}"
        );
        if name != "$p" {
            let body = serde_json::json!({"statement": "select 1;", name: value}).to_string();
            let a = post_json(&s, &body).await;
            assert_eq!(error_of(&a).await.2, msg, "json {name}");
        }
    }
    // In a JSON body `args` must be an array, numbers are quoted back as JSON.
    let a = post_json(&s, r#"{"statement": "select 1;", "args": 12}"#).await;
    assert_eq!(
        error_of(&a).await.2,
        "ASX0047: Invalid value for parameter 'args': 12"
    );
}

#[tokio::test]
async fn bad_input_gets_its_asx_message_never_a_500() {
    let s = server(Profile::Master).await;
    let missing = post_form(&s, &[("pretty", "true")]).await;
    assert_eq!(
        error_of(&missing).await,
        (
            StatusCode::BAD_REQUEST,
            "fatal".into(),
            "ASX0040: No statement provided".into()
        )
    );
    assert!(missing.json().get("requestID").is_none());
    let malformed = post_json(&s, r#"{"statement": "select 1;""#).await;
    assert_eq!(
        error_of(&malformed).await.2,
        "ASX0048: Unable to process JSON content in request"
    );
    let not_object = post_json(&s, "[1]").await;
    assert_eq!(error_of(&not_object).await.0, StatusCode::BAD_REQUEST);
    let bad_utf8 = answer(
        reqwest::Client::new()
            .post(s.url("/query/service"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(b"statement=select%20%FF%FE;".to_vec()),
    )
    .await;
    assert_eq!(
        error_of(&bad_utf8).await,
        (
            StatusCode::BAD_REQUEST,
            "fatal".into(),
            "ASX0047: Invalid value for parameter 'statement': invalid UTF-8".into()
        )
    );
    let raw_utf8_json = answer(
        reqwest::Client::new()
            .post(s.url("/query/service"))
            .header("content-type", "application/json")
            .body(b"{\"statement\": \"select \xff;\"}".to_vec()),
    )
    .await;
    assert_eq!(
        error_of(&raw_utf8_json).await.2,
        "ASX0048: Unable to process JSON content in request"
    );
    let syntax = post_form(&s, &[("statement", "select * fro;")]).await;
    let (code, status, msg) = error_of(&syntax).await;
    assert_eq!((code, status.as_str()), (StatusCode::BAD_REQUEST, "fatal"));
    assert_eq!(
        msg,
        r#"ASX1001: Syntax error: In line 1 >>select * fro;<< Encountered <IDENTIFIER> "fro" at column 10. "#
    );
    assert!(syntax.json()["requestID"].is_string());
}

#[tokio::test]
async fn a_20_mb_statement_is_refused_by_the_body_limit_in_asterixdb_shape() {
    let s = server(Profile::Master).await;
    let statement = format!("select '{}';", "x".repeat(20 << 20));
    let a = answer(
        reqwest::Client::new()
            .post(s.url("/query/service"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("statement={statement}")),
    )
    .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    let v = a.json();
    assert_eq!(v["status"], "fatal");
    assert!(
        v["errors"][0]["msg"].as_str().unwrap().starts_with(
            "ASX0047: Invalid value for parameter 'statement': the request body is larger"
        ),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn get_is_read_only_and_reads_only_the_url() {
    let s = server(Profile::Master).await;
    let ok = get(
        &s,
        "/query/service?statement=SELECT%201;&statement=SELECT%202",
    )
    .await;
    assert_eq!(ok.status, StatusCode::OK);
    // The first of repeated parameters wins.
    assert_eq!(ok.json()["results"], serde_json::json!([{"$1": 1}]));
    let ddl = get(&s, "/query/service?statement=DROP%20DATASET%20x;").await;
    assert_eq!(
        error_of(&ddl).await.2,
        "ASX0044: DROP DATASET statement is not supported in read-only mode"
    );
    // A GET body is ignored.
    let body_ignored = answer(
        reqwest::Client::new()
            .get(s.url("/query/service"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("statement=select 1;"),
    )
    .await;
    assert_eq!(
        error_of(&body_ignored).await.2,
        "ASX0040: No statement provided"
    );
}

#[tokio::test]
async fn form_body_and_url_parameters_merge() {
    let s = server(Profile::Master).await;
    let a = answer(
        reqwest::Client::new()
            .post(s.url("/query/service?pretty=true&client_context_id=url"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("statement=select%201%3B&client_context_id=body"),
    )
    .await;
    let v = a.json();
    // Body pairs come first, so the body's value wins.
    assert_eq!(v["clientContextID"], "body");
    assert!(a.text.contains("[ {\n\t\t\"$1\" : 1\n\t} ]"), "{}", a.text);
}

#[tokio::test]
async fn options_answers_cors_and_the_server_version() {
    let s = server(Profile::V099).await;
    let r = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, s.url("/query/service"))
        .header("origin", "http://example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["server"], "Apache AsterixDB/0.9.9");
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://example.com"
    );
    assert_eq!(
        r.headers()["access-control-allow-headers"],
        "Origin, X-Requested-With, Content-Type, Accept"
    );
    let put = reqwest::Client::new()
        .put(s.url("/query/service"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        put.text().await.unwrap(),
        "Method PUT not allowed for the requested resource."
    );
}

#[tokio::test]
async fn positional_and_named_parameters_bind() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", "select ? as a, $2 as b;"),
            ("args", "[1, \"two\"]"),
        ],
    )
    .await;
    assert_eq!(
        a.json()["results"],
        serde_json::json!([{"a": 1, "b": "two"}]),
        "{}",
        a.text
    );
    let named = post_json(
        &s,
        r#"{"statement": "select $name as c, $n as d;", "$name": "x", "$n": 5}"#,
    )
    .await;
    assert_eq!(
        named.json()["results"],
        serde_json::json!([{"c": "x", "d": 5}]),
        "{}",
        named.text
    );
}

#[tokio::test]
async fn adm_and_csv_records_are_json_strings_with_a_type_field() {
    let s = server(Profile::Master).await;
    let adm = answer(
        reqwest::Client::new()
            .get(s.url("/query/service?statement=SELECT%201;"))
            .header("accept", "application/x-adm"),
    )
    .await;
    let v = adm.json();
    assert_eq!(v["type"], "application/x-adm");
    assert_eq!(v["results"], serde_json::json!(["{ \"$1\": 1 }"]));
    let csv = post_form(
        &s,
        &[
            ("statement", "from [1, 2] as v select v;"),
            ("format", "CSV"),
        ],
    )
    .await;
    let v = csv.json();
    assert_eq!(v["type"], "text/csv; header=absent");
    assert_eq!(v["results"], serde_json::json!(["1", "2"]));
}

// ---- JDBC driver ---------------------------------------------------------------------------------

#[tokio::test]
async fn jdbc_client_type_gets_a_typed_signature_and_statement_category() {
    let s = server(Profile::Master).await;
    // What the AsterixDB JDBC driver posts: JSON, deferred, signature as a JSON boolean.
    let a = answer(
        reqwest::Client::new()
            .post(s.url("/query/service"))
            .header("content-type", "application/json")
            .header("accept", "application/json; lossless-adm=true")
            .body(
                r#"{"client-type": "jdbc", "mode": "deferred", "statement": "select i as n, 'x' as s from range(1, 2) i", "signature": true, "plan-format": "string", "max-warnings": 10, "client_context_id": "2b5f2a44-5c4b-4d5e-9f0a-1c2d3e4f5a6b"}"#,
            ),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let v = a.json();
    assert_eq!(v["signature"]["name"], serde_json::json!(["n", "s"]));
    let types = v["signature"]["type"].as_array().unwrap();
    assert_eq!(types.len(), 2);
    assert!(types[0].as_str().unwrap().starts_with("int64"), "{types:?}");
    assert!(
        types[1].as_str().unwrap().starts_with("string"),
        "{types:?}"
    );
    assert_eq!(v["plans"]["statementCategory"], "query");
    // The driver rebuilds the result URL from the handle's last segment.
    let handle = v["handle"].as_str().unwrap();
    let last = handle.rsplit('/').next().unwrap();
    let r = get(&s, &format!("/query/service/result/{last}")).await;
    assert_eq!(
        r.json()["results"],
        serde_json::json!([{"n": 1, "s": "x"}, {"n": 2, "s": "x"}])
    );
}

#[tokio::test]
async fn plan_flags_are_answered_with_a_textual_plan_never_an_error() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", "select 1;"),
            ("logical-plan", "true"),
            ("optimized-logical-plan", "true"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let plans = &a.json()["plans"];
    assert!(
        plans["logicalPlan"].as_str().unwrap().contains("SELECT 1"),
        "{plans}"
    );
    assert!(plans["optimizedLogicalPlan"].is_string());
}

// ---- contract cases ------------------------------------------------------------------------------

#[tokio::test]
async fn contract_cases_replay_against_polyquery() {
    let s = server(Profile::Docs).await;
    let dir = polyquery::contract::default_dir("asterixdb");
    let outcomes = polyquery::contract::replay(&dir, &s.url("")).await.unwrap();
    assert!(outcomes.len() >= 6, "{outcomes:?}");
    let failed: Vec<String> = outcomes
        .iter()
        .filter_map(|o| {
            o.failure
                .as_ref()
                .map(|f| format!("{} / {}: {f}", o.file, o.case))
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

// ---- auth and ownership --------------------------------------------------------------------------

#[tokio::test]
async fn with_users_configured_basic_auth_is_required_and_jobs_are_private() {
    let mut config = Config::default();
    for name in ["ann", "bob"] {
        config.users.push(polyquery::config::User {
            name: name.into(),
            password: Some(format!("{name}-pw")),
            token: None,
            admin: false,
        });
    }
    let s = TestServer::start(config).await;
    let client = reqwest::Client::new();
    let anonymous = client
        .post(s.url("/query/service"))
        .body("statement=select 1;")
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert!(anonymous.headers().contains_key("www-authenticate"));
    let wrong = with_form(
        client
            .post(s.url("/query/service"))
            .basic_auth("ann", Some("nope")),
        &[("statement", "select 1;")],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let deferred = answer(with_form(
        client
            .post(s.url("/query/service"))
            .basic_auth("ann", Some("ann-pw")),
        &[("statement", "select 1;"), ("mode", "deferred")],
    ))
    .await;
    assert_eq!(deferred.status, StatusCode::OK, "{}", deferred.text);
    let handle = deferred.json()["handle"].as_str().unwrap().to_string();
    let path = handle
        .split_once("/query/")
        .map(|(_, p)| format!("/query/{p}"))
        .unwrap();
    // Bob cannot see Ann's result; Ann can.
    let bob = client
        .get(s.url(&path))
        .basic_auth("bob", Some("bob-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(bob.status(), StatusCode::NOT_FOUND);
    let ann = client
        .get(s.url(&path))
        .basic_auth("ann", Some("ann-pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(ann.status(), StatusCode::OK);
}

#[tokio::test]
async fn accept_csv_with_header_present_and_the_raw_result_endpoint() {
    let s = server(Profile::Master).await;
    let a = answer(with_form(
        reqwest::Client::new()
            .post(s.url("/query/service"))
            .header("host", HOST)
            .header("accept", "text/csv; header=present"),
        &[
            ("statement", "select i, 'a,b' as t from range(1, 2) i;"),
            ("mode", "deferred"),
        ],
    ))
    .await;
    let v = a.json();
    assert_eq!(v["type"], "text/csv; header=present");
    let r = get_handle(&s, v["handle"].as_str().unwrap()).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.content_type.starts_with("text/csv; header=present"),
        "{}",
        r.content_type
    );
    assert_eq!(r.text, "i,t\n1,\"a,b\"\n2,\"a,b\"\n");
    let bad = answer(
        reqwest::Client::new()
            .post(s.url("/query/service"))
            .header("accept", "text/csv; header=maybe")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("statement=select%201;"),
    )
    .await;
    assert_eq!(
        bad.json()["errors"][0]["msg"],
        "ASX0047: Invalid value for parameter 'header': maybe"
    );
}

// ---- the vendor page's own client: curl ----------------------------------------------------------

/// Runs curl exactly as the vendor page does, against `http://localhost:19002`, connected to the
/// test server (`--connect-to`), so the URL and the Host header are the documented ones.
async fn curl(s: &TestServer, args: &[&str]) -> String {
    let connect = format!("localhost:19002:{}:{}", s.addr.ip(), s.addr.port());
    let out = tokio::process::Command::new("curl")
        .args(["-s", "--connect-to", &connect])
        .args(args)
        .output()
        .await
        .expect("curl, the AsterixDB page's client, must be installed to run this test");
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn the_vendor_pages_curl_commands_get_its_sample_responses() {
    let s = server(Profile::Docs).await;
    let url = "http://localhost:19002/query/service";
    let immediate = curl(
        &s,
        &[
            "--data-urlencode",
            "statement=select 1;",
            "--data",
            "pretty=true",
            "--data",
            "client_context_id=xyz",
            url,
        ],
    )
    .await;
    let deferred = curl(
        &s,
        &[
            "--data-urlencode",
            "statement=select 1;",
            "--data",
            "mode=deferred",
            url,
        ],
    )
    .await;
    let asynchronous = curl(
        &s,
        &[
            "--data-urlencode",
            "statement=select 1;",
            "--data",
            "mode=async",
            url,
        ],
    )
    .await;
    let v: Value = serde_json::from_str(&immediate).unwrap();
    assert_eq!(
        collapsed(&immediate),
        collapsed(&sample_with(IMMEDIATE_SAMPLE, &v, None))
    );
    let v: Value = serde_json::from_str(&deferred).unwrap();
    assert_eq!(
        collapsed(&deferred),
        collapsed(&sample_with(
            DEFERRED_SAMPLE,
            &v,
            Some("http://localhost:19002/query/service/result/7-0")
        ))
    );
    let result_handle = v["handle"].as_str().unwrap().to_string();
    let v: Value = serde_json::from_str(&asynchronous).unwrap();
    assert_eq!(
        collapsed(&asynchronous),
        collapsed(&sample_with(
            ASYNC_SAMPLE,
            &v,
            Some("http://localhost:19002/query/service/status/9-0")
        ))
    );
    let status_handle = v["handle"].as_str().unwrap().to_string();
    let result = curl(&s, &[&result_handle]).await;
    assert_eq!(collapsed(&result), RESULT_SAMPLE);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = curl(&s, &[&status_handle]).await;
        if status.contains("success") || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let v: Value = serde_json::from_str(&status).unwrap();
    let async_result = v["handle"].as_str().unwrap();
    assert_eq!(
        collapsed(&status),
        collapsed(&STATUS_SAMPLE.replace(
            "http://localhost:19002/query/service/result/9-0",
            async_result
        ))
    );
    let result = curl(&s, &[async_result]).await;
    assert_eq!(collapsed(&result), RESULT_SAMPLE);
}

// ---- AsterixDB's async-deferred-improved cases: master's new API (include-host=false) -------------

/// GETs a relative new-API handle.
async fn get_relative(s: &TestServer, handle: &str) -> Answer {
    assert!(handle.starts_with("/query/service/"), "{handle}");
    get(s, handle).await
}

async fn poll_relative(s: &TestServer, handle: &str) -> Answer {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let a = get_relative(s, handle).await;
        let status = a.json()["status"].as_str().unwrap_or("").to_string();
        if (status != "running" && status != "queued") || Instant::now() > deadline {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn improved_async_status_has_partitions_and_the_result_created_at() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", "select i from range(1, 4) i order by i desc;"),
            ("mode", "async"),
            ("include-host", "false"),
        ],
    )
    .await;
    let v = a.json();
    let id = v["requestID"].as_str().unwrap();
    let status_handle = v["handle"].as_str().unwrap();
    assert!(
        status_handle.starts_with(&format!("/query/service/status/{id}/"))
            && status_handle.ends_with("-0"),
        "{status_handle}"
    );
    let st = poll_relative(&s, status_handle).await.json();
    assert_eq!(
        keys(&st),
        [
            "status",
            "handle",
            "resultCount",
            "partitions",
            "resultSetOrdered",
            "metrics",
            "createdAt"
        ]
    );
    assert_eq!(st["status"], "success");
    assert_eq!(st["resultCount"], 4);
    assert_eq!(st["resultSetOrdered"], true);
    let handle = st["handle"].as_str().unwrap();
    assert_eq!(handle, status_handle.replace("/status/", "/result/"));
    assert_eq!(st["partitions"][0]["handle"], format!("{handle}/0"));
    assert_eq!(
        keys(&st["metrics"]),
        [
            "elapsedTime",
            "executionTime",
            "compileTime",
            "queueWaitTime",
            "processedObjects"
        ]
    );
    assert!(chrono::DateTime::parse_from_rfc3339(st["createdAt"].as_str().unwrap()).is_ok());
    // New-API async results are read any number of times.
    for _ in 0..3 {
        let r = get_relative(&s, handle).await.json();
        assert_eq!(keys(&r), ["results", "cachedPlan", "metrics", "createdAt"]);
        assert_eq!(
            r["results"],
            serde_json::json!([{"i": 4}, {"i": 3}, {"i": 2}, {"i": 1}])
        );
    }
    // The handle names its request: another request id is unknown.
    let other = handle.replace(id, "00000000-0000-0000-0000-000000000000");
    assert_eq!(get_relative(&s, &other).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn improved_async_exhausted_result_get_delete_get() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", RANGE_10),
            ("mode", "async"),
            ("include-host", "false"),
        ],
    )
    .await;
    let st = poll_relative(&s, a.json()["handle"].as_str().unwrap())
        .await
        .json();
    let handle = st["handle"].as_str().unwrap().to_string();
    assert_eq!(get_relative(&s, &handle).await.status, StatusCode::OK);
    let client = reqwest::Client::new();
    let partition = client
        .delete(s.url(&format!("{handle}/0")))
        .send()
        .await
        .unwrap();
    assert_eq!(partition.status(), StatusCode::BAD_REQUEST);
    let deleted = client.delete(s.url(&handle)).send().await.unwrap();
    assert_eq!(deleted.status(), StatusCode::ACCEPTED);
    assert_eq!(
        get_relative(&s, &handle).await.status,
        StatusCode::NOT_FOUND
    );
    let again = client.delete(s.url(&handle)).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn improved_deferred_second_read_is_404_and_result_ttl_expires() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", RANGE_10),
            ("mode", "deferred"),
            ("include-host", "false"),
        ],
    )
    .await;
    let handle = a.json()["handle"].as_str().unwrap().to_string();
    assert_eq!(get_relative(&s, &handle).await.status, StatusCode::OK);
    assert_eq!(
        get_relative(&s, &handle).await.status,
        StatusCode::NOT_FOUND
    );
    let a = post_form(
        &s,
        &[
            ("statement", RANGE_10),
            ("mode", "async"),
            ("include-host", "false"),
            ("result-ttl", "300ms"),
        ],
    )
    .await;
    let status_handle = a.json()["handle"].as_str().unwrap().to_string();
    let st = poll_relative(&s, &status_handle).await.json();
    assert_eq!(st["status"], "success");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        get_relative(&s, &status_handle).await.status,
        StatusCode::NOT_FOUND
    );
    let bad = post_form(&s, &[("statement", "select 1;"), ("result-ttl", "soon")]).await;
    assert_eq!(
        bad.json()["errors"][0]["msg"],
        "ASX0047: Invalid value for parameter 'result-ttl': soon"
    );
}

#[tokio::test]
async fn signature_multi_statement_and_readonly_parameters() {
    let s = server(Profile::Master).await;
    let a = post_form(&s, &[("statement", "select 1;"), ("signature", "false")]).await;
    assert!(a.json().get("signature").is_none(), "{}", a.text);
    let a = post_form(
        &s,
        &[
            ("statement", "select 1; select 2;"),
            ("multi-statement", "false"),
        ],
    )
    .await;
    assert_eq!(
        error_of(&a).await,
        (
            StatusCode::BAD_REQUEST,
            "fatal".into(),
            "ASX0035: Unsupported multiple statements.".into()
        )
    );
    let a = post_form(
        &s,
        &[
            ("statement", "USE TinySocial; select 2;"),
            ("multi-statement", "true"),
        ],
    )
    .await;
    assert_eq!(a.json()["results"], serde_json::json!([{"$1": 2}]));
    let a = post_json(
        &s,
        r#"{"statement": "UPSERT INTO x ({\"a\": 1});", "readonly": true}"#,
    )
    .await;
    assert_eq!(
        error_of(&a).await.2,
        "ASX0044: UPSERT statement is not supported in read-only mode"
    );
}
// ---- slow and failing queries (AsterixDB's sleep and inject_failure) -----------------------------

#[tokio::test]
async fn async_deferred_async_running_first_poll_is_exactly_running() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", r#"select value sleep("result", 1500);"#),
            ("mode", "async"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let handle = a.json()["handle"].as_str().unwrap().to_string();
    // Wait until a worker has started it (queued prints `queued` in master).
    let deadline = Instant::now() + Duration::from_secs(5);
    let first = loop {
        let st = get_handle(&s, &handle).await;
        if st.text.contains("running") || Instant::now() > deadline {
            break st;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.text, "{\n\t\"status\": \"running\"\n}\n");
    let done = poll_status(&s, &handle).await;
    assert_eq!(done.json()["status"], "success");
    let r = get_handle(&s, done.json()["handle"].as_str().unwrap()).await;
    assert_eq!(r.json()["results"], serde_json::json!(["result"]));
}

#[tokio::test]
async fn async_deferred_async_failed_reports_the_injected_failure() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            (
                "statement",
                r#"select value inject_failure(sleep("result", 200), true);"#,
            ),
            ("mode", "async"),
        ],
    )
    .await;
    let st = poll_status(&s, a.json()["handle"].as_str().unwrap()).await;
    assert_eq!(st.status, StatusCode::OK);
    let v = st.json();
    assert_eq!(v["status"], "failed");
    let msg = v["errors"][0]["msg"].as_str().unwrap();
    assert!(msg.contains("Injected failure in inject-failure"), "{msg}");
    assert!(v.get("handle").is_none());
    // Its result is not there.
    let result = a.json()["handle"]
        .as_str()
        .unwrap()
        .replace("/status/", "/result/");
    assert_eq!(get_handle(&s, &result).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_immediate_injected_failure_is_fatal_500() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[("statement", "select value inject_failure(1, true);")],
    )
    .await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    let v = a.json();
    assert_eq!(v["status"], "fatal");
    assert!(v["requestID"].is_string());
    assert!(
        v["errors"][0]["msg"]
            .as_str()
            .unwrap()
            .contains("Injected failure in inject-failure")
    );
    assert_eq!(v["metrics"]["errorCount"], 1);
}

#[tokio::test]
async fn async_timeout_reports_timeout_on_the_status_endpoint() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", r#"select value sleep("result", 60000);"#),
            ("mode", "async"),
            ("timeout", "300ms"),
        ],
    )
    .await;
    let st = poll_status(&s, a.json()["handle"].as_str().unwrap()).await;
    let v = st.json();
    assert_eq!(v["status"], "timeout");
    assert_eq!(
        v["errors"][0]["msg"],
        "ASX0030: Request timed out and will be cancelled"
    );
    // An immediate request that times out answers HTTP 200 with status timeout.
    let a = post_form(
        &s,
        &[
            ("statement", r#"select value sleep("result", 60000);"#),
            ("timeout", "200ms"),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json()["status"], "timeout");
}

#[tokio::test]
async fn running_requests_are_listed_and_cancelled_by_client_context_id() {
    let s = server(Profile::Master).await;
    let client = reqwest::Client::new();
    let url = s.url("/query/service");
    let slow = tokio::spawn(async move {
        answer(with_form(
            client.post(url),
            &[
                ("statement", r#"select value sleep("result", 30000);"#),
                ("client_context_id", "slow-one"),
            ],
        ))
        .await
    });
    // It shows in the list while it runs.
    let deadline = Instant::now() + Duration::from_secs(5);
    let listed = loop {
        let list = get(&s, "/admin/requests/running").await.json();
        if let Some(entry) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["clientContextID"] == "slow-one")
        {
            break entry.clone();
        }
        assert!(Instant::now() < deadline, "never listed: {list}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(listed["uuid"].is_string());
    assert!(["received", "running"].contains(&listed["state"].as_str().unwrap()));
    assert_eq!(listed["cancellable"], true);
    assert!(
        listed["remoteAddr"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:")
    );
    assert!(listed["jobId"].as_str().unwrap().starts_with("JID:"));
    assert_eq!(
        listed["statement"],
        r#"select value sleep("result", 30000);"#
    );
    let client = reqwest::Client::new();
    let none = client
        .delete(s.url("/admin/requests/running"))
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), StatusCode::BAD_REQUEST);
    let unknown = client
        .delete(s.url("/admin/requests/running?client_context_id=nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let cancelled = client
        .delete(s.url("/admin/requests/running?client_context_id=slow-one"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    assert_eq!(cancelled.text().await.unwrap(), "");
    let a = tokio::time::timeout(Duration::from_secs(10), slow)
        .await
        .expect("the cancelled query did not answer")
        .unwrap();
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    let v = a.json();
    assert_eq!(v["status"], "failed");
    let id = v["requestID"].as_str().unwrap();
    assert_eq!(
        v["errors"][0]["msg"],
        format!("ASX0041: Request has been cancelled {id}")
    );
    let list = get(&s, "/admin/requests/running").await.json();
    assert_eq!(list, serde_json::json!([]));
}

#[tokio::test]
async fn an_async_request_is_cancelled_by_request_id() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            ("statement", r#"select value sleep("result", 30000);"#),
            ("mode", "async"),
        ],
    )
    .await;
    let v = a.json();
    let id = v["requestID"].as_str().unwrap();
    let r = with_form(
        reqwest::Client::new().delete(s.url("/admin/requests/running")),
        &[("request_id", id)],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let st = poll_status(&s, v["handle"].as_str().unwrap()).await;
    assert_eq!(st.json()["status"], "failed");
    // Cancelling it again: it is no longer running.
    let again = with_form(
        reqwest::Client::new().delete(s.url("/admin/requests/running")),
        &[("request_id", id)],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

// ---- TinySocial: the SQL++ primer's basic queries ------------------------------------------------

#[tokio::test]
async fn tiny_social_answers_the_primers_basic_queries() {
    let s = server(Profile::Master).await;
    let q = |statement: &'static str| {
        let s = &s;
        async move {
            let a = post_form(s, &[("statement", statement)]).await;
            assert_eq!(a.status, StatusCode::OK, "{statement}: {}", a.text);
            a.json()["results"].clone()
        }
    };
    // Query 0-A: exact match lookup, SELECT * wraps the row under its alias.
    let users = q("USE TinySocial; SELECT * FROM GleambookUsers u WHERE u.id = 8;").await;
    let users = users.as_array().unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["u"]["id"], 8);
    assert!(users[0]["u"]["employment"].is_array());
    // Query 0-B: range scan with projection.
    let range = q("USE TinySocial; SELECT VALUE user.name FROM GleambookUsers user WHERE user.id >= 2 AND user.id <= 4 ORDER BY user.id;").await;
    assert_eq!(range.as_array().unwrap().len(), 3);
    assert!(range[0].is_string());
    // Dotted dataverse names, and a join with SELECT of fields.
    let joined = q("SELECT u.name AS uname, m.message AS message FROM TinySocial.GleambookUsers u, TinySocial.GleambookMessages m WHERE m.authorId = u.id ORDER BY m.messageId LIMIT 3;").await;
    let joined = joined.as_array().unwrap();
    assert_eq!(joined.len(), 3);
    assert!(joined[0]["uname"].is_string() && joined[0]["message"].is_string());
    // Nested fields of ChirpMessages' user.
    let chirps =
        q("SELECT VALUE cm.user.screenName FROM ChirpMessages cm WHERE cm.chirpId = \"1\";").await;
    assert_eq!(chirps.as_array().unwrap().len(), 1);
    let count = q("SELECT COUNT(*) AS n FROM ChirpUsers;").await;
    assert_eq!(count, serde_json::json!([{"n": 6}]));
}

#[tokio::test]
async fn tiny_social_primer_queries_0_to_10() {
    let s = server(Profile::Master).await;
    let q = |statement: &'static str| {
        let s = &s;
        async move {
            let a = post_form(s, &[("statement", statement)]).await;
            assert_eq!(a.status, StatusCode::OK, "{statement}: {}", a.text);
            a.json()["results"].clone()
        }
    };
    // Query 0-A: exact-match lookup; the record itself, optional fields absent when unset.
    let user8 =
        q("USE TinySocial; SELECT VALUE user FROM GleambookUsers user WHERE user.id = 8;").await;
    assert_eq!(user8.as_array().unwrap().len(), 1);
    assert_eq!(user8[0]["id"], 8);
    assert!(
        user8[0].as_object().unwrap().values().all(|v| !v.is_null()),
        "{user8}"
    );
    // Query 0-B: range scan.
    let users = q("USE TinySocial; SELECT VALUE user FROM GleambookUsers user WHERE user.id >= 2 AND user.id <= 4;").await;
    let ids: Vec<i64> = users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [2, 3, 4]);
    // Query 1: other range scan, with datetime constructors.
    let since = q("USE TinySocial; SELECT VALUE user FROM GleambookUsers user WHERE user.userSince >= datetime('2010-07-22T00:00:00') AND user.userSince <= datetime('2012-07-29T23:59:59');").await;
    for u in since.as_array().unwrap() {
        let t = u["userSince"].as_str().unwrap();
        assert!(("2010-07-22".."2012-07-30").contains(&t), "{t}");
    }
    assert!(!since.as_array().unwrap().is_empty());
    // Query 2-A: equijoin.
    let joined = q("USE TinySocial; SELECT user.name AS uname, msg.message AS message FROM GleambookUsers user, GleambookMessages msg WHERE msg.authorId = user.id;").await;
    assert_eq!(joined.as_array().unwrap().len(), 15);
    // Query 8: simple aggregation.
    let count = q("SELECT COUNT(*) AS numUsers FROM TinySocial.GleambookUsers user;").await;
    assert_eq!(count, serde_json::json!([{"numUsers": 10}]));
    // Query 9-A and 10: grouping on a GROUP BY variable, ordered and limited.
    let grouped = q("USE TinySocial; SELECT uid AS uid, COUNT(*) AS count FROM GleambookMessages msg GROUP BY msg.authorId AS uid ORDER BY count DESC, uid LIMIT 3;").await;
    let grouped = grouped.as_array().unwrap();
    assert_eq!(grouped.len(), 3);
    assert!(grouped[0]["count"].as_i64() >= grouped[2]["count"].as_i64());
    let total = q("SELECT VALUE COUNT(*) FROM GleambookMessages msg;").await;
    assert_eq!(total, serde_json::json!([15]));
}

#[tokio::test]
async fn select_star_over_several_sources_has_one_field_per_variable() {
    let s = server(Profile::Master).await;
    let a = post_form(&s, &[("statement", "FROM [1, 2] AS v, [3] AS w SELECT *;")]).await;
    assert_eq!(
        a.json()["results"],
        serde_json::json!([{"v": 1, "w": 3}, {"v": 2, "w": 3}]),
        "{}",
        a.text
    );
    let a = post_form(
        &s,
        &[(
            "statement",
            "SELECT * FROM GleambookUsers u, GleambookMessages m WHERE m.authorId = u.id AND m.messageId = 2;",
        )],
    )
    .await;
    let rows = a.json()["results"].clone();
    assert_eq!(rows.as_array().map(Vec::len), Some(1), "{}", a.text);
    let row = rows[0].as_object().unwrap();
    assert_eq!(row.keys().collect::<Vec<_>>(), ["u", "m"]);
    assert_eq!(rows[0]["m"]["messageId"], 2);
    assert_eq!(rows[0]["u"]["id"], rows[0]["m"]["authorId"]);
    // An unset optional field is MISSING, not null.
    assert!(
        rows[0]["m"]
            .as_object()
            .unwrap()
            .values()
            .all(|v| !v.is_null())
    );
}

#[tokio::test]
async fn compile_only_describes_the_statement_without_running_it() {
    let s = server(Profile::Master).await;
    let a = post_json(
        &s,
        r#"{"statement": "select ? as a, $name as b from range(1, 2) i;", "compile-only": true, "client-type": "jdbc"}"#,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let v = a.json();
    assert!(v.get("results").is_none() && v.get("handle").is_none());
    assert_eq!(v["status"], "success");
    assert_eq!(v["plans"]["statementCategory"], "query");
    assert_eq!(
        v["plans"]["statementParameters"],
        serde_json::json!([1, "name"])
    );
    assert_eq!(v["plans"]["explainOnly"], false);
    // Nothing ran: no job was left behind.
    assert!(s.engine.list(None).is_empty());
    let bad = post_json(
        &s,
        r#"{"statement": "select * fro;", "compile-only": true}"#,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn sql_plus_plus_the_translator_cannot_handle_is_refused_not_answered() {
    let s = server(Profile::Master).await;
    for statement in [
        "SELECT u.name, e.organizationName FROM GleambookUsers u UNNEST u.employment e;",
        "LET x = (SELECT 1 AS a) SELECT VALUE x;",
        "SELECT VALUE u FROM GleambookUsers u WHERE SOME e IN u.employment SATISFIES e.endDate IS UNKNOWN;",
        "SELECT u.name, (SELECT VALUE m.message FROM GleambookMessages m WHERE m.authorId = u.id) AS msgs FROM GleambookUsers u;",
        "select 1; select 2;",
    ] {
        let a = post_form(&s, &[("statement", statement)]).await;
        let (code, status, msg) = error_of(&a).await;
        assert_eq!(
            (code, status.as_str()),
            (StatusCode::BAD_REQUEST, "fatal"),
            "{statement}: {}",
            a.text
        );
        assert!(
            msg.starts_with("ASX1001: ") || msg.starts_with("ASX1079: "),
            "{statement}: {msg}"
        );
    }
}

#[tokio::test]
async fn adm_format_prints_temporal_values_with_their_constructors() {
    let s = server(Profile::Master).await;
    let a = post_form(
        &s,
        &[
            (
                "statement",
                "SELECT VALUE u FROM GleambookUsers u WHERE u.id = 1;",
            ),
            ("format", "adm"),
        ],
    )
    .await;
    let v = a.json();
    let record = v["results"][0].as_str().unwrap();
    assert!(record.starts_with("{ \"id\": 1, "), "{record}");
    assert!(record.contains("\"userSince\": datetime(\""), "{record}");
    assert!(record.contains("\"startDate\": date(\""), "{record}");
}

// --- hardening (issue #10) --------------------------------------------------------------------

#[tokio::test]
async fn sqlpp_ten_times_too_deep_is_asx1001_and_the_server_stays_up() {
    let s = server(Profile::Docs).await;
    for statement in [
        crate::support::too_deep(),
        format!("select {};", vec!["1"; 30_000].join("+")),
    ] {
        let a = post_form(&s, &[("statement", &statement)]).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
        let v = a.json();
        assert_eq!(v["status"], "fatal", "{v}");
        let msg = v["errors"][0]["msg"].as_str().unwrap();
        assert!(msg.starts_with("ASX1001: Syntax error: "), "{msg}");
        assert!(msg.contains("levels deep"), "{msg}");
        crate::support::assert_alive(&s).await;
    }
    let a = post_form(&s, &[("statement", &crate::support::or_chain(900))]).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
}
