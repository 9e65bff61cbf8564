//! Looker's error wire: every error is `{"message", "documentation_url"}`, and a validation error adds
//! `errors[]` whose items each carry their own `documentation_url` (the Python SDK rejects the body
//! otherwise). Engine errors become Looker errors in [`LookerError::from_engine`], and only there.

use hyper::StatusCode;
use serde::Serialize;

use crate::engine::{EngineError, ErrorKind};
use crate::wire::{self as http, Response};

/// Where error bodies point. Deliberately not Looker's `/r/err/` form: the Python SDK fetches an
/// error-code index from the internet whenever it sees that form, with no timeout.
pub const DOCUMENTATION_URL: &str = "https://github.com/polyquery/polyquery#looker";

/// One problem with a request field, as in Looker's `ValidationErrorDetail`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorDetail {
    pub field: String,
    pub code: String,
    pub message: String,
    pub documentation_url: &'static str,
}

impl ErrorDetail {
    pub fn new(field: &str, code: &str, message: impl Into<String>) -> ErrorDetail {
        ErrorDetail {
            field: field.to_string(),
            code: code.to_string(),
            message: message.into(),
            documentation_url: DOCUMENTATION_URL,
        }
    }
}

/// An error answer: status, message, and the field problems of a 422.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LookerError {
    pub status: StatusCode,
    pub message: String,
    pub errors: Vec<ErrorDetail>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    message: &'a str,
    documentation_url: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [ErrorDetail]>,
}

impl LookerError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> LookerError {
        LookerError {
            status,
            message: message.into(),
            errors: Vec::new(),
        }
    }

    /// Real Looker's answer to anything it does not know, bad credentials included.
    pub fn not_found() -> LookerError {
        LookerError::new(StatusCode::NOT_FOUND, "Not found")
    }

    pub fn unauthenticated() -> LookerError {
        LookerError::new(StatusCode::UNAUTHORIZED, "Requires authentication.")
    }

    pub fn bad_request(message: impl Into<String>) -> LookerError {
        LookerError::new(StatusCode::BAD_REQUEST, message)
    }

    /// A 422 ValidationError naming the offending field.
    pub fn validation(field: &str, code: &str, message: impl Into<String>) -> LookerError {
        LookerError::validation_all(vec![ErrorDetail::new(field, code, message)])
    }

    /// A 422 ValidationError with several field problems.
    pub fn validation_all(errors: Vec<ErrorDetail>) -> LookerError {
        LookerError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            message: "Validation Failed".to_string(),
            errors,
        }
    }

    /// The one mapping from engine errors to Looker's wire.
    pub fn from_engine(e: &EngineError) -> LookerError {
        let status = match e.kind {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Busy => StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Syntax
            | ErrorKind::Plan
            | ErrorKind::Execution
            | ErrorKind::Unsupported
            | ErrorKind::NotReady
            | ErrorKind::Cancelled
            | ErrorKind::TimedOut
            | ErrorKind::Limit
            | ErrorKind::Interrupted => StatusCode::BAD_REQUEST,
        };
        if e.kind == ErrorKind::NotFound {
            return LookerError::not_found();
        }
        LookerError::new(status, e.message.clone())
    }

    pub fn into_response(self) -> Response {
        let body = ErrorBody {
            message: &self.message,
            documentation_url: DOCUMENTATION_URL,
            errors: (!self.errors.is_empty()).then_some(self.errors.as_slice()),
        };
        http::json(self.status, &body)
    }
}

impl From<EngineError> for LookerError {
    fn from(e: EngineError) -> Self {
        LookerError::from_engine(&e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_looker_statuses() {
        let cases = [
            (ErrorKind::NotFound, StatusCode::NOT_FOUND, "Not found"),
            (ErrorKind::Busy, StatusCode::TOO_MANY_REQUESTS, "m"),
            (ErrorKind::Execution, StatusCode::BAD_REQUEST, "m"),
            (ErrorKind::Syntax, StatusCode::BAD_REQUEST, "m"),
        ];
        for (kind, status, message) in cases {
            let e = LookerError::from_engine(&EngineError::new(kind, "m"));
            assert_eq!(
                (e.status, e.message.as_str()),
                (status, message),
                "{kind:?}"
            );
        }
    }
}
