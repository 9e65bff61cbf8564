//! Contract cases as data, replayed against any server: ours in the test suite, or a vendor's real
//! service with `polyquery contract --dialect NAME --target URL`, so the two can be checked against
//! each other.
//!
//! A case file (`dialects/<name>/*.json`) holds a list of cases; a case is a list of steps; a step is a
//! request and what the response must be. Values captured from one response (`capture`) fill `{name}`
//! placeholders in later steps. Expected JSON is a pattern:
//! - a literal matches itself; objects match when every expected key matches (`"$absent"` demands the key
//!   is missing) and, with `"ordered": true` on the step, the keys present appear in the expected order;
//! - `"$any"`, `"$string"`, `"$number"`, `"$integer"`, `"$bool"`, `"$null"`, `"$array"`, `"$object"`,
//!   `"$uuid"`, `"$hex32"`, `"$nonempty"` match by kind; `"$regex:<re>"`-free by design: `"$prefix:<text>"`
//!   and `"$contains:<text>"` match strings;
//! - `{name}` inside an expected string is replaced by a captured value first.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

/// One file's worth of cases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    #[serde(default)]
    pub description: String,
    pub cases: Vec<Case>,
}

/// A named sequence of steps that share captured values.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    pub steps: Vec<Step>,
}

/// A request and what its response must be.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub request: CaseRequest,
    pub expect: Expect,
    /// Captures: name → a path into the JSON body (`executionId`, `data.queryID`, `items.0.id`), or
    /// `header:<name>`.
    #[serde(default)]
    pub capture: BTreeMap<String, String>,
    /// Repeat the request until the expectation holds, for at most this many milliseconds.
    #[serde(default)]
    pub retry_for_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRequest {
    #[serde(default = "get")]
    pub method: String,
    /// Path and query, e.g. `/kylin/api/async_query/{id}/status`, or an absolute URL (a captured
    /// handle such as AsterixDB's `{handle}`), which is requested as it is.
    pub path: String,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// A text body, sent as is.
    #[serde(default)]
    pub body: Option<String>,
    /// A JSON body (sent with Content-Type: application/json unless a header says otherwise).
    #[serde(default)]
    pub json: Option<Value>,
    /// A form body (application/x-www-form-urlencoded).
    #[serde(default)]
    pub form: Option<Vec<(String, String)>>,
}

fn get() -> String {
    "GET".into()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: u16,
    /// Header name → exact value, or `"$absent"`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The exact body text.
    #[serde(default)]
    pub body: Option<String>,
    /// The body must contain each of these.
    #[serde(default)]
    pub body_contains: Vec<String>,
    /// The body parsed as JSON must match this pattern.
    #[serde(default)]
    pub json: Option<Value>,
    /// Object keys must appear in the pattern's order.
    #[serde(default)]
    pub ordered: bool,
}

/// What one case came to.
#[derive(Debug)]
pub struct Outcome {
    pub file: String,
    pub case: String,
    pub failure: Option<String>,
}

/// Where a dialect's cases live in a checkout.
pub fn default_dir(dialect: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("dialects")
        .join(dialect)
}

/// Reads every `*.json` case file of a folder, in name order.
pub fn load(dir: &Path) -> Result<Vec<(String, CaseFile)>, String> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            let file: CaseFile =
                serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
            Ok((
                p.file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default(),
                file,
            ))
        })
        .collect()
}

/// Replays every case of `dir` against `target` (a base URL such as `http://127.0.0.1:8080`).
pub async fn replay(dir: &Path, target: &str) -> Result<Vec<Outcome>, String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())?;
    let mut outcomes = Vec::new();
    for (file, cases) in load(dir)? {
        for case in cases.cases {
            let failure = run_case(&client, target, &case).await.err();
            outcomes.push(Outcome {
                file: file.clone(),
                case: case.name,
                failure,
            });
        }
    }
    Ok(outcomes)
}

async fn run_case(client: &reqwest::Client, target: &str, case: &Case) -> Result<(), String> {
    let mut vars: BTreeMap<String, String> = BTreeMap::new();
    let authority = target
        .split("://")
        .nth(1)
        .unwrap_or(target)
        .trim_end_matches('/')
        .to_string();
    vars.insert("authority".into(), authority);
    for (i, step) in case.steps.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_millis(step.retry_for_ms);
        loop {
            let attempt = run_step(client, target, step, &vars).await;
            match attempt {
                Ok(captured) => {
                    vars.extend(captured);
                    break;
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => {
                    return Err(format!(
                        "step {} ({} {}): {e}",
                        i + 1,
                        step.request.method,
                        step.request.path
                    ));
                }
            }
        }
    }
    Ok(())
}

async fn run_step(
    client: &reqwest::Client,
    target: &str,
    step: &Step,
    vars: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, String> {
    let r = &step.request;
    let method = reqwest::Method::from_bytes(r.method.as_bytes()).map_err(|e| e.to_string())?;
    let path = fill(&r.path, vars);
    // A captured absolute URL (a handle the server gave out) is followed as it is.
    let url = if path.starts_with("http://") || path.starts_with("https://") {
        path
    } else {
        format!("{}{}", target.trim_end_matches('/'), path)
    };
    let mut request = client.request(method, url);
    for (k, v) in &r.headers {
        request = request.header(k, fill(v, vars));
    }
    if let Some(body) = &r.body {
        request = request.body(fill(body, vars));
    } else if let Some(json) = &r.json {
        let text = fill(&json.to_string(), vars);
        if !r
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"))
        {
            request = request.header("content-type", "application/json");
        }
        request = request.body(text);
    } else if let Some(form) = &r.form {
        let pairs: Vec<(String, String)> = form
            .iter()
            .map(|(k, v)| (k.clone(), fill(v, vars)))
            .collect();
        let body = serde_urlencoded::to_string(&pairs).map_err(|e| e.to_string())?;
        request = request
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response
        .text()
        .await
        .map_err(|e| format!("body unreadable: {e}"))?;
    let e = &step.expect;
    if status != e.status {
        return Err(format!(
            "status {status}, expected {}; body: {}",
            e.status,
            clip(&text)
        ));
    }
    for (name, want) in &e.headers {
        let got = headers.get(name.as_str()).and_then(|v| v.to_str().ok());
        match (want.as_str(), got) {
            ("$absent", None) => {}
            ("$absent", Some(v)) => {
                return Err(format!("header {name} should be absent, is {v:?}"));
            }
            (want, Some(got)) if fill(want, vars) == got => {}
            (want, got) => return Err(format!("header {name} is {got:?}, expected {want:?}")),
        }
    }
    if let Some(body) = &e.body {
        let body = fill(body, vars);
        if text != body {
            return Err(format!(
                "body {:?}, expected {:?}",
                clip(&text),
                clip(&body)
            ));
        }
    }
    for part in &e.body_contains {
        let part = fill(part, vars);
        if !text.contains(&part) {
            return Err(format!("body lacks {part:?}: {}", clip(&text)));
        }
    }
    let parsed: Option<Value> = serde_json::from_str(&text).ok();
    if let Some(pattern) = &e.json {
        let got = parsed
            .as_ref()
            .ok_or_else(|| format!("body is not JSON: {}", clip(&text)))?;
        matches(pattern, got, e.ordered, vars, "$")?;
    }
    let mut captured = BTreeMap::new();
    for (name, path) in &step.capture {
        let value = if let Some(h) = path.strip_prefix("header:") {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        } else {
            parsed
                .as_ref()
                .and_then(|v| lookup(v, path))
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
        };
        captured.insert(
            name.clone(),
            value.ok_or_else(|| format!("nothing to capture at {path}"))?,
        );
    }
    Ok(captured)
}

/// Replaces `{name}` with captured values; unknown names stay as written.
fn fill(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (k, v) in vars {
        out = out.replace(&format!("{{{k}}}"), v);
    }
    out
}

fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .filter(|p| !p.is_empty())
        .try_fold(value, |v, part| match v {
            Value::Array(a) => part.parse::<usize>().ok().and_then(|i| a.get(i)),
            Value::Object(o) => o.get(part),
            _ => None,
        })
}

fn clip(text: &str) -> String {
    let mut s: String = text.chars().take(400).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// Matches `got` against the pattern `want` (see the module documentation).
pub fn matches(
    want: &Value,
    got: &Value,
    ordered: bool,
    vars: &BTreeMap<String, String>,
    at: &str,
) -> Result<(), String> {
    let fail = || {
        Err(format!(
            "at {at}: got {}, expected {}",
            clip(&got.to_string()),
            clip(&want.to_string())
        ))
    };
    match want {
        Value::String(w) if w.starts_with('$') => {
            let ok = match w.as_str() {
                "$any" => true,
                "$string" => got.is_string(),
                "$nonempty" => got.as_str().is_some_and(|s| !s.is_empty()),
                "$number" => got.is_number(),
                "$integer" => got.is_i64() || got.is_u64(),
                "$bool" => got.is_boolean(),
                "$null" => got.is_null(),
                "$array" => got.is_array(),
                "$object" => got.is_object(),
                "$uuid" => got
                    .as_str()
                    .is_some_and(|s| uuid::Uuid::try_parse(s).is_ok() && s.len() == 36),
                "$hex32" => got.as_str().is_some_and(|s| {
                    s.len() == 32
                        && s.bytes()
                            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                }),
                other => {
                    if let Some(p) = other.strip_prefix("$prefix:") {
                        got.as_str().is_some_and(|s| s.starts_with(&fill(p, vars)))
                    } else if let Some(p) = other.strip_prefix("$contains:") {
                        got.as_str().is_some_and(|s| s.contains(&fill(p, vars)))
                    } else {
                        got.as_str() == Some(other)
                    }
                }
            };
            if ok { Ok(()) } else { fail() }
        }
        Value::String(w) => {
            if got.as_str() == Some(fill(w, vars).as_str()) {
                Ok(())
            } else {
                fail()
            }
        }
        Value::Array(w) => {
            let Some(g) = got.as_array() else {
                return fail();
            };
            if w.len() != g.len() {
                return Err(format!("at {at}: {} items, expected {}", g.len(), w.len()));
            }
            w.iter()
                .zip(g)
                .enumerate()
                .try_for_each(|(i, (w, g))| matches(w, g, ordered, vars, &format!("{at}[{i}]")))
        }
        Value::Object(w) => {
            let Some(g) = got.as_object() else {
                return fail();
            };
            let mut last_position = 0;
            for (key, wv) in w {
                let here = format!("{at}.{key}");
                match (wv.as_str(), g.get(key)) {
                    (Some("$absent"), None) => continue,
                    (Some("$absent"), Some(_)) => {
                        return Err(format!("at {here}: should be absent"));
                    }
                    (_, None) => return Err(format!("at {here}: missing")),
                    (_, Some(gv)) => matches(wv, gv, ordered, vars, &here)?,
                }
                if ordered {
                    let position = g.keys().position(|k| k == key).unwrap_or(0);
                    if position < last_position {
                        return Err(format!(
                            "at {here}: key out of order (keys are {:?})",
                            g.keys().collect::<Vec<_>>()
                        ));
                    }
                    last_position = position;
                }
            }
            Ok(())
        }
        literal => {
            if literal == got {
                Ok(())
            } else {
                fail()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(want: Value, got: Value, ordered: bool) -> Result<(), String> {
        matches(&want, &got, ordered, &BTreeMap::new(), "$")
    }

    #[test]
    fn patterns_match_by_kind_and_literal() {
        assert!(
            check(
                json!({"a": "$integer", "b": "$uuid", "c": "$absent"}),
                json!({"a": 1, "b": "01234567-89ab-cdef-0011-223344556677"}),
                false
            )
            .is_ok()
        );
        assert!(check(json!({"a": "$integer"}), json!({"a": "1"}), false).is_err());
        assert!(check(json!({"c": "$absent"}), json!({"c": null}), false).is_err());
        assert!(check(json!([1, "$string"]), json!([1, "x", 3]), false).is_err());
        assert!(
            check(
                json!({"s": "$prefix:ASX"}),
                json!({"s": "ASX0040: No statement"}),
                false
            )
            .is_ok()
        );
    }

    #[test]
    fn ordered_objects_check_key_order() {
        assert!(check(json!({"a": 1, "b": 2}), json!({"b": 2, "a": 1}), true).is_err());
        assert!(
            check(
                json!({"a": 1, "b": 2}),
                json!({"a": 1, "x": 0, "b": 2}),
                true
            )
            .is_ok()
        );
        assert!(check(json!({"a": 1, "b": 2}), json!({"b": 2, "a": 1}), false).is_ok());
    }

    #[test]
    fn captured_values_fill_placeholders() {
        let mut vars = BTreeMap::new();
        vars.insert("id".to_string(), "42".to_string());
        assert_eq!(fill("/x/{id}/y/{other}", &vars), "/x/42/y/{other}");
        assert!(
            matches(
                &json!("handle {id}"),
                &json!("handle 42"),
                false,
                &vars,
                "$"
            )
            .is_ok()
        );
        assert_eq!(lookup(&json!({"a": [{"b": 7}]}), "a.0.b"), Some(&json!(7)));
    }
}
