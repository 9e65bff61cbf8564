//! The HTTP types every front uses, and the few response builders they share.

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
    let value = request
        .headers()
        .get(hyper::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(LENIENT.decode(encoded.trim()).ok()?).ok()?;
    let (name, password) = decoded.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

/// The decoded query-string pairs of a request, in order (repeated keys kept).
pub fn query_pairs(request: &Request) -> Vec<(String, String)> {
    request
        .uri()
        .query()
        .map(|q| serde_urlencoded::from_str::<Vec<(String, String)>>(q).unwrap_or_default())
        .unwrap_or_default()
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
