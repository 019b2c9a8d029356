//! Criterion benches for the hot paths of one audit: the JSONL reverse scan, timestamp
//! parsing, the broker's positions body, JSON state extraction, rules evaluation and report
//! rendering, on a generated large bot (2,000 positions with the generator's incidents; a
//! 64 MB log, one event per second).
//!
//! `cargo bench --features bench --bench hot_paths`. Whole-process numbers are in BENCHMARKS.md (`benches/bench.py`).

#[path = "support/gen.rs"]
#[allow(dead_code, reason = "the generator's command-line entry points are used by genbot only")]
mod generator;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tradewarden::clock::SystemClock;
use tradewarden::collect::bot::{jsonl, state};
use tradewarden::collect::broker::{Broker, replay::ReplayBroker};
use tradewarden::config::Config;
use tradewarden::model::{FieldRef, LogQuery, Matcher, Window};
use tradewarden::report::{Report, render_text};

fn benches(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bot");
    generator::generate(&generator::Opts {
        out: out.clone(),
        positions: 2000,
        log_mb: 64,
        rate: 1,
        logs: 2,
        incidents: true,
    });
    let cfg = Config::load(&out.join("tradewarden.toml")).expect("generated config is valid");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let broker = Broker::Replay(ReplayBroker::new(&out));
    let snap = rt.block_on(tradewarden::collect::collect(&cfg, &broker, &SystemClock)).unwrap();
    let now = snap.taken_at;

    let log = out.join("bot/logs/run.jsonl");
    let ts = FieldRef::parse("ts").unwrap();
    let hour = LogQuery {
        windows: vec![Window { within: Duration::from_secs(3600), matcher: Matcher::default() }],
        last_record: false,
    };
    c.bench_function("jsonl reverse scan, 64 MB log, 1 h window", |b| {
        b.iter(|| black_box(jsonl::scan(&log, "run", &ts, &hour, now).unwrap()))
    });
    let day = LogQuery {
        windows: vec![Window { within: Duration::from_secs(86_400), matcher: Matcher::default() }],
        last_record: false,
    };
    c.bench_function("jsonl reverse scan, 64 MB log, 24 h window", |b| {
        b.iter(|| black_box(jsonl::scan(&log, "run", &ts, &day, now).unwrap()))
    });

    let samples = [
        json!("2026-11-20T15:29:59.878296+00:00"),
        json!("2026-11-20T10:29:59-05:00"),
        json!(1_795_188_599_000_i64),
        json!("2026-11-20 15:29:59"),
    ];
    c.bench_function("timestamp parsing (4 formats)", |b| {
        b.iter(|| {
            for s in &samples {
                black_box(tradewarden::timestamp::timestamp_from_json(s).unwrap());
            }
        })
    });

    let body = std::fs::read(out.join("broker/positions.json")).expect("generated positions");
    c.bench_function("broker positions body parse, 2,000 positions", |b| {
        b.iter(|| black_box(tradewarden::collect::broker::wire::parse_positions(&body).unwrap()))
    });

    let root = out.join("bot");
    let empty = std::collections::BTreeMap::new();
    c.bench_function("state extraction, 2,000 positions", |b| {
        b.iter(|| black_box(state::read_positions(&cfg.bot.positions, &root, &empty).unwrap()))
    });
    let meta = cfg.bot.metadata.clone().unwrap();
    c.bench_function("metadata extraction, 2,000 positions", |b| {
        b.iter(|| black_box(state::read_metadata(&meta, &root, &empty).unwrap()))
    });

    c.bench_function("rules evaluation, default pack, 2,000 positions", |b| {
        b.iter(|| black_box(tradewarden::engine::evaluate(&cfg.rules, &snap, now)))
    });

    let evaluated = tradewarden::engine::evaluate(&cfg.rules, &snap, now);
    c.bench_function("report build + JSON, 2,000 positions", |b| {
        b.iter(|| black_box(Report::build(&snap, &evaluated).to_json()))
    });
    let report = Report::build(&snap, &evaluated);
    c.bench_function("report text rendering, 2,000 positions", |b| b.iter(|| black_box(render_text(&report, false))));
}

criterion_group! {
    name = hot_paths;
    config = Criterion::default().sample_size(20).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = benches
}
criterion_main!(hot_paths);
