//! Small snapshot builders for check unit tests (test-only).

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use serde_json::Value;

use crate::checks::Kind;
use crate::config::reader::{Problems, SourceText, TableReader, parse_document};
use crate::config::{Problem, RuleContext};
use crate::model::{
    Account, AccountConfiguration, BotView, BrokerView, LogSummary, MarketClock, Mode, Order, OrderSide, Position,
    Side, Snapshot, SourceError, Symbol, TrackedPosition,
};

/// Parses a decimal literal in tests.
#[must_use]
pub fn d(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

/// The default "now" of built snapshots: Friday 2026-11-20 15:00 UTC (10:00 New York).
#[must_use]
pub fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-20T15:00:00Z").unwrap().with_timezone(&Utc)
}

/// Builds a `Snapshot`: an open market, an active $100,000 account, no positions, no orders.
pub struct SnapshotBuilder {
    snap: Snapshot,
}

impl Default for SnapshotBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotBuilder {
    /// The clean default.
    #[must_use]
    pub fn new() -> Self {
        let now = t0();
        Self {
            snap: Snapshot {
                taken_at: now,
                mode: Mode::Paper,
                broker: BrokerView {
                    account: Ok(Account {
                        id: "291f9c46-9fe1-49e8-934f-934869bb2adf".into(),
                        status: "ACTIVE".into(),
                        equity: Some(d("100000")),
                        cash: Some(d("100000")),
                        buying_power: Some(d("200000")),
                        long_market_value: Some(d("0")),
                        short_market_value: Some(d("0")),
                        shorting_enabled: Some(true),
                        trading_blocked: Some(false),
                        account_blocked: Some(false),
                        trade_suspended_by_user: Some(false),
                        currency: Some("USD".into()),
                    }),
                    positions: Ok(vec![]),
                    orders: Ok(vec![]),
                    clock: Ok(MarketClock { timestamp: now, is_open: true, next_open: None, next_close: None }),
                    configuration: Some(Ok(AccountConfiguration {
                        no_shorting: Some(false),
                        suspend_trade: Some(false),
                        fractional_trading: Some(true),
                        max_margin_multiplier: Some("2".into()),
                    })),
                    recent_orders: None,
                    bodies: BTreeMap::new(),
                },
                bot: BotView { positions: Ok(vec![]), metadata: None },
                logs: BTreeMap::new(),
            },
        }
    }

    /// The snapshot.
    #[must_use]
    pub fn build(self) -> Snapshot {
        self.snap
    }

    /// Sets "now".
    #[must_use]
    pub fn at(mut self, t: DateTime<Utc>) -> Self {
        self.snap.taken_at = t;
        if let Ok(c) = &mut self.snap.broker.clock {
            c.timestamp = t;
        }
        self
    }

    /// A broker position priced at its entry price.
    #[must_use]
    pub fn position(self, symbol: &str, qty: &str, avg_entry: &str) -> Self {
        self.position_priced(symbol, qty, avg_entry, avg_entry)
    }

    /// A broker position with a current price.
    #[must_use]
    pub fn position_priced(mut self, symbol: &str, qty: &str, avg_entry: &str, price: &str) -> Self {
        let qty = d(qty);
        let price = d(price);
        let p = Position {
            symbol: Symbol::new(symbol),
            qty,
            side: if qty < Decimal::ZERO { Side::Short } else { Side::Long },
            avg_entry_price: Some(d(avg_entry)),
            market_value: Some(qty * price),
            current_price: Some(price),
            unrealized_pl: None,
            asset_class: "us_equity".into(),
        };
        self.snap.broker.positions.as_mut().expect("positions available").push(p);
        self
    }

    /// A position the bot tracks.
    #[must_use]
    pub fn tracked(mut self, symbol: &str, qty: &str, entry_price: Option<&str>) -> Self {
        let qty = d(qty);
        let t = TrackedPosition {
            symbol: Symbol::new(symbol),
            qty,
            side: Side::of_qty(qty),
            entry_price: entry_price.map(d),
        };
        self.snap.bot.positions.as_mut().expect("bot positions available").push(t);
        self
    }

    /// A tracked position with an explicit side (a bot writing positive qty plus `side`).
    #[must_use]
    pub fn tracked_side(mut self, symbol: &str, qty: &str, side: Side) -> Self {
        let t = TrackedPosition { symbol: Symbol::new(symbol), qty: d(qty), side: Some(side), entry_price: None };
        self.snap.bot.positions.as_mut().expect("bot positions available").push(t);
        self
    }

    /// Metadata for a symbol (turns metadata on).
    #[must_use]
    pub fn metadata(mut self, symbol: &str, value: Value) -> Self {
        let m = self.snap.bot.metadata.get_or_insert_with(|| Ok(BTreeMap::new()));
        m.as_mut().expect("metadata available").insert(Symbol::new(symbol), value);
        self
    }

    /// Metadata configured but empty.
    #[must_use]
    pub fn metadata_empty(mut self) -> Self {
        self.snap.bot.metadata = Some(Ok(BTreeMap::new()));
        self
    }

    /// An open order, submitted `age_secs` before now; returns the builder.
    #[must_use]
    pub fn order(self, id: &str, symbol: &str, side: OrderSide, qty: &str, age_secs: i64) -> Self {
        self.order_with(id, symbol, side, qty, age_secs, |_| {})
    }

    /// An open order, adjusted by `f`.
    #[must_use]
    pub fn order_with(
        mut self,
        id: &str,
        symbol: &str,
        side: OrderSide,
        qty: &str,
        age_secs: i64,
        f: impl FnOnce(&mut Order),
    ) -> Self {
        let at = self.snap.taken_at - Duration::seconds(age_secs);
        let mut o = Order {
            id: id.into(),
            client_order_id: format!("client-{id}"),
            symbol: Symbol::new(symbol),
            side,
            order_type: "market".into(),
            qty: Some(d(qty)),
            notional: None,
            filled_qty: Decimal::ZERO,
            limit_price: None,
            stop_price: None,
            status: "new".into(),
            created_at: Some(at),
            submitted_at: Some(at),
            updated_at: Some(at),
            filled_at: None,
        };
        f(&mut o);
        self.snap.broker.orders.as_mut().expect("orders available").push(o);
        self
    }

    /// Sets account equity.
    #[must_use]
    pub fn equity(mut self, equity: &str) -> Self {
        self.snap.broker.account.as_mut().expect("account available").equity = Some(d(equity));
        self
    }

    /// Adjusts the account.
    #[must_use]
    pub fn account_with(mut self, f: impl FnOnce(&mut Account)) -> Self {
        f(self.snap.broker.account.as_mut().expect("account available"));
        self
    }

    /// Adjusts the account configuration.
    #[must_use]
    pub fn configuration_with(mut self, f: impl FnOnce(&mut AccountConfiguration)) -> Self {
        if let Some(Ok(c)) = &mut self.snap.broker.configuration {
            f(c);
        }
        self
    }

    /// Opens or closes the market.
    #[must_use]
    pub fn market_open(mut self, open: bool) -> Self {
        self.snap.broker.clock.as_mut().expect("clock available").is_open = open;
        self
    }

    /// A log summary.
    #[must_use]
    pub fn log(mut self, name: &str, summary: LogSummary) -> Self {
        self.snap.logs.insert(name.into(), Ok(summary));
        self
    }

    /// A log that could not be read.
    #[must_use]
    pub fn log_unavailable(mut self, name: &str) -> Self {
        self.snap.logs.insert(name.into(), Err(SourceError::unavailable(format!("log:{name}"), "no such file")));
        self
    }

    /// `GET /v2/positions` failed.
    #[must_use]
    pub fn broker_positions_unavailable(mut self) -> Self {
        self.snap.broker.positions = Err(SourceError::unavailable("broker:positions", "connection refused"));
        self
    }

    /// `GET /v2/orders` failed.
    #[must_use]
    pub fn broker_orders_unavailable(mut self) -> Self {
        self.snap.broker.orders = Err(SourceError::unavailable("broker:orders", "timeout"));
        self
    }

    /// `GET /v2/account` failed.
    #[must_use]
    pub fn broker_account_unavailable(mut self) -> Self {
        self.snap.broker.account = Err(SourceError::unavailable("broker:account", "HTTP 500"));
        self
    }

    /// `GET /v2/clock` failed.
    #[must_use]
    pub fn broker_clock_unavailable(mut self) -> Self {
        self.snap.broker.clock = Err(SourceError::unavailable("broker:clock", "HTTP 500"));
        self
    }

    /// Account configurations not fetched.
    #[must_use]
    pub fn no_configuration(mut self) -> Self {
        self.snap.broker.configuration = None;
        self
    }

    /// The bot's positions file is malformed.
    #[must_use]
    pub fn bot_positions_malformed(mut self) -> Self {
        self.snap.bot.positions =
            Err(SourceError::malformed("positions", "state/executor_state.json: byte 120: EOF while parsing"));
        self
    }

    /// Adjusts the last broker position added.
    #[must_use]
    pub fn last_position_with(mut self, f: impl FnOnce(&mut Position)) -> Self {
        f(self.snap.broker.positions.as_mut().expect("positions available").last_mut().expect("a position"));
        self
    }

    /// Account configurations could not be fetched.
    #[must_use]
    pub fn configuration_unavailable(mut self) -> Self {
        self.snap.broker.configuration = Some(Err(SourceError::unavailable("broker:configurations", "HTTP 403")));
        self
    }

    /// The metadata file is malformed.
    #[must_use]
    pub fn metadata_malformed(mut self) -> Self {
        self.snap.bot.metadata =
            Some(Err(SourceError::malformed("metadata", "state/position_metadata.json: byte 57: EOF while parsing")));
        self
    }
}

/// A log summary with the newest event `age_secs` ago and the given window counts.
#[must_use]
pub fn log_summary(newest_age_secs: Option<i64>, counts: Vec<crate::model::WindowCount>) -> LogSummary {
    LogSummary {
        file: "/bot/logs/x.jsonl".into(),
        file_len: 1000,
        newest_event: newest_age_secs.map(|a| t0() - Duration::seconds(a)),
        counts,
        lines_scanned: 10,
        bytes_scanned: 1000,
        scanned_from: 0,
        malformed_count: 0,
        malformed: vec![],
        last_record: None,
        last_record_error: None,
        torn_tail: false,
    }
}

/// The `[logs.NAME]` names known to rules read by `read_params`.
pub const KNOWN_LOGS: [&str; 2] = ["run", "exits"];

/// Reads a check's parameters from a TOML table written as bare `key = value` lines (line 1 is
/// the first line of `text`), with `KNOWN_LOGS` configured, then reports unknown keys against
/// the kind's parameters as the rule reader does. Returns the parameters and every problem, in file order.
pub fn read_params<T>(
    text: &str,
    read: impl FnOnce(&mut TableReader<'_, '_>, &RuleContext) -> Option<T>,
    kind: &Kind,
) -> (Option<T>, Vec<Problem>) {
    let src = SourceText::new(Path::new("rules/test.toml"), text.to_owned());
    let doc = parse_document(&src).expect("valid TOML");
    let problems = Problems::default();
    let ctx = RuleContext { logs: KNOWN_LOGS.iter().map(|s| (*s).to_owned()).collect(), ..RuleContext::default() };
    let mut r = TableReader::new(&src, &problems, doc.get_ref(), doc.span(), "rule `t`");
    let out = read(&mut r, &ctx);
    r.finish(&kind.param_names());
    (out, problems.into_sorted())
}

/// Asserts that reading `text` fails with exactly one problem per `(line, fragment)`: on that
/// line, with a message containing that fragment.
#[track_caller]
pub fn assert_problems<T>(got: &(Option<T>, Vec<Problem>), want: &[(usize, &str)]) {
    let (_, problems) = got;
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(problems.len(), want.len(), "problems: {shown:#?}");
    for (p, (line, fragment)) in problems.iter().zip(want) {
        assert_eq!(p.line, *line, "{p}");
        assert!(p.message.contains(fragment), "`{}` does not contain `{fragment}`", p.message);
    }
}

/// Reads parameters that must have no problems.
#[track_caller]
pub fn read_ok<T>(
    text: &str,
    read: impl FnOnce(&mut TableReader<'_, '_>, &RuleContext) -> Option<T>,
    kind: &Kind,
) -> T {
    let (value, problems) = read_params(text, read, kind);
    let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "unexpected problems: {shown:#?}");
    value.expect("parameters read")
}

/// `t0()` shifted by whole seconds (negative = earlier).
#[must_use]
pub fn at(secs: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(secs)
}

/// The issues of a `Checked` evaluation; panics on `Unknown`.
#[track_caller]
#[must_use]
pub fn issues(e: crate::checks::Evaluation) -> Vec<crate::model::Issue> {
    match e {
        crate::checks::Evaluation::Checked(v) => v,
        crate::checks::Evaluation::Unknown(b) => panic!("expected Checked, got Unknown({b:#?})"),
    }
}

/// The `(code, subject)` pairs of a `Checked` evaluation.
#[track_caller]
#[must_use]
pub fn codes(e: crate::checks::Evaluation) -> Vec<(&'static str, String)> {
    issues(e).into_iter().map(|i| (i.code, i.subject)).collect()
}

/// The reason of an `Unknown` evaluation; panics on `Checked`.
#[track_caller]
#[must_use]
pub fn unknown(e: crate::checks::Evaluation) -> String {
    match e {
        crate::checks::Evaluation::Unknown(b) => b.reason(),
        crate::checks::Evaluation::Checked(v) => panic!("expected Unknown, got Checked({v:#?})"),
    }
}

/// What an `Unknown` evaluation could not see, and what it found; panics on `Checked`.
#[track_caller]
#[must_use]
pub fn blind(e: crate::checks::Evaluation) -> crate::checks::Blind {
    match e {
        crate::checks::Evaluation::Unknown(b) => b,
        crate::checks::Evaluation::Checked(v) => panic!("expected Unknown, got Checked({v:#?})"),
    }
}
