//! `CROSS APPLY` and `OUTER APPLY` (Luminesce's for-each): the subquery on the right is run for
//! each row on the left. They are the engine's lateral joins: `CROSS APPLY (q) r` is
//! `CROSS JOIN LATERAL (q) r` and `OUTER APPLY (q) r` is `LEFT JOIN LATERAL (q) r ON true`. The
//! engine runs a lateral subquery whose correlation it can turn into a join (equalities in its
//! `WHERE`); any other fails the query with the engine's reason, never with a wrong answer.

use sqlparser::ast::{
    Expr, JoinConstraint, JoinOperator, SetExpr, TableFactor, TableWithJoins, Value,
};

/// Rewrites the APPLY joins of a query's body (its own selects; subqueries are queries of their
/// own, which the caller visits). Answers why it cannot, for an APPLY of a table function.
pub fn lateral_joins(body: &mut SetExpr) -> Result<(), String> {
    match body {
        SetExpr::Select(select) => select.from.iter_mut().try_for_each(rewrite),
        // Set operations nest as deep as the parser allowed (its depth limit bounds this).
        SetExpr::SetOperation { left, right, .. } => {
            lateral_joins(left)?;
            lateral_joins(right)
        }
        _ => Ok(()),
    }
}

fn rewrite(from: &mut TableWithJoins) -> Result<(), String> {
    for join in &mut from.joins {
        let outer = match join.join_operator {
            JoinOperator::CrossApply => false,
            JoinOperator::OuterApply => true,
            _ => continue,
        };
        match &mut join.relation {
            TableFactor::Derived { lateral, .. } => *lateral = true,
            TableFactor::Table { args: None, .. } => {}
            _ => {
                return Err(
                    "APPLY is served here over a subquery or a table: (select …) alias".into(),
                );
            }
        }
        join.join_operator = if outer {
            JoinOperator::LeftOuter(JoinConstraint::On(Expr::Value(Value::Boolean(true).into())))
        } else {
            JoinOperator::CrossJoin(JoinConstraint::None)
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use sqlparser::ast::Statement;
    use sqlparser::dialect::SQLiteDialect;
    use sqlparser::parser::Parser;

    use super::*;

    fn rewritten(sql: &str) -> Result<String, String> {
        let mut statements = Parser::parse_sql(&SQLiteDialect {}, sql).unwrap();
        let Statement::Query(query) = &mut statements[0] else {
            panic!("{sql}")
        };
        lateral_joins(&mut query.body)?;
        Ok(query.to_string())
    }

    #[test]
    fn apply_joins_are_lateral_joins() {
        for (sql, want) in [
            (
                "select * from a cross apply (select * from b where b.k = a.k) r",
                "SELECT * FROM a CROSS JOIN LATERAL (SELECT * FROM b WHERE b.k = a.k) r",
            ),
            (
                "select * from a outer apply (select * from b where b.k = a.k) r",
                "SELECT * FROM a LEFT OUTER JOIN LATERAL (SELECT * FROM b WHERE b.k = a.k) r ON true",
            ),
            (
                "select 1 from a union all select 2 from c cross apply b",
                "SELECT 1 FROM a UNION ALL SELECT 2 FROM c CROSS JOIN b",
            ),
            (
                "select * from a join b on a.k = b.k",
                "SELECT * FROM a JOIN b ON a.k = b.k",
            ),
        ] {
            assert_eq!(rewritten(sql).unwrap(), want, "{sql}");
        }
        assert!(rewritten("select * from a cross apply f(a.k) r").is_err());
    }
}
