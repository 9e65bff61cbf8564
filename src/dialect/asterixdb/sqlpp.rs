//! SQL++ (AsterixDB's query language) into the engine's SQL, on sqlparser's tokens and AST.
//!
//! What is translated: `SELECT VALUE e`; `FROM … AS v SELECT …`; array literals and `range(a, b)`
//! (inclusive) as FROM sources; unnamed projections named `$1`, `$2`, …; `SELECT *` answered as
//! each row wrapped under its source's alias; `USE dv;` and `dv.Dataset` names; `?`, `$1` and
//! `$name` parameters; `"text"` as a string literal (backticks quote identifiers). Anything else
//! either passes through unchanged (plain SQL) or is refused with a syntax or compilation error,
//! never answered wrongly.

use std::ops::ControlFlow;

use crate::sql::guard::Refused;
use sqlparser::ast::{
    AccessExpr, Expr, FunctionArg, FunctionArgExpr, FunctionArguments, GroupByExpr, Ident,
    ObjectName, ObjectNamePart, Query, SelectFlavor, SelectItem, SelectItemQualifiedWildcardKind,
    SetExpr, Statement, TableAlias, TableFactor, Value, VisitMut, WildcardAdditionalOptions,
    visit_expressions_mut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::keywords::Keyword;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Word};

use super::errors::AsxError;
use crate::exec::Catalog;

/// Dataverses the fixtures live in; a name qualified with one of these is the bare dataset name.
pub const DATAVERSES: [&str; 2] = ["TinySocial", "Default"];

/// How a result row is printed as a SQL++ value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowShape {
    /// An object of the row's columns.
    Object,
    /// `SELECT VALUE`: the single column's value itself.
    Value,
    /// `SELECT VALUE v` of a dataset variable: the dataset's record itself.
    Record,
    /// `SELECT *` over one dataset: `{ "<alias>": { …columns… } }`.
    Wrapped(String),
    /// `SELECT *` over several sources: one field per variable, datasets' records as objects.
    Sources,
}

impl RowShape {
    /// The stored form, read back when the result is fetched later.
    pub fn tag(&self) -> String {
        match self {
            RowShape::Object => "object".into(),
            RowShape::Value => "value".into(),
            RowShape::Record => "record".into(),
            RowShape::Sources => "sources".into(),
            RowShape::Wrapped(alias) => format!("wrap:{alias}"),
        }
    }

    pub fn from_tag(tag: &str) -> RowShape {
        match tag {
            "value" => RowShape::Value,
            "record" => RowShape::Record,
            "sources" => RowShape::Sources,
            t => match t.strip_prefix("wrap:") {
                Some(alias) => RowShape::Wrapped(alias.to_string()),
                None => RowShape::Object,
            },
        }
    }
}

/// The statement a request runs, in the engine's SQL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Translation {
    pub exec_sql: String,
    pub shape: RowShape,
    /// The query orders its rows (`resultSetOrdered`).
    pub ordered: bool,
    /// The query's parameters, as `statementParameters` lists them: positions, then names.
    pub parameters: Vec<serde_json::Value>,
}

impl Translation {
    /// A request of statements that answer nothing: no rows.
    fn nothing() -> Translation {
        Translation {
            exec_sql: r#"SELECT NULL AS "$1" WHERE false"#.to_string(),
            shape: RowShape::Value,
            ordered: false,
            parameters: Vec::new(),
        }
    }
}

/// What the translator is told about the request.
#[derive(Clone, Copy, Debug, Default)]
pub struct Rules<'a> {
    pub asynchronous: bool,
    pub readonly: bool,
    pub multi_statement: bool,
    pub dataverse: Option<&'a str>,
    /// The datasets there are; a FROM name outside it is refused at once, as AsterixDB's compiler
    /// does. `None` skips the check.
    pub catalog: Option<&'a Catalog>,
}

/// Translates one request's statements; exactly one of them may be a query.
pub fn translate(text: &str, rules: Rules<'_>) -> Result<Translation, AsxError> {
    crate::sql::guard::check_length(text).map_err(|e| AsxError::syntax(&e.message()))?;
    let dialect = GenericDialect {};
    let lexed = blank_line_comments(text);
    let tokens = Tokenizer::new(&dialect, &lexed)
        .tokenize_with_location()
        .map_err(|e| AsxError::syntax(&syntax_text(text, &e.to_string())))?;
    let tokens = decode_escapes(tokens).map_err(|e| AsxError::syntax(&e))?;
    let tokens = statement_forms(tokens)?;
    let statements = split_statements(&tokens);
    if statements.len() > 1 && !rules.multi_statement {
        return Err(AsxError::multiple_statements());
    }
    for statement in &statements {
        if let Some(kind) = modifying_kind(statement) {
            let at = statement
                .first()
                .map_or(Location::new(0, 0), |t| t.span.start);
            // The read-only refusal is worded as the vendor's page shows it, without a place.
            return Err(if rules.asynchronous {
                AsxError::async_not_supported(&kind).at(at)
            } else if rules.readonly {
                AsxError::read_only(&kind)
            } else {
                AsxError::compilation(&format!(
                    "polyquery runs queries only, not {kind} statements"
                ))
                .at(at)
            });
        }
    }
    let (tokens, facts) = rewrite_tokens(tokens);
    let (tokens, bindings) = super::bindings::take_bindings(tokens)?;
    let parsed = crate::sql::guard::parse_with(&GenericDialect {}, text, |parser| {
        parser.with_tokens_with_locations(tokens).parse_statements()
    })
    .map_err(|e| match e {
        Refused::Syntax(e) => AsxError::syntax(&syntax_text(text, &e.to_string())),
        Refused::Limit(message) => AsxError::syntax(&message),
    })?;
    let mut dataverse = rules.dataverse.map(str::to_string);
    let mut queries = Vec::new();
    for statement in parsed {
        match statement {
            Statement::Use(use_) => dataverse = Some(use_name(&use_.to_string())),
            Statement::Query(query) => queries.push(query),
            Statement::Set(_) => {}
            other => {
                return Err(AsxError::compilation(&format!(
                    "polyquery runs queries only, not {}",
                    crate::sql::statement_kind(&other)
                )));
            }
        }
    }
    if queries.len() > 1 && rules.asynchronous {
        return Err(AsxError::async_multiple());
    }
    let mut query = match (queries.pop(), queries.is_empty()) {
        (Some(q), true) => q,
        // Statements that answer nothing (`USE`, `SET`, dataverse DDL, comments only).
        (None, _) => return Ok(Translation::nothing()),
        (Some(_), false) => {
            return Err(AsxError::compilation(
                "polyquery runs one query per request",
            ));
        }
    };
    if !bindings.is_empty() {
        super::bindings::substitute(&mut query, bindings)?;
    }
    let sources = Sources {
        dataverse: dataverse.as_deref(),
        catalog: rules.catalog,
        ctes: query
            .with
            .as_ref()
            .map(|w| {
                w.cte_tables
                    .iter()
                    .map(|c| c.alias.name.value.clone())
                    .collect()
            })
            .unwrap_or_default(),
    };
    let shape = rewrite_query(&mut query, &facts, &sources)?;
    super::builtins::planned_type_checks(&mut query)?;
    let ordered = query.order_by.is_some();
    let parameters = parameters(&query);
    Ok(Translation {
        exec_sql: Statement::Query(query).to_string(),
        shape,
        ordered,
        parameters,
    })
}

/// `USE TinySocial` → `TinySocial`.
fn use_name(text: &str) -> String {
    text.split_whitespace()
        .last()
        .unwrap_or("")
        .trim_matches(|c| c == '`' || c == '"')
        .to_string()
}

/// The tokens of each statement (without the `;`), empty statements dropped.
fn split_statements(tokens: &[TokenWithSpan]) -> Vec<Vec<&TokenWithSpan>> {
    let mut statements = Vec::new();
    let mut current = Vec::new();
    for t in tokens {
        match &t.token {
            Token::SemiColon => statements.push(std::mem::take(&mut current)),
            Token::Whitespace(_) => {}
            _ => current.push(t),
        }
    }
    statements.push(current);
    statements.retain(|s| !s.is_empty());
    statements
}

/// `//` line comments (SQL++ has them beside `--` and `/* */`) blanked out, outside strings and
/// quoted names; every other byte keeps its place, so positions in errors stay right.
fn blank_line_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut quote: Option<char> = None;
    let mut block = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, block, c) {
            // `\'` inside '…' (and `\"` inside "…") is the quote itself: written `''` (`""`),
            // of the same width, as the tokenizer reads a quote inside quotes.
            (Some(q), _, '\\') if q != '`' => match chars.next() {
                Some(n) if n == q => {
                    out.push(q);
                    out.push(q);
                }
                Some(n) => {
                    out.push(c);
                    out.push(n);
                }
                None => out.push(c),
            },
            (Some(q), _, c) if c == q => {
                quote = None;
                out.push(c);
            }
            (Some(_), _, c) => out.push(c),
            (None, true, '*') if chars.peek() == Some(&'/') => {
                block = false;
                out.push('*');
                out.extend(chars.next());
            }
            (None, true, c) => out.push(c),
            (None, false, '/') if chars.peek() == Some(&'*') => {
                block = true;
                out.push('/');
                out.extend(chars.next());
            }
            (None, false, '/') if chars.peek() == Some(&'/') => {
                // Through the end of the line, each character a space of the same width.
                out.push(' ');
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    out.extend(std::iter::repeat_n(' ', n.len_utf8()));
                    chars.next();
                }
            }
            (None, false, '-') if chars.peek() == Some(&'-') => {
                // A `--` comment is the tokenizer's; copy it so that quotes in it open nothing.
                out.push(c);
                while let Some(&n) = chars.peek() {
                    if n == '\n' {
                        break;
                    }
                    out.push(n);
                    chars.next();
                }
            }
            (None, false, '\'' | '"' | '`') => {
                quote = Some(c);
                out.push(c);
            }
            (None, false, c) => out.push(c),
        }
    }
    out
}

/// SQL++ string literals take JSON's backslash escapes (`"\t"`, `"\u00e9"`, surrogate pairs).
fn decode_escapes(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, String> {
    tokens
        .into_iter()
        .map(|mut t| {
            match &mut t.token {
                Token::SingleQuotedString(s) => *s = unescape(s)?,
                Token::Word(w) if w.quote_style == Some('"') => w.value = unescape(&w.value)?,
                _ => {}
            }
            Ok(t)
        })
        .collect()
}

fn unescape(s: &str) -> Result<String, String> {
    if !s.contains('\\') {
        return Ok(s.to_string());
    }
    let bad = || format!("invalid escape in string literal \"{s}\"");
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    let hex4 = |chars: &mut std::str::Chars<'_>| -> Option<u32> {
        let h: String = chars.by_ref().take(4).collect();
        (h.len() == 4).then_some(())?;
        u32::from_str_radix(&h, 16).ok()
    };
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let decoded = match chars.next().ok_or_else(bad)? {
            '"' => '"',
            '\'' => '\'',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let high = hex4(&mut chars).ok_or_else(bad)?;
                let code = if (0xD800..0xDC00).contains(&high) {
                    let rest = chars.as_str();
                    let low = rest
                        .strip_prefix("\\u")
                        .and_then(|r| u32::from_str_radix(r.get(..4)?, 16).ok())
                        .filter(|l| (0xDC00..0xE000).contains(l))
                        .ok_or_else(bad)?;
                    chars = rest.get(6..).unwrap_or_default().chars();
                    0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                } else {
                    high
                };
                char::from_u32(code).ok_or_else(bad)?
            }
            _ => return Err(bad()),
        };
        out.push(decoded);
    }
    Ok(out)
}

/// What a statement is, by its first words.
#[derive(Debug, PartialEq, Eq)]
enum Form {
    /// `SET option value` and dataverse DDL: accepted, answering nothing (polyquery has one
    /// namespace and no options these change).
    NoOp,
    /// A query that is an expression (`range(0, 5);`, `[1, 2];`): `SELECT VALUE <expression>`.
    Expression,
    /// Anything else, left to the parser.
    Statement,
}

fn form(statement: &[TokenWithSpan]) -> Form {
    let mut tokens = statement
        .iter()
        .map(|t| &t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)));
    let word = |t: Option<&Token>| match t {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    match tokens.next() {
        None => Form::Statement,
        Some(Token::LParen) => {
            let inner = tokens.find(|t| !matches!(t, Token::LParen));
            match word(inner).as_deref() {
                Some("SELECT" | "FROM" | "WITH" | "LET") => Form::Statement,
                _ => Form::Expression,
            }
        }
        Some(t @ Token::Word(w)) if w.quote_style.is_none() => {
            let first = word(Some(t)).unwrap_or_default();
            match first.as_str() {
                "SET" => Form::NoOp,
                "CREATE" | "DROP"
                    if matches!(word(tokens.next()).as_deref(), Some("DATAVERSE")) =>
                {
                    Form::NoOp
                }
                "SELECT" | "FROM" | "WITH" | "LET" | "USE" | "EXPLAIN" | "CREATE" | "DROP"
                | "ALTER" | "INSERT" | "UPSERT" | "DELETE" | "UPDATE" | "LOAD" | "COMPACT"
                | "CONNECT" | "DISCONNECT" | "ANALYZE" | "COPY" | "TRUNCATE" | "START" | "STOP"
                | "DECLARE" | "WRITE" | "REFRESH" | "GRANT" | "REVOKE" | "BEGIN" | "COMMIT"
                | "ROLLBACK" | "SHOW" | "DESCRIBE" | "VALUES" | "TABLE" => Form::Statement,
                _ => Form::Expression,
            }
        }
        Some(_) => Form::Expression,
    }
}

/// Statement-level SQL++ on the tokens: no-op statements dropped, expression statements made
/// `SELECT VALUE` queries.
fn statement_forms(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, AsxError> {
    let mut out = Vec::with_capacity(tokens.len() + 4);
    let mut statement: Vec<TokenWithSpan> = Vec::new();
    let mut refused = None;
    let mut flush = |statement: &mut Vec<TokenWithSpan>, end: Option<TokenWithSpan>| {
        match form(statement) {
            Form::NoOp => {
                if let Err(e) = check_set(statement) {
                    refused.get_or_insert(e);
                }
                statement.clear();
                return;
            }
            Form::Expression => {
                if let Some(at) = statement
                    .iter()
                    .position(|t| !matches!(t.token, Token::Whitespace(_)))
                {
                    let span = statement[at].span;
                    let select = Word {
                        value: "SELECT".into(),
                        quote_style: None,
                        keyword: Keyword::SELECT,
                    };
                    let value = Word {
                        value: "VALUE".into(),
                        quote_style: None,
                        keyword: Keyword::VALUE,
                    };
                    let space = Token::Whitespace(sqlparser::tokenizer::Whitespace::Space);
                    let prefix = [
                        Token::Word(select),
                        space.clone(),
                        Token::Word(value),
                        space,
                    ];
                    statement.splice(
                        at..at,
                        prefix.into_iter().map(|t| TokenWithSpan::new(t, span)),
                    );
                }
            }
            Form::Statement => {}
        }
        out.append(statement);
        out.extend(end);
    };
    for t in tokens {
        if t.token == Token::SemiColon {
            flush(&mut statement, Some(t));
        } else {
            statement.push(t);
        }
    }
    flush(&mut statement, None);
    match refused {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// AsterixDB's query parameters a `SET` may change that only steer its compiler (and the
/// similarity options, whose functions polyquery refuses anyway): accepted and ignored. Any
/// other name is refused as AsterixDB refuses it, and so is a memory size that is none.
const SET_PARAMETERS: &[&str] = &[
    "import-private-functions",
    "rewrite_or_as_join",
    "rewrite_attempt_batch_assign",
    "inline_with",
    "simthreshold",
    "simfunction",
    "wait-for-completion-feed",
    "compiler.arrayindex",
    "compiler.sort.parallel",
    "compiler.parallelism",
    "compiler.column.filter",
    "compiler.external.field.pushdown",
    "compiler.aggregate.distinct.hash",
    "compiler.cbo",
    "compiler.cbotest",
    "compiler.forcejoinorder",
    "compiler.queryplanshape",
    "compiler.disjunction.as.join",
    "compiler.disjunction.hash.threshold",
    "compiler.index.covering",
    "compiler.batch.lookup",
    "compiler.sort.samples",
    "compiler.min.memory.allocation",
    "compiler.windowmemory",
    "compiler.sortmemory",
    "compiler.joinmemory",
    "compiler.groupmemory",
    "compiler.textsearchmemory",
    "compiler.framesize",
];

/// Checks a `SET name value` statement (other no-op statements pass).
fn check_set(statement: &[TokenWithSpan]) -> Result<(), AsxError> {
    let mut tokens = statement
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_)));
    match tokens.next().map(|t| &t.token) {
        Some(Token::Word(w)) if w.value.eq_ignore_ascii_case("set") => {}
        _ => return Ok(()),
    }
    let text = |t: Option<&TokenWithSpan>| match t.map(|t| &t.token) {
        Some(Token::Word(w)) => Some(w.value.clone()),
        Some(Token::SingleQuotedString(s)) => Some(s.clone()),
        Some(Token::Number(n, _)) => Some(n.clone()),
        _ => None,
    };
    let name_token = tokens.next();
    let at = name_token.map_or(Location::new(0, 0), |t| t.span.start);
    let (Some(name), Some(value)) = (text(name_token), text(tokens.next())) else {
        return Err(AsxError::syntax("SET takes a parameter name and a value").at(at));
    };
    let lower = name.to_ascii_lowercase();
    if !SET_PARAMETERS.contains(&lower.as_str()) {
        return Err(
            AsxError::compilation(&format!("Query parameter {name} is not supported")).at(at),
        );
    }
    let is_size = |v: &str| {
        let v = v.trim().to_ascii_lowercase();
        let digits = v.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let unit = &v[digits.len()..];
        !digits.is_empty()
            && digits.parse::<f64>().is_ok()
            && [
                "", "b", "k", "kb", "kib", "m", "mb", "mib", "g", "gb", "gib", "t", "tb", "tib",
            ]
            .contains(&unit)
    };
    if (lower.ends_with("memory") || lower == "compiler.framesize") && !is_size(&value) {
        return Err(AsxError::compilation(&format!(
            "The given string: {value} is not a byte unit string (e.g., 320KiB or 1024)"
        ))
        .at(at));
    }
    Ok(())
}

/// The kind of a DDL or DML statement (`CREATE COLLECTION`, `INSERT`), or `None` for a query.
fn modifying_kind(statement: &[&TokenWithSpan]) -> Option<String> {
    let word = |i: usize| match statement.get(i).map(|t| &t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    let first = word(0)?;
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" => {
            let second = word(1).unwrap_or_default();
            // `CREATE OR REPLACE FUNCTION` and the like.
            if second == "OR" {
                Some(format!("{first} {}", word(3).unwrap_or_default()))
            } else {
                Some(format!("{first} {second}"))
            }
        }
        "INSERT" | "UPSERT" | "DELETE" | "UPDATE" | "LOAD" | "COMPACT" | "CONNECT"
        | "DISCONNECT" | "ANALYZE" | "COPY" | "TRUNCATE" => Some(first),
        _ => None,
    }
}

/// What the token-level pass found besides the tokens.
#[derive(Debug, Default)]
struct TokenFacts {
    value_mode: bool,
    /// Where each `SELECT VALUE` inside another query starts (its `SELECT`): such a query is a
    /// collection, translated only where a collection function takes it.
    nested_values: Vec<Location>,
    /// `GROUP BY e AS v`: the position of `e` among the group keys, and `v`.
    group_aliases: Vec<(usize, String)>,
}

/// Where the token pass is inside a `GROUP BY` list.
#[derive(Debug, Default)]
struct GroupList {
    keys_before: usize,
    parens: usize,
    alias_next: bool,
}

/// Token-level SQL++: `SELECT VALUE` loses `VALUE` (remembered), `"text"` becomes a string
/// literal, an array literal in FROM position is wrapped in `UNNEST(…)`, and `GROUP BY e AS v`
/// loses `AS v` (remembered, so that `v` can be replaced by `e`).
fn rewrite_tokens(tokens: Vec<TokenWithSpan>) -> (Vec<TokenWithSpan>, TokenFacts) {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len() + 4);
    let mut facts = TokenFacts::default();
    let mut group: Option<GroupList> = None;
    // Depth of brackets opened by an array literal that got an UNNEST( in front.
    let mut unnest_depths: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    // Parenthesis depth, and the depth of the FROM list being read (commas there separate sources).
    let mut parens = 0usize;
    let mut from_list: Option<usize> = None;
    let mut statement_start = 0usize;
    for t in tokens {
        match &t.token {
            Token::LParen => parens += 1,
            Token::RParen => {
                parens = parens.saturating_sub(1);
                if from_list.is_some_and(|d| d > parens) {
                    from_list = None;
                }
            }
            Token::Word(w) if w.quote_style.is_none() => match w.keyword {
                Keyword::FROM => from_list = Some(parens),
                Keyword::WHERE
                | Keyword::GROUP
                | Keyword::ORDER
                | Keyword::SELECT
                | Keyword::LIMIT
                | Keyword::HAVING
                | Keyword::UNION
                | Keyword::OFFSET
                    if from_list == Some(parens) =>
                {
                    from_list = None;
                }
                _ => {}
            },
            Token::SemiColon => {
                from_list = None;
                statement_start = out.len() + 1;
            }
            _ => {}
        }
        let previous = out
            .iter()
            .rev()
            .find(|p| !matches!(p.token, Token::Whitespace(_)))
            .map(|p| p.token.clone());
        if let Some(list) = &mut group {
            match &t.token {
                Token::Whitespace(_) => {}
                Token::Word(w) if list.alias_next => {
                    facts
                        .group_aliases
                        .push((list.keys_before, w.value.clone()));
                    list.alias_next = false;
                    continue;
                }
                Token::LParen => list.parens += 1,
                Token::RParen => list.parens = list.parens.saturating_sub(1),
                Token::Comma if list.parens == 0 => list.keys_before += 1,
                Token::Word(w)
                    if list.parens == 0 && w.quote_style.is_none() && w.keyword == Keyword::AS =>
                {
                    list.alias_next = true;
                    continue;
                }
                Token::Word(w)
                    if list.parens == 0
                        && w.quote_style.is_none()
                        && matches!(
                            w.keyword,
                            Keyword::HAVING
                                | Keyword::ORDER
                                | Keyword::LIMIT
                                | Keyword::OFFSET
                                | Keyword::SELECT
                                | Keyword::UNION
                                | Keyword::WINDOW
                        ) =>
                {
                    group = None;
                }
                Token::SemiColon => group = None,
                _ => {}
            }
        }
        match &t.token {
            Token::Word(w)
                if w.quote_style.is_none()
                    && w.keyword == Keyword::BY
                    && matches!(&previous, Some(Token::Word(p)) if p.keyword == Keyword::GROUP) =>
            {
                group = Some(GroupList::default());
            }
            // `SELECT VALUE` and its synonym `SELECT ELEMENT`, of the statement's own query only.
            Token::Word(w)
                if w.quote_style.is_none()
                    && (w.keyword == Keyword::VALUE || w.value.eq_ignore_ascii_case("element"))
                    && matches!(&previous, Some(Token::Word(p)) if p.keyword == Keyword::SELECT) =>
            {
                let mut before = out
                    .get(statement_start..)
                    .unwrap_or_default()
                    .iter()
                    .filter(|p| !matches!(p.token, Token::Whitespace(_)));
                before.next_back();
                if parens == 0 || before.all(|p| p.token == Token::LParen) {
                    facts.value_mode = true;
                } else if let Some(select) = out
                    .iter()
                    .rev()
                    .find(|p| !matches!(p.token, Token::Whitespace(_)))
                {
                    facts.nested_values.push(select.span.start);
                }
                continue;
            }
            Token::Word(w) if w.quote_style == Some('"') => {
                out.push(TokenWithSpan::new(
                    Token::SingleQuotedString(w.value.clone()),
                    t.span,
                ));
                continue;
            }
            Token::LBracket => {
                let after_from = match &previous {
                    Some(Token::Word(p)) => {
                        p.quote_style.is_none()
                            && matches!(p.keyword, Keyword::FROM | Keyword::JOIN)
                    }
                    Some(Token::Comma) => from_list == Some(parens),
                    _ => false,
                };
                if after_from {
                    out.push(TokenWithSpan::new(unnest_word(), t.span));
                    out.push(TokenWithSpan::new(Token::LParen, t.span));
                    unnest_depths.push(depth);
                }
                depth += 1;
            }
            Token::RBracket => {
                depth = depth.saturating_sub(1);
                if unnest_depths.last() == Some(&depth) {
                    unnest_depths.pop();
                    out.push(t.clone());
                    out.push(TokenWithSpan::new(Token::RParen, t.span));
                    continue;
                }
            }
            _ => {}
        }
        out.push(t);
    }
    (out, facts)
}

fn unnest_word() -> Token {
    Token::Word(Word {
        value: "UNNEST".to_string(),
        quote_style: None,
        keyword: Keyword::UNNEST,
    })
}

/// What FROM names are checked against.
pub(super) struct Sources<'a> {
    pub(super) dataverse: Option<&'a str>,
    catalog: Option<&'a Catalog>,
    ctes: Vec<String>,
}

impl Sources<'_> {
    fn check(&self, name: &str, at: Location) -> Result<(), AsxError> {
        let known = self.ctes.iter().any(|c| c.eq_ignore_ascii_case(name))
            || self.catalog.is_none_or(|c| c.table(name).is_some());
        if known {
            Ok(())
        } else {
            Err(AsxError::unknown_dataset(name, self.dataverse.unwrap_or("Default")).at(at))
        }
    }
}

/// AST-level SQL++ on the one query: clause order, sources, names, parameters, row shape.
fn rewrite_query(
    query: &mut Query,
    facts: &TokenFacts,
    sources: &Sources<'_>,
) -> Result<RowShape, AsxError> {
    number_question_marks(query);
    let _ = visit_expressions_mut(query, keyword_paths);
    let mut collections = super::builtins::Collections {
        value_queries: facts.nested_values.clone(),
        sources,
    };
    super::builtins::sqlpp_expressions(query, &mut collections)?;
    if !collections.value_queries.is_empty() {
        return Err(AsxError::compilation(
            "SELECT VALUE inside another query is not supported by polyquery",
        ));
    }
    let SetExpr::Select(select) = query.body.as_mut() else {
        return set_operation(query.body.as_mut(), facts);
    };
    super::builtins::printed_missing_as_null(&mut select.projection);
    // `GROUP BY e AS v`: `v` anywhere else means `e`.
    if let GroupByExpr::Expressions(keys, _) = &select.group_by {
        let bound: Vec<(String, Expr)> = facts
            .group_aliases
            .iter()
            .filter_map(|(i, name)| keys.get(*i).map(|e| (name.clone(), e.clone())))
            .collect();
        if !bound.is_empty() {
            let replace = |e: &mut Expr| {
                if let Some(v) = variable(e)
                    && let Some((_, key)) = bound.iter().find(|(name, _)| *name == v.value)
                {
                    *e = key.clone();
                }
                ControlFlow::<()>::Continue(())
            };
            let _ = visit_expressions_mut(&mut select.projection, replace);
            let _ = visit_expressions_mut(&mut select.having, replace);
            if let Some(order) = &mut query.order_by {
                let _ = visit_expressions_mut(order, replace);
            }
        }
    }
    let Some(select) = (match query.body.as_mut() {
        SetExpr::Select(select) => Some(select),
        _ => None,
    }) else {
        return Ok(RowShape::Object);
    };
    select.flavor = SelectFlavor::Standard;
    // The sources: a dataset keeps its name (dataverse dropped), arrays and ranges become derived
    // tables of one column named after their alias. The first alias is the one `SELECT *` wraps in.
    let mut bound = Vec::new();
    for table in &mut select.from {
        bound.push(rewrite_source(&mut table.relation, sources)?);
        for join in &mut table.joins {
            bound.push(rewrite_source(&mut join.relation, sources)?);
        }
    }
    let datasets: Vec<String> = bound
        .iter()
        .filter_map(|b| match b {
            Source::Dataset { variable, .. } => Some(variable.clone()),
            _ => None,
        })
        .collect();
    let _ = visit_expressions_mut(&mut select.projection, constructors);
    let _ = visit_expressions_mut(&mut select.selection, constructors);

    let star = matches!(select.projection.as_slice(), [SelectItem::Wildcard(_)]);
    if facts.value_mode {
        let [item] = select.projection.as_mut_slice() else {
            return Err(AsxError::syntax(
                "SELECT VALUE takes exactly one expression",
            ));
        };
        let expr = match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => e.clone(),
            _ => return Err(AsxError::syntax("SELECT VALUE takes an expression, not *")),
        };
        if let Some(variable) = variable(&expr)
            && datasets.contains(&variable.value)
        {
            *item = SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(ObjectName::from(vec![
                    Ident::with_quote('"', variable.value),
                ])),
                WildcardAdditionalOptions::default(),
            );
            return Ok(RowShape::Record);
        }
        *item = SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', "$1"),
        };
        return Ok(RowShape::Value);
    }
    name_projections(&mut select.projection);
    if !star {
        return Ok(RowShape::Object);
    }
    match bound.as_slice() {
        [Source::Dataset { variable, .. }] => Ok(RowShape::Wrapped(variable.clone())),
        [Source::Values(_)] => Ok(RowShape::Object),
        _ => {
            select.projection = star_over_sources(&bound, sources.catalog)?;
            Ok(RowShape::Sources)
        }
    }
}

/// `UNION ALL` of selects: each branch's unnamed columns named as a select's are. Other set
/// operations, and `SELECT VALUE` branches, are not translated.
fn set_operation(body: &mut SetExpr, facts: &TokenFacts) -> Result<RowShape, AsxError> {
    // SQL++ has UNION ALL only; AsterixDB words the refusal of the others so.
    if let SetExpr::SetOperation {
        op,
        set_quantifier,
        right,
        ..
    } = &*body
        && !matches!(set_quantifier, sqlparser::ast::SetQuantifier::All)
    {
        let at = match right.as_ref() {
            SetExpr::Select(select) => select.select_token.0.span.start,
            _ => Location::new(0, 0),
        };
        return Err(AsxError::compilation(&format!(
            "Operation {} with set semantics is not supported.",
            op.to_string().to_uppercase()
        ))
        .at(at));
    }
    if facts.value_mode {
        return Err(AsxError::compilation(
            "SELECT VALUE in a set operation is not supported by polyquery",
        ));
    }
    fn branches(body: &mut SetExpr) -> Result<(), AsxError> {
        match body {
            SetExpr::Select(select) => {
                if matches!(select.projection.as_slice(), [SelectItem::Wildcard(_)]) {
                    return Err(AsxError::compilation(
                        "SELECT * in a set operation is not supported by polyquery",
                    ));
                }
                name_projections(&mut select.projection);
                Ok(())
            }
            SetExpr::SetOperation {
                op: sqlparser::ast::SetOperator::Union,
                set_quantifier: sqlparser::ast::SetQuantifier::All,
                left,
                right,
            } => {
                branches(left)?;
                branches(right)
            }
            SetExpr::Query(query) => branches(query.body.as_mut()),
            _ => Err(AsxError::compilation(
                "this set operation is not supported by polyquery (only UNION ALL is)",
            )),
        }
    }
    branches(body)?;
    Ok(RowShape::Object)
}

/// What one FROM item binds its variable to.
#[derive(Clone, Debug)]
pub(super) enum Source {
    /// A dataset's records: the variable and the table.
    Dataset { variable: String, table: String },
    /// Single values (an array or a range): the variable is the value.
    Values(String),
    /// A subquery or anything else polyquery passes through.
    Other,
}

/// Rewrites one FROM item and says what its variable is bound to.
pub(super) fn rewrite_source(
    relation: &mut TableFactor,
    sources: &Sources<'_>,
) -> Result<Source, AsxError> {
    match relation {
        TableFactor::Table {
            name, alias, args, ..
        } => {
            if let Some(args) = args {
                let function = match name.0.last() {
                    Some(ObjectNamePart::Identifier(i)) => {
                        i.value.to_ascii_lowercase().replace('-', "_")
                    }
                    _ => name.to_string(),
                };
                if function == "subset_collection" {
                    // `subset-collection(list, start, length)`: the items from `start` (from 0),
                    // at most `length` of them; constant bounds only.
                    let exprs: Vec<Expr> = args.args.iter().filter_map(arg_expr).collect();
                    let [list, start, length] = exprs.as_slice() else {
                        return Err(AsxError::compilation(
                            "Invalid number of arguments for function subset-collection",
                        ));
                    };
                    let bounds = super::builtins::constant_index(start)
                        .zip(super::builtins::constant_index(length))
                        .and_then(|(s, l)| Some((s.checked_add(1)?, s.checked_add(l)?)));
                    let Some((from, to)) = bounds else {
                        return Err(AsxError::compilation(
                            "subset-collection with bounds that are not constants >= 0 is not supported by polyquery",
                        ));
                    };
                    let alias = source_alias(alias.as_ref(), "subset-collection")?;
                    *relation = derived(
                        &format!(
                            "SELECT 1 FROM (SELECT unnest(array_slice($A, {from}, {to})) AS a) AS a"
                        ),
                        std::slice::from_ref(list),
                        &alias,
                    )?;
                    return Ok(Source::Values(alias.value));
                }
                if function != "range" {
                    return Err(AsxError::compilation(&format!(
                        "unknown function {function} as a FROM source"
                    )));
                }
                let exprs: Vec<Expr> = args.args.iter().filter_map(arg_expr).collect();
                let [from, to] = exprs.as_slice() else {
                    return Err(AsxError::compilation("range takes two arguments"));
                };
                let alias = source_alias(alias.as_ref(), "range")?;
                *relation = derived(
                    "SELECT 1 FROM (SELECT value AS a FROM generate_series($A, $B)) AS a",
                    &[from.clone(), to.clone()],
                    &alias,
                )?;
                return Ok(Source::Values(alias.value));
            }
            let parts = &mut name.0;
            if parts.len() == 2
                && let Some(ObjectNamePart::Identifier(dv)) = parts.first()
                && (DATAVERSES.contains(&dv.value.as_str())
                    || Some(dv.value.as_str()) == sources.dataverse)
            {
                parts.remove(0);
            }
            let single = parts.len() == 1;
            let (bare, at) = match name.0.last() {
                Some(ObjectNamePart::Identifier(i)) => (i.value.clone(), i.span.start),
                _ => (name.to_string(), Location::new(0, 0)),
            };
            if single {
                sources.check(&bare, at)?;
            }
            Ok(Source::Dataset {
                variable: alias
                    .as_ref()
                    .map(|a| a.name.value.clone())
                    .unwrap_or(bare.clone()),
                table: bare,
            })
        }
        TableFactor::UNNEST {
            alias, array_exprs, ..
        } => {
            let [array] = array_exprs.as_slice() else {
                return Err(AsxError::compilation("one array per FROM source"));
            };
            let alias = source_alias(alias.as_ref(), "unnest")?;
            *relation = derived(
                "SELECT 1 FROM (SELECT unnest($A) AS a) AS a",
                std::slice::from_ref(array),
                &alias,
            )?;
            Ok(Source::Values(alias.value))
        }
        _ => Ok(Source::Other),
    }
}

/// `SELECT *` over several sources: one field per variable, a dataset's record as an object of
/// its columns (`named_struct`), a value as itself.
fn star_over_sources(
    bound: &[Source],
    catalog: Option<&Catalog>,
) -> Result<Vec<SelectItem>, AsxError> {
    let refuse =
        || AsxError::compilation("SELECT * over this FROM clause is not supported by polyquery");
    let mut items = Vec::with_capacity(bound.len());
    for source in bound {
        let (variable, expr) = match source {
            Source::Values(variable) => (
                variable.clone(),
                Expr::Identifier(Ident::with_quote('"', variable)),
            ),
            Source::Dataset { variable, table } => {
                let schema = catalog
                    .and_then(|c| c.table(table))
                    .map(|t| t.schema.clone())
                    .ok_or_else(refuse)?;
                let mut args = Vec::with_capacity(schema.fields().len() * 2);
                for field in schema.fields() {
                    args.push(Expr::Value(
                        Value::SingleQuotedString(field.name().clone()).into(),
                    ));
                    args.push(Expr::CompoundIdentifier(vec![
                        Ident::with_quote('"', variable),
                        Ident::with_quote('"', field.name()),
                    ]));
                }
                (variable.clone(), record_of(args)?)
            }
            Source::Other => return Err(refuse()),
        };
        items.push(SelectItem::ExprWithAlias {
            expr,
            alias: Ident::with_quote('"', variable),
        });
    }
    Ok(items)
}

/// `named_struct(args…)`.
fn record_of(args: Vec<Expr>) -> Result<Expr, AsxError> {
    let select = template_select("SELECT named_struct('a', 1)", &[])?;
    let Some(SelectItem::UnnamedExpr(Expr::Function(mut function))) =
        select.projection.into_iter().next()
    else {
        return Err(AsxError::compilation("internal template is not a function"));
    };
    if let FunctionArguments::List(list) = &mut function.args {
        list.args = args
            .into_iter()
            .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
            .collect();
    }
    Ok(Expr::Function(function))
}

pub(super) fn arg_expr(arg: &FunctionArg) -> Option<Expr> {
    match arg {
        FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
        _ => None,
    }
}

/// SQL++ requires a variable for a non-dataset source.
fn source_alias(alias: Option<&TableAlias>, what: &str) -> Result<Ident, AsxError> {
    alias
        .map(|a| a.name.clone())
        .ok_or_else(|| AsxError::compilation(&format!("a {what} source needs a variable (AS v)")))
}

/// A fixed template statement with its `$A`, `$B` placeholders replaced by `args`.
fn template(sql: &str, args: &[Expr]) -> Result<Statement, AsxError> {
    let mut statement = Parser::parse_sql(&GenericDialect {}, sql)
        .ok()
        .and_then(|mut s| s.pop())
        .ok_or_else(|| AsxError::compilation("internal template did not parse"))?;
    let _ = visit_expressions_mut(&mut statement, |e| {
        if let Expr::Value(v) = e
            && let Value::Placeholder(p) = &v.value
        {
            let index = match p.as_str() {
                "$A" => 0,
                _ => 1,
            };
            if let Some(arg) = args.get(index) {
                *e = arg.clone();
            }
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(statement)
}

/// The one expression of a template `SELECT <expression>`.
pub(super) fn template_expr(sql: &str, args: &[Expr]) -> Result<Expr, AsxError> {
    match template_select(sql, args)?.projection.into_iter().next() {
        Some(SelectItem::UnnamedExpr(e)) => Ok(e),
        _ => Err(AsxError::compilation(
            "internal template is not an expression",
        )),
    }
}

/// The first select of a template query.
fn template_select(sql: &str, args: &[Expr]) -> Result<sqlparser::ast::Select, AsxError> {
    let Statement::Query(query) = template(sql, args)? else {
        return Err(AsxError::compilation("internal template is not a query"));
    };
    match *query.body {
        SetExpr::Select(select) => Ok(*select),
        _ => Err(AsxError::compilation("internal template is not a select")),
    }
}

/// A derived table from a fixed template whose alias `a` (table and column) becomes `alias`.
fn derived(sql: &str, args: &[Expr], alias: &Ident) -> Result<TableFactor, AsxError> {
    let select = template_select(sql, args)?;
    let mut relation = select
        .from
        .into_iter()
        .next()
        .map(|t| t.relation)
        .ok_or_else(|| AsxError::compilation("internal template has no source"))?;
    if let TableFactor::Derived {
        subquery,
        alias: table_alias,
        ..
    } = &mut relation
    {
        if let Some(a) = table_alias {
            a.name = alias.clone();
        }
        if let SetExpr::Select(inner) = subquery.body.as_mut()
            && let Some(SelectItem::ExprWithAlias { alias: a, .. }) = inner.projection.first_mut()
        {
            *a = alias.clone();
        }
    }
    Ok(relation)
}

/// A bare name: an identifier, or a keyword sqlparser read as a function without parentheses
/// (`user`, the primer's favourite variable).
fn variable(expr: &Expr) -> Option<Ident> {
    match expr {
        Expr::Identifier(ident) => Some(ident.clone()),
        Expr::Function(f) if matches!(f.args, FunctionArguments::None) && f.name.0.len() == 1 => {
            match f.name.0.first() {
                Some(ObjectNamePart::Identifier(ident)) => Some(ident.clone()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// `user.name`, `cm.user.screenName`: sqlparser reads a keyword in a path as a function and the
/// rest as field access; it is a plain path of names.
fn keyword_paths(expr: &mut Expr) -> ControlFlow<()> {
    if let Expr::CompoundFieldAccess { root, access_chain } = expr {
        let names: Option<Vec<Ident>> = std::iter::once(path_part(root))
            .chain(access_chain.iter().map(|a| match a {
                AccessExpr::Dot(e) => path_part(e),
                AccessExpr::Subscript(_) => None,
            }))
            .collect();
        if let Some(names) = names {
            *expr = Expr::CompoundIdentifier(names);
        }
    }
    ControlFlow::Continue(())
}

/// One name of a path; a keyword read as a function is quoted, so that the engine's parser cannot
/// read it as a function again.
fn path_part(expr: &Expr) -> Option<Ident> {
    match expr {
        Expr::Identifier(ident) => Some(ident.clone()),
        Expr::Function(_) => variable(expr).map(|v| Ident::with_quote('"', v.value)),
        _ => None,
    }
}

/// SQL++'s temporal constructors `datetime(s)`, `date(s)`, `time(s)` as casts.
fn constructors(expr: &mut Expr) -> ControlFlow<()> {
    let Expr::Function(function) = expr else {
        return ControlFlow::Continue(());
    };
    let target = match function.name.to_string().to_ascii_lowercase().as_str() {
        "datetime" => "TIMESTAMP",
        "date" => "DATE",
        "time" => "TIME",
        _ => return ControlFlow::Continue(()),
    };
    let FunctionArguments::List(list) = &function.args else {
        return ControlFlow::Continue(());
    };
    let args: Vec<Expr> = list.args.iter().filter_map(arg_expr).collect();
    let [arg] = args.as_slice() else {
        return ControlFlow::Continue(());
    };
    let sql = format!("SELECT CAST($A AS {target})");
    if let Ok(select) = template_select(&sql, std::slice::from_ref(arg))
        && let Some(SelectItem::UnnamedExpr(cast)) = select.projection.into_iter().next()
    {
        *expr = cast;
    }
    ControlFlow::Continue(())
}

/// Unnamed projections that are not plain names get AsterixDB's positional names `$1`, `$2`, …;
/// a path `a.b` is named `b`.
fn name_projections(items: &mut [SelectItem]) {
    // `$n` counts the unnamed projections only: `select 1, a, 2` names `$1`, `a`, `$2`.
    let mut unnamed = 0;
    for item in items.iter_mut() {
        if let SelectItem::UnnamedExpr(expr) = item {
            // `(x.a)` is named as `x.a` is.
            let mut named = &*expr;
            while let Expr::Nested(inner) = named {
                named = inner;
            }
            let name = match named {
                Expr::Identifier(i) if matches!(expr, Expr::Nested(_)) => i.value.clone(),
                Expr::Identifier(_) => continue,
                Expr::CompoundIdentifier(parts) => match parts.last() {
                    Some(last) => last.value.clone(),
                    None => continue,
                },
                _ => {
                    unnamed += 1;
                    format!("${unnamed}")
                }
            };
            *item = SelectItem::ExprWithAlias {
                expr: expr.clone(),
                alias: Ident::with_quote('"', name),
            };
        }
    }
}

/// `?` placeholders become `$1`, `$2`, … in order of appearance, as AsterixDB binds them to `args`.
/// The distinct placeholders of a query: positions (`$1` → 1) in order, then names.
fn parameters(query: &Query) -> Vec<serde_json::Value> {
    let mut positions = std::collections::BTreeSet::new();
    let mut names = std::collections::BTreeSet::new();
    let _ = sqlparser::ast::visit_expressions(query, |e| {
        if let Expr::Value(v) = e
            && let Value::Placeholder(p) = &v.value
            && let Some(name) = p.strip_prefix('$')
        {
            match name.parse::<u64>() {
                Ok(n) => positions.insert(n),
                Err(_) => names.insert(name.to_string()),
            };
        }
        ControlFlow::<()>::Continue(())
    });
    positions
        .into_iter()
        .map(serde_json::Value::from)
        .chain(names.into_iter().map(serde_json::Value::from))
        .collect()
}

fn number_question_marks(query: &mut Query) {
    let mut next = 0;
    let _ = query.visit(&mut QuestionMarks { next: &mut next });
}

struct QuestionMarks<'a> {
    next: &'a mut usize,
}

impl sqlparser::ast::VisitorMut for QuestionMarks<'_> {
    type Break = ();

    fn pre_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Value(v) = expr
            && let Value::Placeholder(p) = &mut v.value
            && p == "?"
        {
            *self.next += 1;
            *p = format!("${}", self.next);
        }
        ControlFlow::Continue(())
    }
}

/// AsterixDB's syntax-error text from sqlparser's: `In line 1 >>select * fro;<< Encountered
/// <IDENTIFIER> "fro" at column 10. `
fn syntax_text(source: &str, raw: &str) -> String {
    let raw = crate::sql::syntax_message(raw);
    let Some((line, column)) = location(&raw) else {
        return raw;
    };
    let line_text = source.lines().nth(line.saturating_sub(1)).unwrap_or("");
    let found = raw
        .split("found: ")
        .nth(1)
        .and_then(|f| f.split(" at Line:").next())
        .unwrap_or("")
        .trim();
    let encountered = match found {
        "EOF" | "" => "<EOF>".to_string(),
        f if f.chars().all(|c| c.is_alphanumeric() || c == '_') => {
            format!("<IDENTIFIER> \"{f}\"")
        }
        f => format!("\"{f}\""),
    };
    format!("In line {line} >>{line_text}<< Encountered {encountered} at column {column}. ")
}

/// `… at Line: 1, Column: 10` → (1, 10).
fn location(message: &str) -> Option<(usize, usize)> {
    let rest = message.rsplit("Line: ").next()?;
    let (line, rest) = rest.split_once(", Column: ")?;
    let column: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    Some((line.trim().parse().ok()?, column.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sql(text: &str) -> Translation {
        translate(
            text,
            Rules {
                multi_statement: true,
                ..Rules::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn select_1_names_its_column_dollar_1() {
        let t = sql("select 1;");
        assert_eq!(t.exec_sql, r#"SELECT 1 AS "$1""#);
        assert_eq!(t.shape, RowShape::Object);
    }

    #[test]
    fn array_sources_and_from_first_order() {
        let t = sql("from [1, 2] as v select v;");
        assert_eq!(
            t.exec_sql,
            "SELECT v FROM (SELECT unnest(sqlpp_array(1, 2)) AS v) AS v"
        );
    }

    #[test]
    fn range_is_inclusive() {
        let t = sql("select i, i * i as i2 from range(1, 10) i;");
        assert_eq!(
            t.exec_sql,
            r#"SELECT i, sqlpp_multiply(i, i) AS i2 FROM (SELECT value AS i FROM generate_series(1, 10)) AS i"#
        );
    }

    #[test]
    fn select_value_and_string_literals() {
        let t = sql(r#"select value sleep("result", 5000);"#);
        assert_eq!(t.exec_sql, r#"SELECT sleep('result', 5000) AS "$1""#);
        assert_eq!(t.shape, RowShape::Value);
    }

    #[test]
    fn select_star_wraps_under_the_alias_and_use_sets_the_dataverse() {
        let t = sql("USE TinySocial; SELECT * FROM TinySocial.GleambookUsers u WHERE u.id = 1;");
        assert_eq!(t.exec_sql, "SELECT * FROM GleambookUsers u WHERE u.id = 1");
        assert_eq!(t.shape, RowShape::Wrapped("u".into()));
        let t = sql("SELECT * FROM ChirpUsers;");
        assert_eq!(t.shape, RowShape::Wrapped("ChirpUsers".into()));
    }

    #[test]
    fn an_unknown_dataset_is_refused_before_it_runs() {
        let catalog = Catalog::default();
        let rules = Rules {
            catalog: Some(&catalog),
            ..Rules::default()
        };
        let e = translate("select value g from gargel g;", rules).unwrap_err();
        assert_eq!(
            e.message,
            "ASX1077: Cannot find dataset gargel in dataverse Default nor an alias with name gargel (in line 1, at column 21)"
        );
        let ok = translate("with t as (select 1 as a) select a from t;", rules);
        assert!(ok.is_ok(), "{ok:?}");
    }

    #[test]
    fn select_value_of_a_dataset_variable_is_its_record() {
        let t = sql(
            "SELECT VALUE user FROM GleambookUsers user WHERE user.userSince >= datetime('2010-07-22T00:00:00');",
        );
        assert_eq!(
            t.exec_sql,
            r#"SELECT "user".* FROM GleambookUsers user WHERE "user".userSince >= CAST('2010-07-22T00:00:00' AS TIMESTAMP)"#
        );
        assert_eq!(t.shape, RowShape::Record);
        let t = sql("SELECT VALUE user.name FROM GleambookUsers user WHERE user.id = 2;");
        assert_eq!(
            t.exec_sql,
            r#"SELECT "user".name AS "$1" FROM GleambookUsers user WHERE "user".id = 2"#
        );
    }

    #[test]
    fn keywords_inside_paths_are_names() {
        let t = sql("SELECT VALUE cm.user.screenName FROM ChirpMessages cm;");
        assert_eq!(
            t.exec_sql,
            r#"SELECT cm."user".screenName AS "$1" FROM ChirpMessages cm"#
        );
    }

    #[test]
    fn group_by_aliases_stand_for_their_keys() {
        let t = sql(
            "SELECT uid AS uid, COUNT(*) AS count FROM GleambookMessages msg GROUP BY msg.authorId AS uid ORDER BY uid;",
        );
        assert_eq!(
            t.exec_sql,
            "SELECT msg.authorId AS uid, COUNT(*) AS count FROM GleambookMessages msg GROUP BY msg.authorId ORDER BY msg.authorId"
        );
    }

    #[test]
    fn let_copies_are_bounded_whatever_the_chain() {
        let row = |v: &str| format!("[{}]", [v; 10].join(", "));
        let mut text = format!("let x0 = {}", row("1"));
        for i in 1..8 {
            text.push_str(&format!(", x{i} = {}", row(&format!("x{}", i - 1))));
        }
        text.push_str(" select value x7;");
        let e = translate(&text, Rules::default()).unwrap_err();
        assert!(e.message.contains("used too often"), "{}", e.message);
        let many: Vec<String> = (0..300).map(|i| format!("v{i} = {i}")).collect();
        let text = format!("let {} select value 1;", many.join(", "));
        let e = translate(&text, Rules::default()).unwrap_err();
        assert!(e.message.contains("at most 256"), "{}", e.message);
        let t = sql("let x = 1, y = x + 1 select value y;");
        assert_eq!(t.exec_sql, r#"SELECT ((1) + 1) AS "$1""#);
    }

    #[test]
    fn question_marks_are_numbered() {
        let t = sql("select ? as a, ? as b, $name as c;");
        assert_eq!(t.exec_sql, "SELECT $1 AS a, $2 AS b, $name AS c");
        assert_eq!(
            t.parameters,
            serde_json::json!([1, 2, "name"])
                .as_array()
                .unwrap()
                .clone()
        );
    }

    #[test]
    fn syntax_errors_say_line_and_column() {
        let e = translate("select * fro;", Rules::default()).unwrap_err();
        assert_eq!(
            e.message,
            r#"ASX1001: Syntax error: In line 1 >>select * fro;<< Encountered <IDENTIFIER> "fro" at column 10. "#
        );
    }

    #[test]
    fn statements_polyquery_does_not_run_are_refused_by_kind() {
        let async_rules = Rules {
            asynchronous: true,
            multi_statement: true,
            ..Rules::default()
        };
        let e = translate("CREATE COLLECTION c PRIMARY KEY (id: int);", async_rules).unwrap_err();
        assert_eq!(
            e.message,
            "ASX1253: Async mode not supported for the statement CREATE COLLECTION (in line 1, at column 1)"
        );
        let ro = Rules {
            readonly: true,
            multi_statement: true,
            ..Rules::default()
        };
        let e = translate("insert into x ({\"a\": 1});", ro).unwrap_err();
        assert_eq!(
            e.message,
            "ASX0044: INSERT statement is not supported in read-only mode"
        );
        let single = Rules::default();
        let e = translate("select 1; select 2;", single).unwrap_err();
        assert_eq!(e.message, "ASX0035: Unsupported multiple statements.");
    }
}
