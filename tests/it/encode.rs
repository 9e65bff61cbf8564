//! The result encoders, each format read back by an independent reader: Arrow's CSV reader,
//! serde_json, quick-xml's reader, the Parquet and Arrow IPC readers, calamine for XLSX and
//! rusqlite for SQLite; the HTML, Markdown and text tables are compared as text.

use std::io::{Cursor, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use arrow::array::{
    Array, ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
    Int64Array, ListArray, RecordBatch, StringArray, StructArray, TimestampMicrosecondArray,
    TimestampMillisecondArray,
};
use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef, TimeUnit};
use chrono::{NaiveDate, NaiveDateTime};
use polyquery::encode::{
    EncodeError, EncodeOptions, Format, LineEnding, cell_json, cell_text, encoder,
};
use serde_json::{Value, json};

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A sink the test can read after the encoder has taken ownership of it.
#[derive(Clone, Default)]
struct SharedSink(Arc<Mutex<Vec<u8>>>);

impl SharedSink {
    fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
}

impl Write for SharedSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn encode_batches(
    format: Format,
    options: &EncodeOptions,
    schema: SchemaRef,
    batches: &[RecordBatch],
) -> Vec<u8> {
    let sink = SharedSink::default();
    let mut encoder = encoder(format, options, schema, Box::new(sink.clone())).unwrap();
    for batch in batches {
        encoder.write_batch(batch).unwrap();
    }
    encoder.finish().unwrap();
    sink.bytes()
}

fn encode(format: Format, options: &EncodeOptions, batch: &RecordBatch) -> Vec<u8> {
    encode_batches(format, options, batch.schema(), std::slice::from_ref(batch))
}

fn encode_text(format: Format, options: &EncodeOptions, batch: &RecordBatch) -> String {
    String::from_utf8(encode(format, options, batch)).unwrap()
}

fn datetime(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32, micros: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d)
        .unwrap()
        .and_hms_micro_opt(h, min, s, micros)
        .unwrap()
}

fn days(y: i32, m: u32, d: u32) -> i32 {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    (NaiveDate::from_ymd_opt(y, m, d).unwrap() - epoch).num_days() as i32
}

/// The first row's `big` value, a decimal no double can hold.
const BIG: &str = "12345678901234567890.0123456789";
const ZURICH_TOKYO: &str = "Zürich – 東京";
/// A string with every character some format gives meaning to.
const AWKWARD: &str = "a,b \"quoted\"\r\nnext|pipe\t<tag> & \\ back";

/// Three rows covering every scalar type, with a null in every nullable column.
fn typed_batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("count", DataType::Int32, true),
        Field::new("amount", DataType::Decimal128(10, 2), true),
        Field::new("big", DataType::Decimal128(38, 10), true),
        Field::new("ratio", DataType::Float64, true),
        Field::new("flag", DataType::Boolean, true),
        Field::new("day", DataType::Date32, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new(
            "at_utc",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        Field::new("name", DataType::Utf8, true),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![1, 2, 3])),
        Arc::new(Int32Array::from(vec![Some(-7), None, Some(i32::MAX)])),
        Arc::new(
            Decimal128Array::from(vec![Some(1_234_567), None, Some(-5)])
                .with_precision_and_scale(10, 2)
                .unwrap(),
        ),
        Arc::new(
            Decimal128Array::from(vec![
                Some(123_456_789_012_345_678_900_123_456_789),
                None,
                Some(0),
            ])
            .with_precision_and_scale(38, 10)
            .unwrap(),
        ),
        Arc::new(Float64Array::from(vec![Some(0.25), None, Some(-1.5)])),
        Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
        Arc::new(Date32Array::from(vec![
            Some(days(2024, 1, 2)),
            None,
            Some(days(1999, 12, 31)),
        ])),
        Arc::new(TimestampMicrosecondArray::from(vec![
            Some(
                datetime(2024, 1, 2, 3, 4, 5, 0)
                    .and_utc()
                    .timestamp_micros(),
            ),
            Some(
                datetime(2024, 1, 2, 3, 4, 5, 123_456)
                    .and_utc()
                    .timestamp_micros(),
            ),
            None,
        ])),
        Arc::new(
            TimestampMillisecondArray::from(vec![
                Some(
                    datetime(2024, 1, 2, 3, 4, 5, 0)
                        .and_utc()
                        .timestamp_millis(),
                ),
                None,
                Some(
                    datetime(2024, 6, 30, 23, 59, 59, 500_000)
                        .and_utc()
                        .timestamp_millis(),
                ),
            ])
            .with_timezone("UTC"),
        ),
        Arc::new(StringArray::from(vec![
            Some(ZURICH_TOKYO),
            None,
            Some(AWKWARD),
        ])),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

/// Three rows with a struct column and a list column, each with nulls inside and outside.
fn nested_batch() -> RecordBatch {
    let point_fields = vec![
        Field::new("x", DataType::Int32, true),
        Field::new("label", DataType::Utf8, true),
    ];
    let point = StructArray::try_new(
        point_fields.clone().into(),
        vec![
            Arc::new(Int32Array::from(vec![Some(1), None, Some(3)])) as ArrayRef,
            Arc::new(StringArray::from(vec![Some("Zürich"), Some("b"), None])),
        ],
        Some(vec![true, true, false].into()),
    )
    .unwrap();
    let tags = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
        Some(vec![Some(1), Some(2), None]),
        Some(vec![]),
        None,
    ]);
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("point", DataType::Struct(point_fields.into()), true),
        Field::new("tags", tags.data_type().clone(), true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![1, 2, 3])),
            Arc::new(point),
            Arc::new(tags),
        ],
    )
    .unwrap()
}

/// `count` rows of ids starting at `first`, with a name column.
fn id_batch(first: i64, count: usize) -> RecordBatch {
    let ids: Vec<i64> = (first..first + count as i64).collect();
    let names: Vec<String> = ids.iter().map(|id| format!("row {id}")).collect();
    RecordBatch::try_new(
        id_schema(),
        vec![
            Arc::new(Int64Array::from(ids)),
            Arc::new(StringArray::from(names)),
        ],
    )
    .unwrap()
}

fn id_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
    ]))
}

fn options() -> EncodeOptions {
    EncodeOptions::default()
}

// ---------------------------------------------------------------------------------------------
// Independent readers

fn read_csv(text: &[u8], schema: SchemaRef, header: bool, tweak: CsvDialect) -> RecordBatch {
    let mut builder = arrow::csv::ReaderBuilder::new(schema.clone()).with_header(header);
    if let Some(delimiter) = tweak.delimiter {
        builder = builder.with_delimiter(delimiter);
    }
    if let Some(escape) = tweak.escape {
        builder = builder.with_escape(escape);
    }
    let reader = builder.build(Cursor::new(text.to_vec())).unwrap();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().unwrap();
    concat_batches(&schema, &batches).unwrap()
}

#[derive(Default, Clone, Copy)]
struct CsvDialect {
    delimiter: Option<u8>,
    escape: Option<u8>,
}

fn read_parquet(bytes: Vec<u8>) -> (SchemaRef, Vec<RecordBatch>, usize) {
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .unwrap();
    let row_groups = builder.metadata().num_row_groups();
    let schema = builder.schema().clone();
    let batches = builder
        .build()
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    (schema, batches, row_groups)
}

fn read_ipc(bytes: Vec<u8>) -> (SchemaRef, Vec<RecordBatch>) {
    let reader = arrow::ipc::reader::StreamReader::try_new(Cursor::new(bytes), None).unwrap();
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().unwrap();
    (schema, batches)
}

/// The document element's name and each `<row>`'s children as (element, text) pairs.
fn read_xml(bytes: &[u8]) -> (String, Vec<Vec<(String, String)>>) {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(bytes);
    let mut root = None;
    let mut rows: Vec<Vec<(String, String)>> = Vec::new();
    let mut depth = 0;
    let mut element: Option<String> = None;
    let mut text = String::new();
    let mut buffer = Vec::new();
    loop {
        match reader.read_event_into(&mut buffer).unwrap() {
            Event::Start(start) => {
                let name = start.name().as_ref().to_string();
                depth += 1;
                match depth {
                    1 => root = Some(name),
                    2 => {
                        assert_eq!(name, "row");
                        rows.push(Vec::new());
                    }
                    3 => {
                        element = Some(name);
                        text.clear();
                    }
                    _ => panic!("unexpected nesting at {name}"),
                }
            }
            Event::Empty(start) => {
                let name = start.name().as_ref().to_string();
                match depth {
                    0 => root = Some(name),
                    1 => rows.push(Vec::new()),
                    2 => rows.last_mut().unwrap().push((name, String::new())),
                    _ => panic!("unexpected empty element {name}"),
                }
            }
            // Text between elements is indentation; only a column element's text counts.
            Event::Text(content) if depth == 3 => text.push_str(&content.xml10_content()),
            Event::GeneralRef(reference) if depth == 3 => {
                match reference.resolve_char_ref().unwrap() {
                    Some(c) => text.push(c),
                    None => {
                        let name = reference.xml10_content();
                        let entity = quick_xml::escape::resolve_predefined_entity(&name)
                            .unwrap_or_else(|| panic!("unknown entity {name}"));
                        text.push_str(entity);
                    }
                }
            }
            Event::End(_) => {
                if depth == 3 {
                    let name = element.take().unwrap();
                    rows.last_mut().unwrap().push((name, text.clone()));
                }
                depth -= 1;
            }
            Event::Eof => break,
            _ => {}
        }
        buffer.clear();
    }
    (root.unwrap(), rows)
}

fn read_xlsx(bytes: Vec<u8>, sheet: &str) -> calamine::Range<calamine::Data> {
    use calamine::Reader;
    let mut workbook = calamine::Xlsx::new(Cursor::new(bytes)).unwrap();
    workbook.worksheet_range(sheet).unwrap()
}

fn open_sqlite(bytes: &[u8]) -> (tempfile::NamedTempFile, rusqlite::Connection) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(bytes).unwrap();
    file.flush().unwrap();
    let connection = rusqlite::Connection::open(file.path()).unwrap();
    (file, connection)
}

/// The `id` column of a result, read back from any format.
fn read_ids(format: Format, bytes: Vec<u8>) -> Vec<i64> {
    match format {
        Format::Csv => {
            let batch = read_csv(&bytes, id_schema(), true, CsvDialect::default());
            int64_column(&batch, 0)
        }
        Format::Json => {
            let rows: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
            rows.iter().map(|row| row["id"].as_i64().unwrap()).collect()
        }
        Format::NdJson => String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|line| {
                serde_json::from_str::<Value>(line).unwrap()["id"]
                    .as_i64()
                    .unwrap()
            })
            .collect(),
        Format::Xml => {
            let (_, rows) = read_xml(&bytes);
            rows.iter().map(|row| row[0].1.parse().unwrap()).collect()
        }
        Format::Parquet => {
            let (schema, batches, _) = read_parquet(bytes);
            int64_column(&concat_batches(&schema, &batches).unwrap(), 0)
        }
        Format::ArrowIpc => {
            let (schema, batches) = read_ipc(bytes);
            int64_column(&concat_batches(&schema, &batches).unwrap(), 0)
        }
        Format::Xlsx => {
            let range = read_xlsx(bytes, "Sheet1");
            range
                .rows()
                .skip(1)
                .map(|row| match &row[0] {
                    calamine::Data::Float(id) => *id as i64,
                    calamine::Data::Int(id) => *id,
                    other => panic!("id cell {other:?}"),
                })
                .collect()
        }
        Format::Sqlite => {
            let (_file, connection) = open_sqlite(&bytes);
            let mut query = connection
                .prepare("SELECT id FROM results ORDER BY rowid")
                .unwrap();
            query
                .query_map([], |row| row.get::<_, i64>(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        }
        Format::Html => {
            let text = String::from_utf8(bytes).unwrap();
            text.split("<tr><td>")
                .skip(1)
                .map(|row| row.split("</td>").next().unwrap().parse().unwrap())
                .collect()
        }
        Format::Markdown => String::from_utf8(bytes)
            .unwrap()
            .lines()
            .skip(2)
            .map(|line| line.split('|').nth(1).unwrap().trim().parse().unwrap())
            .collect(),
        Format::Text => String::from_utf8(bytes)
            .unwrap()
            .lines()
            .skip(1)
            .map(|line| line.split('\t').next().unwrap().parse().unwrap())
            .collect(),
    }
}

fn int64_column(batch: &RecordBatch, index: usize) -> Vec<i64> {
    batch
        .column(index)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

// ---------------------------------------------------------------------------------------------
// Format names

#[test]
fn format_names_parse_back_and_name_their_media_types() {
    let names = [
        "csv", "json", "ndjson", "xml", "parquet", "arrow", "xlsx", "sqlite", "html", "md", "txt",
    ];
    for name in names {
        let format = Format::parse(name).unwrap();
        assert_eq!(format.name(), name);
    }
    assert_eq!(Format::parse("CSV"), None);
    assert_eq!(Format::parse("excel"), None);
    assert_eq!(Format::Csv.content_type(), "text/csv; charset=utf-8");
    assert_eq!(
        Format::Markdown.content_type(),
        "text/markdown; charset=utf-8"
    );
    assert_eq!(Format::Json.content_type(), "application/json");
    assert_eq!(
        Format::Xlsx.content_type(),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    for format in Format::ALL {
        let media_type = format.content_type();
        assert_eq!(
            media_type.starts_with("text/"),
            media_type.ends_with("; charset=utf-8"),
            "{media_type}"
        );
    }
    assert_eq!(Format::Xlsx.extension(), "xlsx");
    assert_eq!(Format::ArrowIpc.extension(), "arrow");
    assert_eq!(Format::Markdown.extension(), "md");
    assert_eq!(Format::Text.extension(), "txt");
}

#[test]
fn options_no_format_can_honour_are_rejected() {
    let same_quote = EncodeOptions {
        delimiter: b'"',
        ..options()
    };
    let bad_pattern = EncodeOptions {
        datetime_format: Some("%Y-%m-%d %Q".to_string()),
        ..options()
    };
    let zone_pattern = EncodeOptions {
        datetime_format: Some("%Y-%m-%d %z".to_string()),
        ..options()
    };
    for bad in [same_quote, bad_pattern, zone_pattern] {
        let result = encoder(
            Format::Csv,
            &bad,
            id_schema(),
            Box::new(SharedSink::default()),
        );
        assert!(
            matches!(result, Err(EncodeError::Unsupported(_))),
            "{bad:?}"
        );
    }
    assert!(options().validate().is_ok());
}

// ---------------------------------------------------------------------------------------------
// CSV

#[test]
fn csv_is_rfc4180_and_reads_back_to_the_same_values() {
    let batch = typed_batch();
    let text = encode_text(Format::Csv, &options(), &batch);
    let expected = "id,count,amount,big,ratio,flag,day,at,at_utc,name\n\
        1,-7,12345.67,12345678901234567890.0123456789,0.25,true,2024-01-02,2024-01-02T03:04:05,2024-01-02T03:04:05Z,Zürich – 東京\n\
        2,,,,,false,,2024-01-02T03:04:05.123456,,\n\
        3,2147483647,-0.05,0.0000000000,-1.5,,1999-12-31,,2024-06-30T23:59:59.500Z,\"a,b \"\"quoted\"\"\r\nnext|pipe\t<tag> & \\ back\"\n";
    assert_eq!(text, expected);
    let read = read_csv(text.as_bytes(), batch.schema(), true, CsvDialect::default());
    assert_eq!(read, batch);
}

#[test]
fn csv_pipe_delimiter_reads_back() {
    let batch = typed_batch();
    let pipe = EncodeOptions {
        delimiter: b'|',
        ..options()
    };
    let text = encode_text(Format::Csv, &pipe, &batch);
    assert!(text.starts_with("id|count|amount|big|ratio|flag|day|at|at_utc|name\n1|-7|12345.67|"));
    // The value holding a pipe is quoted; the comma in it no longer needs to be.
    assert!(text.contains("|\"a,b \"\"quoted\"\"\r\nnext|pipe\t<tag> & \\ back\"\n"));
    let dialect = CsvDialect {
        delimiter: Some(b'|'),
        ..CsvDialect::default()
    };
    assert_eq!(
        read_csv(text.as_bytes(), batch.schema(), true, dialect),
        batch
    );
}

#[test]
fn csv_backslash_escape_reads_back() {
    let batch = typed_batch();
    let escaped = EncodeOptions {
        escape: Some(b'\\'),
        ..options()
    };
    let text = encode_text(Format::Csv, &escaped, &batch);
    assert!(text.contains("\"a,b \\\"quoted\\\"\r\n"), "{text}");
    assert!(!text.contains("\"\"quoted"));
    let dialect = CsvDialect {
        escape: Some(b'\\'),
        ..CsvDialect::default()
    };
    let read = read_csv(text.as_bytes(), batch.schema(), true, dialect);
    assert_eq!(read.column(0), batch.column(0));
    let names = read
        .column(9)
        .as_any()
        .downcast_ref::<StringArray>()
        .unwrap();
    assert_eq!(names.value(0), ZURICH_TOKYO);
    assert!(
        names
            .value(2)
            .starts_with("a,b \"quoted\"\r\nnext|pipe\t<tag> & ")
    );
}

#[test]
fn csv_without_header_with_crlf_and_null_text() {
    let batch = typed_batch();
    let options = EncodeOptions {
        header: false,
        line_ending: LineEnding::CrLf,
        null_text: "NULL".to_string(),
        ..options()
    };
    let text = encode_text(Format::Csv, &options, &batch);
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(lines[0].starts_with("1,-7,12345.67,"), "{text}");
    assert_eq!(
        lines[1],
        "2,NULL,NULL,NULL,NULL,false,NULL,2024-01-02T03:04:05.123456,NULL,NULL"
    );
    assert!(text.ends_with("back\"\r\n"));
    // Without a header and with nulls spelled out, the data still reads back.
    let plain = EncodeOptions {
        header: false,
        ..self::options()
    };
    let text = encode_text(Format::Csv, &plain, &batch);
    assert_eq!(
        read_csv(
            text.as_bytes(),
            batch.schema(),
            false,
            CsvDialect::default()
        ),
        batch
    );
}

#[test]
fn datetime_format_applies_to_dates_and_timestamps_in_text_and_json() {
    let batch = typed_batch();
    let options = EncodeOptions {
        datetime_format: Some("%d/%m/%Y %H:%M:%S".to_string()),
        ..options()
    };
    let text = encode_text(Format::Csv, &options, &batch);
    let first_row = text.lines().nth(1).unwrap();
    assert!(
        first_row.contains(",true,02/01/2024 00:00:00,02/01/2024 03:04:05,02/01/2024 03:04:05,"),
        "{first_row}"
    );
    let json: Value = serde_json::from_slice(&encode(Format::Json, &options, &batch)).unwrap();
    assert_eq!(json[0]["day"], "02/01/2024 00:00:00");
    assert_eq!(json[2]["at_utc"], "30/06/2024 23:59:59");
    assert_eq!(json[1]["day"], Value::Null);
    // A pattern with characters JSON must escape still gives valid JSON.
    let quoted = EncodeOptions {
        datetime_format: Some("\"%Y\"\\%m".to_string()),
        ..self::options()
    };
    let json: Value = serde_json::from_slice(&encode(Format::Json, &quoted, &batch)).unwrap();
    assert_eq!(json[0]["day"], "\"2024\"\\01");
    // XLSX keeps native dates whatever the pattern.
    let range = read_xlsx(encode(Format::Xlsx, &options, &batch), "Sheet1");
    let calamine::Data::DateTime(day) = &range[(1, 6)] else {
        panic!("{:?}", range[(1, 6)])
    };
    assert_eq!(day.to_ymd_hms_milli(), (2024, 1, 2, 0, 0, 0, 0));
}

#[test]
fn nested_values_are_json_text_in_csv() {
    let batch = nested_batch();
    let text = encode_text(Format::Csv, &options(), &batch);
    assert_eq!(
        text,
        "id,point,tags\n\
         1,\"{\"\"x\"\":1,\"\"label\"\":\"\"Zürich\"\"}\",\"[1,2,null]\"\n\
         2,\"{\"\"x\"\":null,\"\"label\"\":\"\"b\"\"}\",[]\n\
         3,,\n"
    );
}

#[test]
fn csv_streams_batch_by_batch_without_one_giant_write() {
    /// Counts bytes and remembers the largest single write.
    #[derive(Clone, Default)]
    struct CountingSink {
        total: Arc<AtomicUsize>,
        writes: Arc<AtomicUsize>,
        largest_write: Arc<AtomicUsize>,
    }
    impl Write for CountingSink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.total.fetch_add(buf.len(), Ordering::SeqCst);
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.largest_write.fetch_max(buf.len(), Ordering::SeqCst);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    let sink = CountingSink::default();
    let mut encoder =
        encoder(Format::Csv, &options(), id_schema(), Box::new(sink.clone())).unwrap();
    const ROWS: i64 = 200_000;
    const BATCH: usize = 8192;
    let mut first = 0;
    let mut written_after_each_batch = Vec::new();
    while first < ROWS {
        let count = BATCH.min((ROWS - first) as usize);
        encoder.write_batch(&id_batch(first, count)).unwrap();
        written_after_each_batch.push(sink.total.load(Ordering::SeqCst));
        first += count as i64;
    }
    encoder.finish().unwrap();

    let expected_bytes = "id,name\n".len()
        + (0..ROWS)
            .map(|id| format!("{id},row {id}\n").len())
            .sum::<usize>();
    assert_eq!(sink.total.load(Ordering::SeqCst), expected_bytes);
    // Each batch's bytes reached the sink before the next batch was given.
    assert!(
        written_after_each_batch
            .windows(2)
            .all(|pair| pair[0] < pair[1])
    );
    assert!(written_after_each_batch[0] >= BATCH * 10);
    let largest = sink.largest_write.load(Ordering::SeqCst);
    assert!(largest <= 64 * 1024, "largest write {largest} bytes");
    assert!(sink.writes.load(Ordering::SeqCst) > expected_bytes / (64 * 1024));
}

// ---------------------------------------------------------------------------------------------
// JSON and NDJSON

#[test]
fn json_keeps_types_exact_decimals_and_nulls() {
    let batch = typed_batch();
    let bytes = encode(Format::Json, &options(), &batch);
    let text = String::from_utf8(bytes.clone()).unwrap();
    // Decimals are written as their exact digits, not through a double.
    assert!(text.contains("\"amount\":12345.67,"), "{text}");
    assert!(
        text.contains("\"big\":12345678901234567890.0123456789,"),
        "{text}"
    );
    let rows: Vec<Value> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(rows.len(), 3);
    let first = rows[0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id", "count", "amount", "big", "ratio", "flag", "day", "at", "at_utc", "name"
        ]
    );
    assert!(rows[0]["id"].is_i64());
    assert_eq!(rows[0]["id"], 1);
    assert_eq!(rows[0]["count"], -7);
    assert_eq!(rows[2]["count"], i32::MAX);
    assert_eq!(rows[0]["amount"].as_f64(), Some(12345.67));
    assert_eq!(rows[0]["ratio"], 0.25);
    assert_eq!(rows[0]["flag"], true);
    assert_eq!(rows[1]["flag"], false);
    assert_eq!(rows[0]["day"], "2024-01-02");
    assert_eq!(rows[0]["at"], "2024-01-02T03:04:05");
    assert_eq!(rows[1]["at"], "2024-01-02T03:04:05.123456");
    assert_eq!(rows[0]["at_utc"], "2024-01-02T03:04:05Z");
    assert_eq!(rows[2]["at_utc"], "2024-06-30T23:59:59.500Z");
    assert_eq!(rows[0]["name"], ZURICH_TOKYO);
    assert_eq!(rows[2]["name"], AWKWARD);
    // Every null is present as an explicit null.
    for column in ["count", "amount", "big", "ratio", "day", "at_utc", "name"] {
        assert!(rows[1].get(column).unwrap().is_null(), "{column}");
    }
    assert!(rows[2]["flag"].is_null());
    assert!(rows[2]["at"].is_null());
}

#[test]
fn json_writes_structs_as_objects_and_lists_as_arrays() {
    let rows: Value =
        serde_json::from_slice(&encode(Format::Json, &options(), &nested_batch())).unwrap();
    assert_eq!(
        rows,
        json!([
            {"id": 1, "point": {"x": 1, "label": "Zürich"}, "tags": [1, 2, null]},
            {"id": 2, "point": {"x": null, "label": "b"}, "tags": []},
            {"id": 3, "point": null, "tags": null},
        ])
    );
}

#[test]
fn ndjson_writes_one_object_per_line() {
    let text = String::from_utf8(encode(Format::NdJson, &options(), &nested_batch())).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    assert!(text.ends_with("}\n"));
    let last: Value = serde_json::from_str(lines[2]).unwrap();
    assert_eq!(last, json!({"id": 3, "point": null, "tags": null}));
    let typed = String::from_utf8(encode(Format::NdJson, &options(), &typed_batch())).unwrap();
    let first: Value = serde_json::from_str(typed.lines().next().unwrap()).unwrap();
    assert_eq!(first["name"], ZURICH_TOKYO);
    assert_eq!(first["big"].as_f64(), Some(BIG.parse().unwrap()));
}

// ---------------------------------------------------------------------------------------------
// XML

#[test]
fn xml_has_a_row_element_per_row_and_leaves_nulls_out() {
    let batch = typed_batch();
    let bytes = encode(Format::Xml, &options(), &batch);
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(
        text.starts_with(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<results>\n  <row>\n    <id>1</id>\n"
        ),
        "{text}"
    );
    let (root, rows) = read_xml(&bytes);
    assert_eq!(root, "results");
    assert_eq!(rows.len(), 3);
    let pairs = |row: &Vec<(String, String)>| -> Vec<(String, String)> { row.clone() };
    let owned = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    assert_eq!(
        pairs(&rows[0]),
        owned(&[
            ("id", "1"),
            ("count", "-7"),
            ("amount", "12345.67"),
            ("big", "12345678901234567890.0123456789"),
            ("ratio", "0.25"),
            ("flag", "true"),
            ("day", "2024-01-02"),
            ("at", "2024-01-02T03:04:05"),
            ("at_utc", "2024-01-02T03:04:05Z"),
            ("name", ZURICH_TOKYO),
        ])
    );
    assert_eq!(
        pairs(&rows[1]),
        owned(&[
            ("id", "2"),
            ("flag", "false"),
            ("at", "2024-01-02T03:04:05.123456")
        ])
    );
    // Markup characters, the carriage return and the tab all survive.
    assert_eq!(
        rows[2].last().unwrap(),
        &("name".to_string(), AWKWARD.to_string())
    );
}

#[test]
fn xml_names_come_from_options_and_columns_are_made_xml_safe() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("order id", DataType::Int64, false),
        Field::new("1st", DataType::Utf8, false),
        Field::new("a:b", DataType::Utf8, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![7])),
            Arc::new(StringArray::from(vec![""])),
            Arc::new(StringArray::from(vec!["x"])),
        ],
    )
    .unwrap();
    let options = EncodeOptions {
        xml_root: "Query Result".to_string(),
        ..options()
    };
    let (root, rows) = read_xml(&encode(Format::Xml, &options, &batch));
    assert_eq!(root, "Query_Result");
    let names: Vec<&str> = rows[0].iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, ["order_id", "_1st", "a_b"]);
    // An empty string is an empty element, unlike a null, which has none.
    assert_eq!(rows[0][1].1, "");
    assert_eq!(polyquery::encode::xml::xml_name("xml_data"), "_xml_data");
    assert_eq!(polyquery::encode::xml::xml_name("Zürich"), "Zürich");
}

#[test]
fn xml_writes_nested_values_as_json_text() {
    let (_, rows) = read_xml(&encode(Format::Xml, &options(), &nested_batch()));
    assert_eq!(
        rows[0][1],
        (
            "point".to_string(),
            r#"{"x":1,"label":"Zürich"}"#.to_string()
        )
    );
    assert_eq!(rows[0][2], ("tags".to_string(), "[1,2,null]".to_string()));
    assert_eq!(rows[2].len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Parquet and Arrow IPC

#[test]
fn parquet_reads_back_to_the_same_batches() {
    let batch = typed_batch();
    let (schema, batches, _) = read_parquet(encode(Format::Parquet, &options(), &batch));
    assert_eq!(schema, batch.schema());
    assert_eq!(concat_batches(&schema, &batches).unwrap(), batch);

    let nested = nested_batch();
    let (schema, batches, _) = read_parquet(encode(Format::Parquet, &options(), &nested));
    assert_eq!(concat_batches(&schema, &batches).unwrap(), nested);
}

#[test]
fn parquet_writes_one_row_group_per_batch() {
    let batches = [id_batch(0, 5), id_batch(5, 0), id_batch(5, 7)];
    let bytes = encode_batches(Format::Parquet, &options(), id_schema(), &batches);
    let (_, read, row_groups) = read_parquet(bytes);
    assert_eq!(row_groups, 2);
    assert_eq!(read.iter().map(RecordBatch::num_rows).sum::<usize>(), 12);
}

#[test]
fn arrow_ipc_stream_reads_back_to_the_same_batches() {
    for batch in [typed_batch(), nested_batch()] {
        let (schema, batches) = read_ipc(encode(Format::ArrowIpc, &options(), &batch));
        assert_eq!(schema, batch.schema());
        assert_eq!(batches, vec![batch]);
    }
}

// ---------------------------------------------------------------------------------------------
// XLSX

#[test]
fn xlsx_cells_keep_their_types() {
    use calamine::Data;
    let batch = typed_batch();
    let range = read_xlsx(encode(Format::Xlsx, &options(), &batch), "Sheet1");
    assert_eq!(range.get_size(), (4, 10));
    let header: Vec<String> = range
        .rows()
        .next()
        .unwrap()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(
        header,
        [
            "id", "count", "amount", "big", "ratio", "flag", "day", "at", "at_utc", "name"
        ]
    );
    let number = |row: usize, column: usize| match &range[(row, column)] {
        Data::Float(value) => *value,
        Data::Int(value) => *value as f64,
        other => panic!("({row}, {column}) is {other:?}"),
    };
    let moment = |row: usize, column: usize| match &range[(row, column)] {
        Data::DateTime(value) => value.to_ymd_hms_milli(),
        other => panic!("({row}, {column}) is {other:?}"),
    };
    assert_eq!(number(1, 0), 1.0);
    assert_eq!(number(1, 1), -7.0);
    assert_eq!(number(3, 1), f64::from(i32::MAX));
    assert_eq!(number(1, 2), 12345.67);
    assert_eq!(number(3, 2), -0.05);
    assert_eq!(number(1, 3), BIG.parse::<f64>().unwrap());
    assert_eq!(number(1, 4), 0.25);
    assert_eq!(range[(1, 5)], Data::Bool(true));
    assert_eq!(range[(2, 5)], Data::Bool(false));
    assert_eq!(moment(1, 6), (2024, 1, 2, 0, 0, 0, 0));
    assert_eq!(moment(3, 6), (1999, 12, 31, 0, 0, 0, 0));
    assert_eq!(moment(2, 7), (2024, 1, 2, 3, 4, 5, 123));
    assert_eq!(moment(3, 8), (2024, 6, 30, 23, 59, 59, 500));
    assert_eq!(range[(1, 9)], Data::String(ZURICH_TOKYO.to_string()));
    assert_eq!(range[(3, 9)], Data::String(AWKWARD.to_string()));
    // Nulls are empty cells.
    for column in [1, 2, 3, 4, 6, 8, 9] {
        assert_eq!(range[(2, column)], Data::Empty, "column {column}");
    }
    assert_eq!(range[(3, 5)], Data::Empty);
}

#[test]
fn xlsx_sheet_name_header_and_nested_values() {
    use calamine::Data;
    let options = EncodeOptions {
        sheet_name: "query_result".to_string(),
        header: false,
        ..options()
    };
    let range = read_xlsx(
        encode(Format::Xlsx, &options, &nested_batch()),
        "query_result",
    );
    assert_eq!(range.get_size(), (3, 3));
    assert_eq!(range[(0, 0)], Data::Float(1.0));
    assert_eq!(
        range[(0, 1)],
        Data::String(r#"{"x":1,"label":"Zürich"}"#.to_string())
    );
    assert_eq!(range[(1, 2)], Data::String("[]".to_string()));
    assert_eq!(range[(2, 1)], Data::Empty);
}

#[test]
fn xlsx_writes_what_a_double_cannot_hold_as_text() {
    use calamine::Data;
    let schema = Arc::new(Schema::new(vec![
        Field::new("huge", DataType::Int64, false),
        Field::new("nan", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema,
        vec![
            Arc::new(Int64Array::from(vec![i64::MAX, 3])),
            Arc::new(Float64Array::from(vec![f64::NAN, 2.5])),
        ],
    )
    .unwrap();
    let range = read_xlsx(encode(Format::Xlsx, &options(), &batch), "Sheet1");
    assert_eq!(range[(1, 0)], Data::String(i64::MAX.to_string()));
    assert_eq!(range[(1, 1)], Data::String("NaN".to_string()));
    assert_eq!(range[(2, 0)], Data::Float(3.0));
    assert_eq!(range[(2, 1)], Data::Float(2.5));
}

// ---------------------------------------------------------------------------------------------
// SQLite

#[test]
fn sqlite_table_has_typed_columns_and_values() {
    let batch = typed_batch();
    let options = EncodeOptions {
        table_name: "my \"results\"".to_string(),
        ..options()
    };
    let (_file, connection) = open_sqlite(&encode(Format::Sqlite, &options, &batch));
    let declared: Vec<(String, String)> = connection
        .prepare("SELECT name, type FROM pragma_table_info('my \"results\"')")
        .unwrap()
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let declared: Vec<(&str, &str)> = declared
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        declared,
        [
            ("id", "INTEGER"),
            ("count", "INTEGER"),
            ("amount", "REAL"),
            ("big", "TEXT"),
            ("ratio", "REAL"),
            ("flag", "BOOLEAN"),
            ("day", "DATE"),
            ("at", "DATETIME"),
            ("at_utc", "DATETIME"),
            ("name", "TEXT"),
        ]
    );

    use rusqlite::types::Value as Sql;
    let rows: Vec<Vec<Sql>> = connection
        .prepare("SELECT * FROM \"my \"\"results\"\"\" ORDER BY rowid")
        .unwrap()
        .query_map([], |row| {
            (0..10).map(|column| row.get::<_, Sql>(column)).collect()
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let text = |value: &str| Sql::Text(value.to_string());
    assert_eq!(
        rows[0],
        [
            Sql::Integer(1),
            Sql::Integer(-7),
            Sql::Real(12345.67),
            text(BIG),
            Sql::Real(0.25),
            Sql::Integer(1),
            text("2024-01-02"),
            text("2024-01-02T03:04:05"),
            text("2024-01-02T03:04:05Z"),
            text(ZURICH_TOKYO),
        ]
    );
    assert_eq!(
        rows[1],
        [
            Sql::Integer(2),
            Sql::Null,
            Sql::Null,
            Sql::Null,
            Sql::Null,
            Sql::Integer(0),
            Sql::Null,
            text("2024-01-02T03:04:05.123456"),
            Sql::Null,
            Sql::Null,
        ]
    );
    assert_eq!(
        rows[2],
        [
            Sql::Integer(3),
            Sql::Integer(i64::from(i32::MAX)),
            Sql::Real(-0.05),
            text("0.0000000000"),
            Sql::Real(-1.5),
            Sql::Null,
            text("1999-12-31"),
            Sql::Null,
            text("2024-06-30T23:59:59.500Z"),
            text(AWKWARD),
        ]
    );
    // SQLite's own date functions read the stored text.
    let year: String = connection
        .query_row(
            "SELECT strftime('%Y', at_utc) FROM \"my \"\"results\"\"\" WHERE id = 3",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(year, "2024");
}

#[test]
fn sqlite_stores_nested_values_as_json_text() {
    let (_file, connection) = open_sqlite(&encode(Format::Sqlite, &options(), &nested_batch()));
    let (point, tags): (String, String) = connection
        .query_row("SELECT point, tags FROM results WHERE id = 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .unwrap();
    assert_eq!(point, r#"{"x":1,"label":"Zürich"}"#);
    assert_eq!(tags, "[1,2,null]");
    let label: String = connection
        .query_row(
            "SELECT json_extract(point, '$.label') FROM results WHERE id = 1",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert_eq!(label, "Zürich");
}

// ---------------------------------------------------------------------------------------------
// HTML, Markdown, text

fn small_batch() -> RecordBatch {
    let schema = Arc::new(Schema::new(vec![
        Field::new("city", DataType::Utf8, true),
        Field::new("n", DataType::Int64, true),
    ]));
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(StringArray::from(vec![
                Some(ZURICH_TOKYO),
                Some("<b>a|b</b>\tc\nd \\ e"),
                None,
            ])),
            Arc::new(Int64Array::from(vec![Some(1), None, Some(3)])),
        ],
    )
    .unwrap()
}

#[test]
fn html_is_an_escaped_table_with_a_caption() {
    let options = EncodeOptions {
        null_text: "∅".to_string(),
        ..options()
    };
    assert_eq!(
        encode_text(Format::Html, &options, &small_batch()),
        "<table>\n\
         <caption>results</caption>\n\
         <thead>\n<tr><th>city</th><th>n</th></tr>\n</thead>\n\
         <tbody>\n\
         <tr><td>Zürich – 東京</td><td>1</td></tr>\n\
         <tr><td>&lt;b&gt;a|b&lt;&#x2F;b&gt;\tc\nd \\ e</td><td>∅</td></tr>\n\
         <tr><td>∅</td><td>3</td></tr>\n\
         </tbody>\n</table>\n"
    );
}

#[test]
fn markdown_is_a_table_with_escaped_cells() {
    let options = EncodeOptions {
        header: false,
        ..options()
    };
    assert_eq!(
        encode_text(Format::Markdown, &options, &small_batch()),
        "| city | n |\n\
         | --- | --- |\n\
         | Zürich – 東京 | 1 |\n\
         | <b>a\\|b</b>\tc<br>d \\\\ e |  |\n\
         |  | 3 |\n"
    );
}

#[test]
fn text_is_tab_separated_with_a_header_line() {
    assert_eq!(
        encode_text(Format::Text, &options(), &small_batch()),
        "city\tn\n\
         Zürich – 東京\t1\n\
         <b>a|b</b>\\tc\\nd \\\\ e\t\n\
         \t3\n"
    );
    let crlf = EncodeOptions {
        line_ending: LineEnding::CrLf,
        header: false,
        ..options()
    };
    assert_eq!(
        encode_text(Format::Text, &crlf, &id_batch(1, 2)),
        "1\trow 1\r\n2\trow 2\r\n"
    );
}

#[test]
fn text_tables_write_nested_values_as_json() {
    let text = encode_text(Format::Text, &options(), &nested_batch());
    assert_eq!(
        text,
        "id\tpoint\ttags\n\
         1\t{\"x\":1,\"label\":\"Zürich\"}\t[1,2,null]\n\
         2\t{\"x\":null,\"label\":\"b\"}\t[]\n\
         3\t\t\n"
    );
}

// ---------------------------------------------------------------------------------------------
// Every format: zero rows and several batches

#[test]
fn zero_rows_still_make_a_valid_document_in_every_format() {
    let schema = typed_batch().schema();
    let empty = RecordBatch::new_empty(schema.clone());
    for batches in [vec![], vec![empty]] {
        let bytes = |format| encode_batches(format, &options(), schema.clone(), &batches);
        let text = |format| String::from_utf8(bytes(format)).unwrap();

        assert_eq!(
            text(Format::Csv),
            "id,count,amount,big,ratio,flag,day,at,at_utc,name\n"
        );
        assert_eq!(
            serde_json::from_str::<Value>(&text(Format::Json)).unwrap(),
            json!([])
        );
        assert_eq!(text(Format::NdJson), "");
        let (root, rows) = read_xml(&bytes(Format::Xml));
        assert_eq!((root.as_str(), rows.len()), ("results", 0));

        let (parquet_schema, parquet_batches, _) = read_parquet(bytes(Format::Parquet));
        assert_eq!(parquet_schema, schema);
        assert_eq!(
            parquet_batches
                .iter()
                .map(RecordBatch::num_rows)
                .sum::<usize>(),
            0
        );
        let (ipc_schema, ipc_batches) = read_ipc(bytes(Format::ArrowIpc));
        assert_eq!(ipc_schema, schema);
        assert_eq!(
            ipc_batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            0
        );

        let range = read_xlsx(bytes(Format::Xlsx), "Sheet1");
        assert_eq!(range.get_size(), (1, 10));
        assert_eq!(range[(0, 9)], calamine::Data::String("name".to_string()));

        let (_file, connection) = open_sqlite(&bytes(Format::Sqlite));
        let (rows, columns): (i64, i64) = connection
            .query_row(
                "SELECT (SELECT count(*) FROM results), (SELECT count(*) FROM pragma_table_info('results'))",
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .unwrap();
        assert_eq!((rows, columns), (0, 10));

        let html = text(Format::Html);
        assert!(
            html.contains(
                "<th>at_utc</th><th>name</th></tr>\n</thead>\n<tbody>\n</tbody>\n</table>\n"
            ),
            "{html}"
        );
        assert_eq!(
            text(Format::Markdown),
            "| id | count | amount | big | ratio | flag | day | at | at_utc | name |\n\
             | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n"
        );
        assert_eq!(
            text(Format::Text),
            "id\tcount\tamount\tbig\tratio\tflag\tday\tat\tat_utc\tname\n"
        );
    }
}

#[test]
fn rows_from_all_batches_appear_in_order_in_every_format() {
    let batches = [id_batch(0, 4), id_batch(4, 3), id_batch(7, 5)];
    let expected: Vec<i64> = (0..12).collect();
    for format in Format::ALL {
        let bytes = encode_batches(format, &options(), id_schema(), &batches);
        assert_eq!(read_ids(format, bytes), expected, "{format:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// cell_json and cell_text

#[test]
fn cell_json_gives_typed_values() {
    let batch = typed_batch();
    let cell =
        |column: usize, row: usize| cell_json(batch.column(column), row, &options()).unwrap();
    assert_eq!(cell(0, 0), json!(1));
    assert!(cell(0, 0).is_i64());
    assert_eq!(cell(1, 1), Value::Null);
    assert_eq!(cell(2, 0).as_f64(), Some(12345.67));
    assert_eq!(cell(2, 2).as_f64(), Some(-0.05));
    assert_eq!(cell(4, 2), json!(-1.5));
    assert_eq!(cell(5, 0), json!(true));
    assert_eq!(cell(6, 0), json!("2024-01-02"));
    assert_eq!(cell(8, 2), json!("2024-06-30T23:59:59.500Z"));
    assert_eq!(cell(9, 2), json!(AWKWARD));

    let nested = nested_batch();
    assert_eq!(
        cell_json(nested.column(1), 1, &options()).unwrap(),
        json!({"x": null, "label": "b"})
    );
    assert_eq!(
        cell_json(nested.column(2), 0, &options()).unwrap(),
        json!([1, 2, null])
    );
    assert_eq!(
        cell_json(nested.column(2), 2, &options()).unwrap(),
        Value::Null
    );

    let patterned = EncodeOptions {
        datetime_format: Some("%Y-%m-%d %H:%M:%S%.3f".to_string()),
        ..options()
    };
    assert_eq!(
        cell_json(batch.column(6), 0, &patterned).unwrap(),
        json!("2024-01-02 00:00:00.000")
    );
    assert!(cell_json(batch.column(0), 3, &options()).is_err());
}

#[test]
fn cell_text_gives_display_text_and_none_for_null() {
    let batch = typed_batch();
    let cell =
        |column: usize, row: usize| cell_text(batch.column(column), row, &options()).unwrap();
    assert_eq!(cell(0, 2).as_deref(), Some("3"));
    assert_eq!(cell(1, 1), None);
    assert_eq!(cell(2, 0).as_deref(), Some("12345.67"));
    assert_eq!(
        cell(3, 0).as_deref(),
        Some("12345678901234567890.0123456789")
    );
    assert_eq!(cell(5, 1).as_deref(), Some("false"));
    assert_eq!(cell(7, 1).as_deref(), Some("2024-01-02T03:04:05.123456"));
    assert_eq!(cell(9, 0).as_deref(), Some(ZURICH_TOKYO));
    assert_eq!(
        cell_text(nested_batch().column(1), 0, &options())
            .unwrap()
            .as_deref(),
        Some(r#"{"x":1,"label":"Zürich"}"#)
    );

    // A zone other than UTC prints with its offset; a pattern formats the local time.
    let paris = TimestampMillisecondArray::from(vec![
        datetime(2024, 1, 2, 3, 4, 5, 0)
            .and_utc()
            .timestamp_millis(),
    ])
    .with_timezone("+01:00");
    assert_eq!(
        cell_text(&paris, 0, &options()).unwrap().as_deref(),
        Some("2024-01-02T04:04:05+01:00")
    );
    let patterned = EncodeOptions {
        datetime_format: Some("%Y-%m-%d %H:%M %z".to_string()),
        ..options()
    };
    // `%z` needs a zone, so the pattern cannot format dates: rejected.
    assert!(matches!(
        cell_json(&paris, 0, &patterned),
        Err(EncodeError::Unsupported(_))
    ));
    let patterned = EncodeOptions {
        datetime_format: Some("%Y-%m-%d %H:%M".to_string()),
        ..options()
    };
    assert_eq!(
        cell_text(&paris, 0, &patterned).unwrap().as_deref(),
        Some("2024-01-02 04:04")
    );
}

/// Inside a runtime, CSV, NDJSON and JSON encode batches on several threads: the bytes are the
/// one-thread encoder's, batch order kept, for awkward text, nulls, empty batches and no batches.
#[test]
fn parallel_encoding_writes_the_one_thread_bytes_in_order() {
    let schema: SchemaRef = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let batches: Vec<RecordBatch> = (0..40i64)
        .map(|b| {
            let rows = if b % 9 == 4 { 0 } else { 50 + b as usize };
            let n: Vec<Option<i64>> = (0..rows as i64)
                .map(|i| (i % 11 != 3).then_some(b * 1000 + i))
                .collect();
            let s: Vec<Option<String>> = (0..rows)
                .map(|i| (i % 13 != 5).then(|| format!("b{b} \"q\",\nline\t{}é\\", i % 7)))
                .collect();
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(arrow::array::Int64Array::from(n)),
                    Arc::new(StringArray::from(s)),
                ],
            )
            .unwrap()
        })
        .collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    for format in [Format::Csv, Format::NdJson, Format::Json] {
        for options in [
            EncodeOptions::default(),
            EncodeOptions {
                header: false,
                delimiter: b'|',
                ..EncodeOptions::default()
            },
        ] {
            for some in [&batches[..], &batches[..1], &[]] {
                // No runtime here: the one-thread encoder.
                let one = encode_batches(format, &options, schema.clone(), some);
                let many = runtime.block_on(async {
                    let (format, options, schema) = (format, options.clone(), schema.clone());
                    let some = some.to_vec();
                    tokio::task::spawn_blocking(move || {
                        encode_batches(format, &options, schema, &some)
                    })
                    .await
                    .unwrap()
                });
                assert!(
                    one == many,
                    "{format:?}, {} batches:\n{}\n---\n{}",
                    some.len(),
                    String::from_utf8_lossy(&one),
                    String::from_utf8_lossy(&many)
                );
            }
        }
    }
}
