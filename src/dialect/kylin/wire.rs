//! Kylin's JSON shapes: the API flavour an `Accept` header picks, the success envelope, the async
//! status object in its v2 and v4 spellings, the sync `SQLResponse` with its column metadata, and
//! how Arrow types and values become Kylin SQL type names and result strings.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use serde::Serialize;
use serde_json::Value;

use crate::encode::{EncodeError, EncodeOptions, cell_json, value};

pub const V2_JSON: &str = "application/vnd.apache.kylin-v2+json";
pub const V4_PUBLIC_JSON: &str = "application/vnd.apache.kylin-v4-public+json";
pub const V4_JSON: &str = "application/vnd.apache.kylin-v4+json";

/// Which of Kylin 5's controllers answers, chosen by the `Accept` header (spec §6).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flavour {
    /// `…-v2+json`, or no Accept / `*/*` on the async endpoints: `queryID`, project optional.
    V2,
    /// `…-v4-public+json` or `…-v4+json`: `query_id`, project required. Holds the type to echo.
    V4(&'static str),
    /// `application/json`, or no Accept / `*/*` on the legacy sync endpoints: raw bodies.
    Raw,
}

/// What the client asked for, before an endpoint decides what a bare request means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accept {
    V2,
    V4(&'static str),
    /// `application/json` and nothing Kylin-specific.
    Json,
    /// No header, or `*/*`.
    Any,
}

impl Accept {
    pub fn parse(header: Option<&str>) -> Accept {
        let Some(header) = header else {
            return Accept::Any;
        };
        let types: Vec<String> = header
            .split(',')
            .map(|t| {
                t.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .collect();
        let has = |wanted: &str| types.iter().any(|t| t == wanted);
        if has(V4_PUBLIC_JSON) {
            Accept::V4(V4_PUBLIC_JSON)
        } else if has(V4_JSON) {
            Accept::V4(V4_JSON)
        } else if has(V2_JSON) {
            Accept::V2
        } else if types.iter().all(|t| t.is_empty()) || has("*/*") || has("application/*") {
            Accept::Any
        } else {
            Accept::Json
        }
    }

    /// The flavour of the async endpoints: a bare request reaches the v2 controller. `None` when
    /// only `application/json` is acceptable, which no async handler produces.
    pub fn for_async(self) -> Option<Flavour> {
        match self {
            Accept::V2 | Accept::Any => Some(Flavour::V2),
            Accept::V4(t) => Some(Flavour::V4(t)),
            Accept::Json => None,
        }
    }

    /// The flavour of the legacy endpoints (`/query`, `/tables_and_columns`, authentication): a
    /// bare or `application/json` request gets the raw body.
    pub fn for_legacy(self) -> Flavour {
        match self {
            Accept::V2 => Flavour::V2,
            Accept::V4(t) => Flavour::V4(t),
            Accept::Json | Accept::Any => Flavour::Raw,
        }
    }
}

impl Flavour {
    /// The response's Content-Type: the negotiated vendor type, or plain JSON for raw bodies.
    pub fn content_type(self) -> &'static str {
        match self {
            Flavour::V2 => V2_JSON,
            Flavour::V4(t) => t,
            Flavour::Raw => "application/json;charset=UTF-8",
        }
    }
}

/// `EnvelopeResponse`: `{"code":"000","data":…,"msg":""}` on success; soft failures reuse it with
/// another code.
#[derive(Debug, Serialize)]
pub struct Envelope<T: Serialize> {
    pub code: String,
    pub data: T,
    pub msg: String,
}

impl<T: Serialize> Envelope<T> {
    pub fn ok(data: T) -> Self {
        Envelope {
            code: "000".into(),
            data,
            msg: String::new(),
        }
    }

    pub fn with(code: impl Into<String>, data: T, msg: impl Into<String>) -> Self {
        Envelope {
            code: code.into(),
            data,
            msg: msg.into(),
        }
    }
}

/// The async query states on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Status {
    #[serde(rename = "RUNNING")]
    Running,
    #[serde(rename = "SUCCESSFUL")]
    Successful,
    #[serde(rename = "FAILED")]
    Failed,
    #[serde(rename = "MISSING")]
    Missing,
}

/// `AsyncQueryResponse` (v4, `query_id`) and `AsyncQueryResponseV2` (`queryID`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AsyncQueryData {
    pub query_id: Option<String>,
    pub status: Status,
    pub info: String,
}

impl AsyncQueryData {
    /// The JSON object in this flavour's spelling.
    pub fn to_json(&self, flavour: Flavour) -> Value {
        let key = match flavour {
            Flavour::V4(_) => "query_id",
            Flavour::V2 | Flavour::Raw => "queryID",
        };
        let mut object = serde_json::Map::new();
        object.insert(
            key.into(),
            self.query_id
                .clone()
                .map(Value::String)
                .unwrap_or(Value::Null),
        );
        object.insert(
            "status".into(),
            serde_json::to_value(self.status).unwrap_or(Value::Null),
        );
        object.insert("info".into(), Value::String(self.info.clone()));
        Value::Object(object)
    }
}

/// A column's Kylin SQL type: its name, its `java.sql.Types` number, precision and scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SqlType {
    pub name: &'static str,
    pub jdbc: i32,
    pub precision: i32,
    pub scale: i32,
}

impl SqlType {
    /// The type as Kylin reports it wherever it names a column's type (`type_NAME`, metadata,
    /// `columnTypeName`): DECIMAL with its precision and scale (`DECIMAL(19,4)`), others bare.
    pub fn text(&self) -> String {
        match self.jdbc {
            3 => format!("{}({},{})", self.name, self.precision, self.scale),
            _ => self.name.to_string(),
        }
    }
}

/// How Calcite (and so Kylin) names an Arrow type; every name is one kylinpy can convert.
pub fn sql_type(data_type: &DataType) -> SqlType {
    let t = |name, jdbc, precision, scale| SqlType {
        name,
        jdbc,
        precision,
        scale,
    };
    match data_type {
        DataType::Boolean => t("BOOLEAN", 16, 1, 0),
        DataType::Int8 => t("TINYINT", -6, 3, 0),
        DataType::Int16 | DataType::UInt8 => t("SMALLINT", 5, 5, 0),
        DataType::Int32 | DataType::UInt16 => t("INTEGER", 4, 10, 0),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => t("BIGINT", -5, 19, 0),
        DataType::Float16 | DataType::Float32 => t("FLOAT", 6, 7, 0),
        DataType::Float64 => t("DOUBLE", 8, 15, 0),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => t("DECIMAL", 3, i32::from(*p), i32::from(*s)),
        DataType::Date32 | DataType::Date64 => t("DATE", 91, 10, 0),
        DataType::Timestamp(_, _) => t("TIMESTAMP", 93, 23, 3),
        DataType::Time32(_) | DataType::Time64(_) => t("TIME", 92, 8, 0),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => t("VARBINARY", -3, 4096, 0),
        DataType::Null => t("NULL", 0, 0, 0),
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(_, _)
        | DataType::ListView(_)
        | DataType::LargeListView(_) => t("ARRAY", 2003, 0, 0),
        DataType::Map(_, _) => t("MAP", 2000, 0, 0),
        DataType::Struct(_) => t("STRUCT", 2002, 0, 0),
        _ => t("VARCHAR", 12, 4096, 0),
    }
}

/// Calcite prints a TIMESTAMP `yyyy-MM-dd HH:mm:ss[.fff]`; a DATE stays `yyyy-MM-dd`.
const KYLIN_TIMESTAMP: &str = "%Y-%m-%d %H:%M:%S%.f";
/// Spark's JSON writer prints timestamps `yyyy-MM-dd'T'HH:mm:ss.SSS` with the zone.
const SPARK_JSON_TIMESTAMP: &str = "%Y-%m-%dT%H:%M:%S%.3fZ";

/// Per column, the encode options that render its cells the way Kylin does.
pub struct CellStyle {
    text: Vec<EncodeOptions>,
    json: Vec<EncodeOptions>,
}

impl CellStyle {
    pub fn new(fields: &[Arc<Field>]) -> Self {
        let with = |pattern: &str, field: &Field| match field.data_type() {
            DataType::Timestamp(_, _) => EncodeOptions {
                datetime_format: Some(pattern.to_string()),
                ..EncodeOptions::default()
            },
            _ => EncodeOptions::default(),
        };
        CellStyle {
            text: fields.iter().map(|f| with(KYLIN_TIMESTAMP, f)).collect(),
            json: fields
                .iter()
                .map(|f| with(SPARK_JSON_TIMESTAMP, f))
                .collect(),
        }
    }

    /// The batch with every cell replaced by Kylin's result string (sync `results`, CSV and XLSX
    /// cells), nulls kept; column names unchanged.
    pub fn text_batch(&self, batch: &RecordBatch) -> Result<RecordBatch, EncodeError> {
        let schema = batch.schema();
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(batch.num_columns());
        let mut fields = Vec::with_capacity(batch.num_columns());
        for (i, (field, column)) in schema.fields().iter().zip(batch.columns()).enumerate() {
            let one = RecordBatch::try_new(
                Arc::new(Schema::new(vec![field.clone()])),
                vec![column.clone()],
            )?;
            let options = self.text.get(i).cloned().unwrap_or_default();
            let text = value::text_batch(&one, &options, &value::json_encoder_options(&options))?;
            columns.push(text.column(0).clone());
            fields.push(Field::new(field.name(), DataType::Utf8, true));
        }
        Ok(RecordBatch::try_new(
            Arc::new(Schema::new(fields)),
            columns,
        )?)
    }

    /// A cell as Spark's JSON writer would put it in a row object.
    pub fn json(&self, column: usize, array: &dyn Array, row: usize) -> Result<Value, EncodeError> {
        let options = self.json.get(column).cloned().unwrap_or_default();
        cell_json(array, row, &options)
    }
}

/// `SelectedColumnMeta`, as `columnMetas` carries it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ColumnMeta {
    pub is_nullable: i32,
    pub display_size: i32,
    pub label: String,
    pub name: String,
    pub schema_name: Option<String>,
    pub catelog_name: Option<String>,
    pub table_name: Option<String>,
    pub precision: i32,
    pub scale: i32,
    pub column_type: i32,
    pub column_type_name: String,
    pub case_sensitive: bool,
    pub auto_increment: bool,
    pub currency: bool,
    pub definitely_writable: bool,
    pub signed: bool,
    pub writable: bool,
    pub searchable: bool,
    pub read_only: bool,
}

impl ColumnMeta {
    pub fn of(field: &Field) -> Self {
        let t = sql_type(field.data_type());
        let numeric = matches!(t.jdbc, -6 | 5 | 4 | -5 | 6 | 8 | 3);
        ColumnMeta {
            is_nullable: i32::from(field.is_nullable()),
            display_size: t.precision.max(field.name().len() as i32),
            label: field.name().clone(),
            name: field.name().clone(),
            schema_name: None,
            catelog_name: None,
            table_name: None,
            precision: t.precision,
            scale: t.scale,
            column_type: t.jdbc,
            column_type_name: t.text(),
            case_sensitive: t.jdbc == 12,
            auto_increment: false,
            currency: false,
            definitely_writable: false,
            signed: numeric,
            writable: false,
            searchable: true,
            read_only: true,
        }
    }
}

/// `SQLResponse`: Kylin 5's fields, plus what the v2 (`SQLResponseV2`) and Kylin 4 raw responses
/// add (`cube`, `totalScanCount`, …), so one shape serves every client.
#[derive(Debug, Serialize)]
pub struct SqlResponse {
    #[serde(rename = "columnMetas")]
    pub column_metas: Vec<ColumnMeta>,
    pub results: Option<Vec<Vec<Option<String>>>>,
    #[serde(rename = "affectedRowCount")]
    pub affected_row_count: i64,
    #[serde(rename = "isException")]
    pub is_exception: bool,
    #[serde(rename = "exceptionMessage")]
    pub exception_message: Option<String>,
    pub duration: i64,
    pub partial: bool,
    #[serde(rename = "pushDown")]
    pub push_down: bool,
    pub is_prepare: bool,
    pub is_timeout: bool,
    pub is_refused: bool,
    pub is_stop_by_user: bool,
    pub vacant: bool,
    #[serde(rename = "scanRows")]
    pub scan_rows: Vec<i64>,
    #[serde(rename = "scanBytes")]
    pub scan_bytes: Vec<i64>,
    #[serde(rename = "totalScanRows")]
    pub total_scan_rows: i64,
    #[serde(rename = "totalScanBytes")]
    pub total_scan_bytes: i64,
    #[serde(rename = "totalScanCount")]
    pub total_scan_count: i64,
    #[serde(rename = "totalScanFiles")]
    pub total_scan_files: i64,
    #[serde(rename = "resultRowCount")]
    pub result_row_count: i64,
    #[serde(rename = "shufflePartitions")]
    pub shuffle_partitions: i64,
    #[serde(rename = "hitExceptionCache")]
    pub hit_exception_cache: bool,
    #[serde(rename = "storageCacheUsed")]
    pub storage_cache_used: bool,
    #[serde(rename = "storageCacheType")]
    pub storage_cache_type: Option<String>,
    #[serde(rename = "queryStatistics")]
    pub query_statistics: Option<Value>,
    #[serde(rename = "queryId")]
    pub query_id: Option<String>,
    pub server: String,
    pub signature: Option<String>,
    pub realizations: Vec<Value>,
    #[serde(rename = "engineType")]
    pub engine_type: &'static str,
    pub traces: Vec<Value>,
    pub cube: String,
    #[serde(rename = "cuboidIds")]
    pub cuboid_ids: String,
    #[serde(rename = "realizationTypes")]
    pub realization_types: String,
    #[serde(rename = "sparderUsed")]
    pub sparder_used: bool,
    #[serde(rename = "appMasterURL")]
    pub app_master_url: Option<String>,
    #[serde(rename = "failTimes")]
    pub fail_times: i64,
    pub executed_plan: Option<String>,
    /// Lombok's `isException()` getter, serialized a second time.
    pub exception: bool,
    pub prepare: bool,
    pub timeout: bool,
}

impl SqlResponse {
    /// A response for a query that ran: `duration` in ms, `server` the answering host.
    pub fn success(
        column_metas: Vec<ColumnMeta>,
        results: Vec<Vec<Option<String>>>,
        duration: i64,
        query_id: String,
        server: String,
    ) -> Self {
        let rows = results.len() as i64;
        let mut response = SqlResponse::empty(duration, Some(query_id), server);
        response.column_metas = column_metas;
        response.results = Some(results);
        response.result_row_count = rows;
        response.total_scan_rows = rows;
        response.total_scan_count = rows;
        response.scan_rows = vec![rows];
        response.scan_bytes = vec![0];
        response
    }

    /// A query that failed: HTTP 200 with `isException` and the message (Kylin 5).
    pub fn failure(
        message: String,
        duration: i64,
        query_id: Option<String>,
        server: String,
    ) -> Self {
        let mut response = SqlResponse::empty(duration, query_id, server);
        response.is_exception = true;
        response.exception = true;
        response.exception_message = Some(message);
        response.results = None;
        response
    }

    fn empty(duration: i64, query_id: Option<String>, server: String) -> Self {
        SqlResponse {
            column_metas: Vec::new(),
            results: Some(Vec::new()),
            affected_row_count: 0,
            is_exception: false,
            exception_message: None,
            duration,
            partial: false,
            push_down: true,
            is_prepare: false,
            is_timeout: false,
            is_refused: false,
            is_stop_by_user: false,
            vacant: false,
            scan_rows: Vec::new(),
            scan_bytes: Vec::new(),
            total_scan_rows: 0,
            total_scan_bytes: 0,
            total_scan_count: 0,
            total_scan_files: 0,
            result_row_count: 0,
            shuffle_partitions: 1,
            hit_exception_cache: false,
            storage_cache_used: false,
            storage_cache_type: None,
            query_statistics: None,
            query_id,
            server,
            signature: None,
            realizations: Vec::new(),
            engine_type: "NATIVE",
            traces: Vec::new(),
            cube: String::new(),
            cuboid_ids: String::new(),
            realization_types: String::new(),
            sparder_used: false,
            app_master_url: None,
            fail_times: 0,
            executed_plan: None,
            exception: false,
            prepare: false,
            timeout: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_picks_the_flavour() {
        assert_eq!(Accept::parse(None).for_async(), Some(Flavour::V2));
        assert_eq!(Accept::parse(Some("*/*")).for_legacy(), Flavour::Raw);
        assert_eq!(
            Accept::parse(Some(
                "application/vnd.apache.kylin-v4-public+json, text/plain, */*"
            ))
            .for_async(),
            Some(Flavour::V4(V4_PUBLIC_JSON))
        );
        assert_eq!(Accept::parse(Some(V2_JSON)).for_legacy(), Flavour::V2);
        assert_eq!(Accept::parse(Some("application/json")).for_async(), None);
    }

    #[test]
    fn cells_print_as_calcite_prints_them() {
        use arrow::array::{
            BooleanArray, Date32Array, Decimal128Array, StringArray, TimestampMillisecondArray,
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Date32Array::from(vec![Some(15627), None])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_704_164_645_000),
                Some(1_704_164_645_120),
            ])),
            Arc::new(
                Decimal128Array::from(vec![Some(807556), Some(-5)])
                    .with_precision_and_scale(19, 4)
                    .unwrap(),
            ),
            Arc::new(BooleanArray::from(vec![true, false])),
        ];
        let batch =
            RecordBatch::try_from_iter(["D", "TS", "PRICE", "B"].into_iter().zip(columns)).unwrap();
        let style = CellStyle::new(batch.schema().fields());
        let text = style.text_batch(&batch).unwrap();
        let cells: Vec<Vec<Option<&str>>> = text
            .columns()
            .iter()
            .map(|c| {
                let c = c.as_any().downcast_ref::<StringArray>().unwrap();
                (0..2).map(|r| c.is_valid(r).then(|| c.value(r))).collect()
            })
            .collect();
        assert_eq!(cells[0], [Some("2012-10-14"), None]);
        assert_eq!(
            cells[1],
            [Some("2024-01-02 03:04:05"), Some("2024-01-02 03:04:05.120")]
        );
        assert_eq!(cells[2], [Some("80.7556"), Some("-0.0005")]);
        assert_eq!(cells[3], [Some("true"), Some("false")]);
        assert_eq!(
            style.json(1, batch.column(1).as_ref(), 0).unwrap(),
            "2024-01-02T03:04:05.000Z"
        );
        assert_eq!(
            sql_type(batch.column(2).data_type()).text(),
            "DECIMAL(19,4)"
        );
        assert_eq!(sql_type(batch.column(0).data_type()).text(), "DATE");
    }

    #[test]
    fn async_data_spells_the_id_per_flavour() {
        let data = AsyncQueryData {
            query_id: Some("x".into()),
            status: Status::Running,
            info: "still running".into(),
        };
        assert_eq!(
            data.to_json(Flavour::V2).to_string(),
            r#"{"queryID":"x","status":"RUNNING","info":"still running"}"#
        );
        assert_eq!(
            data.to_json(Flavour::V4(V4_JSON)).to_string(),
            r#"{"query_id":"x","status":"RUNNING","info":"still running"}"#
        );
    }
}
