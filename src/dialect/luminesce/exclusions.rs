//! Luminesce's column exclusions: `select * (except x, y) from …`, also written `* (- x, y)` (and
//! `t.* (except x)`). SQLite's grammar has no such thing, so the `(except …)` after a wildcard is
//! taken out of the token stream, keyed by where its `*` stands, and put back on the parsed
//! wildcard as the engine's `EXCLUDE (x, y)`. `^` (the main columns) is `*` here: every column of
//! polyquery's tables is a main one (`Sys.Field`'s `IsMain`).

use std::collections::HashMap;
use std::ops::ControlFlow;

use sqlparser::ast::{
    ExcludeSelectItem, Ident, ObjectName, Query, SelectItem, SetExpr, VisitMut, VisitorMut,
    WildcardAdditionalOptions,
};
use sqlparser::keywords::Keyword;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::query::{EngineError, ErrorKind};

/// The columns each wildcard leaves out, by the line and column of its `*`.
#[derive(Debug, Default)]
pub struct Exclusions(HashMap<(u64, u64), Vec<Ident>>);

fn blank(t: &TokenWithSpan) -> bool {
    matches!(t.token, Token::Whitespace(_))
}

/// Whether the `*` at `at` is a wildcard (after `select`, `distinct`, `all`, `,` or `t.`), not a
/// multiplication (`2 * (-x)` keeps its meaning).
fn is_wildcard(tokens: &[TokenWithSpan], at: usize) -> bool {
    let previous = tokens[..at].iter().rev().find(|t| !blank(t));
    match previous.map(|t| &t.token) {
        Some(Token::Word(w)) => {
            w.quote_style.is_none()
                && matches!(
                    w.keyword,
                    Keyword::SELECT | Keyword::DISTINCT | Keyword::ALL
                )
        }
        Some(Token::Comma | Token::Period) => true,
        _ => false,
    }
}

/// Takes each `(except a, b)` / `(- a, b)` that follows a wildcard out of the tokens.
pub fn take(tokens: Vec<TokenWithSpan>) -> Result<(Vec<TokenWithSpan>, Exclusions), EngineError> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut exclusions = Exclusions::default();
    let mut i = 0;
    while i < tokens.len() {
        let token = &tokens[i];
        i += 1;
        let wildcard =
            matches!(token.token, Token::Mul | Token::Caret) && is_wildcard(&tokens, i - 1);
        if !wildcard {
            out.push(token.clone());
            continue;
        }
        out.push(TokenWithSpan::new(Token::Mul, token.span));
        let significant: Vec<usize> = (i..tokens.len())
            .filter(|&j| !blank(&tokens[j]))
            .take(2)
            .collect();
        let [open, marker] = significant[..] else {
            continue;
        };
        let marks = match &tokens[marker].token {
            Token::Word(w) => w.quote_style.is_none() && w.keyword == Keyword::EXCEPT,
            Token::Minus => true,
            _ => false,
        };
        if tokens[open].token != Token::LParen || !marks {
            continue;
        }
        let (names, next) = names(&tokens, marker + 1)?;
        let at = token.span.start;
        exclusions.0.insert((at.line, at.column), names);
        i = next;
    }
    Ok((out, exclusions))
}

/// `a, [b], c )` from `at`: the names, and where the tokens after `)` start.
fn names(tokens: &[TokenWithSpan], at: usize) -> Result<(Vec<Ident>, usize), EngineError> {
    let mut names = Vec::new();
    let mut expect_name = true;
    for (j, t) in tokens.iter().enumerate().skip(at) {
        match (&t.token, expect_name) {
            (Token::Whitespace(_), _) => {}
            (Token::Word(w), true) => {
                names.push(Ident {
                    value: w.value.clone(),
                    quote_style: w.quote_style,
                    span: t.span,
                });
                expect_name = false;
            }
            (Token::Comma, false) => expect_name = true,
            (Token::RParen, false) => return Ok((names, j + 1)),
            _ => break,
        }
    }
    Err(EngineError::new(
        ErrorKind::Syntax,
        "a column exclusion is written * (except a, b) or * (- a, b)",
    ))
}

impl Exclusions {
    /// Puts each exclusion back on its wildcard, as `EXCLUDE (…)`.
    pub fn attach(&self, query: &mut Query) {
        if self.0.is_empty() {
            return;
        }
        let _ = query.visit(&mut Attach { exclusions: self });
    }
}

struct Attach<'a> {
    exclusions: &'a Exclusions,
}

impl VisitorMut for Attach<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        for_each_wildcard(&mut query.body, &mut |options| {
            let at = options.wildcard_token.0.span.start;
            if let Some(names) = self.exclusions.0.get(&(at.line, at.column)) {
                let names = names
                    .iter()
                    .map(|n| ObjectName::from(vec![n.clone()]))
                    .collect();
                options.opt_exclude = Some(ExcludeSelectItem::Multiple(names));
            }
        });
        ControlFlow::Continue(())
    }
}

/// Calls `f` on the options of every wildcard of this query level (through `UNION` and its kin).
pub fn for_each_wildcard(body: &mut SetExpr, f: &mut dyn FnMut(&mut WildcardAdditionalOptions)) {
    match body {
        SetExpr::Select(select) => {
            for item in &mut select.projection {
                match item {
                    SelectItem::Wildcard(options) | SelectItem::QualifiedWildcard(_, options) => {
                        f(options)
                    }
                    _ => {}
                }
            }
        }
        SetExpr::SetOperation { left, right, .. } => {
            for_each_wildcard(left, f);
            for_each_wildcard(right, f);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::dialect::luminesce::script::compile_with;

    fn compiled(sql: &str) -> String {
        compile_with(sql, &[])
            .map(|c| c.statement.to_string())
            .unwrap_or_else(|e| format!("error: {}", e.message))
    }

    #[test]
    fn exclusions_follow_wildcards_only() {
        for (sql, want) in [
            (
                "select * (except Str, [Dbl]) from t",
                "SELECT * EXCLUDE (Str, [Dbl]) FROM t",
            ),
            (
                "select distinct t.* (- a), u.* from t, u",
                "SELECT DISTINCT t.* EXCLUDE (a), u.* FROM t, u",
            ),
            ("select ^ (except a) from t", "SELECT * EXCLUDE (a) FROM t"),
            ("select ^, t.^ from t", "SELECT *, t.* FROM t"),
            (
                "select 2 * (-x), a*(-b) from t",
                r#"SELECT 2 * (-x) AS "2 * (-x)", a * (-b) AS "a*(-b)" FROM t"#,
            ),
            (
                "select * (except a from t",
                "error: a column exclusion is written * (except a, b) or * (- a, b)",
            ),
            (
                "select * (except) from t",
                "error: a column exclusion is written * (except a, b) or * (- a, b)",
            ),
        ] {
            assert_eq!(compiled(sql), want, "{sql}");
        }
    }
}
