//! The query core, at the bottom of the import graph: the error type, parameters, principals and
//! the typed job description that every other layer shares. It imports nothing of those layers.

mod error;
mod params;
mod principal;
pub mod rfc3339;
mod spec;

pub use error::{EngineError, ErrorKind, classify_error, panic_text, syntax_message};
pub use params::{ParamValue, Params};
pub use principal::{Caller, DEFAULT_ADMIN, Principal, Principals, User};
pub use spec::{JobSpec, Limits, SaveStep, WireMeta};
