//! The wire toolkit every front shares: the HTTP types, response builders, streamed bodies,
//! query-string and credential decoding, and the one rule for how long a request waits for its job.

pub mod body;

use crate::engine::{Engine, JobId, JobRecord};
use crate::query::EngineError;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::StatusCode;
use hyper::header::{CONTENT_TYPE, HeaderValue};

/// Errors a streamed response body can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// A response body: whole, or streamed as it is encoded.
pub type Body = UnsyncBoxBody<Bytes, BoxError>;
/// A request whose body has been read (within the configured size limit).
pub type Request = hyper::Request<Bytes>;
pub type Response = hyper::Response<Body>;

/// The client's address, put in each request's extensions.
#[derive(Clone, Copy, Debug)]
pub struct RemoteAddr(pub std::net::SocketAddr);

/// The route a front answered, put in each response's extensions for metrics ("status", "results").
#[derive(Clone, Copy, Debug)]
pub struct RouteLabel(pub &'static str);

/// The result format a response carries, for the bytes-sent metric.
#[derive(Clone, Copy, Debug)]
pub struct FormatLabel(pub &'static str);

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A response with a body and a content type.
pub fn with_body(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response {
    let mut response = hyper::Response::new(full(body));
    *response.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(CONTENT_TYPE, v);
    }
    response
}

/// The characters RFC 5987 lets stand unencoded in an extended parameter (`attr-char`).
const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'!')
    .remove(b'#')
    .remove(b'$')
    .remove(b'&')
    .remove(b'+')
    .remove(b'-')
    .remove(b'.')
    .remove(b'^')
    .remove(b'_')
    .remove(b'`')
    .remove(b'|')
    .remove(b'~');

/// `Content-Disposition` for a download of `stem.extension`, per RFC 6266. A client's name is
/// cut to its last path segment; control characters, quotes, backslashes, `;` and `%` become
/// `_`; leading dots and spaces go; at most 100 characters are kept, and `fallback` stands in when
/// nothing is left. A name beyond ASCII goes in `filename*` (UTF-8, percent-encoded) too, with an
/// ASCII stand-in in `filename`.
pub fn attachment(stem: &str, extension: &str, fallback: &str) -> HeaderValue {
    let last = stem.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .map(|c| {
            if c.is_control() || matches!(c, '"' | '\\' | ';' | '%') {
                '_'
            } else {
                c
            }
        })
        .collect();
    let cleaned: String = cleaned
        .trim_start_matches(['.', ' '])
        .trim_end()
        .chars()
        .take(100)
        .collect();
    let stem = if cleaned.is_empty() {
        fallback
    } else {
        &cleaned
    };
    let name = format!("{stem}.{extension}");
    let ascii: String = name
        .chars()
        .map(|c| if c.is_ascii() { c } else { '_' })
        .collect();
    let mut value = format!("attachment; filename=\"{ascii}\"");
    if !name.is_ascii() {
        value.push_str("; filename*=UTF-8''");
        value.extend(percent_encoding::utf8_percent_encode(&name, ATTR_CHAR));
    }
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

/// A plain-text response.
pub fn text(status: StatusCode, body: impl Into<String>) -> Response {
    with_body(status, "text/plain; charset=utf-8", body.into())
}

/// A JSON response from any serializable value.
pub fn json(status: StatusCode, value: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_body(status, "application/json; charset=utf-8", bytes),
        Err(e) => text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write JSON: {e}"),
        ),
    }
}

/// A response with no body at all (and no Content-Type).
pub fn no_body(status: StatusCode) -> Response {
    let mut response = hyper::Response::new(empty());
    *response.status_mut() = status;
    response
}

/// The name and password of an `Authorization: Basic …` header (padding optional); `None` when the
/// header is absent, of another scheme, or malformed.
pub fn basic_credentials(request: &Request) -> Option<(String, String)> {
    use base64::Engine;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let (scheme, encoded) = authorization(request)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(LENIENT.decode(encoded).ok()?).ok()?;
    let (name, password) = decoded.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// The token of an `Authorization: <scheme> <token>` header whose scheme is one of `schemes`
/// (ignoring case): `Bearer` for Luminesce, `Bearer` or `token` for Looker.
pub fn token_credentials<'a>(request: &'a Request, schemes: &[&str]) -> Option<&'a str> {
    let (scheme, token) = authorization(request)?;
    schemes
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
        .then_some(token)
        .filter(|t| !t.is_empty())
}

/// The `Authorization` header split into its scheme and its credentials, both trimmed.
pub fn authorization(request: &Request) -> Option<(&str, &str)> {
    let value = request
        .headers()
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, rest) = value.split_once(' ')?;
    Some((scheme, rest.trim()))
}

/// The client's IP address (the server puts it in every request's extensions).
pub fn remote_ip(request: &Request) -> std::net::IpAddr {
    request
        .extensions()
        .get::<RemoteAddr>()
        .map(|a| a.0.ip())
        .unwrap_or(std::net::IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED))
}

/// The decoded query-string pairs of a request, in order (repeated keys kept).
pub fn query_pairs(request: &Request) -> Vec<(String, String)> {
    request
        .uri()
        .query()
        .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default()
}

/// One percent-encoded path segment, decoded (the SDKs quote path parameters); `+` stays `+`, and
/// a segment that does not decode to UTF-8 is kept as written.
pub fn path_segment(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .unwrap_or_else(|_| segment.to_string())
}

/// A form value or name that is not UTF-8 once decoded: the client's mistake, named.
#[derive(Debug, PartialEq, Eq)]
pub struct NotUtf8 {
    /// The parameter it was in (`name` when the name itself is broken).
    pub parameter: String,
}

/// Decodes `application/x-www-form-urlencoded` bytes (a body or a query string) strictly: `+` is a
/// space, and a name or value that is not UTF-8 once decoded is an error naming its parameter.
pub fn form_pairs(bytes: &[u8]) -> Result<Vec<(String, String)>, NotUtf8> {
    let decode = |part: &[u8]| -> Option<String> {
        let spaced: Vec<u8> = part
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        String::from_utf8(percent_encoding::percent_decode(&spaced).collect()).ok()
    };
    let mut pairs = Vec::new();
    for part in bytes.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (k, v) = match part.iter().position(|b| *b == b'=') {
            Some(i) => (&part[..i], &part[i + 1..]),
            None => (part, &[][..]),
        };
        let name = decode(k).ok_or_else(|| NotUtf8 {
            parameter: "name".into(),
        })?;
        let value = decode(v).ok_or_else(|| NotUtf8 {
            parameter: name.clone(),
        })?;
        pairs.push((name, value));
    }
    Ok(pairs)
}

/// The one rule for a synchronous request's job (AsterixDB immediate, Kylin sync, a Looker run, a
/// Luminesce `/api/Sql`): wait for it within the request's budget; a job still going after that,
/// or whose request is dropped because its client went away, is cancelled, so no work outlives the
/// request that asked for it. Only for jobs the request started itself (not one it reuses).
pub async fn wait_within(
    engine: &Engine,
    id: JobId,
    limits: &HttpLimits,
) -> Result<JobRecord, EngineError> {
    let guard = CancelUnlessDone {
        engine,
        id,
        done: false,
    };
    engine.unhold(id);
    let record = engine.wait(id, limits.wait_budget()).await;
    guard.finish(record)
}

/// Cancels its job when dropped before [`CancelUnlessDone::finish`] (the request future was dropped).
struct CancelUnlessDone<'a> {
    engine: &'a Engine,
    id: JobId,
    done: bool,
}

impl CancelUnlessDone<'_> {
    fn finish(mut self, record: Result<JobRecord, EngineError>) -> Result<JobRecord, EngineError> {
        self.done = true;
        if record.as_ref().is_ok_and(|r| !r.state.is_terminal()) {
            let _ = self.engine.cancel(self.id);
        }
        record
    }
}

impl Drop for CancelUnlessDone<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.engine.cancel(self.id);
        }
    }
}

/// Protections for the HTTP server, and what a front needs of them.
#[derive(Clone, Debug, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpLimits {
    /// Largest request body; beyond it the answer is 413.
    pub max_body_bytes: usize,
    /// Largest request head (request line and headers).
    pub max_header_bytes: usize,
    /// Seconds a request may take before its answer starts (not the job: jobs have their own limits).
    pub request_timeout_secs: u64,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_body_bytes: 10 << 20,
            max_header_bytes: 64 << 10,
            request_timeout_secs: 120,
            max_connections: 1024,
        }
    }
}

impl HttpLimits {
    /// The one rule for how long a request waits for its job: until a second before the request
    /// timeout, so that the front still answers in its own shape.
    pub fn wait_budget(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.request_timeout_secs.max(2) - 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_auth(value: &str) -> Request {
        hyper::Request::builder()
            .header(hyper::header::AUTHORIZATION, value)
            .body(Bytes::new())
            .unwrap()
    }

    #[test]
    fn form_pairs_decode_strictly() {
        assert_eq!(
            form_pairs(b"statement=select+1%3B&pretty=true&flag"),
            Ok(vec![
                ("statement".into(), "select 1;".into()),
                ("pretty".into(), "true".into()),
                ("flag".into(), String::new()),
            ])
        );
        assert_eq!(
            form_pairs(b"statement=%FF"),
            Err(NotUtf8 {
                parameter: "statement".into()
            })
        );
        assert_eq!(path_segment("a%2Fb+c"), "a/b+c");
        assert_eq!(path_segment("%FF"), "%FF");
    }

    #[test]
    fn basic_credentials_decode_with_or_without_padding() {
        let expected = Some(("user".to_string(), "p:w".to_string()));
        assert_eq!(
            basic_credentials(&with_auth("Basic dXNlcjpwOnc=")),
            expected
        );
        assert_eq!(basic_credentials(&with_auth("basic dXNlcjpwOnc")), expected);
        assert_eq!(basic_credentials(&with_auth("Bearer dXNlcjpwOnc=")), None);
        assert_eq!(basic_credentials(&with_auth("Basic a!")), None);
        assert_eq!(basic_credentials(&with_auth("Basic bm9jb2xvbg==")), None);
    }
}

#[cfg(test)]
mod attachment_tests {
    use super::attachment;

    #[test]
    fn download_names_are_sanitised_and_quoted() {
        let header = |stem: &str| {
            attachment(stem, "csv", "result")
                .to_str()
                .unwrap()
                .to_string()
        };
        assert_eq!(header("sales"), r#"attachment; filename="sales.csv""#);
        assert_eq!(
            header("../../../../etc/passwd"),
            r#"attachment; filename="passwd.csv""#
        );
        assert_eq!(
            header("..\\..\\boot.ini"),
            r#"attachment; filename="boot.ini.csv""#
        );
        assert_eq!(
            header("a\"; filename=evil.exe"),
            r#"attachment; filename="a__ filename=evil.exe.csv""#
        );
        assert_eq!(
            header("x\r\nSet-Cookie: y"),
            r#"attachment; filename="x__Set-Cookie: y.csv""#
        );
        assert_eq!(header("../.."), r#"attachment; filename="result.csv""#);
        assert_eq!(header(""), r#"attachment; filename="result.csv""#);
        assert_eq!(
            header("résumé"),
            r#"attachment; filename="r_sum_.csv"; filename*=UTF-8''r%C3%A9sum%C3%A9.csv"#
        );
        assert_eq!(
            header(&"n".repeat(300)).len(),
            r#"attachment; filename=".csv""#.len() + 100
        );
    }
}
