//! Query-string parameters as ASP.NET binds them: names match ignoring case, booleans are
//! `True`/`False` in any case (the SDK sends `True`), integers are decimal text.

use super::errors::LuminesceError;

/// A request's decoded query pairs.
#[derive(Debug, Clone, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Decodes a query string (bytes that are not UTF-8 become U+FFFD). One that cannot be decoded
    /// is refused rather than read as no parameters at all.
    pub fn decode(query: Option<&str>) -> Result<QueryParams, LuminesceError> {
        let pairs = match query {
            None => Vec::new(),
            Some(q) => serde_urlencoded::from_str::<Vec<(String, String)>>(q).map_err(|e| {
                LuminesceError::bad_request(format!("the query string cannot be decoded: {e}"))
            })?,
        };
        Ok(QueryParams { pairs })
    }

    /// Like [`QueryParams::decode`], for query strings known to be good (tests).
    #[cfg(test)]
    pub fn parse(query: Option<&str>) -> QueryParams {
        QueryParams::decode(query).unwrap_or_default()
    }

    /// Only the pairs named in `names` (ignoring case): a request's own options, apart from the
    /// scalar parameters that share its query string.
    pub fn only(&self, names: &[&str]) -> QueryParams {
        QueryParams {
            pairs: self
                .pairs
                .iter()
                .filter(|(k, _)| names.iter().any(|n| n.eq_ignore_ascii_case(k)))
                .cloned()
                .collect(),
        }
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// The first value of `name`, matched ignoring case.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of `name` unless it is missing or blank.
    pub fn nonblank(&self, name: &str) -> Option<String> {
        self.get(name)
            .filter(|v| !v.trim().is_empty())
            .map(str::to_string)
    }

    pub fn bool(&self, name: &str) -> Result<Option<bool>, LuminesceError> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(v) => Err(LuminesceError::bad_parameter(
                name,
                format!("{name} must be True or False, not '{v}'"),
            )),
        }
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, LuminesceError> {
        match self.get(name).map(str::trim) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                LuminesceError::bad_parameter(name, format!("{name} must be an integer, not '{v}'"))
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ignore_case_and_booleans_take_any_case() {
        let q = QueryParams::parse(Some(
            "Download=True&includeallfeedback=false&limit=-3&x=y%20z",
        ));
        assert_eq!(q.bool("download").unwrap(), Some(true));
        assert_eq!(q.bool("includeAllFeedback").unwrap(), Some(false));
        assert_eq!(q.int("limit").unwrap(), Some(-3));
        assert_eq!(q.get("X"), Some("y z"));
        assert!(
            QueryParams::parse(Some("download=yes"))
                .bool("download")
                .is_err()
        );
        assert!(QueryParams::parse(Some("limit=1.5")).int("limit").is_err());
        // Bytes that are not UTF-8 decode to U+FFFD, which no parameter accepts as a value.
        assert_eq!(
            QueryParams::decode(Some("filter=%FF"))
                .unwrap()
                .get("filter"),
            Some("\u{FFFD}")
        );
    }
}
