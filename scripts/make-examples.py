#!/usr/bin/env python3
"""Writes the example bot setups and their snapshot directories under examples/.

The snapshots are committed; this script documents where every byte came from and rebuilds
them (`python3 scripts/make-examples.py`). Every broker body follows the Alpaca shapes of
shared/docs/alpaca-api.md (decimals as strings, signed qty). Values are invented.

Layouts (field-notes.md section 4):
  stock-bot: state/executor_state.json (`opens` keyed by symbol), state/position_metadata.json,
             logs/run.jsonl, logs/exits.jsonl, logs/attribution.jsonl
  ordinis:   logs/events.jsonl, logs/trades.jsonl, logs/positions.jsonl (the bot's positions are
             the last record of positions.jsonl)
"""
import json
import shutil
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "examples"
NOW = datetime(2026, 11, 20, 15, 30, 0, tzinfo=timezone.utc)  # Friday 10:30 New York
NS = uuid.UUID("6f1c2a52-0000-4000-8000-000000000000")


def uid(*parts):
    return str(uuid.uuid5(NS, "/".join(map(str, parts))))


def iso(t, offset=True):
    return t.isoformat() if offset else t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def money(d):
    return str(Decimal(d).quantize(Decimal("0.01")))


def position(sym, qty, avg, price, exchange="NASDAQ"):
    qty, avg, price = Decimal(qty), Decimal(avg), Decimal(price)
    mv, cb = qty * price, qty * avg
    pl = mv - cb
    return {
        "asset_id": uid("asset", sym), "symbol": sym, "exchange": exchange, "asset_class": "us_equity",
        "asset_marginable": True, "qty": str(qty), "qty_available": str(qty), "avg_entry_price": str(avg),
        "side": "long" if qty > 0 else "short", "market_value": money(mv), "cost_basis": money(cb),
        "unrealized_pl": money(pl), "unrealized_plpc": str((pl / abs(cb)).quantize(Decimal("0.0000000001"))),
        "unrealized_intraday_pl": money(pl), "unrealized_intraday_plpc": "0", "current_price": str(price),
        "lastday_price": str(price), "change_today": "0",
    }


def order(sym, side, qty, age_min, kind="market", limit=None, status="new", filled="0", cid=None):
    t = NOW - timedelta(minutes=age_min)
    return {
        "id": uid("order", sym, side, qty, age_min, kind), "client_order_id": cid or uid("client", sym, side, age_min),
        "created_at": iso(t, False), "updated_at": iso(t, False), "submitted_at": iso(t, False),
        "filled_at": None, "expired_at": None, "canceled_at": None, "failed_at": None, "replaced_at": None,
        "replaced_by": None, "replaces": None, "asset_id": uid("asset", sym), "symbol": sym,
        "asset_class": "us_equity", "notional": None, "qty": str(qty), "filled_qty": filled,
        "filled_avg_price": None, "order_class": "", "order_type": kind, "type": kind, "side": side,
        "time_in_force": "day", "limit_price": limit, "stop_price": None, "status": status,
        "extended_hours": False, "legs": None, "trail_percent": None, "trail_price": None, "hwm": None,
    }


def account(positions, cash):
    long_mv = sum(Decimal(p["market_value"]) for p in positions if Decimal(p["qty"]) > 0)
    short_mv = sum(Decimal(p["market_value"]) for p in positions if Decimal(p["qty"]) < 0)
    equity = Decimal(cash) + long_mv + short_mv
    return {
        "id": "291f9c46-9fe1-49e8-934f-934869bb2adf", "account_number": "PA3XK8Q1ZT7M", "status": "ACTIVE",
        "crypto_status": "ACTIVE", "currency": "USD", "cash": money(cash), "buying_power": money(max(equity * 2 - (long_mv - short_mv), Decimal(0))),
        "regt_buying_power": money(equity * 2), "non_marginable_buying_power": money(cash),
        "portfolio_value": money(equity), "equity": money(equity), "last_equity": money(equity),
        "long_market_value": money(long_mv), "short_market_value": money(short_mv),
        "position_market_value": money(long_mv + short_mv), "initial_margin": "0", "maintenance_margin": "0",
        "multiplier": "2", "shorting_enabled": True, "trading_blocked": False, "transfers_blocked": False,
        "account_blocked": False, "trade_suspended_by_user": False, "created_at": "2024-09-03T15:20:11.482391Z",
    }


CLOCK_OPEN = {"timestamp": "2026-11-20T10:30:00.318204551-05:00", "is_open": True,
              "next_open": "2026-11-23T09:30:00-05:00", "next_close": "2026-11-20T16:00:00-05:00"}
CONFIG = {"trade_confirm_email": "all", "suspend_trade": False, "no_shorting": True, "fractional_trading": True,
          "max_margin_multiplier": "2", "max_options_trading_level": 0, "ptp_no_exception_entry": False,
          "disable_overnight_trading": False}


def write_json(path, value, raw=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(raw if raw is not None else json.dumps(value, indent=2) + "\n")


def write_jsonl(path, records, tail=""):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)


def snapshot(dir, broker, note):
    if dir.exists():
        shutil.rmtree(dir)
    dir.mkdir(parents=True)
    (dir / "snapshot.toml").write_text(f'# {note}\ntaken_at = "{iso(NOW, False)}"\nmode = "paper"\nrecorded_by = "scripts/make-examples.py"\n')
    for name, body in broker.items():
        if body is not None:
            write_json(dir / "broker" / f"{name}.json", body)


# ---------------------------------------------------------------- stock-bot

def stock_bot_logs(bot, loop_age_min=1, exits_age_min=3, malformed=False):
    run = []
    t = NOW - timedelta(hours=3)
    while t <= NOW - timedelta(minutes=loop_age_min):
        run.append({"ts": iso(t), "event": "CYCLE", "positions": 3, "duration_ms": 812})
        t += timedelta(minutes=1)
    if malformed:
        # A Decimal that was not JSON-serialisable crashed the writer mid-line (field notes §1).
        lines = [json.dumps(r) for r in run]
        lines.append('{"ts": "' + iso(NOW - timedelta(seconds=30)) + '", "event": "CYCLE", "pnl": Decimal(')
        (bot / "logs").mkdir(parents=True, exist_ok=True)
        (bot / "logs/run.jsonl").write_text("\n".join(lines) + "\n")
    else:
        write_jsonl(bot / "logs/run.jsonl", run)
    exits = []
    t = NOW - timedelta(hours=3)
    while t <= NOW - timedelta(minutes=exits_age_min):
        exits.append({"ts": iso(t), "event": "EXIT_EVAL", "symbol": "AAPL", "decision": "hold", "rsi": 55.2})
        t += timedelta(minutes=15)
    write_jsonl(bot / "logs/exits.jsonl", exits)
    write_jsonl(bot / "logs/attribution.jsonl", [
        {"ts": iso(NOW - timedelta(days=1, hours=2)), "event": "ENTRY", "symbol": "NVDA", "qty": "20", "price": "131.40", "score": 0.77},
        {"ts": iso(NOW - timedelta(hours=4)), "event": "ENTRY", "symbol": "MSFT", "qty": 5, "price": 412.3, "score": 0.81},
    ])


def stock_bot_state(bot, opens, metadata, metadata_raw=None):
    write_json(bot / "state/executor_state.json", {"updated_at": iso(NOW - timedelta(seconds=40)), "opens": opens, "cash_reserved": "0"})
    write_json(bot / "state/position_metadata.json", metadata, metadata_raw)


def meta(score, ts_age_h=5, components=True):
    m = {"entry_score": score, "entry_ts": iso(NOW - timedelta(hours=ts_age_h)), "strategy": "rsi_reversion"}
    if components:
        m["components"] = {"rsi": 0.4, "trend": 0.3, "volume": 0.1}
    return m


CLEAN_POSITIONS = [position("AAPL", "10", "187.25", "190.10"), position("MSFT", "5", "412.30", "415.10"),
                   position("NVDA", "20", "131.40", "133.00")]
CLEAN_OPENS = {"AAPL": {"qty": 10, "entry_price": 187.25, "strategy": "rsi_reversion"},
               "MSFT": {"qty": "5", "entry_price": "412.30", "strategy": "rsi_reversion"},
               "NVDA": {"qty": 20.0, "entry_price": "131.4", "strategy": "breakout"}}
CLEAN_META = {"AAPL": meta(0.82), "MSFT": meta("0.81"), "NVDA": meta(0.77, 26)}


def stock_bot():
    base = ROOT / "stock-bot"
    bot = base / "bot"  # a sample live bot directory, matching the clean snapshot
    stock_bot_state(bot, CLEAN_OPENS, CLEAN_META)
    stock_bot_logs(bot)
    snaps = base / "snapshots"

    def broker(positions, orders=(), cash="80000", clock=CLOCK_OPEN, config=CONFIG):
        return {"account": account(positions, cash), "positions": list(positions), "orders": list(orders),
                "clock": clock, "account_configurations": config}

    d = snaps / "clean"
    snapshot(d, broker(CLEAN_POSITIONS), "Clean: broker, state, metadata and logs agree; market open.")
    stock_bot_state(d / "bot", CLEAN_OPENS, CLEAN_META)
    stock_bot_logs(d / "bot")

    # Field notes §1: sixteen longs already closed, still tracked; the "exits" sold shares the bot
    # no longer held and opened shorts; one more exit order is open; shorting was left enabled.
    shorts = [position("CHWY", "-1596", "38.10", "40.00", "NYSE"), position("BILL", "-413", "83.00", "85.00", "NYSE"),
              position("COIN", "-72", "325.00", "330.00"), position("OKTA", "-170", "108.00", "110.00")]
    d = snaps / "phantom-exit"
    pos = [position("AAPL", "10", "187.25", "190.10")] + shorts
    cfg = dict(CONFIG, no_shorting=False)
    snapshot(d, broker(pos, [order("CHWY", "sell", "1596", 2)], cash="214305", config=cfg),
             "Phantom-exit short (field notes §1): the bot tracks longs, the broker holds shorts.")
    opens = {"AAPL": CLEAN_OPENS["AAPL"], "CHWY": {"qty": 1596, "entry_price": "38.10"}, "BILL": {"qty": 413, "entry_price": "83.00"},
             "COIN": {"qty": 72, "entry_price": "325.00"}, "OKTA": {"qty": 170, "entry_price": "108.00"}}
    stock_bot_state(d / "bot", opens, {s: meta(0.7) for s in opens})
    stock_bot_logs(d / "bot")

    # Field notes §3: the main loop died two hours ago; nobody noticed.
    d = snaps / "loop-dead"
    snapshot(d, broker(CLEAN_POSITIONS), "The main loop died 2 hours ago during market hours.")
    stock_bot_state(d / "bot", CLEAN_OPENS, CLEAN_META)
    stock_bot_logs(d / "bot", loop_age_min=120, exits_age_min=125)

    # Reconciliation drift (field notes §3 audit): orphaned, untracked, quantity and entry-price
    # mismatches, incomplete metadata; plus a torn last line and a crashed write in run.jsonl.
    d = snaps / "drift"
    pos = [position("AAPL", "10", "187.25", "190.10"), position("MSFT", "7", "412.30", "415.10"),
           position("NVDA", "20", "131.40", "133.00"), position("AMD", "15", "142.00", "140.00")]
    snapshot(d, broker(pos), "Drift between broker and bot state, incomplete metadata, a torn log line.")
    opens = dict(CLEAN_OPENS, MSFT={"qty": "5", "entry_price": "412.30"}, NVDA={"qty": 20, "entry_price": "118.00"},
                 TSLA={"qty": 3, "entry_price": "250.00"})
    md = {"AAPL": meta(0.82), "MSFT": meta(0, components=False), "NVDA": meta(0.77), "TSLA": meta(0.6)}
    md["NVDA"]["entry_ts"] = iso(NOW + timedelta(days=2))
    stock_bot_state(d / "bot", opens, md)
    stock_bot_logs(d / "bot", malformed=True)
    with open(d / "bot/logs/run.jsonl", "a") as f:
        f.write('{"ts": "' + iso(NOW) + '", "event": "CYC')  # being written when recorded

    # Field notes §2: buys submitted while sells are still open, a duplicate, a stale order.
    d = snaps / "order-sequence"
    orders = [order("MSFT", "sell", "5", 1, "limit", "416.00"), order("NVDA", "sell", "20", 1, "limit", "134.00"),
              order("AMZN", "buy", "40", 0.5), order("META", "buy", "12", 0.5),
              order("AAPL", "buy", "3", 45, "limit", "170.00"), order("AAPL", "buy", "3", 44, "limit", "170.00")]
    snapshot(d, broker(CLEAN_POSITIONS, orders), "Orders in the wrong sequence (field notes §2).")
    stock_bot_state(d / "bot", CLEAN_OPENS, CLEAN_META)
    stock_bot_logs(d / "bot")

    # Field notes §2 as it happened: a plan's 11 BUYs went out first, then its 5 SELLs, all in
    # the same 40 ms; the sells are still open, so the buys spend buying power they would free.
    d = snaps / "buys-first"
    start_ms = 2000  # the plan went out 2 s before the snapshot
    buy_syms = ["AMZN", "META", "GOOGL", "AMD", "CRM", "ADBE", "NFLX", "AVGO", "ORCL", "INTC", "QCOM"]
    orders = [order(sym, "buy", "2", (start_ms - 2 * i) / 60000) for i, sym in enumerate(buy_syms)]
    sells = [("AAPL", "4", "limit", "191.00"), ("MSFT", "2", "limit", "416.00"), ("NVDA", "5", "limit", "134.00"),
             ("AAPL", "3", "market", None), ("NVDA", "6", "market", None)]
    orders += [order(sym, "sell", qty, (start_ms - 30 - 2 * i) / 60000, kind, limit)
               for i, (sym, qty, kind, limit) in enumerate(sells)]
    snapshot(d, broker(CLEAN_POSITIONS, orders), "Field notes §2: 11 buys sent 40 ms before the plan's 5 sells.")
    stock_bot_state(d / "bot", CLEAN_OPENS, CLEAN_META)
    stock_bot_logs(d / "bot")

    # The broker could not be reached: no broker files were recorded.
    d = snaps / "broker-down"
    snapshot(d, {}, "The broker was unreachable: no broker bodies were recorded.")
    stock_bot_state(d / "bot", CLEAN_OPENS, CLEAN_META)
    stock_bot_logs(d / "bot")

    # The bot was writing its metadata file when the snapshot was taken.
    d = snaps / "metadata-truncated"
    snapshot(d, broker(CLEAN_POSITIONS), "position_metadata.json was half-written.")
    full = json.dumps(CLEAN_META, indent=2)
    stock_bot_state(d / "bot", CLEAN_OPENS, None, metadata_raw=full[: len(full) // 2])
    stock_bot_logs(d / "bot")

    # After the close: freshness and activity rules are skipped, the rest still apply.
    d = snaps / "market-closed"
    closed = {"timestamp": "2026-11-20T18:30:00-05:00", "is_open": False,
              "next_open": "2026-11-23T09:30:00-05:00", "next_close": "2026-11-23T16:00:00-05:00"}
    snapshot(d, broker(CLEAN_POSITIONS, clock=closed), "Evening: the market is closed and the loop sleeps.")
    stock_bot_state(d / "bot", CLEAN_OPENS, CLEAN_META)
    stock_bot_logs(d / "bot", loop_age_min=150, exits_age_min=160)


# ---------------------------------------------------------------- ordinis

def ordinis_logs(bot, positions, engine_age_min=1, torn=False, snapshot_age_min=2):
    ev = [{"timestamp": iso(NOW - timedelta(hours=6)), "event": "SYSTEM_START", "version": "2.3.1"},
          {"timestamp": iso(NOW - timedelta(hours=6)), "event": "STRATEGY_INIT", "strategy": "momentum"},
          {"timestamp": iso(NOW - timedelta(hours=6)), "event": "BROKER_CONNECTED"}]
    t = NOW - timedelta(hours=6)
    while t <= NOW - timedelta(minutes=engine_age_min):
        ev.append({"timestamp": iso(t), "event": "POSITION_SYNCED", "count": len(positions)})
        t += timedelta(minutes=1)
    write_jsonl(bot / "logs/events.jsonl", ev)
    trades = [{"ts": int((NOW - timedelta(hours=h)).timestamp() * 1000), "type": "ENTRY", "strategy": "momentum",
               "symbol": s, "quantity": q, "price": p, "pnl": None, "reason": "breakout"}
              for h, (s, q, p) in zip((30, 5), (("AAPL", "10", "187.25"), ("MSFT", "5", "412.30")))]
    write_jsonl(bot / "logs/trades.jsonl", trades)
    snaps = []
    t = NOW - timedelta(hours=2)
    while t <= NOW - timedelta(minutes=snapshot_age_min):
        snaps.append({"timestamp": iso(t), "equity": "100454.55", "positions": positions})
        t += timedelta(minutes=5)
    tail = ""
    if torn:
        tail = '{"timestamp": "' + iso(NOW) + '", "equity": "100454.55", "positions": [{"symbol": "AA'
    write_jsonl(bot / "logs/positions.jsonl", snaps, tail)


def ordinis():
    base = ROOT / "ordinis"
    tracked = [{"symbol": "AAPL", "quantity": "10", "avg_price": 187.25}, {"symbol": "MSFT", "quantity": 5, "avg_price": "412.30"}]
    bot = base / "bot"
    ordinis_logs(bot, tracked)
    snaps = base / "snapshots"
    pos = [position("AAPL", "10", "187.25", "190.10"), position("MSFT", "5", "412.30", "415.10")]

    def broker(positions, orders=(), cash="95000", config=CONFIG):
        return {"account": account(positions, cash), "positions": list(positions), "orders": list(orders),
                "clock": CLOCK_OPEN, "account_configurations": config}

    d = snaps / "clean"
    snapshot(d, broker(pos), "Clean ordinis: the last positions record matches the broker.")
    ordinis_logs(d / "bot", tracked)

    d = snaps / "torn-snapshot"
    snapshot(d, broker(pos), "The newest positions record was being written: it is ignored, the previous one is used.")
    ordinis_logs(d / "bot", tracked, torn=True)

    d = snaps / "phantom-exit"
    shorts = [position("AAPL", "-10", "187.25", "190.10"), position("MSFT", "-5", "412.30", "415.10")]
    snapshot(d, broker(shorts, cash="105000", config=dict(CONFIG, no_shorting=False)),
             "Phantom exits: the bot still lists longs, the broker holds shorts.")
    ordinis_logs(d / "bot", tracked)

    d = snaps / "engine-stalled"
    snapshot(d, broker(pos), "The engine stopped syncing 40 minutes ago; the positions log stopped too.")
    ordinis_logs(d / "bot", tracked, engine_age_min=40, snapshot_age_min=40)


if __name__ == "__main__":
    stock_bot()
    ordinis()
    print("examples written under", ROOT)
