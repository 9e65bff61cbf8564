//! The traffic journal: the last requests and their responses, bounded in count and in body bytes,
//! filtered by the admin API and counted by `verify` (as WireMock's verify does).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};

/// One request and what it was answered.
#[derive(Debug, Serialize)]
pub struct Entry {
    pub seq: u64,
    pub at: String,
    pub dialect: &'static str,
    /// Who the credentials named, when the server can tell (see `Facts::principal`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    pub method: String,
    pub path: String,
    pub query: String,
    /// Request headers, credentials masked.
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub body_truncated: bool,
    pub status: u16,
    pub duration_ms: f64,
    /// The fault rule that acted on the request itself (throttle, cut), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
    /// The response body as sent so far (filled while it streams), truncated.
    #[serde(skip)]
    pub response: Arc<Mutex<Captured>>,
}

/// The first bytes of a response body.
#[derive(Debug, Default, Serialize)]
pub struct Captured {
    #[serde(rename = "response_body")]
    pub text: String,
    #[serde(rename = "response_truncated")]
    pub truncated: bool,
}

/// The journal itself.
pub struct Journal {
    entries: Mutex<(VecDeque<Arc<Entry>>, u64)>,
    capacity: usize,
    body_bytes: usize,
}

/// Which entries a listing or a verify is about; every field given must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    pub dialect: Option<String>,
    pub principal: Option<String>,
    pub method: Option<String>,
    /// A regular expression searched in the path.
    pub path: Option<String>,
    pub status: Option<u16>,
    /// A regular expression searched in the request body (as kept, so within its first bytes).
    pub body: Option<String>,
}

/// A pattern with its regular expressions compiled.
pub struct Matcher {
    pattern: Pattern,
    path: Option<Regex>,
    body: Option<Regex>,
}

impl Matcher {
    pub fn new(pattern: Pattern) -> Result<Matcher, super::rules::BadRule> {
        Ok(Matcher {
            path: super::rules::pattern("path", &pattern.path)?,
            body: super::rules::pattern("body", &pattern.body)?,
            pattern,
        })
    }

    fn matches(&self, e: &Entry) -> bool {
        let p = &self.pattern;
        p.dialect.as_ref().is_none_or(|d| d == e.dialect)
            && p.principal
                .as_ref()
                .is_none_or(|w| e.principal.as_ref() == Some(w))
            && p.method
                .as_ref()
                .is_none_or(|m| m.eq_ignore_ascii_case(&e.method))
            && p.status.is_none_or(|s| s == e.status)
            && self.path.as_ref().is_none_or(|r| r.is_match(&e.path))
            && self.body.as_ref().is_none_or(|r| r.is_match(&e.body))
    }
}

/// Text of at most `limit` bytes (cut at a character boundary), and whether it was cut.
pub fn truncated(bytes: &[u8], limit: usize) -> (String, bool) {
    let text = String::from_utf8_lossy(bytes);
    if text.len() <= limit {
        return (text.into_owned(), false);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (text[..end].to_string(), true)
}

/// What the server knows of a request once it is answered.
pub struct Exchange<'a> {
    pub dialect: &'static str,
    pub principal: Option<String>,
    pub method: &'a str,
    pub uri: &'a hyper::Uri,
    pub headers: &'a hyper::HeaderMap,
    pub body: &'a Bytes,
    pub status: u16,
    pub duration_ms: f64,
    pub fault: Option<String>,
    pub at: DateTime<Utc>,
}

impl Journal {
    pub fn new(capacity: usize, body_bytes: usize) -> Journal {
        Journal {
            entries: Mutex::new((VecDeque::new(), 0)),
            capacity,
            body_bytes,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (VecDeque<Arc<Entry>>, u64)> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps an exchange (dropping the oldest past capacity); answers where its response body goes.
    pub fn record(&self, x: Exchange<'_>) -> Option<Arc<Mutex<Captured>>> {
        if self.capacity == 0 {
            return None;
        }
        let headers = x
            .headers
            .iter()
            .map(|(k, v)| {
                let value = if k == hyper::header::AUTHORIZATION || k == hyper::header::COOKIE {
                    "***".to_string()
                } else {
                    String::from_utf8_lossy(v.as_bytes()).into_owned()
                };
                (k.as_str().to_string(), value)
            })
            .collect();
        let (body, body_truncated) = truncated(x.body, self.body_bytes);
        let response = Arc::new(Mutex::new(Captured::default()));
        let mut entries = self.lock();
        entries.1 += 1;
        let entry = Entry {
            seq: entries.1,
            at: x.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            dialect: x.dialect,
            principal: x.principal,
            method: x.method.to_string(),
            path: x.uri.path().to_string(),
            query: x.uri.query().unwrap_or_default().to_string(),
            headers,
            body,
            body_truncated,
            status: x.status,
            duration_ms: x.duration_ms,
            fault: x.fault,
            response: response.clone(),
        };
        if entries.0.len() == self.capacity {
            entries.0.pop_front();
        }
        entries.0.push_back(Arc::new(entry));
        Some(response)
    }

    /// The most bytes of a response body kept.
    pub fn body_bytes(&self) -> usize {
        self.body_bytes
    }

    /// Entries matching, newest first, at most `limit`.
    pub fn find(&self, matcher: &Matcher, limit: usize) -> Vec<Arc<Entry>> {
        self.lock()
            .0
            .iter()
            .rev()
            .filter(|e| matcher.matches(e))
            .take(limit)
            .cloned()
            .collect()
    }

    /// How many entries match.
    pub fn count(&self, matcher: &Matcher) -> usize {
        self.lock().0.iter().filter(|e| matcher.matches(e)).count()
    }

    pub fn clear(&self) {
        self.lock().0.clear();
    }
}

/// An entry as the admin API shows it (the response body as captured so far).
pub fn entry_json(e: &Entry) -> serde_json::Value {
    let mut value = serde_json::to_value(e).unwrap_or_default();
    let captured = e.response.lock().unwrap_or_else(|p| p.into_inner());
    if let (Some(map), Ok(serde_json::Value::Object(extra))) =
        (value.as_object_mut(), serde_json::to_value(&*captured))
    {
        map.extend(extra);
    }
    value
}

/// Appends a chunk of a response body to its capture, up to `limit` bytes.
pub fn capture(into: &Mutex<Captured>, chunk: &[u8], limit: usize) {
    let mut c = into.lock().unwrap_or_else(|p| p.into_inner());
    if c.truncated {
        return;
    }
    let room = limit.saturating_sub(c.text.len());
    let (text, cut) = truncated(chunk, room);
    c.text.push_str(&text);
    c.truncated = cut;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange<'a>(
        uri: &'a hyper::Uri,
        body: &'a Bytes,
        headers: &'a hyper::HeaderMap,
    ) -> Exchange<'a> {
        Exchange {
            dialect: "kylin",
            principal: None,
            method: "POST",
            uri,
            headers,
            body,
            status: 200,
            duration_ms: 1.0,
            fault: None,
            at: Utc::now(),
        }
    }

    #[test]
    fn the_journal_is_bounded_truncated_masked_and_counted() {
        let journal = Journal::new(3, 8);
        let mut headers = hyper::HeaderMap::new();
        headers.insert(
            hyper::header::AUTHORIZATION,
            "Basic c2VjcmV0".parse().unwrap(),
        );
        for i in 0..5 {
            let uri: hyper::Uri = format!("/kylin/api/async_query?i={i}").parse().unwrap();
            let body = Bytes::from(format!("select {i} from a_long_table"));
            let captured = journal.record(exchange(&uri, &body, &headers)).unwrap();
            capture(&captured, "ééééé".as_bytes(), 8);
        }
        let all = Matcher::new(Pattern::default()).unwrap();
        let entries = journal.find(&all, 10);
        assert_eq!(entries.len(), 3, "bounded");
        assert_eq!(entries[0].seq, 5, "newest first");
        assert_eq!(entries[0].body, "select 4");
        assert!(entries[0].body_truncated);
        assert_eq!(entries[0].headers[0].1, "***");
        let json = entry_json(&entries[0]);
        assert_eq!(json["response_body"], "éééé");
        assert_eq!(json["response_truncated"], true);
        let count = |p: Pattern| journal.count(&Matcher::new(p).unwrap());
        assert_eq!(
            count(Pattern {
                body: Some("select [34]".into()),
                ..Pattern::default()
            }),
            2
        );
        assert_eq!(
            count(Pattern {
                dialect: Some("looker".into()),
                ..Pattern::default()
            }),
            0
        );
        assert_eq!(
            count(Pattern {
                method: Some("post".into()),
                status: Some(200),
                ..Pattern::default()
            }),
            3
        );
        assert!(
            Matcher::new(Pattern {
                path: Some("[".into()),
                ..Pattern::default()
            })
            .is_err()
        );
    }
}
