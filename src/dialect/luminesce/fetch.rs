//! The fetch endpoints: which format each path writes, how its query parameters become a
//! [`Reshape`] and [`EncodeOptions`], and the wrappers for the legacy `/json` string and
//! `/jsonProperWithLineage`.

use bytes::{BufMut, Bytes, BytesMut};
use datafusion::arrow::datatypes::Schema;

use super::errors::LuminesceError;
use super::filter;
use super::params::QueryParams;
use super::sql::fragment;
use crate::encode::{EncodeOptions, Format};
use crate::sql::reshape::Reshape;
use crate::wire::Body;

/// A fetch path's output: what the client asked for by the path's last segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Csv,
    Pipe,
    /// The legacy `/json`: the JSON array, itself encoded as one JSON string.
    Json,
    JsonProper,
    JsonProperWithLineage,
    Xml,
    Excel,
    Parquet,
    Sqlite,
}

impl Output {
    pub const ALL: [Output; 9] = [
        Output::Csv,
        Output::Pipe,
        Output::Json,
        Output::JsonProper,
        Output::JsonProperWithLineage,
        Output::Xml,
        Output::Excel,
        Output::Parquet,
        Output::Sqlite,
    ];

    /// The path segment (and the drive `format` value, which is matched ignoring case).
    pub fn segment(self) -> &'static str {
        match self {
            Output::Csv => "csv",
            Output::Pipe => "pipe",
            Output::Json => "json",
            Output::JsonProper => "jsonProper",
            Output::JsonProperWithLineage => "jsonProperWithLineage",
            Output::Xml => "xml",
            Output::Excel => "excel",
            Output::Parquet => "parquet",
            Output::Sqlite => "sqlite",
        }
    }

    pub fn parse(segment: &str) -> Option<Output> {
        Output::ALL
            .into_iter()
            .find(|o| o.segment().eq_ignore_ascii_case(segment))
    }

    /// The encoder that writes it.
    pub fn format(self) -> Format {
        match self {
            Output::Csv | Output::Pipe => Format::Csv,
            Output::Json | Output::JsonProper | Output::JsonProperWithLineage => Format::Json,
            Output::Xml => Format::Xml,
            Output::Excel => Format::Xlsx,
            Output::Parquet => Format::Parquet,
            Output::Sqlite => Format::Sqlite,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Output::Pipe => "text/plain; charset=utf-8",
            Output::Json | Output::JsonProper | Output::JsonProperWithLineage => {
                "application/json; charset=utf-8"
            }
            other => other.format().content_type(),
        }
    }

    /// The file-name extension of a download.
    pub fn extension(self) -> &'static str {
        match self {
            Output::Pipe => "txt",
            Output::Excel => "xlsx",
            other => other.format().extension(),
        }
    }

    /// Whether `dateTimeFormat` applies (and its default with it): the delimited text formats and Excel.
    fn takes_datetime_format(self) -> bool {
        matches!(self, Output::Csv | Output::Pipe | Output::Excel)
    }

    /// Whether `limit` and `page` apply (the SDK sends them only for these).
    fn takes_paging(self) -> bool {
        matches!(
            self,
            Output::Csv
                | Output::Pipe
                | Output::Json
                | Output::JsonProper
                | Output::JsonProperWithLineage
                | Output::Xml
        )
    }
}

/// Luminesce's default `dateTimeFormat`.
pub const DEFAULT_DATETIME_FORMAT: &str = "yyyy-MM-dd HH:mm:ss.fff";

/// Everything a fetch asks for, read from its query parameters and checked before the result is touched.
#[derive(Debug, Clone, PartialEq)]
pub struct FetchRequest {
    pub output: Output,
    pub download: bool,
    pub sort_by: Option<String>,
    pub filter: Option<String>,
    pub sql_filter: Option<String>,
    pub select: Option<String>,
    pub group_by: Option<String>,
    pub limit: Option<u64>,
    pub page: u64,
    pub options: EncodeOptions,
    pub load_wait_ms: u64,
}

impl FetchRequest {
    pub fn parse(output: Output, q: &QueryParams) -> Result<FetchRequest, LuminesceError> {
        let mut options = EncodeOptions::default();
        if output == Output::Pipe {
            options.delimiter = b'|';
        }
        if output == Output::Csv {
            if let Some(d) = q.get("delimiter") {
                options.delimiter = single_byte("delimiter", d)?;
            }
            if let Some(e) = q.get("escape") {
                let e = single_byte("escape", e)?;
                options.escape = (e != options.quote).then_some(e);
            }
        }
        if output.takes_datetime_format() {
            let pattern = q.get("dateTimeFormat").unwrap_or(DEFAULT_DATETIME_FORMAT);
            options.datetime_format = Some(dotnet_datetime_format(pattern));
        }
        options
            .validate()
            .map_err(|e| LuminesceError::bad_request(e.to_string()))?;
        let (limit, page) = if output.takes_paging() {
            let limit = q.int("limit")?;
            let page = q.int("page")?.unwrap_or(0);
            if page < 0 {
                return Err(LuminesceError::bad_parameter(
                    "page",
                    format!("page must be 0 or more, not {page}"),
                ));
            }
            // "page is ignored if limit < 1"
            match limit.filter(|&l| l >= 1) {
                Some(l) => (Some(l as u64), page as u64),
                None => (None, 0),
            }
        } else {
            (None, 0)
        };
        let load_wait_ms = match q.int("loadWaitMilliseconds")? {
            Some(ms) if ms < 0 => {
                return Err(LuminesceError::bad_parameter(
                    "loadWaitMilliseconds",
                    format!("loadWaitMilliseconds must be 0 or more, not {ms}"),
                ));
            }
            Some(ms) => ms as u64,
            None => 0,
        };
        Ok(FetchRequest {
            output,
            download: q.bool("download")?.unwrap_or(false),
            sort_by: q.nonblank("sortBy"),
            filter: q.nonblank("filter"),
            sql_filter: q.nonblank("sqlFilter"),
            select: q.nonblank("select"),
            group_by: q.nonblank("groupBy"),
            limit,
            page,
            options,
            load_wait_ms,
        })
    }

    /// The reshaping of a result with `schema` this fetch asks for.
    pub fn reshape(&self, schema: &Schema) -> Result<Reshape, LuminesceError> {
        let mut reshape = Reshape::default();
        if let Some(s) = &self.select {
            reshape.select = Some(fragment(s)?);
        }
        if let Some(f) = &self.filter {
            reshape.filter.push(filter::to_sql(f, schema)?);
        }
        if let Some(f) = &self.sql_filter {
            reshape.filter.push(fragment(f)?);
        }
        if let Some(g) = &self.group_by {
            reshape.group_by = Some(fragment(g)?);
        }
        if let Some(s) = &self.sort_by {
            reshape.sort = Reshape::parse_sort(s)?;
        }
        if let Some(limit) = self.limit {
            reshape.limit = Some(limit);
            reshape.offset = Some(self.page.saturating_mul(limit));
        }
        // Parse every piece now, so a bad one is a 400 before any byte of the answer is sent.
        reshape.to_sql(schema)?;
        Ok(reshape)
    }
}

fn single_byte(name: &str, value: &str) -> Result<u8, LuminesceError> {
    match value.as_bytes() {
        [b] if b.is_ascii() => Ok(*b),
        _ => Err(LuminesceError::bad_parameter(
            name,
            format!("{name} must be one ASCII character, not '{value}'"),
        )),
    }
}

/// Translates a .NET custom date-time format (`yyyy-MM-dd HH:mm:ss.fff`) into a chrono strftime
/// pattern. Unknown letters are kept as literal text; `'quoted'` and `\x` are literal too.
/// chrono writes fractions only as 3, 6 or 9 digits, so `f`–`fff` give milliseconds, `ffff`–`ffffff`
/// microseconds and longer runs nanoseconds.
pub fn dotnet_datetime_format(pattern: &str) -> String {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let literal = |out: &mut String, c: char| {
        if c == '%' {
            out.push_str("%%");
        } else {
            out.push(c);
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let run = chars[i..].iter().take_while(|&&x| x == c).count();
        let piece = match (c, run) {
            ('y', 1 | 2) => Some("%y"),
            ('y', _) => Some("%Y"),
            ('M', 1) => Some("%-m"),
            ('M', 2) => Some("%m"),
            ('M', 3) => Some("%b"),
            ('M', _) => Some("%B"),
            ('d', 1) => Some("%-d"),
            ('d', 2) => Some("%d"),
            ('d', 3) => Some("%a"),
            ('d', _) => Some("%A"),
            ('H', 1) => Some("%-H"),
            ('H', _) => Some("%H"),
            ('h', 1) => Some("%-I"),
            ('h', _) => Some("%I"),
            ('m', 1) => Some("%-M"),
            ('m', _) => Some("%M"),
            ('s', 1) => Some("%-S"),
            ('s', _) => Some("%S"),
            ('f' | 'F', 1..=3) => Some("%3f"),
            ('f' | 'F', 4..=6) => Some("%6f"),
            ('f' | 'F', _) => Some("%9f"),
            ('t', 1) => Some("%p"),
            ('t', _) => Some("%p"),
            ('z' | 'K', _) => Some("%:z"),
            _ => None,
        };
        match piece {
            Some(p) => {
                out.push_str(p);
                i += run;
            }
            None if c == '\'' || c == '"' => {
                let close = chars[i + 1..].iter().position(|&x| x == c);
                let end = close.map(|p| i + 1 + p).unwrap_or(chars.len());
                for &x in &chars[i + 1..end] {
                    literal(&mut out, x);
                }
                i = end + 1;
            }
            None if c == '\\' => {
                if let Some(&x) = chars.get(i + 1) {
                    literal(&mut out, x);
                }
                i += 2;
            }
            None => {
                literal(&mut out, c);
                i += 1;
            }
        }
    }
    out
}

/// The legacy `/json` body: the JSON array text, streamed out as one JSON string literal.
pub fn json_string(body: Body) -> Body {
    crate::wire::body::enveloped(body, b"\"", b"\"", escape_json_bytes)
}

/// The `/jsonProperWithLineage` body: the rows under `Data`, the lineage under `Lineage`.
pub fn with_lineage(body: Body, lineage: &serde_json::Value) -> Body {
    let suffix = format!(",\"Lineage\":{lineage}}}");
    crate::wire::body::enveloped(body, b"{\"Data\":", suffix.as_bytes(), |b| b)
}

/// Escapes bytes of UTF-8 text for the inside of a JSON string. Only ASCII bytes ever need
/// escaping, so a chunk boundary inside a multi-byte character is harmless.
fn escape_json_bytes(data: Bytes) -> Bytes {
    let mut out = BytesMut::with_capacity(data.len() + data.len() / 8);
    for &b in data.iter() {
        match b {
            b'"' => out.put_slice(b"\\\""),
            b'\\' => out.put_slice(b"\\\\"),
            b'\n' => out.put_slice(b"\\n"),
            b'\r' => out.put_slice(b"\\r"),
            b'\t' => out.put_slice(b"\\t"),
            b if b < 0x20 => out.put_slice(format!("\\u{b:04x}").as_bytes()),
            b => out.put_u8(b),
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotnet_formats_become_strftime() {
        assert_eq!(
            dotnet_datetime_format(DEFAULT_DATETIME_FORMAT),
            "%Y-%m-%d %H:%M:%S.%3f"
        );
        assert_eq!(
            dotnet_datetime_format("dd/MM/yy h:m tt"),
            "%d/%m/%y %-I:%-M %p"
        );
        assert_eq!(dotnet_datetime_format("yyyy'T'HH 100%"), "%YT%H 100%%");
    }

    use http_body_util::BodyExt;

    #[tokio::test]
    async fn json_string_is_the_array_as_one_json_string() {
        let inner = crate::wire::full(r#"[{"a":"x\"y"}]"#);
        let bytes = json_string(inner).collect().await.unwrap().to_bytes();
        let text: String = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(text, r#"[{"a":"x\"y"}]"#);
    }

    #[test]
    fn paging_and_bad_values() {
        let q = |s: &str| QueryParams::parse(Some(s));
        let f = FetchRequest::parse(Output::Csv, &q("limit=10&page=2")).unwrap();
        assert_eq!((f.limit, f.page), (Some(10), 2));
        let f = FetchRequest::parse(Output::Csv, &q("limit=0&page=2")).unwrap();
        assert_eq!((f.limit, f.page), (None, 0));
        assert!(FetchRequest::parse(Output::Csv, &q("limit=5&page=-1")).is_err());
        assert!(FetchRequest::parse(Output::Csv, &q("download=maybe")).is_err());
        assert!(FetchRequest::parse(Output::Csv, &q("delimiter=ab")).is_err());
        let f = FetchRequest::parse(Output::Csv, &q("download=True&delimiter=%3B")).unwrap();
        assert!(f.download);
        assert_eq!(f.options.delimiter, b';');
    }
}
