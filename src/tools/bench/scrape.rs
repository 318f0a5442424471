//! The gateway's own count of its database work, read from its Prometheus text
//! (`GET /metrics`): `otpgate_db_statements_total` and `otpgate_db_transactions_total`,
//! summed over their labels. A gateway that does not export them (an older one, or
//! metrics off) gives none, and the report says "–".

const STATEMENTS: &str = "otpgate_db_statements_total";
const TRANSACTIONS: &str = "otpgate_db_transactions_total";

/// The two counters at one moment, summed over every gateway; None when any of them
/// did not export the counter.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DbWork {
    pub statements: Option<f64>,
    pub transactions: Option<f64>,
}

impl DbWork {
    /// Each counter's growth from `before` to `self`, per cycle.
    pub fn per_cycle(self, before: DbWork, cycles: u64) -> DbWork {
        let per =
            |a: Option<f64>, b: Option<f64>| Some((a? - b?) / cycles as f64).filter(|_| cycles > 0);
        DbWork {
            statements: per(self.statements, before.statements),
            transactions: per(self.transactions, before.transactions),
        }
    }
}

/// The sum of every sample of `name` in a Prometheus text exposition, whatever its
/// labels; None when there is none. Lines it cannot read are skipped.
pub fn sum(text: &str, name: &str) -> Option<f64> {
    let mut total = None;
    for line in text.lines().map(str::trim) {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        // `name{labels} value [timestamp]` or `name value [timestamp]`.
        let value = match rest.chars().next() {
            Some('{') => rest.rfind('}').map(|end| &rest[end + 1..]),
            Some(c) if c.is_whitespace() => Some(rest),
            _ => None, // another metric whose name starts with this one
        };
        if let Some(v) = value
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<f64>().ok())
        {
            *total.get_or_insert(0.0) += v;
        }
    }
    total
}

/// The gateway's scrape at `base`; empty when it gives none.
pub async fn text(http: &reqwest::Client, base: &str) -> String {
    match http.get(format!("{base}/metrics")).send().await {
        Ok(r) if r.status().is_success() => r.text().await.unwrap_or_default(),
        _ => String::new(),
    }
}

/// Reads both counters from every gateway at `bases`.
pub async fn read(http: &reqwest::Client, bases: &[String]) -> DbWork {
    let mut work = DbWork {
        statements: Some(0.0),
        transactions: Some(0.0),
    };
    for base in bases {
        let text = text(http, base).await;
        let add = |total: Option<f64>, name| Some(total? + sum(&text, name)?);
        work.statements = add(work.statements, STATEMENTS);
        work.transactions = add(work.transactions, TRANSACTIONS);
    }
    work
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_summed_over_their_labels() {
        let text = "# HELP otpgate_db_statements_total Statements.\n\
            # TYPE otpgate_db_statements_total counter\n\
            otpgate_db_statements_total{kind=\"issue\"} 120\n\
            otpgate_db_statements_total{kind=\"verify\",x=\"a}b\"} 30.5 1700000000000\n\
            otpgate_db_statements_total_created{kind=\"issue\"} 99\n\
            otpgate_db_transactions_total 7\n\
            otpgate_db_transactions_total{kind=\"x\"} not-a-number\n";
        assert_eq!(sum(text, STATEMENTS), Some(150.5));
        assert_eq!(sum(text, TRANSACTIONS), Some(7.0));
        assert_eq!(sum(text, "otpgate_missing_total"), None);
        assert_eq!(sum("", STATEMENTS), None);
    }

    #[test]
    fn growth_is_per_cycle_and_absent_when_either_side_is() {
        let before = DbWork {
            statements: Some(100.0),
            transactions: None,
        };
        let after = DbWork {
            statements: Some(300.0),
            transactions: Some(50.0),
        };
        let per = after.per_cycle(before, 20);
        assert_eq!(per.statements, Some(10.0));
        assert_eq!(per.transactions, None);
        assert_eq!(after.per_cycle(before, 0).statements, None);
    }
}
