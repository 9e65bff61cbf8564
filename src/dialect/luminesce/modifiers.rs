//! Luminesce's statements and modifiers around queries, read on the token stream:
//!
//! - `pragma TimeoutSec = <seconds>;` limits how long the query may run (the shorter of it and the
//!   request's own timeout wins); other pragmas are refused by name, since polyquery cannot honour
//!   them.
//! - `WAIT <seconds>` after a statement's table or at its end pauses before the statement runs:
//!   the job waits the script's waits in all before its query runs (under its timeout and cancel).
//! - A window frame's `EXCLUDE NO OTHERS` (lumipy writes it in every window) is SQLite's default and
//!   leaves; the exclusions that change a frame (`EXCLUDE CURRENT ROW`, `GROUP`, `TIES`) are refused.
//! - `TYPES …;` (types forced on the next query's columns) is refused: the columns are the
//!   engine's until the query is planned, so the cast cannot be placed exactly; `CAST` can.

use std::time::Duration;

use sqlparser::tokenizer::{Token, TokenWithSpan};

use super::script::{is_blank, syntax, unsupported, word};
use crate::query::EngineError;

/// The longest a script may wait in all, and the longest `TimeoutSec`: a day.
const MAX_SECONDS: f64 = 86_400.0;

/// What a `pragma` statement sets.
#[derive(Debug, PartialEq)]
pub enum Pragma {
    Timeout(Duration),
}

/// The bare (unquoted) word a token is, if any.
fn bare(t: &TokenWithSpan) -> Option<&str> {
    word(t)
        .filter(|w| w.quote_style.is_none())
        .map(|w| w.value.as_str())
}

fn significant(tokens: &[TokenWithSpan]) -> impl Iterator<Item = &TokenWithSpan> {
    tokens.iter().filter(|t| !is_blank(t))
}

/// The pragma a statement is, if it is one: `pragma Name = value` (or `pragma Name value`).
pub fn pragma(statement: &[TokenWithSpan]) -> Result<Option<Pragma>, EngineError> {
    let mut tokens = significant(statement);
    if !tokens
        .next()
        .and_then(bare)
        .is_some_and(|w| w.eq_ignore_ascii_case("pragma"))
    {
        return Ok(None);
    }
    let name = tokens
        .next()
        .and_then(word)
        .map(|w| w.value.clone())
        .ok_or_else(|| syntax("a pragma needs a name: pragma TimeoutSec = 180"))?;
    let rest: Vec<&TokenWithSpan> = tokens.filter(|t| t.token != Token::Eq).collect();
    if !name.eq_ignore_ascii_case("TimeoutSec") {
        return Err(unsupported(format!(
            "pragma {name} is not served here; polyquery serves pragma TimeoutSec only"
        )));
    }
    match rest.as_slice() {
        [value] => Ok(Some(Pragma::Timeout(seconds(value, "pragma TimeoutSec")?))),
        _ => Err(syntax(
            "pragma TimeoutSec takes one number of seconds: pragma TimeoutSec = 180",
        )),
    }
}

/// Refuses a `TYPES …` statement (or `@x = TYPES …`).
pub fn refuse_types(body: &[TokenWithSpan]) -> Result<(), EngineError> {
    match significant(body).next().and_then(bare) {
        Some(w) if w.eq_ignore_ascii_case("types") => Err(unsupported(
            "TYPES is not served here: give the query's columns their types with CAST(column AS type)",
        )),
        _ => Ok(()),
    }
}

/// A statement's tokens without its `WAIT <seconds>` modifiers, whose seconds are added to `total`.
pub fn take_waits(
    tokens: &[TokenWithSpan],
    total: &mut Duration,
) -> Result<Vec<TokenWithSpan>, EngineError> {
    let mut out = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let is_wait = bare(&tokens[i]).is_some_and(|w| w.eq_ignore_ascii_case("wait"));
        let number = (i + 1..tokens.len())
            .find(|&n| !is_blank(&tokens[n]))
            .filter(|&n| matches!(tokens[n].token, Token::Number(..)));
        match number {
            Some(n) if is_wait => {
                let add = seconds(&tokens[n], "WAIT")?;
                *total = total
                    .checked_add(add)
                    .filter(|t| t.as_secs_f64() <= MAX_SECONDS)
                    .ok_or_else(|| {
                        syntax(format!(
                            "a script may WAIT at most {MAX_SECONDS} seconds in all"
                        ))
                    })?;
                i = n + 1;
            }
            _ => {
                out.push(tokens[i].clone());
                i += 1;
            }
        }
    }
    Ok(out)
}

/// The tokens without the window frames' `EXCLUDE NO OTHERS` (the default: nothing is excluded).
/// Other exclusions are refused, since the engine has none.
pub fn frame_exclusions(tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>, EngineError> {
    let mut out: Vec<TokenWithSpan> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let is_exclude = bare(&tokens[i]).is_some_and(|w| w.eq_ignore_ascii_case("exclude"));
        // Looked back only from an EXCLUDE, past the blanks since the last word: linear in all.
        let ends_frame = is_exclude
            && out
                .iter()
                .rev()
                .find(|t| !is_blank(t))
                .and_then(bare)
                .is_some_and(|w| {
                    ["ROW", "PRECEDING", "FOLLOWING"]
                        .iter()
                        .any(|end| w.eq_ignore_ascii_case(end))
                });
        if !ends_frame {
            out.push(tokens[i].clone());
            i += 1;
            continue;
        }
        let after: Vec<usize> = (i + 1..tokens.len())
            .filter(|&n| !is_blank(&tokens[n]))
            .take(2)
            .collect();
        let words: Vec<String> = after
            .iter()
            .filter_map(|&n| bare(&tokens[n]))
            .map(str::to_ascii_uppercase)
            .collect();
        match (words.as_slice(), after.as_slice()) {
            ([no, others], [_, last]) if no == "NO" && others == "OTHERS" => i = last + 1,
            _ => {
                return Err(unsupported(
                    "a window frame's EXCLUDE CURRENT ROW, GROUP or TIES is not served here; EXCLUDE NO OTHERS (the default) is",
                ));
            }
        }
    }
    Ok(out)
}

/// A number token as seconds (whole or fractional, at most a day).
fn seconds(token: &TokenWithSpan, what: &str) -> Result<Duration, EngineError> {
    let Token::Number(text, _) = &token.token else {
        return Err(syntax(format!("{what} takes a number of seconds")));
    };
    text.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && (0.0..=MAX_SECONDS).contains(s))
        .map(Duration::from_secs_f64)
        .ok_or_else(|| {
            syntax(format!(
                "{what} takes a number of seconds from 0 to {MAX_SECONDS}, not {text}"
            ))
        })
}

#[cfg(test)]
mod tests {
    use sqlparser::dialect::SQLiteDialect;
    use sqlparser::tokenizer::Tokenizer;

    use super::*;

    fn tokens(sql: &str) -> Vec<TokenWithSpan> {
        Tokenizer::new(&SQLiteDialect {}, sql)
            .tokenize_with_location()
            .unwrap()
    }

    #[test]
    fn waits_leave_the_statement_and_add_up() {
        for (sql, left, seconds) in [
            (
                "select * from T wait 5 where a = 1",
                "select * from T  where a = 1",
                5.0,
            ),
            ("select 'x' as [Op] wait 2.5", "select 'x' as [Op] ", 2.5),
            (
                "select wait from T wait 1 wait 2",
                "select wait from T  ",
                3.0,
            ),
            ("select [wait] from T", "select [wait] from T", 0.0),
        ] {
            let mut total = Duration::ZERO;
            let kept = take_waits(&tokens(sql), &mut total).unwrap();
            let text: String = kept.iter().map(|t| t.token.to_string()).collect();
            assert_eq!(text, left, "{sql}");
            assert_eq!(total.as_secs_f64(), seconds, "{sql}");
        }
        let mut total = Duration::ZERO;
        assert!(take_waits(&tokens("select 1 wait 90000"), &mut total).is_err());
    }

    #[test]
    fn frames_exclude_no_others_only() {
        let kept = |sql: &str| {
            frame_exclusions(tokens(sql))
                .map(|t| t.iter().map(|t| t.token.to_string()).collect::<String>())
        };
        assert_eq!(
            kept("sum(a) over (order by a rows between unbounded preceding and current row exclude no others)").unwrap(),
            "sum(a) over (order by a rows between unbounded preceding and current row )"
        );
        assert_eq!(
            kept("select exclude from t").unwrap(),
            "select exclude from t"
        );
        for refused in [
            "sum(a) over (rows between 1 preceding and 1 following exclude current row)",
            "sum(a) over (rows unbounded preceding exclude ties)",
        ] {
            assert!(kept(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn pragmas() {
        let read = |sql: &str| pragma(&tokens(sql)).map_err(|e| e.message);
        assert_eq!(
            read("pragma TimeoutSec = 180"),
            Ok(Some(Pragma::Timeout(Duration::from_secs(180))))
        );
        assert_eq!(
            read("PRAGMA timeoutsec 2"),
            Ok(Some(Pragma::Timeout(Duration::from_secs(2))))
        );
        assert_eq!(read("select 1"), Ok(None));
        assert!(read("pragma DryRun = true").unwrap_err().contains("DryRun"));
        assert!(read("pragma TimeoutSec = -1").is_err());
        assert!(read("pragma").is_err());
    }
}
