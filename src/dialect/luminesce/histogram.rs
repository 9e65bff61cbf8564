//! `GET /{id}/histogram`: the result's rows counted per time bucket of `timestampFieldName`,
//! between `startAt` and `endAt`, every `bucketSize` (a .NET TimeSpan such as `01:00:00`).
//!
//! The counting is a reshape of the stored result (`floor((epoch(ts) - start) / size)`, grouped),
//! so it runs in the engine like every other fetch. Empty buckets are listed with a count of 0.

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use futures::TryStreamExt;
use serde::Serialize;
use sqlparser::ast::Ident;

use super::errors::LuminesceError;
use super::filter;
use super::models::timestamp;
use super::params::QueryParams;
use crate::encode::{EncodeOptions, cell_json};
use crate::engine::{Engine, EngineError, JobId};
use crate::sql::reshape::Reshape;

/// Buckets made when no `bucketSize` is given.
const DEFAULT_BUCKETS: i64 = 10;
/// More buckets than this is refused (the answer is held in memory).
const MAX_BUCKETS: i64 = 100_000;

/// One bucket of the answer.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Bucket {
    pub bucket_start: String,
    pub bucket_end: String,
    pub count: i64,
}

/// What a histogram request asks for, checked before the result is touched.
#[derive(Debug)]
pub struct HistogramRequest {
    field: String,
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    /// Microseconds.
    size: Option<i64>,
    filter: Option<String>,
    /// `jsonProper=True`: a JSON array; otherwise the array as a JSON string, like `/json`.
    pub json_proper: bool,
}

impl HistogramRequest {
    pub fn parse(q: &QueryParams) -> Result<HistogramRequest, LuminesceError> {
        let field = q.nonblank("timestampFieldName").ok_or_else(|| {
            LuminesceError::bad_parameter("timestampFieldName", "timestampFieldName is required")
        })?;
        let size = match q.nonblank("bucketSize") {
            Some(s) => Some(timespan_micros(&s).ok_or_else(|| {
                LuminesceError::bad_parameter(
                    "bucketSize",
                    format!("bucketSize must be a positive time span such as 01:00:00 or 1.00:00:00, not '{s}'"),
                )
            })?),
            None => None,
        };
        Ok(HistogramRequest {
            field,
            start: instant(q, "startAt")?,
            end: instant(q, "endAt")?,
            size,
            filter: q.nonblank("filter"),
            json_proper: q.bool("jsonProper")?.unwrap_or(false),
        })
    }

    /// Counts the rows of a finished job per bucket.
    pub async fn run(
        &self,
        engine: &Engine,
        job: JobId,
        schema: &Schema,
        within: Duration,
    ) -> Result<Vec<Bucket>, LuminesceError> {
        let column = schema
            .fields()
            .iter()
            .map(|f| f.name())
            .find(|n| n.eq_ignore_ascii_case(&self.field))
            .ok_or_else(|| {
                LuminesceError::bad_parameter(
                    "timestampFieldName",
                    format!("'{}' is not a column of the result", self.field),
                )
            })?;
        let epoch = format!(
            "(extract(epoch from {}) * 1000000)",
            Ident::with_quote('"', column)
        );
        let mut filters = Vec::new();
        if let Some(f) = &self.filter {
            filters.push(filter::to_sql(f, schema)?);
        }
        let (start, end) = match (self.start, self.end) {
            (Some(s), Some(e)) => (micros(s), micros(e)),
            (s, e) => {
                let (min, max) = self.range(engine, job, &epoch, &filters, within).await?;
                (
                    s.map(micros).unwrap_or(min),
                    e.map(micros).unwrap_or(max.saturating_add(1)),
                )
            }
        };
        let span = end
            .checked_sub(start)
            .filter(|s| *s > 0)
            .ok_or_else(|| LuminesceError::bad_request("endAt must be after startAt"))?;
        let size = self
            .size
            .unwrap_or_else(|| (span - 1) / DEFAULT_BUCKETS + 1)
            .max(1);
        let buckets = (span - 1) / size + 1;
        if buckets > MAX_BUCKETS {
            return Err(LuminesceError::bad_parameter(
                "bucketSize",
                format!(
                    "{buckets} buckets is more than the {MAX_BUCKETS} allowed; use a larger bucketSize"
                ),
            ));
        }
        filters.push(format!("{epoch} >= {start} AND {epoch} < {end}"));
        let reshape = Reshape {
            select: Some(format!(
                "floor(({epoch} - {start}) / {size}) AS b, count(*) AS n"
            )),
            filter: filters,
            group_by: Some("1".into()),
            ..Default::default()
        };
        let mut counts = vec![0i64; buckets as usize];
        for row in collect(engine, job, &reshape, within).await? {
            if let (Some(b), Some(n)) = (row[0].as_f64(), row[1].as_i64())
                && let Some(slot) = counts.get_mut(b as usize)
            {
                *slot = n;
            }
        }
        Ok(counts
            .into_iter()
            .enumerate()
            .map(|(i, count)| {
                let from = start.saturating_add((i as i64).saturating_mul(size));
                Bucket {
                    bucket_start: render(from),
                    bucket_end: render(from.saturating_add(size).min(end)),
                    count,
                }
            })
            .collect())
    }

    /// The smallest and largest timestamps (in microseconds) the buckets must cover.
    async fn range(
        &self,
        engine: &Engine,
        job: JobId,
        epoch: &str,
        filters: &[String],
        within: Duration,
    ) -> Result<(i64, i64), LuminesceError> {
        let reshape = Reshape {
            select: Some(format!("min({epoch}) AS lo, max({epoch}) AS hi")),
            filter: filters.to_vec(),
            ..Default::default()
        };
        let rows = collect(engine, job, &reshape, within).await?;
        let bound = |i: usize| rows.first().and_then(|r| r[i].as_f64()).map(|v| v as i64);
        match (bound(0), bound(1)) {
            (Some(lo), Some(hi)) => Ok((lo, hi)),
            _ => Err(LuminesceError::bad_request(
                "the result has no timestamps to make a histogram of; give startAt and endAt",
            )),
        }
    }
}

/// Runs a reshape and reads its (small) answer as JSON cells.
async fn collect(
    engine: &Engine,
    job: JobId,
    reshape: &Reshape,
    within: Duration,
) -> Result<Vec<Vec<serde_json::Value>>, LuminesceError> {
    let batches: Vec<RecordBatch> = engine
        .reshape(job, reshape, within)
        .await?
        .try_collect()
        .await
        .map_err(EngineError::from)?;
    let options = EncodeOptions::default();
    let mut rows = Vec::new();
    for batch in &batches {
        for row in 0..batch.num_rows() {
            let cells = batch
                .columns()
                .iter()
                .map(|c| cell_json(c.as_ref(), row, &options))
                .collect::<Result<Vec<_>, _>>()
                .map_err(EngineError::internal)?;
            rows.push(cells);
        }
    }
    Ok(rows)
}

fn instant(q: &QueryParams, name: &str) -> Result<Option<DateTime<Utc>>, LuminesceError> {
    match q.nonblank(name) {
        None => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text.trim())
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| {
                LuminesceError::bad_parameter(
                    name,
                    format!("{name} must be an ISO-8601 date-time, not '{text}': {e}"),
                )
            }),
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

fn render(micros: i64) -> String {
    Utc.timestamp_micros(micros)
        .single()
        .map(timestamp)
        .unwrap_or_default()
}

/// A .NET TimeSpan (`[-][d.]hh:mm[:ss[.fffffff]]`) in microseconds, if positive.
fn timespan_micros(text: &str) -> Option<i64> {
    let text = text.trim();
    let (days, clock) = match text.split_once('.') {
        Some((d, rest)) if rest.contains(':') && !d.contains(':') => (d.parse::<i64>().ok()?, rest),
        _ => (0, text),
    };
    let parts: Vec<&str> = clock.split(':').collect();
    let (h, m, s) = match parts.as_slice() {
        [h, m] => (*h, *m, "0"),
        [h, m, s] => (*h, *m, *s),
        [d] => {
            return d
                .parse::<i64>()
                .ok()
                .filter(|d| *d > 0)
                .and_then(|d| d.checked_mul(86_400_000_000));
        }
        _ => return None,
    };
    let seconds: f64 = s.parse().ok().filter(|s: &f64| s.is_finite() && *s < 1e9)?;
    let total = days
        .checked_mul(86_400_000_000)?
        .checked_add(h.parse::<i64>().ok()?.checked_mul(3_600_000_000)?)?
        .checked_add(m.parse::<i64>().ok()?.checked_mul(60_000_000)?)?
        .checked_add((seconds * 1_000_000.0).round() as i64)?;
    (total > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timespans() {
        assert_eq!(timespan_micros("01:00:00"), Some(3_600_000_000));
        assert_eq!(timespan_micros("1.00:00:00"), Some(86_400_000_000));
        assert_eq!(timespan_micros("00:00:01.5"), Some(1_500_000));
        assert_eq!(timespan_micros("00:30"), Some(1_800_000_000));
        assert_eq!(timespan_micros("2"), Some(2 * 86_400_000_000));
        assert_eq!(timespan_micros("00:00:00"), None);
        assert_eq!(timespan_micros("soon"), None);
        assert_eq!(timespan_micros("99999999999999.00:00:00"), None);
        assert_eq!(timespan_micros("1e300"), None);
        // Client numbers never overflow: too large is simply not a time span.
        assert_eq!(timespan_micros("9999999999"), None);
        assert_eq!(timespan_micros(&i64::MAX.to_string()), None);
        assert_eq!(timespan_micros("-9223372036854775808.01:00:00"), None);
    }
}
