//! `Drive.SaveAs`: the direct provider that writes table variables to Drive files.
//!
//! ```sql
//! @x = select [Int], Str from Testing1K where [Int] < 4;
//! @saved = use Drive.SaveAs with @x
//! --path=/reports
//! --fileNames=small
//! --type=Csv
//! enduse;
//! select * from @saved
//! ```
//!
//! Each table variable named after `with` is written to one file (`--fileNames`, one a line or
//! separated by commas, in the same order) in the folder `--path`, as `--type` (`Csv`, `Excel`,
//! `SqLite`, `Json`; `Csv` by default). A name without an extension gets the type's. The
//! engine writes the files before the script's answer runs, as steps of the same job (its worker,
//! timeout and cancel), replacing files that exist; `--ignoreOnZeroRows` writes no file for a
//! variable without rows. The call's own table has a row per variable: `VariableName`,
//! `FileName` (its Drive path), `RowCount` (rows written, told by the engine through a parameter)
//! and `Skipped`. `{@@name}` in an option is the value of a scalar variable named after `with`,
//! when that variable is a literal (`@@name = select 'text'`); any other is refused, since its
//! value is known only once the script runs.

use std::collections::HashMap;
use std::path::PathBuf;

use sqlparser::ast::{Expr, Ident, Query, SelectItem, SetExpr, Statement, Value};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;

use super::script::{DirectCall, syntax, table_variable, unsupported, with_variables};
use crate::query::EngineError;

/// The provider's name.
pub const DRIVE_SAVE_AS: &str = "Drive.SaveAs";

/// The most files one call may write.
const MAX_FILES: usize = 100;

/// How `Drive.SaveAs` is called: its `CustomSyntax` in `Sys.Registration`, in Luminesce's layout
/// (lumipy reads the options off the lines holding `│`).
pub const SYNTAX: &str = "Of the form:

use Drive.SaveAs with @table1[, @table2, …][, @@scalar, …]
  <OPTIONS *>
enduse;

`@@variables` are literal scalar values usable within the options via simple substitution, e.g.: `--fileNames=abc{@@var1}123`

<OPTIONS>:

_______________________________________________________________________________________________________________________
 type             │ The file types to create - also controls file extensions if not specified [Csv, Excel, SqLite,
                  │   Json, Default: Csv]
 ignoreOnZeroRows │ Flag to say, if a file would have zero rows, do not write it at all. [Boolean]
 fileNames        │ *Mandatory* File names (without a path).  One per table of data is required. [String]
 path             │ *Mandatory* The location to save this within the target file store. [String]
";

/// The description in `Sys.Registration`.
pub const DESCRIPTION: &str = "Used to write query results to Drive in a variety of formats";

/// One file a script writes.
#[derive(Clone, Debug)]
pub struct DriveSave {
    /// Every table variable defined before the call, as CTEs, then `SELECT * FROM "@x"`.
    pub query: Box<Query>,
    /// The file, relative to Drive's root.
    pub path: PathBuf,
    /// The encoder's format name.
    pub format: &'static str,
    pub skip_if_empty: bool,
    /// The named parameter the engine sets to the rows written.
    pub rows_param: String,
}

/// A file type of `--type`: (Luminesce's name, encoder format, extension).
const TYPES: [(&str, &str, &str); 4] = [
    ("Csv", "csv", "csv"),
    ("Excel", "xlsx", "xlsx"),
    ("SqLite", "sqlite", "sqlite"),
    ("Json", "json", "json"),
];

/// The files a `Drive.SaveAs` call writes and the query of its own table. `tables` are the
/// script's table variables so far (lower-case names), `scalars` its scalar variables;
/// `written_before` counts the files earlier calls write (their parameters come first).
pub fn compile(
    call: &DirectCall,
    tables: &[(String, Box<Query>)],
    scalars: &HashMap<String, Box<Query>>,
    written_before: usize,
) -> Result<(Vec<DriveSave>, Box<Query>), EngineError> {
    let (variables, literals) = with_list(call.header, tables, scalars)?;
    let mut folder = None;
    let mut names = None;
    let mut kind = TYPES[0];
    let mut skip_if_empty = false;
    for (option, value) in &call.options {
        let value = substitute(value, &literals)?;
        match option.to_ascii_lowercase().as_str() {
            "path" => folder = Some(value),
            "filenames" => names = Some(value),
            "type" => {
                kind = TYPES
                    .into_iter()
                    .find(|(name, ..)| name.eq_ignore_ascii_case(value.trim()))
                    .ok_or_else(|| {
                        syntax(format!(
                            "{DRIVE_SAVE_AS} --type must be one of Csv, Excel, SqLite, Json, not '{value}'"
                        ))
                    })?;
            }
            "ignoreonzerorows" => skip_if_empty = flag(&value)?,
            "combinetoone" => {
                return Err(unsupported(format!(
                    "{DRIVE_SAVE_AS} --combineToOne is not served here: write one file per table variable"
                )));
            }
            other => {
                return Err(syntax(format!(
                    "{DRIVE_SAVE_AS} has no option --{other}; it takes --path, --fileNames, --type and --ignoreOnZeroRows"
                )));
            }
        }
    }
    if !call.body.trim().is_empty() {
        return Err(syntax(format!("{DRIVE_SAVE_AS} takes no ---- body")));
    }
    let folder = folder
        .filter(|f| !f.trim().is_empty())
        .ok_or_else(|| syntax(format!("{DRIVE_SAVE_AS} needs --path=<a Drive folder>")))?;
    let names: Vec<String> = names
        .unwrap_or_default()
        .split(['\n', ','])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_string)
        .collect();
    if names.len() != variables.len() {
        return Err(syntax(format!(
            "{DRIVE_SAVE_AS} needs one --fileNames entry per table variable: {} for {}",
            names.len(),
            variables.len()
        )));
    }
    let (_, format, extension) = kind;
    let mut saves = Vec::with_capacity(variables.len());
    let mut rows = Vec::with_capacity(variables.len());
    for (n, (variable, name)) in variables.iter().zip(&names).enumerate() {
        if name.contains(['/', '\\']) {
            return Err(syntax(format!(
                "{DRIVE_SAVE_AS} --fileNames are names without a path: '{name}'"
            )));
        }
        let requested = format!("{}/{name}", folder.trim().trim_end_matches(['/', '\\']));
        let (path, shown) = super::drive::file(&requested, |clean| {
            if clean.extension().is_none() {
                clean.set_extension(extension);
            }
        })
        .map_err(|why| syntax(format!("the Drive file '{requested}' {why}")))?;
        let rows_param = format!("pq_saved_rows_{}", written_before + n);
        rows.push(row(variable, &shown, &rows_param, skip_if_empty));
        saves.push(DriveSave {
            query: saved_rows(variable, tables)?,
            path,
            format,
            skip_if_empty,
            rows_param,
        });
    }
    Ok((saves, parse(&table(&rows))?))
}

/// `with @a, @b, @@s`: the table variables to save (as written), and the literal values of the
/// scalar variables named (lower-case name → text).
fn with_list(
    header: &str,
    tables: &[(String, Box<Query>)],
    scalars: &HashMap<String, Box<Query>>,
) -> Result<(Vec<String>, HashMap<String, String>), EngineError> {
    let list = header
        .get(..4)
        .filter(|w| w.eq_ignore_ascii_case("with"))
        .and_then(|_| header.get(4..))
        .filter(|rest| rest.starts_with(char::is_whitespace))
        .ok_or_else(|| {
            syntax(format!(
                "{DRIVE_SAVE_AS} needs the table variables to write: use {DRIVE_SAVE_AS} with @x … enduse"
            ))
        })?;
    let mut variables = Vec::new();
    let mut literals = HashMap::new();
    for item in list.split(',').map(str::trim) {
        if let Some(name) = item.strip_prefix("@@") {
            let key = name.to_lowercase();
            let query = scalars.get(&key).ok_or_else(|| {
                syntax(format!(
                    "the scalar variable @@{name} is not defined before it is used"
                ))
            })?;
            if let Some(text) = literal(query) {
                literals.insert(key, text);
            }
        } else if let Some(name) = item.strip_prefix('@') {
            let key = name.to_lowercase();
            if !tables.iter().any(|(n, _)| *n == key) {
                return Err(syntax(format!(
                    "the table variable @{name} is not defined before {DRIVE_SAVE_AS} uses it"
                )));
            }
            variables.push(name.to_string());
        } else {
            return Err(syntax(format!(
                "{DRIVE_SAVE_AS} writes @table variables (and reads @@scalar ones): '{item}' is neither"
            )));
        }
    }
    if variables.is_empty() {
        return Err(syntax(format!(
            "{DRIVE_SAVE_AS} needs at least one @table variable to write"
        )));
    }
    if variables.len() > MAX_FILES {
        return Err(syntax(format!(
            "{DRIVE_SAVE_AS} writes at most {MAX_FILES} files in one call"
        )));
    }
    Ok((variables, literals))
}

/// The text of a scalar variable that is a literal: `select 'text'` or `select 12`.
fn literal(query: &Query) -> Option<String> {
    let SetExpr::Select(select) = query.body.as_ref() else {
        return None;
    };
    if !select.from.is_empty() || query.with.is_some() || select.selection.is_some() {
        return None;
    }
    let [
        SelectItem::UnnamedExpr(Expr::Value(v))
        | SelectItem::ExprWithAlias {
            expr: Expr::Value(v),
            ..
        },
    ] = select.projection.as_slice()
    else {
        return None;
    };
    match &v.value {
        Value::SingleQuotedString(s) => Some(s.clone()),
        Value::Number(n, _) => Some(n.clone()),
        _ => None,
    }
}

/// An option's value with each `{@@name}` replaced by its literal.
fn substitute(value: &str, literals: &HashMap<String, String>) -> Result<String, EngineError> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("{@@") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 3..];
        let end = after
            .find('}')
            .ok_or_else(|| syntax(format!("'{{@@' without a closing '}}' in '{value}'")))?;
        let name = &after[..end];
        let text = literals.get(&name.to_lowercase()).ok_or_else(|| {
            unsupported(format!(
                "{{@@{name}}} in a {DRIVE_SAVE_AS} option needs @@{name} named after 'with' and set to a literal (select 'text'); its value is otherwise known only when the script runs"
            ))
        })?;
        out.push_str(text);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

fn flag(value: &str) -> Result<bool, EngineError> {
    match value.trim() {
        "" => Ok(true),
        v if v.eq_ignore_ascii_case("true") => Ok(true),
        v if v.eq_ignore_ascii_case("false") => Ok(false),
        v => Err(syntax(format!(
            "{DRIVE_SAVE_AS} --ignoreOnZeroRows is a flag (true or false), not '{v}'"
        ))),
    }
}

/// One row of the call's table, `(…)`, as SQL made of rendered literals only.
fn row(variable: &str, shown: &str, rows_param: &str, skip_if_empty: bool) -> String {
    let text = |s: &str| Value::SingleQuotedString(s.to_string()).to_string();
    let rows = format!("CAST(${rows_param} AS INT)");
    let skipped = if skip_if_empty {
        format!("{rows} = 0")
    } else {
        "false".to_string()
    };
    format!(
        "({}, {}, {rows}, {skipped})",
        text(&format!("@{variable}")),
        text(shown),
    )
}

/// The call's table: its rows in the order of the variables (a `VALUES` list keeps its order).
fn table(rows: &[String]) -> String {
    let name = |s: &str| Ident::with_quote('"', s).to_string();
    format!(
        "SELECT * FROM (VALUES {}) AS {}({}, {}, {}, {})",
        rows.join(", "),
        name("saved"),
        name("VariableName"),
        name("FileName"),
        name("RowCount"),
        name("Skipped"),
    )
}

/// `SELECT * FROM "@x"` with the table variables defined so far in front.
fn saved_rows(variable: &str, tables: &[(String, Box<Query>)]) -> Result<Box<Query>, EngineError> {
    let from = table_variable(&variable.to_lowercase()).to_string();
    let mut query = parse(&format!("SELECT * FROM {from}"))?;
    with_variables(&mut query, tables.to_vec());
    Ok(query)
}

fn parse(text: &str) -> Result<Box<Query>, EngineError> {
    let statement = Parser::parse_sql(&SQLiteDialect {}, text)
        .map_err(|e| syntax(e.to_string()))?
        .pop();
    match statement {
        Some(Statement::Query(query)) => Ok(query),
        _ => Err(syntax("a Drive.SaveAs table could not be built")),
    }
}
