//! The large-bot generator shared by `benches/genbot.rs` (the command) and the criterion
//! benches: a snapshot directory in the stock-bot layout with N positions and JSONL logs of a
//! given size, one event per `1/rate` s up to `taken_at`. Deterministic: the same options give
//! the same bytes.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// Friday 2026-11-20 15:30:00 UTC: the snapshot's "now".
pub const NOW_EPOCH: i64 = 1_795_188_600;

/// What to generate.
pub struct Opts {
    /// The snapshot directory to write.
    pub out: PathBuf,
    /// Positions at the broker, in state and in metadata.
    pub positions: usize,
    /// Size of each log in MB (10^6 bytes).
    pub log_mb: u64,
    /// Events per second.
    pub rate: u64,
    /// How many logs (run, exits, attribution, fills).
    pub logs: usize,
    /// Seed one incident of each kind the default rules detect (see [`Incident`]), so the
    /// audit and the baseline have findings of every rule to agree on. Needs 20 positions.
    pub incidents: bool,
}

/// The positions (by index) that carry an incident when `Opts::incidents` is set: every rule
/// of rules/default.toml then has something to find, and the baseline must find the same.
pub struct Incident;

impl Incident {
    /// Short at the broker (the bot tracks it long): `short_position`, `side_mismatch`,
    /// `short_exposure`.
    pub const SHORT: usize = 3;
    /// The bot tracks one share more: `quantity_mismatch`.
    pub const QTY: usize = 5;
    /// The bot's entry price is 5% above the broker's: `entry_price_mismatch`.
    pub const PRICE: usize = 7;
    /// No metadata: `metadata_missing`.
    pub const NO_METADATA: usize = 9;
    /// Metadata with a zero entry score: `metadata_incomplete`.
    pub const BAD_METADATA: usize = 11;
    /// An open sell for 5 more shares than held, placed 2 h ago: `sell_exceeds_position`,
    /// `stale_order`.
    pub const OVERSELL: usize = 13;
    /// Two identical open buys placed 1-2 minutes ago (`duplicate_order`) and a small limit
    /// sell of a held symbol placed between them (`buy_before_sell`: within `sequence_window`).
    pub const DUPLICATE_BUY: usize = 15;
    // And the bot tracks (with metadata) `symbol(positions)`, which the broker does not hold:
    // `orphaned_position`.
}

fn has(o: &Opts, i: usize, incident: usize) -> bool {
    o.incidents && o.positions >= 20 && i == incident
}

fn qty_of(i: usize) -> usize {
    10 + i % 90
}

fn price_of(i: usize) -> usize {
    20 + (i % 400)
}

pub fn iso(epoch: i64) -> String {
    // Civil-from-days (Howard Hinnant's algorithm), to avoid a date dependency here.
    let days = epoch.div_euclid(86_400);
    let secs = epoch.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00", secs / 3600, secs % 3600 / 60, secs % 60)
}

pub fn symbol(i: usize) -> String {
    let mut s = String::from("S");
    let mut n = i;
    for _ in 0..4 {
        s.push((b'A' + (n % 26) as u8) as char);
        n /= 26;
    }
    s
}

pub fn write(path: &Path, text: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
}

pub fn broker(o: &Opts) {
    let mut pos = String::from("[");
    let mut long_mv: u64 = 0;
    for i in 0..o.positions {
        let (qty, price) = (qty_of(i), price_of(i));
        let (sign, side) = if has(o, i, Incident::SHORT) { ("-", "short") } else { ("", "long") };
        if sign.is_empty() {
            long_mv += (qty * price) as u64;
        }
        if i > 0 {
            pos.push(',');
        }
        let _ = write!(
            pos,
            r#"{{"asset_id":"00000000-0000-4000-8000-{i:012}","symbol":"{s}","exchange":"NASDAQ","asset_class":"us_equity","asset_marginable":true,"qty":"{sign}{qty}","qty_available":"{sign}{qty}","avg_entry_price":"{price}.00","side":"{side}","market_value":"{sign}{mv}.00","cost_basis":"{sign}{mv}.00","unrealized_pl":"0.00","unrealized_plpc":"0","unrealized_intraday_pl":"0","unrealized_intraday_plpc":"0","current_price":"{price}.00","lastday_price":"{price}.00","change_today":"0"}}"#,
            s = symbol(i),
            mv = qty * price
        );
    }
    pos.push(']');
    let dir = o.out.join("broker");
    write(&dir.join("positions.json"), &pos);
    let equity = long_mv * 2;
    write(
        &dir.join("account.json"),
        &format!(
            r#"{{"id":"291f9c46-9fe1-49e8-934f-934869bb2adf","account_number":"PA3XK8Q1ZT7M","status":"ACTIVE","currency":"USD","cash":"{long_mv}.00","buying_power":"{equity}.00","equity":"{equity}.00","long_market_value":"{long_mv}.00","short_market_value":"0","shorting_enabled":true,"trading_blocked":false,"account_blocked":false,"trade_suspended_by_user":false}}"#
        ),
    );
    write(&dir.join("orders.json"), &orders(o));
    write(
        &dir.join("clock.json"),
        r#"{"timestamp":"2026-11-20T10:30:00-05:00","is_open":true,"next_open":"2026-11-23T09:30:00-05:00","next_close":"2026-11-20T16:00:00-05:00"}"#,
    );
    write(
        &dir.join("account_configurations.json"),
        r#"{"trade_confirm_email":"all","suspend_trade":false,"no_shorting":true,"fractional_trading":true,"max_margin_multiplier":"2","max_options_trading_level":0,"ptp_no_exception_entry":false}"#,
    );
}

/// An open order in Alpaca's shape.
fn order(n: usize, symbol: &str, side: &str, qty: usize, limit: &str, placed: i64) -> String {
    let at = iso(placed);
    format!(
        r#"{{"id":"0000000{n}-0000-4000-8000-000000000000","client_order_id":"bench-{n}","created_at":"{at}","updated_at":"{at}","submitted_at":"{at}","filled_at":null,"expired_at":null,"canceled_at":null,"failed_at":null,"replaced_at":null,"replaced_by":null,"replaces":null,"asset_id":"00000000-0000-4000-8000-000000000000","symbol":"{symbol}","asset_class":"us_equity","notional":null,"qty":"{qty}","filled_qty":"0","filled_avg_price":null,"order_class":"","order_type":"limit","type":"limit","side":"{side}","time_in_force":"day","limit_price":"{limit}","stop_price":null,"status":"new","extended_hours":false,"legs":null,"trail_percent":null,"trail_price":null,"hwm":null}}"#
    )
}

fn orders(o: &Opts) -> String {
    if !o.incidents || o.positions < 20 {
        return "[]".into();
    }
    let (sell, buy) = (Incident::OVERSELL, Incident::DUPLICATE_BUY);
    let sell_price = format!("{}.00", price_of(sell) + 1);
    let buy_price = format!("{}.00", price_of(buy) - 1);
    [
        order(1, &symbol(sell), "sell", qty_of(sell) + 5, &sell_price, NOW_EPOCH - 7200),
        order(2, &symbol(buy), "buy", 10, &buy_price, NOW_EPOCH - 120),
        order(3, &symbol(buy), "buy", 10, &buy_price, NOW_EPOCH - 60),
        order(4, &symbol(buy), "sell", 1, &format!("{}.00", price_of(buy) + 1), NOW_EPOCH - 90),
    ]
    .iter()
    .fold(String::from("["), |acc, x| if acc.len() > 1 { acc + "," + x } else { acc + x })
        + "]"
}

pub fn bot_state(o: &Opts) {
    let mut opens = String::from(r#"{"updated_at":"2026-11-20T15:29:20+00:00","opens":{"#);
    let mut meta = String::from("{");
    // The orphan (tracked, with metadata, not at the broker) is one past the last position.
    let tracked = o.positions + usize::from(o.incidents && o.positions >= 20);
    for i in 0..tracked {
        let (mut qty, price) = (qty_of(i), price_of(i));
        if has(o, i, Incident::QTY) {
            qty += 1;
        }
        let entry = if has(o, i, Incident::PRICE) {
            format!("{}.{:02}", price * 105 / 100, price * 105 % 100)
        } else {
            format!("{price}.00")
        };
        let sep = if i > 0 { "," } else { "" };
        let _ = write!(opens, r#"{sep}"{s}":{{"qty":{qty},"entry_price":"{entry}","strategy":"rsi"}}"#, s = symbol(i));
        if has(o, i, Incident::NO_METADATA) {
            continue;
        }
        let score = if has(o, i, Incident::BAD_METADATA) { 0 } else { 10 + i % 89 };
        let sep = if meta.len() > 1 { "," } else { "" };
        let _ = write!(
            meta,
            r#"{sep}"{s}":{{"entry_score":0.{score:02},"entry_ts":"2026-11-19T15:00:00+00:00","components":{{"rsi":0.4,"trend":0.3}}}}"#,
            s = symbol(i),
        );
    }
    opens.push_str("}}");
    meta.push('}');
    write(&o.out.join("bot/state/executor_state.json"), &opens);
    write(&o.out.join("bot/state/position_metadata.json"), &meta);
}

/// Writes a log of about `bytes`, oldest first, one event per `1/rate` s, ending at now.
pub fn log(path: &Path, bytes: u64, rate: u64, kind: &str) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let sample = line(NOW_EPOCH, 0, kind);
    let lines = (bytes / sample.len() as u64).max(1);
    let mut w = BufWriter::with_capacity(1 << 20, File::create(path).unwrap());
    for n in 0..lines {
        let age = (lines - 1 - n) / rate;
        w.write_all(line(NOW_EPOCH - age as i64, n, kind).as_bytes()).unwrap();
    }
    w.flush().unwrap();
}

pub fn line(t: i64, n: u64, kind: &str) -> String {
    match kind {
        "exits" => format!(
            "{{\"ts\":\"{}\",\"event\":\"EXIT_EVAL\",\"symbol\":\"{}\",\"decision\":\"hold\",\"rsi\":55.2}}\n",
            iso(t),
            symbol((n % 2000) as usize)
        ),
        "attribution" => format!(
            "{{\"ts\":\"{}\",\"event\":\"ENTRY\",\"symbol\":\"{}\",\"qty\":\"10\",\"price\":\"131.40\"}}\n",
            iso(t),
            symbol((n % 2000) as usize)
        ),
        "fills" => format!("{{\"ts\":{t},\"event\":\"FILL\",\"qty\":\"1\",\"price\":\"10.00\",\"seq\":{n}}}\n"),
        _ => format!(
            "{{\"ts\":\"{}\",\"event\":\"CYCLE\",\"positions\":2000,\"duration_ms\":812,\"seq\":{n}}}\n",
            iso(t)
        ),
    }
}

pub fn config(o: &Opts) {
    let rules = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("rules/default.toml");
    let mut cfg = format!(
        "# Generated by benches/genbot.rs\nrules = [{rules:?}]\n\n[broker]\nkind = \"replay\"\ndir = \".\"\n\n[bot]\nroot = \"bot\"\n\n[bot.positions]\nfile = \"state/executor_state.json\"\nat = \"/opens\"\nentry_price = \"entry_price\"\n\n[bot.metadata]\nfile = \"state/position_metadata.json\"\n"
    );
    for name in ["run", "exits", "attribution", "fills"].iter().take(o.logs) {
        let _ = write!(cfg, "\n[logs.{name}]\nfile = \"logs/{name}.jsonl\"\ntime = \"ts\"\n");
    }
    write(&o.out.join("tradewarden.toml"), &cfg);
    write(&o.out.join("snapshot.toml"), "taken_at = \"2026-11-20T15:30:00Z\"\nmode = \"paper\"\n");
}

/// Writes the whole snapshot directory.
pub fn generate(o: &Opts) {
    fs::create_dir_all(&o.out).unwrap();
    broker(o);
    bot_state(o);
    for name in ["run", "exits", "attribution", "fills"].iter().take(o.logs) {
        log(&o.out.join(format!("bot/logs/{name}.jsonl")), o.log_mb * 1_000_000, o.rate, name);
    }
    config(o);
}
