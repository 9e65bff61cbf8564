//! The sample tables polyquery serves by default: each vendor's own sample dataset, re-created.
//!
//! The data files under `fixtures/` (written by `fixtures/generate.py`, described in
//! `fixtures/README.md`) are embedded in the binary, so it runs from any directory. Each is parsed
//! against the explicit schema declared here and registered as a single-partition, single-batch
//! `MemTable`, so an unordered scan returns the rows in file order. Luminesce's `Testing*` tables
//! are not files but [`TestingTable`]s computing their rows on the fly.

use std::sync::Arc;

use arrow::compute::concat_batches;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::SessionContext;

use super::testing_provider::{TESTING_TABLES, TestingTable};

/// Which vendor's sample data a fixture table reproduces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SampleSet {
    /// Apache Kylin's `learn_kylin` project (the `KYLIN_*` snowflake).
    Kylin,
    /// FINBOURNE Luminesce's `Testing*` providers.
    Luminesce,
    /// Looker's `thelook` model and a corner of `system__activity`.
    Looker,
    /// Apache AsterixDB's TinySocial dataverse from the SQL++ primer.
    AsterixDb,
}

impl SampleSet {
    /// Every sample set, in the order their tables are registered.
    pub const ALL: [SampleSet; 4] = [
        SampleSet::Kylin,
        SampleSet::Luminesce,
        SampleSet::Looker,
        SampleSet::AsterixDb,
    ];

    /// The sample's name as the vendor calls it (Kylin project, Looker model, AsterixDB dataverse).
    pub fn vendor_name(self) -> &'static str {
        match self {
            SampleSet::Kylin => "learn_kylin",
            SampleSet::Luminesce => "Testing",
            SampleSet::Looker => "thelook",
            SampleSet::AsterixDb => "TinySocial",
        }
    }
}

/// A table registered in the catalog, with what dialects need to list and describe it.
#[derive(Debug, Clone)]
pub struct RegisteredTable {
    /// The table's name in the vendor's case, as registered in the default schema.
    pub name: String,
    /// The vendor sample it belongs to; `None` for tables that are not fixtures.
    pub sample: Option<SampleSet>,
    pub schema: SchemaRef,
    /// Rows a full scan returns, when known without scanning.
    pub row_count: Option<usize>,
    /// One line for catalog listings.
    pub description: String,
}

/// Why a fixture file could not become a table (a broken build, not a user error).
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("fixture table {table}: {source}")]
    Parse {
        table: &'static str,
        #[source]
        source: ArrowError,
    },
}

/// Registers every fixture table into `ctx` (default catalog/schema), returns them in a stable order.
///
/// Names keep the vendor's case (`KYLIN_SALES`, `Testing1K`, `order_items`, `GleambookUsers`).
pub async fn register_fixtures(ctx: &SessionContext) -> Result<Vec<RegisteredTable>> {
    let mut registered = Vec::new();
    for sample in SampleSet::ALL {
        for file in FIXTURE_FILES.iter().filter(|f| f.sample == sample) {
            registered.push(register_file(ctx, file)?);
        }
        if sample == SampleSet::Luminesce {
            for (name, rows) in TESTING_TABLES {
                registered.push(register_testing_table(ctx, name, rows)?);
            }
        }
    }
    Ok(registered)
}

fn register_file(ctx: &SessionContext, file: &FixtureFile) -> Result<RegisteredTable> {
    let schema = Arc::new((file.schema)());
    let batch = file.load(Arc::clone(&schema)).map_err(|source| {
        DataFusionError::External(Box::new(FixtureError::Parse {
            table: file.name,
            source,
        }))
    })?;
    let row_count = batch.num_rows();
    let table = MemTable::try_new(Arc::clone(&schema), vec![vec![batch]])?;
    ctx.register_table(TableReference::bare(file.name), Arc::new(table))?;
    Ok(RegisteredTable {
        name: file.name.to_owned(),
        sample: Some(file.sample),
        schema,
        row_count: Some(row_count),
        description: file.description.to_owned(),
    })
}

fn register_testing_table(
    ctx: &SessionContext,
    name: &'static str,
    rows: u64,
) -> Result<RegisteredTable> {
    let table = TestingTable::new(rows);
    let schema = table.schema_ref();
    ctx.register_table(TableReference::bare(name), Arc::new(table))?;
    Ok(RegisteredTable {
        name: name.to_owned(),
        sample: Some(SampleSet::Luminesce),
        schema,
        row_count: usize::try_from(rows).ok(),
        description: format!(
            "Luminesce test provider with {rows} generated rows; reading Takes500Ms costs 500 ms per row"
        ),
    })
}

/// One table shipped as a data file inside the binary.
struct FixtureFile {
    name: &'static str,
    sample: SampleSet,
    description: &'static str,
    schema: fn() -> Schema,
    data: FixtureData,
}

/// A fixture file's bytes and format: CSV with a header line, or one JSON object per line.
enum FixtureData {
    Csv(&'static [u8]),
    Ndjson(&'static [u8]),
}

impl FixtureFile {
    /// Parses the whole file into one batch, so scans keep file order under any repartitioning.
    fn load(&self, schema: SchemaRef) -> Result<RecordBatch, ArrowError> {
        let batches = match self.data {
            FixtureData::Csv(bytes) => arrow::csv::ReaderBuilder::new(Arc::clone(&schema))
                .with_header(true)
                .with_header_validation(true)
                .build(bytes)?
                .collect::<Result<Vec<_>, _>>()?,
            FixtureData::Ndjson(bytes) => arrow::json::ReaderBuilder::new(Arc::clone(&schema))
                .with_strict_mode(true)
                .build(bytes)?
                .collect::<Result<Vec<_>, _>>()?,
        };
        concat_batches(&schema, &batches)
    }
}

/// A schema whose columns are all nullable scalars, as the vendors' Hive/SQL tables declare them.
fn flat_schema(columns: &[(&str, DataType)]) -> Schema {
    Schema::new(
        columns
            .iter()
            .map(|(name, data_type)| Field::new(*name, data_type.clone(), true))
            .collect::<Vec<_>>(),
    )
}

/// Looker's and thelook's timestamps: wall-clock, no zone.
const LOOKER_TIMESTAMP: DataType = DataType::Timestamp(TimeUnit::Microsecond, None);
/// AsterixDB `datetime`: millisecond precision, no zone.
const ADM_DATETIME: DataType = DataType::Timestamp(TimeUnit::Millisecond, None);
/// Hive's bare `decimal` is `decimal(10,0)`.
const HIVE_DECIMAL: DataType = DataType::Decimal128(10, 0);

/// The bytes of a file under `fixtures/`, compiled into the binary, tagged with its format.
macro_rules! embedded {
    ($format:ident, $path:literal) => {
        FixtureData::$format(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/",
            $path
        )))
    };
}

const FIXTURE_FILES: &[FixtureFile] = &[
    FixtureFile {
        name: "KYLIN_SALES",
        sample: SampleSet::Kylin,
        description: "Sales order table, fact table of the learn_kylin cube",
        schema: || flat_schema(KYLIN_SALES),
        data: embedded!(Csv, "kylin/KYLIN_SALES.csv"),
    },
    FixtureFile {
        name: "KYLIN_ACCOUNT",
        sample: SampleSet::Kylin,
        description: "Buyer and seller accounts (KYLIN_SALES.BUYER_ID / SELLER_ID)",
        schema: || flat_schema(KYLIN_ACCOUNT),
        data: embedded!(Csv, "kylin/KYLIN_ACCOUNT.csv"),
    },
    FixtureFile {
        name: "KYLIN_COUNTRY",
        sample: SampleSet::Kylin,
        description: "Countries of accounts (KYLIN_ACCOUNT.ACCOUNT_COUNTRY)",
        schema: || flat_schema(KYLIN_COUNTRY),
        data: embedded!(Csv, "kylin/KYLIN_COUNTRY.csv"),
    },
    FixtureFile {
        name: "KYLIN_CAL_DT",
        sample: SampleSet::Kylin,
        description: "Date dimension table (KYLIN_SALES.PART_DT)",
        schema: || flat_schema(KYLIN_CAL_DT),
        data: embedded!(Csv, "kylin/KYLIN_CAL_DT.csv"),
    },
    FixtureFile {
        name: "KYLIN_CATEGORY_GROUPINGS",
        sample: SampleSet::Kylin,
        description: "Category dimension table (KYLIN_SALES.LEAF_CATEG_ID, LSTG_SITE_ID)",
        schema: || flat_schema(KYLIN_CATEGORY_GROUPINGS),
        data: embedded!(Csv, "kylin/KYLIN_CATEGORY_GROUPINGS.csv"),
    },
    FixtureFile {
        name: "order_items",
        sample: SampleSet::Looker,
        description: "thelook: one row per item of an order",
        schema: || flat_schema(LOOKER_ORDER_ITEMS),
        data: embedded!(Csv, "looker/order_items.csv"),
    },
    FixtureFile {
        name: "orders",
        sample: SampleSet::Looker,
        description: "thelook: orders and their fulfilment status",
        schema: || flat_schema(LOOKER_ORDERS),
        data: embedded!(Csv, "looker/orders.csv"),
    },
    FixtureFile {
        name: "users",
        sample: SampleSet::Looker,
        description: "thelook: customers, where they live and how they found the store",
        schema: || flat_schema(LOOKER_USERS),
        data: embedded!(Csv, "looker/users.csv"),
    },
    FixtureFile {
        name: "products",
        sample: SampleSet::Looker,
        description: "thelook: the product catalogue",
        schema: || flat_schema(LOOKER_PRODUCTS),
        data: embedded!(Csv, "looker/products.csv"),
    },
    FixtureFile {
        name: "inventory_items",
        sample: SampleSet::Looker,
        description: "thelook: stocked units, sold or not, with their product denormalised",
        schema: || flat_schema(LOOKER_INVENTORY_ITEMS),
        data: embedded!(Csv, "looker/inventory_items.csv"),
    },
    FixtureFile {
        name: "dashboard",
        sample: SampleSet::Looker,
        description: "system__activity: the instance's dashboards",
        schema: || flat_schema(LOOKER_DASHBOARD),
        data: embedded!(Csv, "looker/dashboard.csv"),
    },
    FixtureFile {
        name: "GleambookUsers",
        sample: SampleSet::AsterixDb,
        description: "TinySocial: Gleambook users with their friends and employment history",
        schema: gleambook_users_schema,
        data: embedded!(Ndjson, "asterixdb/GleambookUsers.ndjson"),
    },
    FixtureFile {
        name: "GleambookMessages",
        sample: SampleSet::AsterixDb,
        description: "TinySocial: messages Gleambook users posted",
        schema: gleambook_messages_schema,
        data: embedded!(Ndjson, "asterixdb/GleambookMessages.ndjson"),
    },
    FixtureFile {
        name: "ChirpUsers",
        sample: SampleSet::AsterixDb,
        description: "TinySocial: Chirp users",
        schema: || Schema::new(chirp_user_fields()),
        data: embedded!(Ndjson, "asterixdb/ChirpUsers.ndjson"),
    },
    FixtureFile {
        name: "ChirpMessages",
        sample: SampleSet::AsterixDb,
        description: "TinySocial: chirps, each carrying its sender as a nested user object",
        schema: chirp_messages_schema,
        data: embedded!(Ndjson, "asterixdb/ChirpMessages.ndjson"),
    },
];

// --- Apache Kylin learn_kylin (column names and Hive types of Kylin's sample_cube) -----------

const KYLIN_SALES: &[(&str, DataType)] = &[
    ("TRANS_ID", DataType::Int64),
    ("PART_DT", DataType::Date32),
    ("LSTG_FORMAT_NAME", DataType::Utf8),
    ("LEAF_CATEG_ID", DataType::Int64),
    ("LSTG_SITE_ID", DataType::Int32),
    ("SLR_SEGMENT_CD", DataType::Int16),
    ("PRICE", DataType::Decimal128(19, 4)),
    ("ITEM_COUNT", DataType::Int64),
    ("SELLER_ID", DataType::Int64),
    ("BUYER_ID", DataType::Int64),
    ("OPS_USER_ID", DataType::Utf8),
    ("OPS_REGION", DataType::Utf8),
];

const KYLIN_ACCOUNT: &[(&str, DataType)] = &[
    ("ACCOUNT_ID", DataType::Int64),
    ("ACCOUNT_BUYER_LEVEL", DataType::Int32),
    ("ACCOUNT_SELLER_LEVEL", DataType::Int32),
    ("ACCOUNT_COUNTRY", DataType::Utf8),
    ("ACCOUNT_CONTACT", DataType::Utf8),
];

const KYLIN_COUNTRY: &[(&str, DataType)] = &[
    ("COUNTRY", DataType::Utf8),
    ("LATITUDE", DataType::Float64),
    ("LONGITUDE", DataType::Float64),
    ("NAME", DataType::Utf8),
];

const KYLIN_CAL_DT: &[(&str, DataType)] = &[
    ("CAL_DT", DataType::Date32),
    ("YEAR_BEG_DT", DataType::Date32),
    ("QTR_BEG_DT", DataType::Date32),
    ("MONTH_BEG_DT", DataType::Date32),
    ("WEEK_BEG_DT", DataType::Date32),
    ("AGE_FOR_YEAR_ID", DataType::Int16),
    ("AGE_FOR_QTR_ID", DataType::Int16),
    ("AGE_FOR_MONTH_ID", DataType::Int16),
    ("AGE_FOR_WEEK_ID", DataType::Int16),
    ("AGE_FOR_DT_ID", DataType::Int16),
    ("AGE_FOR_RTL_YEAR_ID", DataType::Int16),
    ("AGE_FOR_RTL_QTR_ID", DataType::Int16),
    ("AGE_FOR_RTL_MONTH_ID", DataType::Int16),
    ("AGE_FOR_RTL_WEEK_ID", DataType::Int16),
    ("AGE_FOR_CS_WEEK_ID", DataType::Int16),
    ("DAY_OF_CAL_ID", DataType::Int32),
    ("DAY_OF_YEAR_ID", DataType::Int16),
    ("DAY_OF_QTR_ID", DataType::Int16),
    ("DAY_OF_MONTH_ID", DataType::Int16),
    ("DAY_OF_WEEK_ID", DataType::Int32),
    ("WEEK_OF_YEAR_ID", DataType::Int8),
    ("WEEK_OF_CAL_ID", DataType::Int32),
    ("MONTH_OF_QTR_ID", DataType::Int8),
    ("MONTH_OF_YEAR_ID", DataType::Int8),
    ("MONTH_OF_CAL_ID", DataType::Int16),
    ("QTR_OF_YEAR_ID", DataType::Int8),
    ("QTR_OF_CAL_ID", DataType::Int16),
    ("YEAR_OF_CAL_ID", DataType::Int16),
    ("YEAR_END_DT", DataType::Utf8),
    ("QTR_END_DT", DataType::Utf8),
    ("MONTH_END_DT", DataType::Utf8),
    ("WEEK_END_DT", DataType::Utf8),
    ("CAL_DT_NAME", DataType::Utf8),
    ("CAL_DT_DESC", DataType::Utf8),
    ("CAL_DT_SHORT_NAME", DataType::Utf8),
    ("YTD_YN_ID", DataType::Int8),
    ("QTD_YN_ID", DataType::Int8),
    ("MTD_YN_ID", DataType::Int8),
    ("WTD_YN_ID", DataType::Int8),
    ("SEASON_BEG_DT", DataType::Utf8),
    ("DAY_IN_YEAR_COUNT", DataType::Int16),
    ("DAY_IN_QTR_COUNT", DataType::Int8),
    ("DAY_IN_MONTH_COUNT", DataType::Int8),
    ("DAY_IN_WEEK_COUNT", DataType::Int8),
    ("RTL_YEAR_BEG_DT", DataType::Utf8),
    ("RTL_QTR_BEG_DT", DataType::Utf8),
    ("RTL_MONTH_BEG_DT", DataType::Utf8),
    ("RTL_WEEK_BEG_DT", DataType::Utf8),
    ("CS_WEEK_BEG_DT", DataType::Utf8),
    ("CAL_DATE", DataType::Utf8),
    ("DAY_OF_WEEK", DataType::Utf8),
    ("MONTH_ID", DataType::Utf8),
    ("PRD_DESC", DataType::Utf8),
    ("PRD_FLAG", DataType::Utf8),
    ("PRD_ID", DataType::Utf8),
    ("PRD_IND", DataType::Utf8),
    ("QTR_DESC", DataType::Utf8),
    ("QTR_ID", DataType::Utf8),
    ("QTR_IND", DataType::Utf8),
    ("RETAIL_WEEK", DataType::Utf8),
    ("RETAIL_YEAR", DataType::Utf8),
    ("RETAIL_START_DATE", DataType::Utf8),
    ("RETAIL_WK_END_DATE", DataType::Utf8),
    ("WEEK_IND", DataType::Utf8),
    ("WEEK_NUM_DESC", DataType::Utf8),
    ("WEEK_BEG_DATE", DataType::Utf8),
    ("WEEK_END_DATE", DataType::Utf8),
    ("WEEK_IN_YEAR_ID", DataType::Utf8),
    ("WEEK_ID", DataType::Utf8),
    ("WEEK_BEG_END_DESC_MDY", DataType::Utf8),
    ("WEEK_BEG_END_DESC_MD", DataType::Utf8),
    ("YEAR_ID", DataType::Utf8),
    ("YEAR_IND", DataType::Utf8),
    ("CAL_DT_MNS_1YEAR_DT", DataType::Utf8),
    ("CAL_DT_MNS_2YEAR_DT", DataType::Utf8),
    ("CAL_DT_MNS_1QTR_DT", DataType::Utf8),
    ("CAL_DT_MNS_2QTR_DT", DataType::Utf8),
    ("CAL_DT_MNS_1MONTH_DT", DataType::Utf8),
    ("CAL_DT_MNS_2MONTH_DT", DataType::Utf8),
    ("CAL_DT_MNS_1WEEK_DT", DataType::Utf8),
    ("CAL_DT_MNS_2WEEK_DT", DataType::Utf8),
    ("CURR_CAL_DT_MNS_1YEAR_YN_ID", DataType::Int8),
    ("CURR_CAL_DT_MNS_2YEAR_YN_ID", DataType::Int8),
    ("CURR_CAL_DT_MNS_1QTR_YN_ID", DataType::Int8),
    ("CURR_CAL_DT_MNS_2QTR_YN_ID", DataType::Int8),
    ("CURR_CAL_DT_MNS_1MONTH_YN_ID", DataType::Int8),
    ("CURR_CAL_DT_MNS_2MONTH_YN_ID", DataType::Int8),
    ("CURR_CAL_DT_MNS_1WEEK_YN_IND", DataType::Int8),
    ("CURR_CAL_DT_MNS_2WEEK_YN_IND", DataType::Int8),
    ("RTL_MONTH_OF_RTL_YEAR_ID", DataType::Utf8),
    ("RTL_QTR_OF_RTL_YEAR_ID", DataType::Int8),
    ("RTL_WEEK_OF_RTL_YEAR_ID", DataType::Int8),
    ("SEASON_OF_YEAR_ID", DataType::Int8),
    ("YTM_YN_ID", DataType::Int8),
    ("YTQ_YN_ID", DataType::Int8),
    ("YTW_YN_ID", DataType::Int8),
    ("KYLIN_CAL_DT_CRE_DATE", DataType::Utf8),
    ("KYLIN_CAL_DT_CRE_USER", DataType::Utf8),
    ("KYLIN_CAL_DT_UPD_DATE", DataType::Utf8),
    ("KYLIN_CAL_DT_UPD_USER", DataType::Utf8),
];

const KYLIN_CATEGORY_GROUPINGS: &[(&str, DataType)] = &[
    ("LEAF_CATEG_ID", DataType::Int64),
    ("LEAF_CATEG_NAME", DataType::Utf8),
    ("SITE_ID", DataType::Int32),
    ("CATEG_BUSN_MGR", DataType::Utf8),
    ("CATEG_BUSN_UNIT", DataType::Utf8),
    ("REGN_CATEG", DataType::Utf8),
    ("USER_DEFINED_FIELD1", DataType::Utf8),
    ("USER_DEFINED_FIELD3", DataType::Utf8),
    ("KYLIN_GROUPINGS_CRE_DATE", DataType::Utf8),
    ("KYLIN_GROUPINGS_UPD_DATE", DataType::Utf8),
    ("KYLIN_GROUPINGS_CRE_USER", DataType::Utf8),
    ("KYLIN_GROUPINGS_UPD_USER", DataType::Utf8),
    ("META_CATEG_ID", HIVE_DECIMAL),
    ("META_CATEG_NAME", DataType::Utf8),
    ("CATEG_LVL2_ID", HIVE_DECIMAL),
    ("CATEG_LVL3_ID", HIVE_DECIMAL),
    ("CATEG_LVL4_ID", HIVE_DECIMAL),
    ("CATEG_LVL5_ID", HIVE_DECIMAL),
    ("CATEG_LVL6_ID", HIVE_DECIMAL),
    ("CATEG_LVL7_ID", HIVE_DECIMAL),
    ("CATEG_LVL2_NAME", DataType::Utf8),
    ("CATEG_LVL3_NAME", DataType::Utf8),
    ("CATEG_LVL4_NAME", DataType::Utf8),
    ("CATEG_LVL5_NAME", DataType::Utf8),
    ("CATEG_LVL6_NAME", DataType::Utf8),
    ("CATEG_LVL7_NAME", DataType::Utf8),
    ("CATEG_FLAGS", HIVE_DECIMAL),
    ("ADULT_CATEG_YN", DataType::Utf8),
    ("DOMAIN_ID", HIVE_DECIMAL),
    ("USER_DEFINED_FIELD5", DataType::Utf8),
    ("VCS_ID", HIVE_DECIMAL),
    ("GCS_ID", HIVE_DECIMAL),
    ("MOVE_TO", HIVE_DECIMAL),
    ("SAP_CATEGORY_ID", HIVE_DECIMAL),
    ("SRC_ID", DataType::Int8),
    ("BSNS_VRTCL_NAME", DataType::Utf8),
];

// --- Looker thelook ---------------------------------------------------------------------------

const LOOKER_ORDER_ITEMS: &[(&str, DataType)] = &[
    ("id", DataType::Int64),
    ("order_id", DataType::Int64),
    ("user_id", DataType::Int64),
    ("product_id", DataType::Int64),
    ("inventory_item_id", DataType::Int64),
    ("status", DataType::Utf8),
    ("created_at", LOOKER_TIMESTAMP),
    ("shipped_at", LOOKER_TIMESTAMP),
    ("delivered_at", LOOKER_TIMESTAMP),
    ("returned_at", LOOKER_TIMESTAMP),
    ("sale_price", DataType::Float64),
];

const LOOKER_ORDERS: &[(&str, DataType)] = &[
    ("id", DataType::Int64),
    ("user_id", DataType::Int64),
    ("status", DataType::Utf8),
    ("gender", DataType::Utf8),
    ("created_at", LOOKER_TIMESTAMP),
    ("returned_at", LOOKER_TIMESTAMP),
    ("shipped_at", LOOKER_TIMESTAMP),
    ("delivered_at", LOOKER_TIMESTAMP),
    ("num_of_item", DataType::Int64),
];

const LOOKER_USERS: &[(&str, DataType)] = &[
    ("id", DataType::Int64),
    ("first_name", DataType::Utf8),
    ("last_name", DataType::Utf8),
    ("email", DataType::Utf8),
    ("age", DataType::Int64),
    ("gender", DataType::Utf8),
    ("city", DataType::Utf8),
    ("state", DataType::Utf8),
    ("zip", DataType::Utf8),
    ("country", DataType::Utf8),
    ("latitude", DataType::Float64),
    ("longitude", DataType::Float64),
    ("traffic_source", DataType::Utf8),
    ("created_at", LOOKER_TIMESTAMP),
];

const LOOKER_PRODUCTS: &[(&str, DataType)] = &[
    ("id", DataType::Int64),
    ("cost", DataType::Float64),
    ("category", DataType::Utf8),
    ("name", DataType::Utf8),
    ("brand", DataType::Utf8),
    ("retail_price", DataType::Float64),
    ("department", DataType::Utf8),
    ("sku", DataType::Utf8),
    ("distribution_center_id", DataType::Int64),
];

const LOOKER_INVENTORY_ITEMS: &[(&str, DataType)] = &[
    ("id", DataType::Int64),
    ("product_id", DataType::Int64),
    ("created_at", LOOKER_TIMESTAMP),
    ("sold_at", LOOKER_TIMESTAMP),
    ("cost", DataType::Float64),
    ("product_category", DataType::Utf8),
    ("product_name", DataType::Utf8),
    ("product_brand", DataType::Utf8),
    ("product_retail_price", DataType::Float64),
    ("product_department", DataType::Utf8),
    ("product_sku", DataType::Utf8),
    ("product_distribution_center_id", DataType::Int64),
];

const LOOKER_DASHBOARD: &[(&str, DataType)] = &[
    ("id", DataType::Int64),
    ("title", DataType::Utf8),
    ("description", DataType::Utf8),
    ("user_id", DataType::Int64),
    ("folder_id", DataType::Int64),
    ("created_at", LOOKER_TIMESTAMP),
    ("deleted_at", LOOKER_TIMESTAMP),
    ("view_count", DataType::Int64),
];

// --- AsterixDB TinySocial (field names and nesting of the SQL++ primer's types) ---------------

/// ADM `point`, kept as the object form `{x, y}`.
fn point_type() -> DataType {
    DataType::Struct(Fields::from(vec![
        Field::new("x", DataType::Float64, false),
        Field::new("y", DataType::Float64, false),
    ]))
}

/// A list of `item` elements (ADM ordered `[...]` and unordered `{{...}}` lists alike).
fn list_of(item: DataType) -> DataType {
    DataType::List(Arc::new(Field::new_list_field(item, true)))
}

fn gleambook_users_schema() -> Schema {
    let employment = DataType::Struct(Fields::from(vec![
        Field::new("organizationName", DataType::Utf8, false),
        Field::new("startDate", DataType::Date32, false),
        Field::new("endDate", DataType::Date32, true),
    ]));
    Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("alias", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("userSince", ADM_DATETIME, false),
        Field::new("friendIds", list_of(DataType::Int64), false),
        Field::new("employment", list_of(employment), false),
        Field::new("nickname", DataType::Utf8, true),
    ])
}

fn gleambook_messages_schema() -> Schema {
    Schema::new(vec![
        Field::new("messageId", DataType::Int64, false),
        Field::new("authorId", DataType::Int64, false),
        Field::new("inResponseTo", DataType::Int64, true),
        Field::new("senderLocation", point_type(), true),
        Field::new("message", DataType::Utf8, false),
    ])
}

fn chirp_user_fields() -> Fields {
    Fields::from(vec![
        Field::new("screenName", DataType::Utf8, false),
        Field::new("lang", DataType::Utf8, false),
        Field::new("friendsCount", DataType::Int64, false),
        Field::new("statusesCount", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("followersCount", DataType::Int64, false),
    ])
}

fn chirp_messages_schema() -> Schema {
    Schema::new(vec![
        Field::new("chirpId", DataType::Utf8, false),
        Field::new("user", DataType::Struct(chirp_user_fields()), false),
        Field::new("senderLocation", point_type(), true),
        Field::new("sendTime", ADM_DATETIME, false),
        Field::new("referredTopics", list_of(DataType::Utf8), false),
        Field::new("messageText", DataType::Utf8, false),
    ])
}
