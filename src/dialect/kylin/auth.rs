//! HTTP Basic authentication, as Kylin's security filter does it on every request.
//!
//! With no users configured, Kylin's default account `ADMIN` / `KYLIN` (an admin) is the only one;
//! configured users replace it. User names match ignoring case, as Kylin's user manager does.

use hyper::header::AUTHORIZATION;

use super::errors::{KeCode, KylinError, text};
use crate::config::User;
use crate::server::http::Request;

/// Who is asking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name: String,
    pub admin: bool,
}

impl Principal {
    /// Whether this principal may see a job owned by `owner`: its submitter or any admin.
    pub fn may_see(&self, owner: &str) -> bool {
        self.admin || self.name == owner
    }

    /// Kylin's authorities for this user.
    pub fn authorities(&self) -> Vec<&'static str> {
        if self.admin {
            vec!["ROLE_ADMIN", "ALL_USERS"]
        } else {
            vec!["ALL_USERS"]
        }
    }
}

const DEFAULT_USER: &str = "ADMIN";
const DEFAULT_PASSWORD: &str = "KYLIN";

/// Checks the request's Basic credentials against `users` (or the default account).
pub fn authenticate(request: &Request, users: &[User]) -> Result<Principal, KylinError> {
    let header = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| KylinError::unauthorized(KeCode::NoCredentials, text::NO_CREDENTIALS))?;
    let bad = || KylinError::unauthorized(KeCode::BadCredentials, text::BAD_CREDENTIALS);
    let (scheme, encoded) = header.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(bad());
    }
    let decoded = decode_base64(encoded.trim()).ok_or_else(bad)?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (name, password) = decoded.split_once(':').ok_or_else(bad)?;
    if users.is_empty() {
        return if name.eq_ignore_ascii_case(DEFAULT_USER) && password == DEFAULT_PASSWORD {
            Ok(Principal {
                name: DEFAULT_USER.into(),
                admin: true,
            })
        } else {
            Err(bad())
        };
    }
    users
        .iter()
        .find(|u| u.name.eq_ignore_ascii_case(name) && u.password.as_deref() == Some(password))
        .map(|u| Principal {
            name: u.name.clone(),
            admin: u.admin,
        })
        .ok_or_else(bad)
}

/// Standard base64 (padding optional); `None` for anything else.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 || body.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    for chunk in body.as_bytes().chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= value(*c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(auth: &str) -> Request {
        hyper::Request::builder()
            .header(AUTHORIZATION, auth)
            .body(bytes::Bytes::new())
            .unwrap()
    }

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(decode_base64("QURNSU46S1lMSU4=").unwrap(), b"ADMIN:KYLIN");
        assert_eq!(decode_base64("YQ").unwrap(), b"a");
        assert_eq!(decode_base64("YWI=").unwrap(), b"ab");
        assert!(decode_base64("Y").is_none());
        assert!(decode_base64("QU*N").is_none());
    }

    #[test]
    fn the_default_account_works_only_without_configured_users() {
        let ok = request("Basic QURNSU46S1lMSU4=");
        let p = authenticate(&ok, &[]).unwrap();
        assert_eq!(p.name, "ADMIN");
        assert!(p.admin);
        let wrong = request("Basic QURNSU46eA=="); // ADMIN:x
        assert_eq!(
            authenticate(&wrong, &[]).unwrap_err().code,
            KeCode::BadCredentials
        );
        let users = [User {
            name: "analyst".into(),
            password: Some("pw".into()),
            token: None,
            admin: false,
        }];
        assert!(authenticate(&ok, &users).is_err());
        let analyst = request("Basic YW5hbHlzdDpwdw=="); // analyst:pw
        assert_eq!(authenticate(&analyst, &users).unwrap().name, "analyst");
        let none = hyper::Request::builder().body(bytes::Bytes::new()).unwrap();
        assert_eq!(
            authenticate(&none, &users).unwrap_err().code,
            KeCode::NoCredentials
        );
    }
}
