//! `GET /v2/account/activities[/{activity_type}]`: the account's FILL activities, dated by
//! transaction time, derived from the simulator's orders (one per order that has filled
//! anything, at its `filled_at`, else its last update). Unlike `GET /v2/orders?after=`, which
//! compares submission times, this is how a client learns that an order resting for days filled
//! a second ago. Other activity types are empty here: the simulator has no cash movements.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::collect::broker::wire::AlpacaOrder;

/// What the query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivitiesQuery {
    /// Only FILL activities are kept; `false` for any other type asked for.
    pub fills: bool,
    /// Strictly after.
    pub after: Option<DateTime<Utc>>,
    /// Strictly before.
    pub until: Option<DateTime<Utc>>,
    /// Oldest first (default newest first).
    pub ascending: bool,
    /// 1..=100 (default 100).
    pub page_size: usize,
    /// The `id` of the last activity of the previous page.
    pub page_token: Option<String>,
}

impl ActivitiesQuery {
    /// From the path's activity type (if any) and the query string.
    ///
    /// # Errors
    /// 422 for a bad timestamp, direction or page size.
    pub fn from_query(path_type: Option<&str>, q: &HashMap<String, String>) -> Result<Self, ApiError> {
        let wanted: Vec<String> = match (path_type, q.get("activity_types")) {
            (Some(t), _) => vec![t.to_ascii_uppercase()],
            (None, Some(list)) => list.split(',').map(|s| s.trim().to_ascii_uppercase()).collect(),
            (None, None) => vec!["FILL".to_owned()],
        };
        let time = |name: &str| {
            q.get(name)
                .map(|v| {
                    DateTime::parse_from_rfc3339(v)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| ApiError::invalid(format!("{name} must be an RFC 3339 timestamp")))
                })
                .transpose()
        };
        let ascending = match q.get("direction").map(|d| d.to_ascii_lowercase()) {
            None => false,
            Some(d) if d == "desc" => false,
            Some(d) if d == "asc" => true,
            Some(_) => return Err(ApiError::invalid("direction must be asc or desc")),
        };
        let page_size = match q.get("page_size") {
            None => 100,
            Some(s) => s
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=100).contains(n))
                .ok_or_else(|| ApiError::invalid("page_size must be an integer from 1 to 100"))?,
        };
        Ok(Self {
            fills: wanted.iter().any(|t| t == "FILL"),
            after: time("after")?,
            until: time("until")?,
            ascending,
            page_size,
            page_token: q.get("page_token").cloned(),
        })
    }
}

/// The FILL activities of `orders` that the query selects, in its order, one page.
#[must_use]
pub fn fills(orders: &[AlpacaOrder], q: &ActivitiesQuery) -> Vec<Value> {
    if !q.fills {
        return Vec::new();
    }
    let mut all: Vec<(DateTime<Utc>, String, &AlpacaOrder)> = orders
        .iter()
        .filter(|o| o.filled_qty.is_some_and(|f| f > Decimal::ZERO))
        .filter_map(|o| {
            let at = o.filled_at.or(o.updated_at)?;
            let id = format!("{}::{}", at.format("%Y%m%d%H%M%S%3f"), o.id);
            Some((at, id, o))
        })
        .filter(|(at, _, _)| q.after.is_none_or(|t| *at > t) && q.until.is_none_or(|t| *at < t))
        .collect();
    all.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    if !q.ascending {
        all.reverse();
    }
    let start = q.page_token.as_ref().and_then(|t| all.iter().position(|(_, id, _)| id == t)).map_or(0, |i| i + 1);
    all.into_iter().skip(start).take(q.page_size).map(|(at, id, o)| activity(at, &id, o)).collect()
}

fn activity(at: DateTime<Utc>, id: &str, o: &AlpacaOrder) -> Value {
    let filled = o.filled_qty.unwrap_or_default();
    let leaves = o.qty.map_or(Decimal::ZERO, |q| (q - filled).max(Decimal::ZERO));
    json!({
        "id": id,
        "activity_type": "FILL",
        "transaction_time": at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "type": if o.status == "filled" { "fill" } else { "partial_fill" },
        "price": o.filled_avg_price.map(|p| p.to_string()),
        "qty": filled.to_string(),
        "side": o.side,
        "symbol": o.symbol,
        "leaves_qty": leaves.to_string(),
        "order_id": o.id,
        "cum_qty": filled.to_string(),
        "order_status": o.status,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(id: &str, submitted_days_ago: i64, filled_secs_ago: Option<i64>, now: DateTime<Utc>) -> AlpacaOrder {
        let mut o: AlpacaOrder = serde_json::from_value(json!({
            "id": id, "client_order_id": "c", "asset_id": "a", "symbol": "TSLA", "asset_class": "us_equity",
            "qty": "4", "filled_qty": if filled_secs_ago.is_some() { "4" } else { "0" },
            "order_class": "", "order_type": "limit", "type": "limit", "side": "buy", "time_in_force": "gtc",
            "status": if filled_secs_ago.is_some() { "filled" } else { "new" }, "extended_hours": false,
        }))
        .unwrap();
        o.submitted_at = Some(now - chrono::Duration::days(submitted_days_ago));
        o.filled_at = filled_secs_ago.map(|s| now - chrono::Duration::seconds(s));
        o.filled_avg_price = filled_secs_ago.map(|_| Decimal::new(25050, 2));
        o
    }

    #[test]
    fn a_fill_is_dated_by_its_transaction_not_its_submission_and_pages_by_token() {
        let now = DateTime::parse_from_rfc3339("2026-12-06T15:00:00Z").unwrap().with_timezone(&Utc);
        let orders = vec![
            order("11111111-1111-4111-8111-111111111111", 2, Some(1), now),
            order("22222222-2222-4222-8222-222222222222", 0, Some(7200), now),
            order("33333333-3333-4333-8333-333333333333", 0, None, now),
        ];
        let mut q = ActivitiesQuery::from_query(Some("fill"), &HashMap::new()).unwrap();
        q.after = Some(now - chrono::Duration::minutes(10));
        let got = fills(&orders, &q);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0]["order_id"], "11111111-1111-4111-8111-111111111111", "submitted two days ago, filled now");
        assert_eq!((got[0]["type"].as_str(), got[0]["price"].as_str()), (Some("fill"), Some("250.50")));

        let mut all = ActivitiesQuery::from_query(None, &HashMap::new()).unwrap();
        all.page_size = 1;
        let first = fills(&orders, &all);
        all.page_token = first[0]["id"].as_str().map(str::to_owned);
        let second = fills(&orders, &all);
        assert_eq!(first[0]["order_id"], "11111111-1111-4111-8111-111111111111", "newest first");
        assert_eq!(second[0]["order_id"], "22222222-2222-4222-8222-222222222222");
        let other = ActivitiesQuery::from_query(Some("DIV"), &HashMap::new()).unwrap();
        assert!(fills(&orders, &other).is_empty());
        assert!(ActivitiesQuery::from_query(None, &HashMap::from([("page_size".into(), "101".into())])).is_err());
    }
}
