//! Kylin's error wire, in one place: the `ErrorResponse` envelope with its KE error codes and
//! HTTP statuses, and the one mapping from engine errors to it.
//!
//! Kylin 5 answers almost every failure with HTTP 500 and `code:"999"`; the message has one of two
//! shapes depending on the code's generation (spec §2b): new-style codes print `KE-…: message`,
//! old-style ones `KE-…(Short name):message`.

use hyper::StatusCode;
use serde::Serialize;

use crate::engine::{EngineError, ErrorKind};

/// One of Kylin's error codes, with the generation that decides how its message is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeCode {
    /// `KE-010031301`: no such query in this project.
    QueryNotFound,
    /// `KE-010031302`: the project parameter is missing.
    ProjectNameEmpty,
    /// `KE-010031303`: `older_than` is not `yyyy-MM-dd HH:mm:ss`.
    TimeFormat,
    /// `KE-010031304`: `includeHeader` sent to the download.
    IncludeHeaderNotEmpty,
    /// `KE-010001201`: unknown project.
    ProjectNotFound,
    /// `KE-010001002`: submit without a project.
    EmptyProjectName,
    /// `KE-020040001`: async query illegal parameters (also "result not found").
    AsyncIllegalParam,
    /// `KE-010024001`: access denied.
    AccessDenied,
    /// `KE-010000003`: invalid parameter.
    InvalidParameter,
    /// `KE-010003207`: no credentials.
    NoCredentials,
    /// `KE-010003208`: wrong credentials.
    BadCredentials,
    /// `KE-020040002`: too many async queries (the engine's queue is full).
    TooManyAsyncQueries,
    /// `KE-000000001`: anything else.
    Unknown,
}

impl KeCode {
    pub fn code(self) -> &'static str {
        match self {
            KeCode::QueryNotFound => "KE-010031301",
            KeCode::ProjectNameEmpty => "KE-010031302",
            KeCode::TimeFormat => "KE-010031303",
            KeCode::IncludeHeaderNotEmpty => "KE-010031304",
            KeCode::ProjectNotFound => "KE-010001201",
            KeCode::EmptyProjectName => "KE-010001002",
            KeCode::AsyncIllegalParam => "KE-020040001",
            KeCode::AccessDenied => "KE-010024001",
            KeCode::InvalidParameter => "KE-010000003",
            KeCode::NoCredentials => "KE-010003207",
            KeCode::BadCredentials => "KE-010003208",
            KeCode::TooManyAsyncQueries => "KE-020040002",
            KeCode::Unknown => "KE-000000001",
        }
    }

    /// The short name old-style codes print in parentheses; `None` for new-style codes.
    fn short_name(self) -> Option<&'static str> {
        match self {
            KeCode::EmptyProjectName => Some("Empty Project Name"),
            KeCode::AsyncIllegalParam => Some("Asynchronous query illegal parameters"),
            KeCode::AccessDenied => Some("No access"),
            KeCode::InvalidParameter => Some("Invalid Parameter"),
            KeCode::TooManyAsyncQueries => Some("Async query exceeds the limit"),
            KeCode::Unknown => Some("UNKNOWN ERRORCODE"),
            _ => None,
        }
    }

    /// The code with its short name, as the soft-failure envelopes print it in `code`.
    pub fn with_name(self) -> String {
        match self.short_name() {
            Some(name) => format!("{}({name})", self.code()),
            None => self.code().to_string(),
        }
    }
}

/// Kylin's message texts (English), quoted from Kylin 5's message catalogue.
pub mod text {
    pub const QUERY_NOT_FOUND: &str =
        "Can’t find the query by this query ID in this project. Please check and try again.";
    pub const PROJECT_NAME_EMPTY: &str =
        "The project name can’t be empty. Please check and try again.";
    pub const EMPTY_PROJECT: &str = "Can’t find project information. Please select a project.";
    pub const TIME_FORMAT: &str =
        "The time format is invalid. Please enter the date in the format “yyyy-MM-dd HH:mm:ss”.";
    pub const INCLUDE_HEADER: &str = "Notice：Now we move the \"include_header\" parameter to  Submit Async Query API, so the parameter here doesn't work.Please read user manual for details.";
    pub const BAD_CREDENTIALS: &str = "Invalid username or password. Please check and try again.";
    pub const NO_CREDENTIALS: &str = "Can't authenticate. Please login again.";
    pub const DOWNLOAD_DENIED: &str =
        "Access denied. Only task submitters or admin users can download the query results";
    pub const BULK_DELETE_DENIED: &str =
        "Access denied. Only admin users can delete the query results";
    pub const CLEAN_FOLDER_FAIL: &str = "Can’t clean file folder at the moment. Please ensure that the related file on HDFS could be accessed.";
    pub const EMPTY_SQL: &str = "SQL can’t be empty. Please check and try again.";

    pub fn project_not_found(project: &str) -> String {
        format!("Can't find project \"{project}\". Please check and try again.")
    }
}

/// A failure answered with Kylin's `ErrorResponse` envelope.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.msg())]
pub struct KylinError {
    pub status: StatusCode,
    pub code: KeCode,
    pub message: String,
}

impl KylinError {
    /// A KylinException: HTTP 500, Kylin's default for every one of them.
    pub fn new(code: KeCode, message: impl Into<String>) -> Self {
        KylinError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code,
            message: message.into(),
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn query_not_found() -> Self {
        KylinError::new(KeCode::QueryNotFound, text::QUERY_NOT_FOUND)
    }

    /// metadata, file status or download of a query whose result is not there (running, failed,
    /// unknown): the old-style code Kylin uses for it.
    pub fn result_not_found() -> Self {
        KylinError::new(KeCode::AsyncIllegalParam, text::QUERY_NOT_FOUND)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        KylinError::new(KeCode::InvalidParameter, message).with_status(StatusCode::BAD_REQUEST)
    }

    pub fn unauthorized(code: KeCode, message: &str) -> Self {
        KylinError::new(code, message).with_status(StatusCode::UNAUTHORIZED)
    }

    /// The `msg` (and `exception`) text: `KE-…: message` or `KE-…(Name):message`.
    pub fn msg(&self) -> String {
        match self.code.short_name() {
            Some(name) => format!("{}({name}):{}", self.code.code(), self.message),
            None => format!("{}: {}", self.code.code(), self.message),
        }
    }

    /// The envelope, for the request at `url`.
    pub fn body(&self, url: &str) -> ErrorBody {
        let msg = self.msg();
        ErrorBody {
            code: "999",
            data: None,
            stacktrace: format!("org.apache.kylin.common.exception.KylinException: {msg}"),
            exception: msg.clone(),
            msg,
            url: url.to_string(),
            suggestion: None,
            error_code: (self.code != KeCode::Unknown).then(|| self.code.code()),
        }
    }
}

/// Kylin's `ErrorResponse`, fields in Jackson's order (superclass first).
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub data: Option<()>,
    pub msg: String,
    pub stacktrace: String,
    pub exception: String,
    pub url: String,
    pub suggestion: Option<String>,
    pub error_code: Option<&'static str>,
}

/// The one mapping from engine errors to Kylin's error wire, for failures that are not a query's
/// own (those become `FAILED` statuses and `isException` responses instead).
pub fn from_engine(e: EngineError) -> KylinError {
    match e.kind {
        ErrorKind::NotFound => KylinError::query_not_found(),
        ErrorKind::NotReady => KylinError::result_not_found(),
        ErrorKind::Busy => KylinError::new(
            KeCode::TooManyAsyncQueries,
            "Query failed cause the total number of async queries hit the upper limit set by Admin.Please wait and try again.",
        ),
        ErrorKind::Syntax
        | ErrorKind::Plan
        | ErrorKind::Execution
        | ErrorKind::Unsupported
        | ErrorKind::Cancelled
        | ErrorKind::TimedOut
        | ErrorKind::Limit
        | ErrorKind::Interrupted
        | ErrorKind::Internal => KylinError::new(KeCode::Unknown, e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_and_old_style_messages() {
        assert_eq!(
            KylinError::query_not_found().msg(),
            "KE-010031301: Can’t find the query by this query ID in this project. Please check and try again."
        );
        assert_eq!(
            KylinError::result_not_found().msg(),
            "KE-020040001(Asynchronous query illegal parameters):Can’t find the query by this query ID in this project. Please check and try again."
        );
        let body = serde_json::to_value(KylinError::query_not_found().body("http://h/x")).unwrap();
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "code",
                "data",
                "msg",
                "stacktrace",
                "exception",
                "url",
                "suggestion",
                "error_code"
            ]
        );
        assert_eq!(body["error_code"], "KE-010031301");
        assert_eq!(body["code"], "999");
    }
}
