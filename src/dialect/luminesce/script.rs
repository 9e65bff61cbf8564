//! Luminesce scripts, compiled on the token stream and the sqlparser AST into one query.
//!
//! - Statements are separated by `;`; the last one is the answer.
//! - `@name = <query>` defines a table variable and `@@name = <query>` a scalar variable, visible to
//!   the statements after it (names ignore case, and are defined once). Table variables become CTEs
//!   named `"@name"` in front of the answer's own; scalar variables become scalar subqueries.
//! - `#2020-01-01#` (and `#2020-01-01 10:30:00#`) is a date-time literal.
//! - `* (except a, b)` (or `* (- a, b)`) leaves columns out (`exclusions.rs`).
//! - `use <provider> … enduse` calls a direct provider. `Sys.Admin.SetupView`: its body is the
//!   variable's query, and the view it names is saved once the script succeeds. `Drive.SaveAs`
//!   (`save_as.rs`): the job writes table variables to Drive files before its answer runs.
//! - An unaliased result column that is not a plain column is named by its text as written, the
//!   way SQLite names it (`length(Str)`, `substr(Str,1,2)`): an `AS "<text>"` is added after it.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::time::Duration;

use chrono::NaiveDateTime;
use sqlparser::ast::helpers::attached_token::AttachedToken;
use sqlparser::ast::{
    Cte, Expr, Ident, Query, Statement, TableAlias, Value, VisitMut, VisitorMut, With,
};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::keywords::Keyword;

use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace, Word};

use super::view_parameters::{self, PLACEHOLDER_PREFIX, ViewParameter};
use crate::query::{EngineError, ErrorKind, syntax_message};

/// A compiled script: the one query that answers it, and the views it sets up.
#[derive(Debug)]
pub struct Compiled {
    pub statement: Statement,
    pub views: Vec<ViewSetup>,
    /// The files the script writes (`Drive.SaveAs`), in order, before its answer runs.
    pub saves: Vec<super::save_as::DriveSave>,
    /// What its `WAIT`s add up to: paused before the answer runs.
    pub wait: Duration,
    /// `pragma TimeoutSec`.
    pub timeout: Option<Duration>,
}

/// `use Sys.Admin.SetupView --provider=<name> ---- <query> enduse`: a view to save once the
/// script that sets it up succeeds.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ViewSetup {
    pub name: String,
    pub description: Option<String>,
    /// The view's query, as written.
    pub sql: String,
    /// The whole `use … enduse` text.
    pub setup: String,
    /// `--deleteProvider`: the view is removed instead.
    #[serde(default)]
    pub delete: bool,
    /// The table variable the call is assigned to, if any.
    #[serde(default)]
    pub variable: Option<String>,
    /// `--parameters`: what its query reads as `#PARAMETERVALUE(Name)`.
    #[serde(default)]
    pub parameters: Vec<ViewParameter>,
}

/// The direct provider that saves views.
pub const SETUP_VIEW: &str = "Sys.Admin.SetupView";

/// Compiles a Luminesce script into the one query that answers it. It may read `earlier` table
/// variables (name, query) as its own (a multi-query's queries read the ones before them); they
/// come first among its CTEs.
pub fn compile_with(sql: &str, earlier: &[(String, Box<Query>)]) -> Result<Compiled, EngineError> {
    compile_at(sql, true, earlier)
}

/// `direct`: whether `use … enduse` blocks may appear (not inside a view's own query).
fn compile_at(
    sql: &str,
    direct: bool,
    earlier: &[(String, Box<Query>)],
) -> Result<Compiled, EngineError> {
    // Bounded before any work: the script layer tokenizes and names columns before parsing.
    crate::sql::guard::check_length(sql).map_err(refused)?;
    let source = Source::new(sql);
    let tokens = Tokenizer::new(&SQLiteDialect {}, sql)
        .tokenize_with_location()
        .map_err(|e| syntax(e.to_string()))?;
    let tokens = date_literals(&source, tokens)?;
    let tokens = super::modifiers::frame_exclusions(tokens)?;
    let (tokens, exclusions) = super::exclusions::take(tokens)?;
    let mut tables: Vec<(String, Box<Query>)> = earlier
        .iter()
        .map(|(name, query)| (name.to_lowercase(), query.clone()))
        .collect();
    let mut scalars: HashMap<String, Box<Query>> = HashMap::new();
    let mut answer: Option<Box<Query>> = None;
    let mut views: Vec<ViewSetup> = Vec::new();
    let mut saves: Vec<super::save_as::DriveSave> = Vec::new();
    let mut wait = Duration::ZERO;
    let mut timeout = None;
    for statement in statements(&tokens)? {
        let statement = trim(statement);
        if statement.is_empty() {
            continue;
        }
        if let Some(pragma) = super::modifiers::pragma(statement)? {
            let super::modifiers::Pragma::Timeout(seconds) = pragma;
            timeout = Some(seconds);
            continue;
        }
        if answer.is_some() {
            return Err(unsupported(
                "only the last statement of a script may be a query: assign the earlier ones to @table or @@scalar variables",
            ));
        }
        let (target, body) = assignment(statement);
        super::modifiers::refuse_types(body)?;
        let query = if let Some(call) = direct_call(&source, body)? {
            if !direct {
                return Err(unsupported(
                    "a view's query cannot call a direct provider (use … enduse)",
                ));
            }
            if target.as_ref().is_some_and(|t| t.scalar) {
                return Err(syntax(
                    "a direct provider's result is a table: assign it to an @table variable",
                ));
            }
            if call
                .provider
                .eq_ignore_ascii_case(super::save_as::DRIVE_SAVE_AS)
            {
                let (written, query) =
                    super::save_as::compile(&call, &tables, &scalars, saves.len())?;
                saves.extend(written);
                query
            } else {
                let (mut view, query) = call.setup_view()?;
                view.variable = target.as_ref().map(|t| t.name.clone());
                views.push(view);
                query
            }
        } else {
            let body = super::modifiers::take_waits(body, &mut wait)?;
            let body = variables(&body, &tables, &scalars)?;
            let body = name_columns(&source, body)?;
            parse(body, &scalars, &exclusions)?
        };
        match target {
            None => answer = Some(query),
            Some(Target { name, scalar }) => {
                let key = name.to_lowercase();
                let known = tables.iter().any(|(n, _)| *n == key) || scalars.contains_key(&key);
                if known {
                    return Err(syntax(format!(
                        "the variable {}{name} is already defined",
                        if scalar { "@@" } else { "@" }
                    )));
                }
                if scalar {
                    scalars.insert(key, query);
                } else {
                    tables.push((key, query));
                }
            }
        }
    }
    let Some(mut answer) = answer else {
        return Err(syntax(
            "the script has no query to answer: its last statement must be a query",
        ));
    };
    with_variables(&mut answer, tables);
    Ok(Compiled {
        statement: Statement::Query(answer),
        views,
        saves,
        wait,
        timeout,
    })
}

/// Puts table variables (name, query) in front of a query's own CTEs, named `"@name"`.
pub(super) fn with_variables(query: &mut Query, tables: Vec<(String, Box<Query>)>) {
    if tables.is_empty() {
        return;
    }
    let ctes = tables.into_iter().map(|(name, query)| Cte {
        alias: TableAlias {
            explicit: false,
            name: table_variable(&name),
            columns: Vec::new(),
            at: None,
        },
        query,
        from: None,
        materialized: None,
        closing_paren_token: AttachedToken::empty(),
    });
    match &mut query.with {
        Some(with) => {
            let own = std::mem::take(&mut with.cte_tables);
            with.cte_tables = ctes.chain(own).collect();
        }
        None => {
            query.with = Some(With {
                with_token: AttachedToken::empty(),
                recursive: false,
                cte_tables: ctes.collect(),
            });
        }
    }
}

/// The statements of a script: split at `;`, except inside `use … enduse`.
fn statements(tokens: &[TokenWithSpan]) -> Result<Vec<&[TokenWithSpan]>, EngineError> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_use: Option<&TokenWithSpan> = None;
    for (i, t) in tokens.iter().enumerate() {
        match (in_use, bare_word(t)) {
            (None, Some(Keyword::USE)) => in_use = Some(t),
            (Some(_), Some(Keyword::NoKeyword)) if is_enduse(t) => in_use = None,
            (None, _) if t.token == Token::SemiColon => {
                out.push(&tokens[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if let Some(open) = in_use {
        return Err(syntax(format!(
            "the 'use' at line {}, column {} has no closing 'enduse'",
            open.span.start.line, open.span.start.column
        )));
    }
    out.push(&tokens[start..]);
    Ok(out)
}

/// An unquoted word's keyword.
fn bare_word(t: &TokenWithSpan) -> Option<Keyword> {
    word(t)
        .filter(|w| w.quote_style.is_none())
        .map(|w| w.keyword)
}

fn is_enduse(t: &TokenWithSpan) -> bool {
    word(t).is_some_and(|w| w.quote_style.is_none() && w.value.eq_ignore_ascii_case("enduse"))
}

/// A `use <provider> [with @a, …] [limit n] <options> ---- <body> enduse` call, read off its text.
pub(super) struct DirectCall<'a> {
    pub provider: String,
    /// The text after the provider's name on its first line (`with …`, `limit …`).
    pub header: &'a str,
    /// `--name=value` (or `--name:value`, or a bare `--name`) lines before the `----` line; lines
    /// that do not start with `--` continue the option before them.
    pub options: Vec<(String, String)>,
    pub body: &'a str,
    text: &'a str,
}

/// The direct provider call a statement's body is, if it is one.
fn direct_call<'a>(
    source: &Source<'a>,
    body: &[TokenWithSpan],
) -> Result<Option<DirectCall<'a>>, EngineError> {
    let body = trim(body);
    let (Some(first), Some(last)) = (body.first(), body.last()) else {
        return Ok(None);
    };
    if bare_word(first) != Some(Keyword::USE) {
        return Ok(None);
    }
    if !is_enduse(last) {
        return Err(syntax(
            "nothing may follow 'enduse' but the ';' that ends the statement",
        ));
    }
    let text = source.between(first, last);
    let inner = text
        .len()
        .checked_sub("enduse".len())
        .and_then(|end| text.get("use".len()..end))
        .ok_or_else(|| syntax("a 'use … enduse' call could not be read"))?;
    let (first_line, rest) = inner.split_once('\n').unwrap_or((inner, ""));
    let first_line = first_line.trim();
    let name_end = provider_name_end(first_line);
    let provider = first_line[..name_end].replace(['[', ']'], "");
    if provider.is_empty() {
        return Err(syntax(
            "'use' must name a provider: use <provider> … enduse",
        ));
    }
    let mut options: Vec<(String, String)> = Vec::new();
    let mut body_text = "";
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        offset += line.len();
        let trimmed = line.trim();
        if trimmed.len() >= 4 && trimmed.bytes().all(|b| b == b'-') {
            body_text = &rest[offset..];
            break;
        }
        if let Some(option) = trimmed.strip_prefix("--") {
            let (name, value) = match option.find(['=', ':']) {
                Some(at) => (&option[..at], option[at + 1..].trim()),
                None => (option, ""),
            };
            options.push((name.trim().to_string(), value.to_string()));
        } else if !trimmed.is_empty() {
            match options.last_mut() {
                Some((_, value)) => {
                    if !value.is_empty() {
                        value.push('\n');
                    }
                    value.push_str(trimmed);
                }
                None => {
                    return Err(syntax(format!(
                        "'{trimmed}' in the call of {provider} is neither an --option nor after the ---- line"
                    )));
                }
            }
        }
    }
    Ok(Some(DirectCall {
        provider,
        header: first_line[name_end..].trim(),
        options,
        body: body_text,
        text,
    }))
}

/// Where a provider's name ends on the first line of a `use`: at the first blank outside brackets.
fn provider_name_end(line: &str) -> usize {
    let mut bracketed = false;
    for (i, c) in line.char_indices() {
        match c {
            '[' => bracketed = true,
            ']' => bracketed = false,
            c if c.is_whitespace() && !bracketed => return i,
            _ => {}
        }
    }
    line.len()
}

impl DirectCall<'_> {
    /// `Sys.Admin.SetupView`: the view it saves and the query the variable holds (the view's own).
    fn setup_view(&self) -> Result<(ViewSetup, Box<Query>), EngineError> {
        if !self.provider.eq_ignore_ascii_case(SETUP_VIEW) {
            return Err(unsupported(format!(
                "the direct provider {} is not available here; polyquery serves {SETUP_VIEW} and {} only",
                self.provider,
                super::save_as::DRIVE_SAVE_AS
            )));
        }
        if !self.header.is_empty() {
            return Err(unsupported(format!(
                "{SETUP_VIEW} takes no 'with' or 'limit': '{}'",
                self.header
            )));
        }
        let mut name = None;
        let mut description = None;
        let mut delete = false;
        let mut parameters = Vec::new();
        for (option, value) in &self.options {
            match option.to_ascii_lowercase().as_str() {
                "provider" | "p" => name = Some(value.trim_matches(['"', '\'']).to_string()),
                "description" | "d" => description = Some(value.trim_matches('"').to_string()),
                "deleteprovider" => delete = true,
                "parameters" => parameters = view_parameters::parse(value)?,
                other => {
                    return Err(syntax(format!(
                        "{SETUP_VIEW} has no option --{other}; it takes --provider, --description, --parameters and --deleteProvider"
                    )));
                }
            }
        }
        let name = name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| syntax(format!("{SETUP_VIEW} needs --provider=<the view's name>")))?;
        let sql = self.body.trim();
        if sql.is_empty() {
            return Err(syntax(format!(
                "{SETUP_VIEW} needs the view's query after a ---- line"
            )));
        }
        let mut query = compile_view(sql)?;
        // The setup's own run reads the defaults.
        view_parameters::bind(&mut query, &parameters, &Default::default())?;
        let view = ViewSetup {
            name,
            description,
            sql: sql.to_string(),
            setup: self.text.to_string(),
            delete,
            variable: None,
            parameters,
        };
        Ok((view, query))
    }
}

/// Compiles a saved view's query (a script without direct provider calls).
pub fn compile_view(sql: &str) -> Result<Box<Query>, EngineError> {
    match compile_at(sql, false, &[])?.statement {
        Statement::Query(query) => Ok(query),
        _ => Err(unsupported("a view's body must be a query")),
    }
}

/// The CTE name a table variable becomes; quoted, so it can never meet a table's name.
pub(super) fn table_variable(name: &str) -> Ident {
    Ident::with_quote('"', format!("@{name}"))
}

pub(super) fn syntax(message: impl Into<String>) -> EngineError {
    EngineError::new(ErrorKind::Syntax, message.into())
}

fn refused(e: crate::sql::guard::Refused) -> EngineError {
    match e {
        crate::sql::guard::Refused::Syntax(e) => syntax(syntax_message(&e.to_string())),
        limit => EngineError::new(ErrorKind::Limit, limit.message()),
    }
}

pub(super) fn unsupported(message: impl Into<String>) -> EngineError {
    EngineError::new(ErrorKind::Unsupported, message.into())
}

/// The SQL text, to turn token locations back into byte offsets.
struct Source<'a> {
    text: &'a str,
    /// Per line, the index (in characters) of its first character.
    line_starts: Vec<usize>,
    /// Per character, its byte offset.
    char_offsets: Vec<usize>,
}

impl<'a> Source<'a> {
    fn new(text: &'a str) -> Self {
        // Per line, the index of its first character; per character, its byte offset: a location
        // turns into a byte offset in constant time, so naming every column stays linear.
        let mut line_starts = vec![0];
        let mut char_offsets = Vec::with_capacity(text.len());
        for (n, (i, c)) in text.char_indices().enumerate() {
            char_offsets.push(i);
            if c == '\n' {
                line_starts.push(n + 1);
            }
        }
        Source {
            text,
            line_starts,
            char_offsets,
        }
    }

    /// The byte offset of a 1-based line and column (columns count characters).
    fn offset(&self, at: Location) -> usize {
        let Some(&first) = (at.line as usize)
            .checked_sub(1)
            .and_then(|l| self.line_starts.get(l))
        else {
            return self.text.len();
        };
        let column = (at.column as usize).saturating_sub(1);
        first
            .checked_add(column)
            .and_then(|n| self.char_offsets.get(n))
            .copied()
            .unwrap_or(self.text.len())
    }

    /// The text from the start of one token to the end of another.
    fn between(&self, first: &TokenWithSpan, last: &TokenWithSpan) -> &'a str {
        let start = self.offset(first.span.start);
        let end = self.offset(last.span.end).max(start);
        &self.text[start..end]
    }
}

pub(super) fn is_blank(t: &TokenWithSpan) -> bool {
    matches!(t.token, Token::Whitespace(_))
}

fn trim(tokens: &[TokenWithSpan]) -> &[TokenWithSpan] {
    let start = tokens
        .iter()
        .position(|t| !is_blank(t))
        .unwrap_or(tokens.len());
    let end = tokens
        .iter()
        .rposition(|t| !is_blank(t))
        .map_or(start, |e| e + 1);
    &tokens[start..end]
}

pub(super) fn word(t: &TokenWithSpan) -> Option<&Word> {
    match &t.token {
        Token::Word(w) => Some(w),
        _ => None,
    }
}

/// `#…#` date literals become `TIMESTAMP '…'`.
fn date_literals(
    source: &Source,
    tokens: Vec<TokenWithSpan>,
) -> Result<Vec<TokenWithSpan>, EngineError> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        if tokens[i].token != Token::Sharp {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        if let Some((name, next)) = parameter_value(&tokens, i + 1) {
            out.push(TokenWithSpan::new(
                Token::Placeholder(format!("{PLACEHOLDER_PREFIX}{name}")),
                tokens[i].span,
            ));
            i = next;
            continue;
        }
        let Some(close) = tokens[i + 1..]
            .iter()
            .position(|t| t.token == Token::Sharp)
            .map(|p| p + i + 1)
        else {
            return Err(syntax(format!(
                "the date literal at line {}, column {} has no closing '#'",
                tokens[i].span.start.line, tokens[i].span.start.column
            )));
        };
        let start = source.offset(tokens[i].span.end);
        let end = source.offset(tokens[close].span.start).max(start);
        let text = source.text[start..end].trim();
        let moment = date_literal(text).ok_or_else(|| {
            syntax(format!(
                "#{text}# is not a date literal: write #yyyy-MM-dd# or #yyyy-MM-dd HH:mm:ss#"
            ))
        })?;
        out.push(TokenWithSpan::new(
            Token::make_keyword("TIMESTAMP"),
            tokens[i].span,
        ));
        out.push(TokenWithSpan::new(
            Token::Whitespace(Whitespace::Space),
            tokens[i].span,
        ));
        out.push(TokenWithSpan::new(
            Token::SingleQuotedString(moment),
            tokens[close].span,
        ));
        i = close + 1;
    }
    Ok(out)
}

/// `PARAMETERVALUE(Name)` after a `#` (blanks allowed inside the parentheses): the name, and
/// where the tokens after it start.
fn parameter_value(tokens: &[TokenWithSpan], at: usize) -> Option<(String, usize)> {
    let significant: Vec<usize> = (at..tokens.len())
        .filter(|&i| !is_blank(&tokens[i]))
        .take(4)
        .collect();
    let [keyword, open, name, close] = significant[..] else {
        return None;
    };
    let keyword_fits = keyword == at
        && word(&tokens[keyword]).is_some_and(|w| w.value.eq_ignore_ascii_case("PARAMETERVALUE"));
    let name = word(&tokens[name])?;
    (keyword_fits && tokens[open].token == Token::LParen && tokens[close].token == Token::RParen)
        .then(|| (name.value.clone(), close + 1))
}

/// The date-time a literal's text names, as `yyyy-MM-dd HH:mm:ss[.fff]`.
pub(super) fn date_literal(text: &str) -> Option<String> {
    const DATE_TIMES: [&str; 4] = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ];
    let moment = DATE_TIMES
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })?;
    Some(moment.format("%Y-%m-%d %H:%M:%S%.f").to_string())
}

/// Which variable a statement assigns.
struct Target {
    name: String,
    scalar: bool,
}

/// Splits `@name = <query>` / `@@name = <query>` into its target and body.
fn assignment(statement: &[TokenWithSpan]) -> (Option<Target>, &[TokenWithSpan]) {
    let significant: Vec<usize> = (0..statement.len())
        .filter(|&i| !is_blank(&statement[i]))
        .take(3)
        .collect();
    if let [at, name, eq] = significant[..]
        && name == at + 1
        && matches!(statement[at].token, Token::AtSign | Token::AtAt)
        && statement[eq].token == Token::Eq
        && let Some(w) = word(&statement[name])
    {
        let target = Target {
            name: w.value.clone(),
            scalar: statement[at].token == Token::AtAt,
        };
        return (Some(target), &statement[eq + 1..]);
    }
    (None, statement)
}

/// Table variables (`@name` naming one) become their CTE's name; scalar variables (`@@name`) a
/// placeholder replaced by the subquery once parsed.
fn variables(
    body: &[TokenWithSpan],
    tables: &[(String, Box<Query>)],
    scalars: &HashMap<String, Box<Query>>,
) -> Result<Vec<TokenWithSpan>, EngineError> {
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        let next = body.get(i + 1).and_then(word);
        match (&body[i].token, next) {
            (Token::AtSign, Some(w))
                if tables.iter().any(|(n, _)| n.eq_ignore_ascii_case(&w.value)) =>
            {
                let name = w.value.to_lowercase();
                out.push(TokenWithSpan::new(
                    Token::Word(Word {
                        value: format!("@{name}"),
                        quote_style: Some('"'),
                        keyword: Keyword::NoKeyword,
                    }),
                    body[i].span,
                ));
                i += 2;
            }
            (Token::AtAt, Some(w)) => {
                let name = w.value.to_lowercase();
                if !scalars.contains_key(&name) {
                    return Err(syntax(format!(
                        "the scalar variable @@{} is not defined before it is used",
                        w.value
                    )));
                }
                out.push(TokenWithSpan::new(
                    Token::Placeholder(format!("@@{name}")),
                    body[i].span,
                ));
                i += 2;
            }
            _ => {
                out.push(body[i].clone());
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Parses one statement's tokens as a query and puts the scalar variables' subqueries in.
fn parse(
    tokens: Vec<TokenWithSpan>,
    scalars: &HashMap<String, Box<Query>>,
    exclusions: &super::exclusions::Exclusions,
) -> Result<Box<Query>, EngineError> {
    // Client text: parsed within the SQL limits (length, a work budget, depth), like every entry.
    let mut statements =
        crate::sql::guard::parse_tokens(&SQLiteDialect {}, tokens, |mut p| p.parse_statements())
            .map_err(refused)?;
    let statement = match statements.len() {
        1 => statements.remove(0),
        _ => return Err(syntax("expected one statement between ';'")),
    };
    let Statement::Query(mut query) = statement else {
        return Err(unsupported(format!(
            "only queries are run here, not {}",
            crate::sql::statement_kind(&statement)
        )));
    };
    let _ = query.visit(&mut ScalarVariables { scalars });
    exclusions.attach(&mut query);
    Ok(query)
}

struct ScalarVariables<'a> {
    scalars: &'a HashMap<String, Box<Query>>,
}

impl VisitorMut for ScalarVariables<'_> {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if let Expr::Value(v) = expr
            && let Value::Placeholder(p) = &v.value
            && let Some(query) = p.strip_prefix("@@").and_then(|n| self.scalars.get(n))
        {
            *expr = Expr::Subquery(query.clone());
        }
        ControlFlow::Continue(())
    }
}

/// The clauses that may follow a select list (and so end it; `WINDOW` and `INTO` too).
pub(super) const CLAUSES: [Keyword; 9] = [
    Keyword::FROM,
    Keyword::WHERE,
    Keyword::GROUP,
    Keyword::HAVING,
    Keyword::ORDER,
    Keyword::LIMIT,
    Keyword::UNION,
    Keyword::EXCEPT,
    Keyword::INTERSECT,
];

/// Keywords that are values, never names or aliases.
const VALUE_KEYWORDS: [Keyword; 7] = [
    Keyword::NULL,
    Keyword::TRUE,
    Keyword::FALSE,
    Keyword::CURRENT_DATE,
    Keyword::CURRENT_TIME,
    Keyword::CURRENT_TIMESTAMP,
    Keyword::END,
];

/// Keywords after which a name is an operand, not an alias.
const OPERATOR_KEYWORDS: [Keyword; 16] = [
    Keyword::AND,
    Keyword::OR,
    Keyword::NOT,
    Keyword::IS,
    Keyword::IN,
    Keyword::LIKE,
    Keyword::BETWEEN,
    Keyword::COLLATE,
    Keyword::CASE,
    Keyword::WHEN,
    Keyword::THEN,
    Keyword::ELSE,
    Keyword::ESCAPE,
    Keyword::DISTINCT,
    Keyword::AS,
    Keyword::EXISTS,
];

/// A word that names something (a column, table or alias).
fn is_name(w: &Word) -> bool {
    w.quote_style.is_some()
        || !(VALUE_KEYWORDS.contains(&w.keyword) || OPERATOR_KEYWORDS.contains(&w.keyword))
}

/// Adds `AS "<text as written>"` after every unaliased select item that is not a plain column.
///
/// One pass with a stack of parenthesis levels, so a script's cost is linear in its length
/// however its selects nest. The names of nested items overlap (an outer item's text holds the
/// inner one's), so their total length is bounded.
fn name_columns(
    source: &Source,
    tokens: Vec<TokenWithSpan>,
) -> Result<Vec<TokenWithSpan>, EngineError> {
    let alias_budget = source.text.len().saturating_mul(8).max(64 * 1024);
    let mut alias_bytes = 0usize;
    let mut inserts: Vec<(usize, String)> = Vec::new();
    // Per open parenthesis (and the statement itself), the select list being read there.
    let mut levels: Vec<Option<SelectList>> = vec![None];
    let significant = (0..tokens.len()).filter(|&i| !is_blank(&tokens[i]));
    for at in significant.chain(std::iter::once(tokens.len())) {
        let token = tokens.get(at).map(|t| &t.token);
        let Some(level) = levels.last_mut() else {
            break;
        };
        if let Some(list) = level {
            let ends_list = match token {
                None | Some(Token::SemiColon | Token::RParen) => true,
                Some(Token::Word(w)) => {
                    w.quote_style.is_none()
                        && (CLAUSES.contains(&w.keyword)
                            || matches!(w.keyword, Keyword::WINDOW | Keyword::INTO))
                }
                _ => false,
            };
            let modifier = list.item.n == 0
                && list.just_opened
                && matches!(token, Some(Token::Word(w))
                    if matches!(w.keyword, Keyword::DISTINCT | Keyword::ALL) && w.quote_style.is_none());
            if ends_list || token == Some(&Token::Comma) {
                if let Some(alias) = list.item.unnamed(source, &tokens) {
                    alias_bytes = alias_bytes.saturating_add(alias.len());
                    if alias_bytes > alias_budget {
                        return Err(unsupported(
                            "the select lists nest too deeply to name their columns: alias the nested expressions",
                        ));
                    }
                    inserts.push((list.item.last, alias));
                }
                list.item = Item::default();
                list.just_opened = false;
                if ends_list {
                    *level = None;
                }
            } else if !modifier {
                list.item.push(at, &tokens);
                list.just_opened = false;
            }
        }
        match token {
            Some(Token::Word(w)) if w.keyword == Keyword::SELECT && w.quote_style.is_none() => {
                *level = Some(SelectList {
                    item: Item::default(),
                    just_opened: true,
                });
            }
            Some(Token::LParen) => levels.push(None),
            Some(Token::RParen) if levels.len() > 1 => {
                levels.pop();
                // The closing parenthesis ends the enclosing item's parenthesised part.
                if let Some(Some(list)) = levels.last_mut() {
                    list.item.push(at, &tokens);
                }
            }
            _ => {}
        }
    }
    inserts.sort_by_key(|(after, _)| *after);
    let mut named = Vec::with_capacity(tokens.len() + 4 * inserts.len());
    let mut inserts = inserts.into_iter().peekable();
    for (i, token) in tokens.into_iter().enumerate() {
        let span = token.span;
        named.push(token);
        while let Some((_, alias)) = inserts.next_if(|(after, _)| *after == i) {
            let at = |token| TokenWithSpan::new(token, span);
            named.extend([
                at(Token::Whitespace(Whitespace::Space)),
                at(Token::make_keyword("AS")),
                at(Token::Whitespace(Whitespace::Space)),
                at(Token::Word(Word {
                    value: alias,
                    quote_style: Some('"'),
                    keyword: Keyword::NoKeyword,
                })),
            ]);
        }
    }
    Ok(named)
}

/// A select list being read: its current item.
struct SelectList {
    item: Item,
    /// Nothing read since SELECT, so DISTINCT or ALL is a modifier, not an item.
    just_opened: bool,
}

/// What naming needs of a select item: its ends, its length and whether it is a plain column.
/// Tokens inside its parentheses are not pushed: only the parentheses themselves.
#[derive(Default)]
struct Item {
    first: usize,
    before_last: Option<usize>,
    last: usize,
    n: usize,
    /// Alternating names and periods so far (`s.t.column`).
    plain: bool,
}

impl Item {
    fn push(&mut self, at: usize, tokens: &[TokenWithSpan]) {
        let token = &tokens[at].token;
        let fits = if self.n % 2 == 1 {
            matches!(token, Token::Period)
        } else {
            matches!(token, Token::Word(w) if is_name(w))
        };
        if self.n == 0 {
            self.first = at;
            self.plain = fits;
        } else {
            self.plain &= fits;
            self.before_last = Some(self.last);
        }
        self.last = at;
        self.n += 1;
    }

    /// The name SQLite gives the item when it has no alias and is not a plain column (or `*`).
    fn unnamed(&self, source: &Source, tokens: &[TokenWithSpan]) -> Option<String> {
        let n = self.n;
        if n == 0 || matches!(tokens[self.last].token, Token::Mul) {
            return None;
        }
        // A plain column, `t.column` or `s.t.column`: SQLite names it by the column's own name.
        if self.plain && n % 2 == 1 && n <= 5 {
            return None;
        }
        // Already aliased: `expr AS name` or `expr name`.
        if let Token::Word(last) = &tokens[self.last].token
            && is_name(last)
            && let Some(before) = self.before_last
        {
            let aliased = match &tokens[before].token {
                Token::Word(w) if w.keyword == Keyword::AS && w.quote_style.is_none() => true,
                Token::Word(w) => is_name(w) || w.keyword == Keyword::END,
                Token::RParen | Token::Number(..) | Token::SingleQuotedString(_) => true,
                _ => false,
            };
            if aliased {
                return None;
            }
        }
        Some(
            source
                .between(&tokens[self.first], &tokens[self.last])
                .to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compiled(sql: &str) -> String {
        compile_with(sql, &[])
            .map(|s| s.statement.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn variables_become_ctes_and_subqueries() {
        assert_eq!(
            compiled("@x = select [Int], Str from T where [Int] < 4; select * from @x"),
            r#"WITH "@x" AS (SELECT [Int], Str FROM T WHERE [Int] < 4) SELECT * FROM "@x""#
        );
        assert_eq!(
            compiled("@@n = select 3; select [Int] from T where [Int] <= @@n;"),
            r#"SELECT [Int] FROM T WHERE [Int] <= (SELECT 3 AS "3")"#
        );
        assert_eq!(
            compiled(
                "@A = select 1 as a; @b = select a from @a; with c as (select 2) select * from @B, c"
            ),
            r#"WITH "@a" AS (SELECT 1 AS a), "@b" AS (SELECT a FROM "@a"), c AS (SELECT 2 AS "2") SELECT * FROM "@b", c"#
        );
    }

    #[test]
    fn scripts_that_cannot_be_answered_are_refused() {
        for (sql, says) in [
            ("@x = select 1", "no query to answer"),
            ("select 1; select 2", "only the last statement"),
            ("@x = select 1; @x = select 2; select 1", "already defined"),
            ("select @@n", "not defined"),
            ("select #2020-13-01#", "not a date literal"),
            ("select #2020-01-01", "no closing"),
        ] {
            let got = compiled(sql);
            assert!(got.contains(says), "{sql}: {got}");
        }
    }

    #[test]
    fn date_literals_are_timestamps() {
        assert_eq!(
            compiled("select 1 as a where x < #2020-01-02# and y = #2020-01-02 03:04:05#"),
            "SELECT 1 AS a WHERE x < TIMESTAMP '2020-01-02 00:00:00' AND y = TIMESTAMP '2020-01-02 03:04:05'"
        );
    }

    #[test]
    fn unaliased_expressions_are_named_by_their_text() {
        assert_eq!(
            compiled(
                "select length( Str ), substr(Str,1,2), Str, t.Str, [Int] n, [Int]+1 as m, count(*) c, case when 1 then 2 end, * from t"
            ),
            r#"SELECT length(Str) AS "length( Str )", SUBSTR(Str, 1, 2) AS "substr(Str,1,2)", Str, t.Str, [Int] AS n, [Int] + 1 AS m, count(*) AS c, CASE WHEN 1 THEN 2 END AS "case when 1 then 2 end", * FROM t"#
        );
        assert_eq!(
            compiled("select distinct x is null, (select max(a) from u) from t"),
            r#"SELECT DISTINCT x IS NULL AS "x is null", (SELECT max(a) AS "max(a)" FROM u) AS "(select max(a) from u)" FROM t"#
        );
    }

    /// A script's compiled query and the one view it sets up.
    fn setup(script: &str) -> (String, ViewSetup) {
        let compiled = compile_with(script, &[]).unwrap();
        let [view] = compiled.views.as_slice() else {
            panic!("{:?}", compiled.views)
        };
        (compiled.statement.to_string(), view.clone())
    }

    #[test]
    fn setup_view_is_the_variable_of_its_query_and_names_the_view() {
        let (query, view) = setup(
            "@v = use Sys.Admin.SetupView\n  --provider=Views.Small\n  --description=few rows\n  ----\n  @a = select [Int] from T; select [Int], length(Str) from @a where [Int] < 3;\nenduse;\nselect * from @v",
        );
        assert_eq!(
            query,
            r#"WITH "@v" AS (WITH "@a" AS (SELECT [Int] FROM T) SELECT [Int], length(Str) AS "length(Str)" FROM "@a" WHERE [Int] < 3) SELECT * FROM "@v""#
        );
        assert_eq!(view.name, "Views.Small");
        assert_eq!(view.description.as_deref(), Some("few rows"));
        assert!(view.sql.starts_with("@a = select"), "{}", view.sql);
        assert!(view.setup.starts_with("use Sys") && view.setup.ends_with("enduse"));
        // Parameters take their defaults in the setup's own run.
        let (query, view) = setup(
            "@v = use Sys.Admin.SetupView\n--provider=V\n--parameters\nLimit,Int,3,true\nFrom,DateTime,2000-01-02\n----\nselect [Int] from T where [Int] <= #PARAMETERVALUE( limit ) and D >= #parametervalue(From)\nenduse;\nselect * from @v",
        );
        assert_eq!(
            query,
            r#"WITH "@v" AS (SELECT [Int] FROM T WHERE [Int] <= (3) AND D >= (CAST('2000-01-02 00:00:00' AS TIMESTAMP))) SELECT * FROM "@v""#
        );
        assert_eq!(view.parameters.len(), 2);
    }

    #[test]
    fn malformed_calls_and_parameter_references_are_errors_not_panics() {
        for sql in [
            "use",
            "enduse",
            "use enduse",
            "@x = use",
            "@x = use enduse; select 1",
            "@x = USE Sys.Admin.SetupView enduse; select 1",
            "@x = use [Sys.Admin.SetupView\n----\nselect 1 as a\nenduse; select 1",
            "@x = use é\n--é=é\nééé\n----\nselect 'é' as é\nenduse; select 1",
            "@x = use Sys.Admin.SetupView\n--provider=V\n--parameters\n\n----\nselect 1 as a\nenduse; select * from @x",
            "select #PARAMETERVALUE(",
            "select #PARAMETERVALUE(x",
            "select #PARAMETERVALUE()",
            "select #PARAMETERVALUE(x) as a",
            "select # PARAMETERVALUE (x) as a",
        ] {
            let _ = compile_with(sql, &[]);
        }
    }

    #[test]
    fn direct_calls_that_cannot_run_are_refused() {
        for (sql, says) in [
            (
                "@v = use Sys.Admin.SetupView --provider=x ---- select 1 as a; select 1",
                "no closing 'enduse'",
            ),
            (
                "@v = use Drive.Csv with @x\n--file=/a\nenduse; select 1",
                "not available here",
            ),
            (
                "@v = use Drive.SaveAs with @x\n--path=/a\nenduse; select 1",
                "@x is not defined",
            ),
            (
                "@v = use Sys.Admin.SetupView\n--provider=V\nenduse; select 1",
                "after a ---- line",
            ),
            (
                "@v = use Sys.Admin.SetupView\n----\nselect 1 as a\nenduse; select 1",
                "--provider",
            ),
            (
                "@v = use Sys.Admin.SetupView\n--provider=V\n--nope=1\n----\nselect 1 as a\nenduse; select 1",
                "no option --nope",
            ),
            (
                "@v = use Sys.Admin.SetupView\n--provider=V\n--parameters\nP,Int,x,true\n----\nselect 1 as a\nenduse; select 1",
                "not a Int value",
            ),
            (
                "@v = use Sys.Admin.SetupView\n--provider=V\n--parameters\nP,Int,1,true\n----\nselect #PARAMETERVALUE(Q) as a\nenduse; select 1",
                "names no parameter",
            ),
            (
                "@@v = use Sys.Admin.SetupView\n--provider=V\n----\nselect 1 as a\nenduse; select 1",
                "@table variable",
            ),
            (
                "@v = use Sys.Admin.SetupView\n--provider=V\n----\nselect 1 as a\nenduse x; select 1",
                "nothing may follow",
            ),
        ] {
            let got = compiled(sql);
            assert!(got.contains(says), "{sql}: {got}");
        }
    }
}
