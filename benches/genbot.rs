//! Generates a large bot for benchmarks, as a snapshot directory `audit --replay` reads:
//! N positions at the broker, in the bot's state and in its metadata (the stock-bot layout),
//! and three JSONL logs of a given size with one event per second up to `taken_at`.
//!
//! ```sh
//! cargo run --release --example genbot -- --out /tmp/bot --positions 2000 --log-mb 500
//! ./target/release/tradewarden audit -c /tmp/bot/tradewarden.toml --replay /tmp/bot
//! ```
//! Options: `--out DIR` (required), `--positions N` (2000), `--log-mb MB` (500, per log),
//! `--rate N` (events per second, 1), `--logs N` (3: run, exits, attribution; a 4th is `fills`),
//! `--no-incidents` (by default a bot of 20 positions or more carries one incident of each kind
//! the default rules detect: a short, a quantity and a price mismatch, missing and incomplete
//! metadata, an orphan, an oversized stale sell and duplicate buys; see `Incident`).
//! Output is deterministic: the same options give the same bytes.

#[path = "support/gen.rs"]
mod generator;

use std::path::PathBuf;

use generator::{Opts, generate};

fn parse_args() -> Opts {
    let mut o = Opts { out: PathBuf::new(), positions: 2000, log_mb: 500, rate: 1, logs: 3, incidents: true };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let v = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--out" => o.out = PathBuf::from(v),
            "--positions" => o.positions = v.parse().expect("--positions N"),
            "--log-mb" => o.log_mb = v.parse().expect("--log-mb MB"),
            "--rate" => o.rate = v.parse().expect("--rate N"),
            "--logs" => o.logs = v.parse().expect("--logs N"),
            "--no-incidents" => {
                o.incidents = false;
                i += 1;
                continue;
            }
            other => panic!("unknown option {other}"),
        }
        i += 2;
    }
    assert!(!o.out.as_os_str().is_empty(), "--out DIR is required");
    o
}

fn main() {
    let o = parse_args();
    generate(&o);
    println!("{}", o.out.display());
}
