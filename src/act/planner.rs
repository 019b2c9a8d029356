//! The one planner: what an action would do, from what was read. Observe mode plans from the
//! cycle's snapshot (`observe::describe`), act mode from the fresh re-read right before acting
//! (`runner::Runner::prepare`); both call [`plan_for`], so what observe describes is what act
//! would do on the same reads, refusals included (a `fix_state` held back by a filling order).
//!
//! Data in, plan out: the reads come in as [`Inputs`], each one's absence as the reason it is
//! missing; the bot's files too (`fix_state`), read at the edge by whoever builds the inputs.

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::confirm::{orders_json, positions_json};
use super::fix_state::{self, BotFiles, FixInput, FixPlan};
use super::journal::{FileTarget, Targets};
use super::plan::{self, Guard, Plan, Scope, Step};
use crate::config::Config;
use crate::model::action::Input;
use crate::model::{AccountConfiguration, ActionKind, Order, Position, Snapshot};

/// One read, or why it is missing (failed, or not read).
pub type Read<'a, T> = Result<&'a T, String>;

/// What an action's plan is made from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The symbols the triggers are about, merged.
    pub scope: Scope,
    /// The orders their findings name (`cancel_hazard_orders`).
    pub order_ids: BTreeSet<String>,
    /// The broker's positions.
    pub positions: Read<'a, [Position]>,
    /// The open orders.
    pub open_orders: Read<'a, [Order]>,
    /// The orders closed lately (see [`Input::ClosedOrders`]).
    pub closed_orders: Read<'a, [Order]>,
    /// The account configuration.
    pub configuration: Read<'a, AccountConfiguration>,
    /// The bot's files (`fix_state`); when they cannot be read, the fix is refused (after the
    /// wait for filling orders, which comes first).
    pub bot_files: Read<'a, BotFiles>,
}

impl<'a> Inputs<'a> {
    /// Planned from a cycle's snapshot (observe mode). The closed orders are the ones the cycle
    /// read (a `position_match` settle window asks for them); when it read none, only the open
    /// orders can hold `fix_state` back.
    #[must_use]
    pub fn from_snapshot(snapshot: &'a Snapshot, scope: Scope, order_ids: BTreeSet<String>) -> Self {
        let b = &snapshot.broker;
        let why = |e: &dyn std::fmt::Display| e.to_string();
        Self {
            scope,
            order_ids,
            positions: b.positions.as_deref().map_err(|e| why(e)),
            open_orders: b.orders.as_deref().map_err(|e| why(e)),
            closed_orders: match &b.recent_orders {
                Some(Ok(o)) => Ok(o),
                Some(Err(e)) => Err(why(e)),
                None => Ok(&[]),
            },
            configuration: match &b.configuration {
                Some(Ok(c)) => Ok(c),
                Some(Err(e)) => Err(why(e)),
                None => Err("not read".into()),
            },
            bot_files: Err("not read".into()),
        }
    }

    /// With the bot's files as read (observe mode reads them for `fix_state` only).
    #[must_use]
    pub fn with_bot_files(mut self, files: Option<&'a Result<BotFiles, String>>) -> Self {
        self.bot_files = match files {
            Some(Ok(f)) => Ok(f),
            Some(Err(e)) => Err(e.clone()),
            None => Err("not read".into()),
        };
        self
    }

    fn need(&self, input: Input) -> Result<(), Blocked> {
        let missing = match input {
            Input::Positions => self.positions.as_ref().err(),
            Input::OpenOrders => self.open_orders.as_ref().err(),
            Input::ClosedOrders => self.closed_orders.as_ref().err(),
            Input::Configuration => self.configuration.as_ref().err(),
            // Unreadable files refuse the fix in its turn (see `fix_state_plan`), not here.
            Input::BotFiles => None,
        };
        missing.map_or(Ok(()), |why| Err(Blocked::Unknown(input, why.clone())))
    }

    fn get<T: ?Sized>(read: &Read<'a, T>, input: Input) -> Result<&'a T, Blocked> {
        read.as_ref().copied().map_err(|why| Blocked::Unknown(input, why.clone()))
    }
}

/// The reads of an act-mode re-read, owned (the inputs borrow them).
#[derive(Debug, Clone, Default)]
pub struct Reads {
    /// `GET /v2/positions`.
    pub positions: Option<Vec<Position>>,
    /// `GET /v2/orders?status=open`.
    pub open_orders: Option<Vec<Order>>,
    /// The orders closed within `quiet_for`.
    pub closed_orders: Option<Vec<Order>>,
    /// `GET /v2/account/configurations`.
    pub configuration: Option<AccountConfiguration>,
    /// The bot's files, or why they could not be read.
    pub bot_files: Option<Result<BotFiles, String>>,
}

impl Reads {
    /// The inputs these reads make (a read not made is missing: "not read").
    #[must_use]
    pub fn inputs(&self, scope: Scope, order_ids: BTreeSet<String>) -> Inputs<'_> {
        fn read<T: ?Sized>(v: Option<&T>) -> Read<'_, T> {
            v.ok_or_else(|| "not read".to_owned())
        }
        Inputs {
            scope,
            order_ids,
            positions: read(self.positions.as_deref()),
            open_orders: read(self.open_orders.as_deref()),
            closed_orders: read(self.closed_orders.as_deref()),
            configuration: read(self.configuration.as_ref()),
            bot_files: match &self.bot_files {
                Some(Ok(f)) => Ok(f),
                Some(Err(e)) => Err(e.clone()),
                None => Err("not read".into()),
            },
        }
    }
}

/// A plan, with what recovery must re-read and `fix_state`'s files.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The steps.
    pub plan: Plan,
    /// What recovery must re-read (the intent's `targets`).
    pub targets: Targets,
    /// `fix_state`: the files.
    pub fix: Option<FixPlan>,
}

/// Why there is no plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Blocked {
    /// A read the action needs is missing: no action on incomplete data.
    Unknown(Input, String),
    /// Not now: orders are filling, and the bot may be recording them (`fix_state`).
    Waiting(String),
    /// The plan itself is refused (`fix_state`: the files cannot be fixed safely).
    Refused(String),
    /// An `exec:NAME` with no `[actions.exec.NAME]` table.
    NoExec(String),
}

/// The orders of cancel steps.
fn cancelled(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .filter_map(|s| match s {
            Step::CancelOrder { id, .. } => Some(id.clone()),
            _ => None,
        })
        .collect()
}

/// The broker setting a guard action turns on.
fn guard_of(kind: &ActionKind) -> Option<Guard> {
    match kind {
        ActionKind::SuspendTrading => Some(Guard::SuspendTrade),
        ActionKind::EnforceNoShorting => Some(Guard::NoShorting),
        _ => None,
    }
}

/// The plan of `kind` on `inputs`, at `now`. Pure but for `fix_state` reading the bot's files.
///
/// # Errors
/// When an input it needs is missing, or the action cannot be planned (see [`Blocked`]).
pub fn plan_for(kind: &ActionKind, inputs: &Inputs<'_>, cfg: &Config, now: DateTime<Utc>) -> Result<Planned, Blocked> {
    // In the table's order: the first missing read is the one named.
    for input in kind.needs() {
        inputs.need(*input)?;
    }
    let scope = &inputs.scope;
    match kind {
        ActionKind::FlattenShorts | ActionKind::FlattenAll => {
            let shorts_only = *kind == ActionKind::FlattenShorts;
            let positions = Inputs::get(&inputs.positions, Input::Positions)?;
            let orders = Inputs::get(&inputs.open_orders, Input::OpenOrders)?;
            let plan = plan::flatten(positions, orders, scope, shorts_only);
            let targets = Targets::Flatten { symbols: plan.closed_symbols(), shorts_only, order_ids: cancelled(&plan) };
            Ok(Planned { plan, targets, fix: None })
        }
        ActionKind::CancelHazardOrders => {
            let orders = Inputs::get(&inputs.open_orders, Input::OpenOrders)?;
            let plan = plan::cancel(orders, &inputs.order_ids);
            Ok(Planned { targets: Targets::Orders { order_ids: cancelled(&plan) }, plan, fix: None })
        }
        ActionKind::SuspendTrading | ActionKind::EnforceNoShorting => {
            let c = Inputs::get(&inputs.configuration, Input::Configuration)?;
            let g = guard_of(kind).ok_or_else(|| Blocked::Refused("not a guard".into()))?;
            Ok(Planned { plan: plan::configure(c, g), targets: Targets::Configuration { field: g }, fix: None })
        }
        ActionKind::FixState => {
            let positions = Inputs::get(&inputs.positions, Input::Positions)?;
            // A fill in flight is one the bot may be recording right now: writing the broker's
            // quantity into its file too would make it count the fill twice. A market order
            // fills at once and is never among the open ones: the closed ones count too.
            let mut orders = Inputs::get(&inputs.open_orders, Input::OpenOrders)?.to_vec();
            orders.extend_from_slice(Inputs::get(&inputs.closed_orders, Input::ClosedOrders)?);
            fix_state_plan(positions, &orders, &inputs.bot_files, scope, cfg, now)
        }
        ActionKind::Exec(name) => {
            let e = cfg.actions.exec.get(name).ok_or_else(|| Blocked::NoExec(name.clone()))?;
            let plan = Plan {
                steps: vec![Step::Exec {
                    name: name.clone(),
                    argv: e.command.clone(),
                    timeout: humantime::format_duration(e.timeout).to_string(),
                }],
                notes: Vec::new(),
            };
            Ok(Planned { plan, targets: Targets::Exec { argv: e.command.clone() }, fix: None })
        }
    }
}

fn fix_state_plan(
    positions: &[Position],
    orders: &[Order],
    files: &Read<'_, BotFiles>,
    scope: &Scope,
    cfg: &Config,
    now: DateTime<Utc>,
) -> Result<Planned, Blocked> {
    let quiet_for = cfg.actions.quiet_for;
    let working = fix_state::working_orders(orders, scope, quiet_for, now);
    if !working.is_empty() {
        return Err(Blocked::Waiting(format!(
            "orders for {} are filling or changed within quiet_for ({}): the bot may be recording them; \
             fix_state waits until they settle",
            working.join(", "),
            crate::config::duration::format(quiet_for)
        )));
    }
    let input = FixInput {
        bot: &cfg.bot,
        root: &cfg.bot.root,
        broker: positions,
        scope,
        template: &cfg.actions.fix_state_template,
        now,
    };
    let files = files.as_ref().map_err(|why| Blocked::Refused(why.clone()))?;
    let fix =
        fix_state::plan_edits(&input, files.positions.clone(), files.metadata.clone()).map_err(Blocked::Refused)?;
    let files = fix
        .files
        .iter()
        .map(|f| FileTarget {
            path: f.path.display().to_string(),
            sha256_before: f.stamp.sha256.clone(),
            sha256_after: fix_state::sha256_hex(f.after.as_bytes()),
        })
        .collect();
    Ok(Planned { plan: fix.plan(), targets: Targets::Files { files }, fix: Some(fix) })
}

/// The start of the closed orders `fix_state` needs: `quiet_for` before `now`.
#[must_use]
pub fn closed_since(quiet_for: Duration, now: DateTime<Utc>) -> DateTime<Utc> {
    let quiet = chrono::Duration::from_std(quiet_for).unwrap_or(chrono::Duration::MAX);
    now.checked_sub_signed(quiet).unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// What the re-read saw, for the intent's `broker_seen`: the reads the action's plan is made
/// of (the closed orders only hold `fix_state` back, and are left out).
#[must_use]
pub fn seen(kind: &ActionKind, inputs: &Inputs<'_>) -> Value {
    let mut seen = serde_json::Map::new();
    for input in kind.needs() {
        match input {
            Input::Positions => {
                if let Ok(p) = inputs.positions {
                    seen.insert("positions".into(), positions_json(p));
                }
            }
            // `fix_state` plans from the positions; its orders only say "not now".
            Input::OpenOrders if *kind != ActionKind::FixState => {
                if let Ok(o) = inputs.open_orders {
                    seen.insert("open_orders".into(), orders_json(o));
                }
            }
            Input::Configuration => {
                if let Ok(c) = inputs.configuration {
                    seen.insert(
                        "configuration".into(),
                        json!({ "no_shorting": c.no_shorting, "suspend_trade": c.suspend_trade }),
                    );
                }
            }
            Input::OpenOrders | Input::ClosedOrders | Input::BotFiles => {}
        }
    }
    if seen.is_empty() { Value::Null } else { Value::Object(seen) }
}
