//! Job identity: one 128-bit id plus a small sequence number, rendered per wire.
//!
//! Luminesce and Kylin show the id as a UUID, Looker as 32 lowercase hex digits, and AsterixDB as a
//! `<seq>-0` handle. Every form parses back to the same job, so a job started through one wire can be
//! read through another.

use std::fmt;

/// The identity of one job. `uuid` is random; `seq` counts jobs in submission order (from 1).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct JobId {
    pub uuid: u128,
    pub seq: u64,
}

/// A job reference as a client wrote it, before it is looked up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobRef {
    Uuid(u128),
    Seq(u64),
}

impl JobId {
    /// The hyphenated UUID form (Luminesce, Kylin).
    pub fn to_uuid(self) -> String {
        uuid::Uuid::from_u128(self.uuid).hyphenated().to_string()
    }

    /// 32 lowercase hex digits (Looker).
    pub fn to_hex(self) -> String {
        format!("{:032x}", self.uuid)
    }

    /// AsterixDB's handle suffix `<n>-0`.
    pub fn to_handle(self) -> String {
        format!("{}-0", self.seq)
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_uuid())
    }
}

impl JobRef {
    /// Parses any of the three wire forms: a hyphenated UUID, 32 hex digits, or `<n>-0`.
    pub fn parse(text: &str) -> Option<JobRef> {
        let text = text.trim();
        if text.len() == 32 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return u128::from_str_radix(text, 16).ok().map(JobRef::Uuid);
        }
        if text.len() == 36 {
            return uuid::Uuid::try_parse(text)
                .ok()
                .map(|u| JobRef::Uuid(u.as_u128()));
        }
        let (seq, part) = text.split_once('-')?;
        if part != "0" || seq.is_empty() || !seq.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        seq.parse().ok().map(JobRef::Seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_back_to_the_same_job() {
        let id = JobId {
            uuid: 0x0123_4567_89ab_cdef_0011_2233_4455_6677,
            seq: 42,
        };
        assert_eq!(id.to_uuid(), "01234567-89ab-cdef-0011-223344556677");
        assert_eq!(id.to_hex(), "0123456789abcdef0011223344556677");
        assert_eq!(id.to_handle(), "42-0");
        assert_eq!(JobRef::parse(&id.to_uuid()), Some(JobRef::Uuid(id.uuid)));
        assert_eq!(JobRef::parse(&id.to_hex()), Some(JobRef::Uuid(id.uuid)));
        assert_eq!(JobRef::parse(&id.to_handle()), Some(JobRef::Seq(42)));
    }

    #[test]
    fn malformed_forms_are_rejected() {
        for bad in [
            "",
            "42",
            "42-1",
            "-0",
            "x-0",
            "0123456789abcdef001122334455667",
            "zz234567-89ab-cdef-0011-223344556677",
        ] {
            assert_eq!(JobRef::parse(bad), None, "{bad:?}");
        }
    }
}
