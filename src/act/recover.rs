//! Resolving an intent that has no outcome (tradewarden died mid-action): re-read what the
//! action was about and record what is true now. The action itself is never repeated here;
//! if the violation still holds, the next cycle's gates decide afresh (budget and cooldown
//! count the interrupted attempt).

use std::path::Path;

use serde_json::{Value, json};

use crate::model::{ActionKind, OrderSide, Severity, Side};

use super::broker::ActBroker;
use super::confirm::{orders_json, positions_json};
use super::fix_state::sha256_hex;
use super::journal::{Intent, Targets};

/// What is true now about an interrupted intent: a sentence, the state read, and how serious
/// that is for the operator: critical when the danger the action was for is still there (a
/// short still open, an order it was cancelling still live), else a warning (an action was
/// interrupted: the operator must hear of it, whatever the re-read showed).
///
/// # Errors
/// When the broker (or a file) cannot be read: the intent stays unresolved and is tried
/// again later.
pub(crate) async fn resolve(
    b: &dyn ActBroker,
    intent: &Intent,
    bot_root: &Path,
) -> Result<(String, Value, Severity), String> {
    let t = &intent.targets;
    let Some(kind) = intent.kind() else {
        return Ok((format!("unknown action `{}`: nothing re-read", intent.action), Value::Null, Severity::Warning));
    };
    match kind {
        ActionKind::FlattenShorts | ActionKind::FlattenAll => {
            let positions = b.positions().await.map_err(|e| e.to_string())?;
            // Flat means as `flatten::confirm` means it: no position, and no sell resting on
            // the symbol (one could fill and open a short).
            let open = b.open_orders().await.map_err(|e| e.to_string())?;
            let symbols = t.symbols();
            let mut parts = Vec::new();
            let mut severity = Severity::Warning;
            for s in symbols {
                let resting: Vec<String> = open
                    .iter()
                    .filter(|o| o.symbol.as_str() == s && o.side == OrderSide::Sell)
                    .map(|o| format!("{} ({})", o.id, o.qty.map_or_else(|| "notional".to_owned(), |q| q.to_string())))
                    .collect();
                match positions.iter().find(|p| p.symbol.as_str() == s) {
                    None if !resting.is_empty() => {
                        severity = Severity::Critical;
                        parts.push(format!(
                            "{s} holds no position but sell order {} rests on it (it could open a short; left for the next cycle's gates)",
                            resting.join(", ")
                        ));
                    }
                    None => parts.push(format!("{s} is flat")),
                    Some(p) => {
                        // Either sign of short counts: unknown is never OK.
                        let short = p.side == Side::Short || (p.qty.is_sign_negative() && !p.qty.is_zero());
                        if short {
                            severity = Severity::Critical;
                        }
                        let what = if short { "short" } else { "held" };
                        parts.push(format!("{s} is still {what} {} (left for the next cycle's gates)", p.qty));
                    }
                }
            }
            if parts.is_empty() {
                parts.push("no symbols were recorded".into());
            }
            Ok((
                parts.join("; "),
                json!({ "positions": positions_json(&positions), "open_orders": orders_json(&open) }),
                severity,
            ))
        }
        ActionKind::CancelHazardOrders => {
            let open = b.open_orders().await.map_err(|e| e.to_string())?;
            let ids = t.order_ids();
            let still = |id: &String| open.iter().any(|o| &o.id == id);
            let parts: Vec<String> = ids
                .iter()
                .map(|id| {
                    if still(id) {
                        format!("order {id} is still open (left for the next cycle's gates)")
                    } else {
                        format!("order {id} is no longer open")
                    }
                })
                .collect();
            // The orders it cancels are hazards (they could open a short): one still live is
            // the danger itself.
            let severity = if ids.iter().any(still) { Severity::Critical } else { Severity::Warning };
            Ok((parts.join("; "), json!({ "open_orders": orders_json(&open) }), severity))
        }
        ActionKind::SuspendTrading | ActionKind::EnforceNoShorting => {
            let c = b.configuration().await.map_err(|e| e.to_string())?;
            let (field, value) = match t {
                Targets::Configuration { field } => (field.field(), field.value(&c)),
                _ => ("", None),
            };
            let text = match value {
                Some(true) => format!("{field} is true at the broker"),
                Some(false) => format!("{field} is still false (left for the next cycle's gates)"),
                None => format!("{field} is not reported by the broker"),
            };
            // A guard still off (or not reported) is the danger it was for: critical, as the
            // refusal of a protective action is.
            let severity = if value == Some(true) { Severity::Warning } else { Severity::Critical };
            Ok((
                text,
                json!({ "configuration": { "no_shorting": c.no_shorting, "suspend_trade": c.suspend_trade } }),
                severity,
            ))
        }
        ActionKind::FixState => {
            let mut parts = Vec::new();
            for f in t.files() {
                let (path, before, after) = (f.path.as_str(), &f.sha256_before, &f.sha256_after);
                // Through the bot-root check, like every read of the bot's files: a symlink
                // swapped in since the crash cannot make recovery read outside the root, nor a
                // FIFO hang the start-up.
                let now = super::fix_state::read_in_root(bot_root, Path::new(path)).map(|(b, _, _)| sha256_hex(&b));
                parts.push(match now {
                    Ok(h) if h == *after => format!("{path} holds the fixed content"),
                    Ok(h) if h == *before => format!("{path} was not written"),
                    Ok(_) => format!("{path} has changed since (neither the old nor the fixed content)"),
                    Err(e) => format!("{path} cannot be read: {e}"),
                });
            }
            Ok((parts.join("; "), Value::Null, Severity::Warning))
        }
        ActionKind::Exec(_) => Ok((
            "tradewarden stopped while the command ran; whether it finished is unknown (it is not run again)".into(),
            Value::Null,
            Severity::Warning,
        )),
    }
}
