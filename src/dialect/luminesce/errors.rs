//! Luminesce's one error shape, LUSID Problem Details, and the one mapping from engine errors to it.

use hyper::StatusCode;
use hyper::header::{HeaderValue, RETRY_AFTER, WWW_AUTHENTICATE};
use serde::Serialize;

use crate::engine::{EngineError, ErrorKind};
use crate::wire::{self as http, Response};

/// Seconds a client is told to wait before asking again for a result that is not ready yet.
/// Whole seconds: urllib3 (under the sync SDK) rejects a fractional `Retry-After`.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// A LUSID Problem Details body (`LusidProblemDetails` in the SDK), in the SDK's key order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProblemDetails {
    pub name: String,
    pub error_details: Vec<serde_json::Map<String, serde_json::Value>>,
    pub code: u16,
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub instance: String,
}

/// An error on the Luminesce wire: a status, a LUSID error name, a title and the detail the
/// client reads (lumipy prints `detail`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LuminesceError {
    pub status: StatusCode,
    pub name: &'static str,
    pub title: &'static str,
    pub detail: String,
    /// Extra `{key: value}` facts (the failing filter's position, the bad parameter's name).
    pub details: Vec<(String, String)>,
}

impl LuminesceError {
    pub fn new(
        status: StatusCode,
        name: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        LuminesceError {
            status,
            name,
            title,
            detail: detail.into(),
            details: Vec::new(),
        }
    }

    /// A request the client got wrong (bad parameter, bad body).
    pub fn bad_request(detail: impl Into<String>) -> Self {
        LuminesceError::new(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "The request is invalid",
            detail,
        )
    }

    /// A parameter whose value cannot be used.
    pub fn bad_parameter(parameter: &str, detail: impl Into<String>) -> Self {
        let mut e = LuminesceError::bad_request(detail);
        e.name = "InvalidParameterValue";
        e.title = "A parameter value is invalid";
        e.details.push(("parameter".into(), parameter.into()));
        e
    }

    /// No such query for this caller: unknown, expired, malformed, or someone else's.
    pub fn not_found(detail: impl Into<String>) -> Self {
        LuminesceError::new(
            StatusCode::NOT_FOUND,
            "ExecutionNotFound",
            "The query does not exist",
            detail,
        )
    }

    /// A path the API does not have (not a query that does not exist).
    pub fn no_such_path(what: impl std::fmt::Display) -> Self {
        LuminesceError::new(
            StatusCode::NOT_FOUND,
            "PathNotFound",
            "The path does not exist",
            format!("{what} is not a path of the Luminesce API served here"),
        )
    }

    /// A part of the API (or of an operation) that polyquery does not build: 501, saying so.
    pub fn not_built(detail: impl Into<String>) -> Self {
        LuminesceError::new(
            StatusCode::NOT_IMPLEMENTED,
            "NotImplemented",
            "This part of the API is not built",
            detail,
        )
    }

    /// No usable Bearer token.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        LuminesceError::new(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "Authentication is required",
            detail,
        )
    }

    pub fn with_detail(mut self, key: &str, value: impl Into<String>) -> Self {
        self.details.push((key.into(), value.into()));
        self
    }

    /// The Problem Details response. `Retry-After` goes only on 429 and 503, where the SDK's
    /// transparent retry is wanted; never on 400 or 404.
    pub fn response(&self) -> Response {
        let request_id = uuid::Uuid::new_v4().simple().to_string();
        let body = ProblemDetails {
            name: self.name.to_string(),
            error_details: self
                .details
                .iter()
                .map(|(k, v)| {
                    let mut m = serde_json::Map::new();
                    m.insert(k.clone(), serde_json::Value::String(v.clone()));
                    m
                })
                .collect(),
            code: self.status.as_u16(),
            kind: format!(
                "https://docs.lusid.com/#section/Error-Codes/{}",
                self.status.as_u16()
            ),
            title: self.title.to_string(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            instance: format!("/honeycomb/app/insights/logs/{request_id}"),
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        let mut response = http::with_body(self.status, "application/problem+json", bytes);
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&request_id) {
            headers.insert("lusid-meta-requestId", v);
        }
        if matches!(
            self.status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) {
            headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The one mapping from engine errors to the Luminesce wire.
///
/// - a query that does not parse, or is not a query: 400 (at start);
/// - a query that failed while it ran (planning included, as Luminesce resolves providers at run
///   time), was cancelled or timed out: 400 "Something failed with the execution of your query"
///   (at fetch);
/// - unknown, expired or someone else's job: 404;
/// - not ready: 429 with `Retry-After`, so the SDK waits and asks again by itself;
/// - the queue is full: 429 with `Retry-After`;
/// - polyquery's own fault: 500.
impl From<EngineError> for LuminesceError {
    fn from(e: EngineError) -> Self {
        use ErrorKind as K;
        let (status, name, title) = match e.kind {
            K::Syntax => (
                StatusCode::BAD_REQUEST,
                "SqlSyntaxError",
                "The SQL could not be parsed",
            ),
            K::Unsupported => (
                StatusCode::BAD_REQUEST,
                "SqlNotSupported",
                "The SQL is not supported",
            ),
            K::Plan | K::Execution | K::Limit => (
                StatusCode::BAD_REQUEST,
                "QueryExecutionFailed",
                "Something failed with the execution of your query",
            ),
            K::Cancelled => (
                StatusCode::BAD_REQUEST,
                "QueryCancelled",
                "The query was cancelled",
            ),
            K::TimedOut => (
                StatusCode::BAD_REQUEST,
                "QueryTimedOut",
                "The query ran past its timeout",
            ),
            K::Interrupted => (
                StatusCode::BAD_REQUEST,
                "QueryInterrupted",
                "The query was interrupted",
            ),
            K::NotFound => (
                StatusCode::NOT_FOUND,
                "ExecutionNotFound",
                "The query does not exist",
            ),
            K::NotReady => (
                StatusCode::TOO_MANY_REQUESTS,
                "ResultNotReady",
                "The result is not ready yet; try again soon",
            ),
            K::Busy => (
                StatusCode::TOO_MANY_REQUESTS,
                "TooManyQueries",
                "Too many queries are waiting; try again soon",
            ),
            K::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "polyquery failed",
            ),
        };
        LuminesceError::new(status, name, title, e.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_only_where_a_retry_is_wanted() {
        for (kind, status, retry) in [
            (ErrorKind::Syntax, 400, false),
            (ErrorKind::Execution, 400, false),
            (ErrorKind::NotFound, 404, false),
            (ErrorKind::NotReady, 429, true),
            (ErrorKind::Busy, 429, true),
        ] {
            let r = LuminesceError::from(EngineError::new(kind, "x")).response();
            assert_eq!(r.status().as_u16(), status, "{kind:?}");
            assert_eq!(
                r.headers().get(RETRY_AFTER).is_some(),
                retry,
                "{kind:?} Retry-After"
            );
        }
    }
}
