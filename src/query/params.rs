//! Query parameters as every wire can express them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A query parameter value, as every wire can express it.
pub type ParamValue = serde_json::Value;

/// Query parameters: positional (`$1`, `?`) and named (`$name`, `@name`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub positional: Vec<ParamValue>,
    pub named: BTreeMap<String, ParamValue>,
}

impl Params {
    pub fn is_empty(&self) -> bool {
        self.positional.is_empty() && self.named.is_empty()
    }
}
