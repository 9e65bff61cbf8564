//! Reading a `/query/service` request: parameters from the URL, a form body or a JSON body, each
//! validated with AsterixDB's own messages.

use std::collections::BTreeMap;
use std::time::Duration;

use hyper::Method;
use hyper::header::{ACCEPT, CONTENT_TYPE};
use serde_json::Value;

use super::errors::AsxError;
use crate::wire::Request;

/// How the result is delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Immediate,
    Deferred,
    Async,
}

/// The result format a request asks for (`format` parameter, else the Accept header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Clean JSON (the default).
    Json,
    /// Lossless JSON / lossless ADM JSON: printed like clean JSON here.
    LosslessJson,
    Adm,
    Csv {
        header: bool,
    },
}

impl OutputFormat {
    /// The stored name, read back by the result endpoint.
    pub fn tag(self) -> &'static str {
        match self {
            OutputFormat::Json => "json",
            OutputFormat::LosslessJson => "lossless-json",
            OutputFormat::Adm => "adm",
            OutputFormat::Csv { header: true } => "csv-header",
            OutputFormat::Csv { header: false } => "csv",
        }
    }

    pub fn from_tag(tag: &str) -> OutputFormat {
        match tag {
            "lossless-json" => OutputFormat::LosslessJson,
            "adm" => OutputFormat::Adm,
            "csv-header" => OutputFormat::Csv { header: true },
            "csv" => OutputFormat::Csv { header: false },
            _ => OutputFormat::Json,
        }
    }

    /// The `type` field for the non-JSON formats.
    pub fn type_field(self) -> Option<&'static str> {
        match self {
            OutputFormat::Adm => Some("application/x-adm"),
            OutputFormat::Csv { header: true } => Some("text/csv; header=present"),
            OutputFormat::Csv { header: false } => Some("text/csv; header=absent"),
            OutputFormat::Json | OutputFormat::LosslessJson => None,
        }
    }
}

/// `profile` request parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobProfile {
    Counts,
    Timings,
    Off,
}

/// Everything a `/query/service` request says, validated.
#[derive(Clone, Debug)]
pub struct QueryRequest {
    pub statement: Option<String>,
    pub client_context_id: Option<String>,
    pub mode: Mode,
    pub format: OutputFormat,
    pub pretty: bool,
    pub readonly: bool,
    pub timeout: Option<Duration>,
    pub max_result_reads: i64,
    pub signature: bool,
    pub multi_statement: bool,
    pub jdbc: bool,
    pub dataverse: Option<String>,
    pub profile: JobProfile,
    /// `include-host=false` asks for master's new API: relative handles naming the request.
    pub include_host: bool,
    /// `compile-only`: check and describe the statement, do not run it (JDBC's prepare).
    pub compile_only: bool,
    /// How long an async or deferred result is kept (`result-ttl`).
    pub result_ttl: Option<Duration>,
    /// The `plans` keys the plan flags asked for (`logicalPlan`, …).
    pub plans_asked: Vec<&'static str>,
    pub args: Vec<Value>,
    pub named: BTreeMap<String, Value>,
}

/// One parameter's raw value: text from a URL or form, or a JSON value from a JSON body.
#[derive(Clone, Debug)]
enum Raw {
    Text(String),
    Json(Value),
}

impl Raw {
    /// Jackson's `asText()`: scalars as text, objects and arrays as "".
    fn text(&self) -> String {
        match self {
            Raw::Text(t) => t.clone(),
            Raw::Json(Value::String(s)) => s.clone(),
            Raw::Json(Value::Object(_) | Value::Array(_)) => String::new(),
            Raw::Json(other) => other.to_string(),
        }
    }

    /// The value as JSON: a JSON body's value as is, text parsed as JSON.
    fn json(&self) -> Option<Value> {
        match self {
            Raw::Json(v) => Some(v.clone()),
            Raw::Text(t) => serde_json::from_str(t).ok(),
        }
    }
}

/// Parameters in arrival order; the first of a repeated name wins.
struct Params(Vec<(String, Raw)>);

impl Params {
    fn get(&self, name: &str) -> Option<&Raw> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(Raw::text)
    }

    fn bool(&self, name: &str, default: bool) -> Result<bool, AsxError> {
        match self.text(name) {
            None => Ok(default),
            Some(t) if t.eq_ignore_ascii_case("true") => Ok(true),
            Some(t) if t.eq_ignore_ascii_case("false") => Ok(false),
            Some(t) => Err(AsxError::invalid_parameter(name, &t)),
        }
    }

    fn long(&self, name: &str, default: i64) -> Result<i64, AsxError> {
        match self.text(name) {
            None => Ok(default),
            Some(t) => t.parse().map_err(|_| AsxError::invalid_parameter(name, &t)),
        }
    }
}

/// Reads and validates a request's parameters. A GET reads the URL only and is read-only.
pub fn parse(request: &Request) -> Result<QueryRequest, AsxError> {
    let params = collect(request)?;
    let mode = match params.text("mode") {
        None => Mode::Immediate,
        Some(m) => match m.to_ascii_lowercase().as_str() {
            "immediate" => Mode::Immediate,
            "deferred" => Mode::Deferred,
            "async" => Mode::Async,
            _ => return Err(AsxError::invalid_parameter("mode", &m)),
        },
    };
    let format = match params.text("format") {
        Some(f) => match f.to_ascii_lowercase().as_str() {
            "json" => OutputFormat::Json,
            "csv" => OutputFormat::Csv { header: false },
            "adm" => OutputFormat::Adm,
            "lossless-adm" => OutputFormat::LosslessJson,
            _ => return Err(AsxError::invalid_parameter("format", &f)),
        },
        None => accept_format(request)?,
    };
    let pretty = params.bool("pretty", false)?;
    let readonly = request.method() == Method::GET || params.bool("readonly", false)?;
    let timeout = match params.text("timeout") {
        None => None,
        Some(t) => match parse_timeout(&t) {
            Some(d) if d.is_zero() => None,
            Some(d) => Some(d),
            None => return Err(AsxError::invalid_parameter("timeout", &t)),
        },
    };
    let max_result_reads = params.long("max-result-reads", 1)?;
    // Validated only: polyquery reports no warnings, so `warnings` never appears.
    params.long("max-warnings", 0)?;
    let signature = params.bool("signature", true)?;
    let multi_statement = params.bool("multi-statement", true)?;
    if let Some(f) = params.text("plan-format")
        && !["json", "clean_json", "string", "dot"].contains(&f.to_ascii_lowercase().as_str())
    {
        return Err(AsxError::invalid_parameter("plan-format", &f));
    }
    let mut plans_asked = Vec::new();
    for (flag, key) in [
        ("expression-tree", "expressionTree"),
        ("rewritten-expression-tree", "rewrittenExpressionTree"),
        ("logical-plan", "logicalPlan"),
        ("optimized-logical-plan", "optimizedLogicalPlan"),
        ("job", "job"),
    ] {
        if params.bool(flag, false)? {
            plans_asked.push(key);
        }
    }
    let compile_only = params.bool("compile-only", false)?;
    for flag in ["parse-only", "sql-compat", "skip-plan-cache"] {
        params.bool(flag, false)?;
    }
    let include_host = params.bool("include-host", true)?;
    let result_ttl = match params.text("result-ttl") {
        None => None,
        Some(t) => {
            Some(parse_timeout(&t).ok_or_else(|| AsxError::invalid_parameter("result-ttl", &t))?)
        }
    };
    let profile = match params.text("profile") {
        None => JobProfile::Counts,
        Some(p) => match p.to_ascii_lowercase().as_str() {
            "counts" => JobProfile::Counts,
            "timings" => JobProfile::Timings,
            "off" => JobProfile::Off,
            _ => return Err(AsxError::invalid_parameter("profile", &p)),
        },
    };
    let jdbc = match params.text("client-type") {
        None => false,
        Some(c) => match c.to_ascii_lowercase().as_str() {
            "asterix" => false,
            "jdbc" => true,
            _ => return Err(AsxError::invalid_parameter("client-type", &c)),
        },
    };
    let args = match params.get("args") {
        None => Vec::new(),
        Some(raw) => match raw.json() {
            Some(Value::Array(items)) => items,
            _ => return Err(AsxError::invalid_parameter("args", &raw_display(raw))),
        },
    };
    let mut named = BTreeMap::new();
    for (name, raw) in &params.0 {
        if is_variable(name) && !named.contains_key(&name[1..]) {
            let value = raw.json().ok_or_else(AsxError::bad_json)?;
            named.insert(name[1..].to_string(), value);
        }
    }
    Ok(QueryRequest {
        statement: params.text("statement").filter(|s| !s.trim().is_empty()),
        client_context_id: params.text("client_context_id").filter(|c| !c.is_empty()),
        mode,
        format,
        pretty,
        readonly,
        timeout,
        max_result_reads,
        signature,
        multi_statement,
        jdbc,
        dataverse: params.text("dataverse").filter(|d| !d.is_empty()),
        profile,
        include_host,
        compile_only,
        result_ttl,
        plans_asked,
        args,
        named,
    })
}

/// How a bad value is quoted back: text as it came, JSON as JSON.
fn raw_display(raw: &Raw) -> String {
    match raw {
        Raw::Text(t) | Raw::Json(Value::String(t)) => t.clone(),
        Raw::Json(v) => v.to_string(),
    }
}

/// `$` + a letter + letters, digits or `_`.
fn is_variable(name: &str) -> bool {
    let Some(rest) = name.strip_prefix('$') else {
        return false;
    };
    let mut chars = rest.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// The request's parameters: URL for GET and non-form POSTs, form body then URL for form POSTs,
/// the JSON object for JSON POSTs.
fn collect(request: &Request) -> Result<Params, AsxError> {
    let url = request.uri().query().unwrap_or("");
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if request.method() == Method::GET {
        return form_pairs(url.as_bytes()).map(Params);
    }
    if content_type == "application/json" {
        let body: Value =
            serde_json::from_slice(request.body()).map_err(|_| AsxError::bad_json())?;
        let Value::Object(map) = body else {
            return Err(AsxError::bad_json());
        };
        return Ok(Params(
            map.into_iter().map(|(k, v)| (k, Raw::Json(v))).collect(),
        ));
    }
    let mut pairs = Vec::new();
    if content_type == "application/x-www-form-urlencoded" {
        pairs = form_pairs(request.body())?;
    }
    pairs.extend(form_pairs(url.as_bytes())?);
    Ok(Params(pairs))
}

/// Decodes `application/x-www-form-urlencoded` text. Bytes that are not UTF-8 once decoded are
/// the client's mistake, named by the parameter they were in.
fn form_pairs(bytes: &[u8]) -> Result<Vec<(String, Raw)>, AsxError> {
    crate::wire::form_pairs(bytes)
        .map(|pairs| pairs.into_iter().map(|(k, v)| (k, Raw::Text(v))).collect())
        .map_err(|e| AsxError::invalid_parameter(&e.parameter, "invalid UTF-8"))
}

/// The format the Accept header asks for: the first media type AsterixDB knows.
fn accept_format(request: &Request) -> Result<OutputFormat, AsxError> {
    let accept = request
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for item in accept.split(',') {
        let mut parts = item.split(';').map(str::trim);
        let media = parts.next().unwrap_or("").to_ascii_lowercase();
        let attrs: Vec<(String, String)> = parts
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let attr = |name: &str| {
            attrs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let flag = |name: &str| -> Result<bool, AsxError> {
            match attr(name) {
                None => Ok(false),
                Some(v) if v.eq_ignore_ascii_case("true") => Ok(true),
                Some(v) if v.eq_ignore_ascii_case("false") => Ok(false),
                Some(v) => Err(AsxError::invalid_parameter(name, &v)),
            }
        };
        match media.as_str() {
            "application/json" => {
                // Lossless JSON tags every value with its type (`{ "int64": 1 }`); polyquery does
                // not print it, and refuses rather than answer in clean JSON. Lossless ADM JSON
                // (the JDBC driver's) prints the types polyquery has as clean JSON does.
                if flag("lossless")? {
                    return Err(AsxError::compilation(
                        "lossless JSON output (Accept: application/json; lossless=true) is not supported by polyquery",
                    ));
                }
                let lossless = flag("lossless-adm")?;
                return Ok(if lossless {
                    OutputFormat::LosslessJson
                } else {
                    OutputFormat::Json
                });
            }
            "text/csv" => {
                let header = match attr("header") {
                    None => false,
                    Some(v) if v.eq_ignore_ascii_case("present") => true,
                    Some(v) if v.eq_ignore_ascii_case("absent") => false,
                    Some(v) => return Err(AsxError::invalid_parameter("header", &v)),
                };
                return Ok(OutputFormat::Csv { header });
            }
            "application/x-adm" => return Ok(OutputFormat::Adm),
            _ => {}
        }
    }
    Ok(OutputFormat::Json)
}

/// AsterixDB's duration syntax: `[+-]?(\d*(\.\d*)?(ns|us|µs|ms|s|m|h))+`, or `0`.
pub fn parse_timeout(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let mut rest = text.strip_prefix(['+', '-']).unwrap_or(text);
    if rest.is_empty() {
        return None;
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number = &rest[..number_len];
        if number.is_empty() || number == "." || number.matches('.').count() > 1 {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let units: [(&str, f64); 7] = [
            ("ns", 1.0),
            ("us", 1e3),
            ("µs", 1e3),
            ("ms", 1e6),
            ("s", 1e9),
            ("m", 60e9),
            ("h", 3600e9),
        ];
        let (unit, scale) = units.iter().find(|(u, _)| rest.starts_with(u))?;
        total += value * scale;
        rest = &rest[unit.len()..];
    }
    Some(Duration::from_nanos(total as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_need_a_unit() {
        assert_eq!(parse_timeout("12"), None);
        assert_eq!(parse_timeout("1s"), Some(Duration::from_secs(1)));
        assert_eq!(parse_timeout("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_timeout("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_timeout("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_timeout("0"), Some(Duration::ZERO));
        assert_eq!(parse_timeout("s"), None);
        assert_eq!(parse_timeout("5x"), None);
    }

    #[test]
    fn form_values_decode_and_reject_bad_utf8() {
        let pairs = form_pairs(b"statement=select+1%3B&pretty=true").unwrap();
        assert_eq!(pairs[0].0, "statement");
        assert_eq!(pairs[0].1.text(), "select 1;");
        let err = form_pairs(b"statement=%FF%FE").unwrap_err();
        assert_eq!(
            err.message,
            "ASX0047: Invalid value for parameter 'statement': invalid UTF-8"
        );
    }

    #[test]
    fn variables_are_dollar_letter_names() {
        assert!(is_variable("$p1"));
        assert!(is_variable("$a_b"));
        assert!(!is_variable("$1"));
        assert!(!is_variable("p"));
        assert!(!is_variable("$"));
    }
}
