//! AsterixDB's error wire: a coded message (`ASX0047: …`), the `status` word that goes with it and
//! the HTTP status. Every engine error becomes one of these in [`AsxError::from_engine`], the one
//! mapping of this dialect.

use hyper::StatusCode;

use crate::engine::{EngineError, ErrorKind};

/// The `status` field of a `/query/service` response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultStatus {
    Success,
    Running,
    Queued,
    Failed,
    Fatal,
    Timeout,
}

impl ResultStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Success => "success",
            ResultStatus::Running => "running",
            ResultStatus::Queued => "queued",
            ResultStatus::Failed => "failed",
            ResultStatus::Fatal => "fatal",
            ResultStatus::Timeout => "timeout",
        }
    }
}

/// One AsterixDB error as the client sees it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AsxError {
    /// The whole message, code first: `ASX0040: No statement provided`.
    pub message: String,
    pub status: ResultStatus,
    pub http: StatusCode,
}

impl AsxError {
    fn new(
        code: &str,
        text: impl std::fmt::Display,
        status: ResultStatus,
        http: StatusCode,
    ) -> Self {
        AsxError {
            message: format!("{code}: {text}"),
            status,
            http,
        }
    }

    /// A client mistake found while reading the request: `fatal`, 400.
    fn bad_request(code: &str, text: impl std::fmt::Display) -> Self {
        AsxError::new(code, text, ResultStatus::Fatal, StatusCode::BAD_REQUEST)
    }

    /// ASX0047 `Invalid value for parameter '<name>': <value>`.
    pub fn invalid_parameter(name: &str, value: &str) -> Self {
        AsxError::bad_request(
            "ASX0047",
            format!("Invalid value for parameter '{name}': {value}"),
        )
    }

    /// ASX0048 `Unable to process JSON content in request`.
    pub fn bad_json() -> Self {
        AsxError::bad_request("ASX0048", "Unable to process JSON content in request")
    }

    /// ASX0040 `No statement provided`.
    pub fn no_statement() -> Self {
        AsxError::bad_request("ASX0040", "No statement provided")
    }

    /// ASX0035 `Unsupported multiple statements.`
    pub fn multiple_statements() -> Self {
        AsxError::bad_request("ASX0035", "Unsupported multiple statements.")
    }

    /// ASX0044 `<KIND> statement is not supported in read-only mode`.
    pub fn read_only(kind: &str) -> Self {
        AsxError::bad_request(
            "ASX0044",
            format!("{kind} statement is not supported in read-only mode"),
        )
    }

    /// ASX1253 `Async mode not supported for the statement <KIND>`.
    pub fn async_not_supported(kind: &str) -> Self {
        AsxError::bad_request(
            "ASX1253",
            format!("Async mode not supported for the statement {kind}"),
        )
    }

    /// ASX1259: async with several result-producing statements.
    pub fn async_multiple() -> Self {
        AsxError::bad_request(
            "ASX1259",
            "async execution is not supported for a request with multiple statements",
        )
    }

    /// ASX1001 `Syntax error: …` (the text already says where).
    pub fn syntax(text: &str) -> Self {
        AsxError::bad_request("ASX1001", format!("Syntax error: {text}"))
    }

    /// ASX1079 `Compilation error: …`: a statement that parses but that polyquery cannot run.
    pub fn compilation(text: &str) -> Self {
        AsxError::bad_request("ASX1079", format!("Compilation error: {text}"))
    }

    /// ASX1077: a FROM source that is neither a dataset nor a variable.
    pub fn unknown_dataset(name: &str, dataverse: &str) -> Self {
        AsxError::bad_request(
            "ASX1077",
            format!(
                "Cannot find dataset {name} in dataverse {dataverse} nor an alias with name {name}"
            ),
        )
    }

    /// The message with where in the statement it is about, as AsterixDB ends it.
    pub fn at(mut self, location: sqlparser::tokenizer::Location) -> Self {
        if location.line > 0 {
            self.message = format!(
                "{} (in line {}, at column {})",
                self.message, location.line, location.column
            );
        }
        self
    }

    /// ASX0030: the request ran past its `timeout` (HTTP 200, as AsterixDB answers).
    pub fn timed_out() -> Self {
        AsxError::new(
            "ASX0030",
            "Request timed out and will be cancelled",
            ResultStatus::Timeout,
            StatusCode::OK,
        )
    }

    /// ASX0041: the request was cancelled through `/admin/requests/running`.
    pub fn cancelled(request_id: &str) -> Self {
        AsxError::new(
            "ASX0041",
            format!("Request has been cancelled {request_id}"),
            ResultStatus::Failed,
            StatusCode::INTERNAL_SERVER_ERROR,
        )
    }

    /// The one mapping from engine errors to AsterixDB's. `request_id` names the request in the
    /// cancellation message.
    pub fn from_engine(error: &EngineError, request_id: &str) -> Self {
        let message = error.message.as_str();
        if let Some(refusal) = refusal(message) {
            return AsxError::compilation(refusal);
        }
        match error.kind {
            ErrorKind::Syntax => AsxError::syntax(message),
            ErrorKind::Plan => match missing_table(message) {
                Some(name) => AsxError::unknown_dataset(name, "Default"),
                None => AsxError::compilation(message),
            },
            ErrorKind::Unsupported => AsxError::compilation(message),
            ErrorKind::TimedOut => AsxError::timed_out(),
            ErrorKind::Cancelled => AsxError::cancelled(request_id),
            ErrorKind::Busy => AsxError::new(
                "HYR0006",
                format!("Job queue is full: {message}"),
                ResultStatus::Fatal,
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            ErrorKind::NotFound | ErrorKind::NotReady => AsxError::new(
                "HYR0093",
                format!("Failed to read result for job {request_id}"),
                ResultStatus::Fatal,
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            // A SQL++ function that fails as AsterixDB's does words its error with the code.
            ErrorKind::Execution if coded(message) => AsxError {
                message: message.to_string(),
                status: ResultStatus::Fatal,
                http: StatusCode::INTERNAL_SERVER_ERROR,
            },
            ErrorKind::Execution
            | ErrorKind::Limit
            | ErrorKind::Interrupted
            | ErrorKind::Internal => AsxError::new(
                "ASX0000",
                message,
                ResultStatus::Fatal,
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        }
    }
}

/// polyquery's own refusal inside an engine message (a `sqlpp_` function refusing while the
/// statement is planned), without the layers the engine wraps it in.
fn refusal(message: &str) -> Option<&str> {
    const REFUSED: &str = " is not supported by polyquery";
    let end = message.find(REFUSED)? + REFUSED.len();
    let head = &message[..end];
    let start = head
        .rfind("Error during planning: ")
        .map_or(0, |i| i + "Error during planning: ".len());
    Some(&message[start..end])
}

/// A message that starts with an AsterixDB code, `ASX0007: …`.
fn coded(message: &str) -> bool {
    let bytes = message.as_bytes();
    message.starts_with("ASX")
        && bytes
            .get(3..7)
            .is_some_and(|d| d.iter().all(u8::is_ascii_digit))
        && message.get(7..9) == Some(": ")
}

/// The table DataFusion could not find, from `table 'x' not found` / `table 'a.b' not found`.
fn missing_table(message: &str) -> Option<&str> {
    let rest = message.split("table '").nth(1)?;
    let (name, tail) = rest.split_once('\'')?;
    tail.trim_start()
        .starts_with("not found")
        .then(|| name.rsplit('.').next().unwrap_or(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_table_is_asx1077_naming_it() {
        let e = EngineError::new(
            ErrorKind::Plan,
            "table 'datafusion.public.gargel' not found",
        );
        let asx = AsxError::from_engine(&e, "r");
        assert_eq!(
            asx.message,
            "ASX1077: Cannot find dataset gargel in dataverse Default nor an alias with name gargel"
        );
        assert_eq!(asx.http, StatusCode::BAD_REQUEST);
        assert_eq!(asx.status, ResultStatus::Fatal);
    }

    #[test]
    fn a_timeout_is_status_timeout_with_http_200() {
        let asx = AsxError::from_engine(&EngineError::new(ErrorKind::TimedOut, "x"), "r");
        assert_eq!(
            asx.message,
            "ASX0030: Request timed out and will be cancelled"
        );
        assert_eq!(
            (asx.status, asx.http),
            (ResultStatus::Timeout, StatusCode::OK)
        );
    }

    #[test]
    fn runtime_failures_are_fatal_500() {
        let e = EngineError::new(ErrorKind::Execution, "Injected failure in inject-failure");
        let asx = AsxError::from_engine(&e, "r");
        assert!(asx.message.ends_with("Injected failure in inject-failure"));
        assert_eq!(
            (asx.status, asx.http),
            (ResultStatus::Fatal, StatusCode::INTERNAL_SERVER_ERROR)
        );
    }
}
