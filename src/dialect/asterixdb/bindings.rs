//! SQL++ variable bindings the engine's SQL has no clause for: `LET v = e, …` and `WITH v AS e`
//! of an expression. The clauses are taken out of the tokens, each expression parsed on its own,
//! and every use of a variable replaced by its expression, which is what a binding of a
//! deterministic expression means. The copies are bounded, so that a chain of bindings cannot
//! grow a tree past the limits the parser keeps.

use std::ops::ControlFlow;

use sqlparser::ast::{
    AccessExpr, Expr, Ident, ObjectNamePart, Query, SelectItem, SetExpr, TableAlias, TableFactor,
    VisitMut, VisitorMut, visit_expressions, visit_expressions_mut,
};
use sqlparser::dialect::GenericDialect;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::errors::AsxError;
use crate::sql::guard::{self, Refused};

/// Expression nodes the copies of bound expressions may add to a query, in all (bindings that
/// use bindings included).
const MAX_COPIED_NODES: usize = 20_000;

/// Bindings one request may make (each is a walk over the query).
const MAX_BINDINGS: usize = 256;

/// A variable and the tokens of its expression.
pub(super) struct Binding {
    name: String,
    tokens: Vec<TokenWithSpan>,
}

/// Words that end a `LET` clause when they stand outside brackets.
const CLAUSE_WORDS: &[&str] = &[
    "SELECT", "FROM", "WHERE", "GROUP", "ORDER", "LIMIT", "OFFSET", "HAVING", "LET", "UNION",
];

/// Takes the `LET` clauses, and a leading `WITH` of expressions, out of the tokens.
pub(super) fn take_bindings(
    tokens: Vec<TokenWithSpan>,
) -> Result<(Vec<TokenWithSpan>, Vec<Binding>), AsxError> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut bindings = Vec::new();
    let mut depth = 0usize;
    let mut statement_start = true;
    let mut i = 0;
    while let Some(t) = tokens.get(i) {
        let keyword = word(&t.token);
        let at_top = depth == 0;
        match &t.token {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::SemiColon => {
                statement_start = true;
                out.push(t.clone());
                i += 1;
                continue;
            }
            Token::Whitespace(_) => {
                out.push(t.clone());
                i += 1;
                continue;
            }
            _ => {}
        }
        let with_expressions =
            statement_start && keyword.as_deref() == Some("WITH") && !is_cte(&tokens[i + 1..]);
        statement_start = false;
        if at_top && (keyword.as_deref() == Some("LET") || with_expressions) {
            let (end, found) = clause(&tokens, i + 1, with_expressions)?;
            bindings.extend(found);
            i = end;
            continue;
        }
        out.push(t.clone());
        i += 1;
    }
    Ok((out, bindings))
}

fn word(token: &Token) -> Option<String> {
    match token {
        Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    }
}

/// `WITH v AS (SELECT …)` is a query the engine's WITH reads as it is.
fn is_cte(rest: &[TokenWithSpan]) -> bool {
    let mut words = rest
        .iter()
        .map(|t| &t.token)
        .filter(|t| !matches!(t, Token::Whitespace(_)));
    let (_name, _as, open, inner) = (words.next(), words.next(), words.next(), words.next());
    open == Some(&Token::LParen)
        && matches!(
            inner.and_then(word).as_deref(),
            Some("SELECT" | "FROM" | "WITH")
        )
}

/// The bindings of one clause starting at `start` (after `LET` or `WITH`), and where it ends.
fn clause(
    tokens: &[TokenWithSpan],
    start: usize,
    with: bool,
) -> Result<(usize, Vec<Binding>), AsxError> {
    let mut bindings = Vec::new();
    let mut depth = 0usize;
    let mut current: Vec<TokenWithSpan> = Vec::new();
    let mut i = start;
    while let Some(t) = tokens.get(i) {
        match &t.token {
            Token::LParen | Token::LBracket | Token::LBrace => depth += 1,
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::SemiColon => break,
            Token::Comma if depth == 0 => {
                bindings.push(binding(std::mem::take(&mut current), with)?);
                i += 1;
                continue;
            }
            other
                if depth == 0
                    && word(other).is_some_and(|w| CLAUSE_WORDS.contains(&w.as_str())) =>
            {
                break;
            }
            _ => {}
        }
        current.push(t.clone());
        i += 1;
    }
    bindings.push(binding(current, with)?);
    Ok((i, bindings))
}

/// `v = e` (LET) or `v AS e` (WITH).
fn binding(tokens: Vec<TokenWithSpan>, with: bool) -> Result<Binding, AsxError> {
    let mut rest = tokens
        .into_iter()
        .skip_while(|t| matches!(t.token, Token::Whitespace(_)));
    let bad = || {
        AsxError::syntax("a binding is `name = expression` (LET) or `name AS expression` (WITH)")
    };
    let name = match rest.next().map(|t| t.token) {
        Some(Token::Word(w)) if w.quote_style.is_none() || w.quote_style == Some('`') => w.value,
        _ => return Err(bad()),
    };
    let mut rest = rest.skip_while(|t| matches!(t.token, Token::Whitespace(_)));
    let separator = rest.next().map(|t| t.token);
    let ok = match separator {
        Some(Token::Eq) => !with,
        Some(ref t) => with && word(t).as_deref() == Some("AS"),
        None => false,
    };
    if !ok {
        return Err(bad());
    }
    Ok(Binding {
        name,
        tokens: rest.collect(),
    })
}

/// Replaces each bound variable in `query` by its expression (each binding may use the ones
/// before it).
pub(super) fn substitute(query: &mut Query, bindings: Vec<Binding>) -> Result<(), AsxError> {
    if bindings.len() > MAX_BINDINGS {
        return Err(AsxError::compilation(&format!(
            "a request may bind at most {MAX_BINDINGS} variables with LET and WITH"
        )));
    }
    let mut bound: Vec<(String, Expr)> = Vec::new();
    // What all the copies together may add, whatever the chain of bindings.
    let mut budget = MAX_COPIED_NODES;
    for b in bindings {
        let mut expr = guard::parse_tokens(&GenericDialect {}, b.tokens, |mut parser| {
            let e = parser.parse_expr()?;
            parser.expect_token(&Token::EOF)?;
            Ok(e)
        })
        .map_err(|e| match e {
            Refused::Syntax(e) => AsxError::syntax(&crate::sql::syntax_message(&e.to_string())),
            Refused::Limit(m) => AsxError::syntax(&m),
        })?;
        for (name, value) in &bound {
            replace(&mut expr, name, value, &mut budget)?;
        }
        bound.push((b.name, expr));
    }
    // `SELECT m` of a bound `m` is still named `m` once `m` is replaced by its expression.
    let _ = query.visit(&mut Named { bound: &bound });
    for (name, value) in &bound {
        replace(query, name, value, &mut budget)?;
    }
    let _ = query.visit(&mut Sources { bound: &bound });
    guard::check_depth(query).map_err(|e| AsxError::syntax(&e.message()))
}

/// Projections that are a bound variable by itself get the variable's name as their alias.
struct Named<'b> {
    bound: &'b [(String, Expr)],
}

impl Named<'_> {
    fn name(&self, body: &mut SetExpr) {
        match body {
            SetExpr::Select(select) => {
                for item in &mut select.projection {
                    if let SelectItem::UnnamedExpr(Expr::Identifier(ident)) = item
                        && self.bound.iter().any(|(name, _)| *name == ident.value)
                    {
                        let alias = Ident::with_quote('"', ident.value.clone());
                        *item = SelectItem::ExprWithAlias {
                            expr: Expr::Identifier(ident.clone()),
                            alias,
                        };
                    }
                }
            }
            SetExpr::SetOperation { left, right, .. } => {
                self.name(left);
                self.name(right);
            }
            _ => {}
        }
    }
}

impl VisitorMut for Named<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.name(&mut query.body);
        ControlFlow::Continue(())
    }
}

/// `FROM v AS x` of a bound variable ranges over its value's items: `UNNEST(<value>) AS x`.
struct Sources<'b> {
    bound: &'b [(String, Expr)],
}

impl VisitorMut for Sources<'_> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            alias,
            args: None,
            ..
        } = factor
            && let [ObjectNamePart::Identifier(ident)] = name.0.as_slice()
            && let Some((_, value)) = self.bound.iter().find(|(n, _)| *n == ident.value)
        {
            let alias = alias.clone().unwrap_or_else(|| TableAlias {
                explicit: true,
                name: ident.clone(),
                columns: Vec::new(),
                at: None,
            });
            *factor = TableFactor::UNNEST {
                alias: Some(alias),
                array_exprs: vec![value.clone()],
                with_offset: false,
                with_offset_alias: None,
                with_ordinality: false,
            };
        }
        ControlFlow::Continue(())
    }
}

fn size<T: sqlparser::ast::Visit>(tree: &T) -> usize {
    let mut n = 0usize;
    let _ = visit_expressions(tree, |_| {
        n += 1;
        ControlFlow::<()>::Continue(())
    });
    n
}

/// Replaces `name` (and paths starting at it) in `tree` by `value`, if the copies fit in what is
/// left of `budget`.
fn replace<T: sqlparser::ast::VisitMut + sqlparser::ast::Visit>(
    tree: &mut T,
    name: &str,
    value: &Expr,
    budget: &mut usize,
) -> Result<(), AsxError> {
    let mut uses = 0usize;
    let _ = visit_expressions(tree, |e| {
        if head(e) == Some(name) {
            uses += 1;
        }
        ControlFlow::<()>::Continue(())
    });
    if uses == 0 {
        return Ok(());
    }
    let copied = uses.saturating_mul(size(value));
    if copied > *budget {
        return Err(AsxError::compilation(&format!(
            "the variable {name} is used too often for its expression to be copied"
        )));
    }
    *budget -= copied;
    let _ = visit_expressions_mut(tree, |e| {
        match e {
            Expr::Identifier(i) if i.value == name => {
                *e = Expr::Nested(Box::new(value.clone()));
            }
            Expr::CompoundIdentifier(parts) if parts.first().is_some_and(|p| p.value == name) => {
                let chain = parts
                    .iter()
                    .skip(1)
                    .map(|p| AccessExpr::Dot(Expr::Identifier(p.clone())))
                    .collect();
                *e = Expr::CompoundFieldAccess {
                    root: Box::new(Expr::Nested(Box::new(value.clone()))),
                    access_chain: chain,
                };
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(())
}

/// The variable an expression names or starts a path at.
fn head(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Identifier(i) => Some(&i.value),
        Expr::CompoundIdentifier(parts) => parts.first().map(|p| p.value.as_str()),
        _ => None,
    }
}
