//! When the bot is busy with its files, so a fix waits: an order in scope filling or just
//! filled ([`working_orders`]), or a file modified within `quiet_for` ([`check_quiet`]).

use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::fix_plan::FileFix;
use crate::act::plan::Scope;
use crate::model::Order;

/// The symbols in scope with an open order that is partly filled, undated or changed within
/// `quiet_for` of `now`, or a closed order (give it the recently closed ones too) whose last
/// activity is within `quiet_for`: a fill the bot may be recording at this moment, so its files
/// are not to be rewritten yet. Sorted, each once.
#[must_use]
pub fn working_orders(orders: &[Order], scope: &Scope, quiet_for: Duration, now: DateTime<Utc>) -> Vec<String> {
    let quiet = chrono::Duration::from_std(quiet_for).unwrap_or(chrono::Duration::MAX);
    // Bounded both sides: an order dated in the future (clock skew, a bad body) holds the fix
    // back for at most `quiet_for` past now, not for ever.
    let recent = |o: &Order| o.last_activity().is_some_and(|t| crate::checks::position_match::within(now, t, quiet));
    let mut symbols: Vec<String> = orders
        .iter()
        .filter(|o| scope.contains(o.symbol.as_str()))
        .filter(|o| {
            if o.is_open() {
                // Open: filling, undated (cannot tell) or recently changed.
                o.filled_qty > Decimal::ZERO || o.last_activity().is_none() || recent(o)
            } else {
                // Closed (filled, canceled...): only while its last activity is recent; a market
                // order that filled a second ago is the fill the bot is recording right now.
                recent(o)
            }
        })
        .map(|o| o.symbol.to_string())
        .collect();
    symbols.sort();
    symbols.dedup();
    symbols
}

/// Refused when the file was modified within `quiet_for` (or in the future).
///
/// # Errors
/// How recently.
pub fn check_quiet(f: &FileFix, quiet_for: Duration, now: SystemTime) -> Result<(), String> {
    match now.duration_since(f.stamp.modified) {
        Ok(age) if age >= quiet_for => Ok(()),
        Ok(age) => Err(format!(
            "{} was modified {} ago, within quiet_for ({}): the bot is probably writing it",
            f.path.display(),
            humantime::format_duration(Duration::from_secs(age.as_secs())),
            humantime::format_duration(quiet_for)
        )),
        Err(_) => Err(format!("{} has a modification time in the future; not touched", f.path.display())),
    }
}
