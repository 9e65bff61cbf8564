//! Reshaping a finished result: select (aggregates included), filter, group, sort and page, expressed
//! as one SQL query over the stored result. Every client-given piece is parsed on its own first, so no
//! piece can reach outside its clause.

use datafusion::arrow::datatypes::Schema;
use sqlparser::ast::{Expr, Ident, SelectItem, Statement};
use sqlparser::dialect::GenericDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::Token;

use super::resolve::{Fold, NameSet, resolve};
use crate::query::{EngineError, ErrorKind};

/// The table name a stored result is queried under.
pub const RESULT_TABLE: &str = "result";

/// A column named by a client: by name, or by 1-based position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnRef {
    Name(String),
    Index(usize),
}

/// One sort key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SortKey {
    pub column: ColumnRef,
    pub descending: bool,
}

/// How to reshape a result. The default leaves it as it is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reshape {
    /// A select list, e.g. `Str, count(*) as n`.
    pub select: Option<String>,
    /// A SQL boolean expression over the result's columns.
    pub filter: Vec<String>,
    /// Group keys: expressions or 1-based positions of the select list.
    pub group_by: Option<String>,
    pub sort: Vec<SortKey>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

impl Reshape {
    pub fn is_identity(&self) -> bool {
        *self == Reshape::default()
    }

    /// Parses `Str, -Int, 2`: names or 1-based indexes, `-` first for descending.
    pub fn parse_sort(text: &str) -> Result<Vec<SortKey>, EngineError> {
        text.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(|key| {
                let (descending, name) = match key.strip_prefix('-') {
                    Some(rest) => (true, rest.trim()),
                    None => (false, key.strip_prefix('+').unwrap_or(key).trim()),
                };
                let column = match name.parse::<usize>() {
                    Ok(0) => {
                        return Err(EngineError::new(
                            ErrorKind::Syntax,
                            "sort positions start at 1",
                        ));
                    }
                    Ok(i) => ColumnRef::Index(i),
                    Err(_) => ColumnRef::Name(
                        name.trim_matches(|c| c == '[' || c == ']' || c == '"')
                            .to_string(),
                    ),
                };
                Ok(SortKey { column, descending })
            })
            .collect()
    }

    /// The reshaping query over a result with `schema`, identifiers resolved against its columns.
    pub fn to_sql(&self, schema: &Schema) -> Result<String, EngineError> {
        let dialect = &GenericDialect {};
        let projection = match &self.select {
            Some(s) => whole(dialect, s, "select", |p| p.parse_projection())?,
            None => vec![SelectItem::Wildcard(Default::default())],
        };
        let projection: Vec<String> = projection.iter().map(ToString::to_string).collect();
        let mut sql = format!(
            "SELECT {} FROM {}",
            projection.join(", "),
            Ident::with_quote('"', RESULT_TABLE)
        );
        let filters: Vec<Expr> = self
            .filter
            .iter()
            .map(|f| whole(dialect, f, "filter", |p| p.parse_expr()))
            .collect::<Result<_, _>>()?;
        if !filters.is_empty() {
            let conj: Vec<String> = filters.iter().map(|f| format!("({f})")).collect();
            sql.push_str(&format!(" WHERE {}", conj.join(" AND ")));
        }
        if let Some(g) = &self.group_by {
            let keys = whole(dialect, g, "groupBy", |p| {
                p.parse_comma_separated(|p| p.parse_expr())
            })?;
            let keys: Vec<String> = keys.iter().map(ToString::to_string).collect();
            sql.push_str(&format!(" GROUP BY {}", keys.join(", ")));
        }
        if !self.sort.is_empty() {
            let keys: Vec<String> = self
                .sort
                .iter()
                .map(|k| {
                    let column = match &k.column {
                        ColumnRef::Name(n) => Ident::with_quote('"', n).to_string(),
                        ColumnRef::Index(i) => i.to_string(),
                    };
                    format!("{column} {}", if k.descending { "DESC" } else { "ASC" })
                })
                .collect();
            sql.push_str(&format!(" ORDER BY {}", keys.join(", ")));
        }
        if let Some(limit) = self.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        if let Some(offset) = self.offset.filter(|&o| o > 0) {
            sql.push_str(&format!(" OFFSET {offset}"));
        }
        let mut statement: Statement = super::parse_query(&sql, dialect)?;
        let mut names = NameSet::default();
        names.add_table(RESULT_TABLE);
        for field in schema.fields() {
            names.add_column(field.name());
        }
        resolve(&mut statement, &names, Fold::Preserve);
        Ok(statement.to_string())
    }
}

/// Parses `text` with `parse`, which must consume all of it, within the limits of [`super::guard`].
fn whole<T: sqlparser::ast::Visit>(
    dialect: &'static GenericDialect,
    text: &str,
    what: &str,
    parse: impl FnOnce(&mut Parser) -> Result<T, sqlparser::parser::ParserError>,
) -> Result<T, EngineError> {
    super::guard::parse_with(dialect, text, |parser| {
        let mut parser = parser.try_with_sql(text)?;
        let value = parse(&mut parser)?;
        match parser.peek_token().token {
            Token::EOF => Ok(value),
            t => Err(sqlparser::parser::ParserError::ParserError(format!(
                "unexpected '{t}' after the end"
            ))),
        }
    })
    .map_err(|e| {
        EngineError::new(
            ErrorKind::Syntax,
            format!("bad {what} '{text}': {}", e.message()),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field};

    fn schema() -> Schema {
        Schema::new(vec![
            Field::new("Int", DataType::Int64, false),
            Field::new("Str", DataType::Utf8, true),
        ])
    }

    #[test]
    fn builds_one_query_with_resolved_names() {
        let r = Reshape {
            select: Some("str, count(*) as n".into()),
            filter: vec!["int > 3".into()],
            group_by: Some("1".into()),
            sort: Reshape::parse_sort("-n").unwrap(),
            limit: Some(10),
            offset: Some(20),
        };
        assert_eq!(
            r.to_sql(&schema()).unwrap(),
            r#"SELECT "Str", count(*) AS "n" FROM "result" WHERE ("Int" > 3) GROUP BY 1 ORDER BY "n" DESC LIMIT 10 OFFSET 20"#
        );
    }

    #[test]
    fn a_piece_cannot_escape_its_clause() {
        let r = Reshape {
            filter: vec!["1=1; drop table x".into()],
            ..Default::default()
        };
        assert_eq!(r.to_sql(&schema()).unwrap_err().kind, ErrorKind::Syntax);
        let r = Reshape {
            select: Some("* from other --".into()),
            ..Default::default()
        };
        assert_eq!(r.to_sql(&schema()).unwrap_err().kind, ErrorKind::Syntax);
    }

    #[test]
    fn sort_keys_take_names_indexes_and_descending() {
        assert_eq!(
            Reshape::parse_sort("Str, -2,[Int]").unwrap(),
            vec![
                SortKey {
                    column: ColumnRef::Name("Str".into()),
                    descending: false
                },
                SortKey {
                    column: ColumnRef::Index(2),
                    descending: true
                },
                SortKey {
                    column: ColumnRef::Name("Int".into()),
                    descending: false
                },
            ]
        );
        assert!(Reshape::parse_sort("0").is_err());
    }
}
