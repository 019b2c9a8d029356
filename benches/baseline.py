#!/usr/bin/env python3
"""The straightforward baseline the benchmark compares tradewarden against.

It does what a hand-written audit script does (field notes §3): read every file to its end,
parse every log line, and run the same checks as rules/default.toml, with the same parameters,
on a genbot snapshot directory (the stock-bot layout of benches/support/gen.rs):

- no-shorts: every broker position with a negative qty or side `short`;
- positions-match: untracked, orphaned (tracked or with metadata, not held), side, quantity
  (tolerance 0) and entry price (1%) mismatches, skipping symbols with order activity in the
  last 5 s;
- metadata-complete: missing metadata, and `entry_score`, `entry_ts`, `components` present and
  non-null, `entry_score` > 0, `entry_ts` a timestamp at most 60 s in the future;
- main-loop-alive (market open): the newest `run` event at most 5 minutes old;
- exits-evaluated (market open, positions held): at least one `exits` event in the last hour;
- order-hazards: open sells above the long position, identical open orders, orders open over
  30 minutes, buys placed at or after a still-open sell;
- exposure: gross over 150% of equity, any short exposure, a position over 10%, more than 30
  positions, a position under $500;
- account: not ACTIVE or blocked, negative buying power, the `no_shorting` guard off.

Logs are read line by line to the end (the kinder baseline: its memory stays bounded; reading
each file into one string first would only be slower and bigger). Lines that are not JSON or
have no usable time are skipped.

    python3 benches/baseline.py DIR            # prints "N findings"
    python3 benches/baseline.py --list DIR     # then one "rule code subject" line per finding
"""
import json
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

TERMINAL = {"filled", "canceled", "expired", "replaced", "rejected"}


def ts(v):
    if isinstance(v, bool) or v is None:
        raise ValueError("not a timestamp")
    if isinstance(v, (int, float)):
        return datetime.fromtimestamp(v / 1000 if abs(v) >= 1e11 else v, tz=timezone.utc)
    t = datetime.fromisoformat(v.strip().replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def dec(v):
    if isinstance(v, bool) or v is None or v == "":
        raise ValueError("not a number")
    return Decimal(str(v))


def opt_ts(v):
    return ts(v) if v else None


def read_json(path):
    with open(path, "rb") as f:
        return json.loads(f.read())


def scan_log(path, now, within):
    """Reads the whole log: (newest event time, events at or after now - within)."""
    newest, count, start = None, 0, now - within
    with open(path, "rb") as fh:
        for raw in fh:
            try:
                rec = json.loads(raw)
                t = ts(rec["ts"])
            except Exception:
                continue
            if newest is None or t > newest:
                newest = t
            if t >= start:
                count += 1
    return newest, count


def main(d):
    d = Path(d)
    now = ts((d / "snapshot.toml").read_text().split('"')[1])
    broker = {n: read_json(d / "broker" / f"{n}.json") for n in ("account", "positions", "orders", "clock", "account_configurations")}
    state = read_json(d / "bot/state/executor_state.json")["opens"]
    meta = read_json(d / "bot/state/position_metadata.json")
    account, clock = broker["account"], broker["clock"]
    findings = []

    def add(rule, code, subject):
        findings.append((rule, code, subject))

    positions = broker["positions"]
    held = {}
    for p in positions:
        q = dec(p["qty"])
        side = p.get("side") or ("short" if q < 0 else "long")
        if side == "short" and q > 0:
            q = -q
        held.setdefault(p["symbol"], (q, side, p))

    # no-shorts
    for p in positions:
        q, side, _ = held[p["symbol"]]
        if side == "short" or q < 0:
            add("no-shorts", "short_position", p["symbol"])

    # positions-match
    orders = broker["orders"]
    open_orders = [o for o in orders if o.get("status") not in TERMINAL]
    settling = set()
    for o in open_orders:
        times = [t for t in (opt_ts(o.get(k)) for k in ("updated_at", "submitted_at", "created_at")) if t]
        if dec(o.get("filled_qty") or 0) > 0 or (times and now - max(times) <= timedelta(seconds=5)):
            settling.add(o["symbol"])
    bot = {}
    for s, e in state.items():
        q = dec(e["qty"])
        if q != 0:
            price = e.get("entry_price")
            bot[s] = (q, dec(price) if price is not None else None)
    for s in sorted(set(held) | set(bot) | set(meta)):
        if s in settling:
            continue
        b, t = held.get(s), bot.get(s)
        if b and not t:
            add("positions-match", "untracked_position", s)
        elif b and t:
            bq, bside, p = b
            tq, tprice = t
            if ("long" if tq > 0 else "short") != bside:
                add("positions-match", "side_mismatch", s)
                continue
            if abs(bq) != abs(tq):
                add("positions-match", "quantity_mismatch", s)
            avg = p.get("avg_entry_price")
            if tprice is not None and avg:
                ref = dec(avg)
                if (tprice != 0) if ref == 0 else abs(tprice - ref) * 100 / abs(ref) > 1:
                    add("positions-match", "entry_price_mismatch", s)
        else:
            add("positions-match", "orphaned_position", s)

    # metadata-complete
    for p in positions:
        s = p["symbol"]
        m = meta.get(s)
        if m is None:
            add("metadata-complete", "metadata_missing", s)
            continue
        bad = any(m.get(k) is None for k in ("entry_score", "entry_ts", "components"))
        try:
            bad = bad or dec(m.get("entry_score")) <= 0
        except Exception:
            bad = True
        try:
            bad = bad or ts(m.get("entry_ts")) > now + timedelta(seconds=60)
        except Exception:
            bad = True
        if bad:
            add("metadata-complete", "metadata_incomplete", s)

    # main-loop-alive and exits-evaluated: every line of every log is read and parsed.
    logs = {f.stem: scan_log(f, now, timedelta(hours=1)) for f in sorted((d / "bot/logs").glob("*.jsonl"))}
    if clock["is_open"]:
        newest = logs["run"][0]
        if newest is None:
            add("main-loop-alive", "log_missing", "run")
        elif now - newest > timedelta(minutes=5):
            add("main-loop-alive", "log_stale", "run")
        if positions and logs["exits"][1] < 1:
            add("exits-evaluated", "activity_missing", "exits")

    # order-hazards
    def remaining(o):
        return max(dec(o["qty"]) - dec(o.get("filled_qty") or 0), Decimal(0)) if o.get("qty") else None

    def placed(o):
        return opt_ts(o.get("submitted_at")) or opt_ts(o.get("created_at"))

    def kind(o):
        return o.get("type") or o.get("order_type")

    sells = {}
    for o in open_orders:
        r = remaining(o)
        if o["side"] == "sell" and o["status"] != "held" and r and r > 0:
            sells[o["symbol"]] = sells.get(o["symbol"], 0) + r
    for s in sorted(sells):
        if sells[s] > max(held.get(s, (Decimal(0),))[0], Decimal(0)):
            add("order-hazards", "sell_exceeds_position", s)
    groups = {}
    for o in open_orders:
        q = dec(o["qty"]) if o.get("qty") else None
        key = (o["symbol"], o["side"], kind(o), q, None if q is not None else o.get("notional"),
               dec(o["limit_price"]) if o.get("limit_price") else None, dec(o["stop_price"]) if o.get("stop_price") else None)
        groups.setdefault(key, []).append(o)
    for s in sorted({k[0] for k, g in groups.items() if len(g) > 1}):
        add("order-hazards", "duplicate_order", s)
    for o in open_orders:
        t = placed(o)
        if t and now - t > timedelta(minutes=30):
            add("order-hazards", "stale_order", o["id"])
    sells = [placed(o) for o in open_orders if o["side"] == "sell" and kind(o) in ("market", "limit") and placed(o)]
    if any(o["side"] == "buy" and placed(o) and any(abs(placed(o) - s) <= timedelta(minutes=5) for s in sells)
           for o in open_orders):
        add("order-hazards", "buy_before_sell", "account")

    # exposure
    equity = dec(account["equity"])
    values = []
    for p in positions:
        mv = p.get("market_value")
        values.append((p, abs(dec(mv)) if mv else abs(held[p["symbol"]][0] * dec(p["current_price"]))))
    if sum(v for _, v in values) * 100 / equity > 150:
        add("exposure", "gross_exposure", "account")
    if sum(v for p, v in values if held[p["symbol"]][1] == "short" or held[p["symbol"]][0] < 0) * 100 / equity > 0:
        add("exposure", "short_exposure", "account")
    if len(values) > 30:
        add("exposure", "too_many_positions", "account")
    for p, v in values:
        if v * 100 / equity > 10:
            add("exposure", "position_concentration", p["symbol"])
        if v < 500:
            add("exposure", "position_too_small", p["symbol"])

    # account
    if account.get("status", "").upper() != "ACTIVE" or any(account.get(k) is True for k in ("account_blocked", "trading_blocked", "trade_suspended_by_user")):
        add("account", "account_blocked", "account")
    if dec(account["buying_power"]) < 0:
        add("account", "negative_buying_power", "account")
    if broker["account_configurations"].get("no_shorting") is not True:
        add("account", "shorting_enabled", "account")
    return findings


if __name__ == "__main__":
    args = sys.argv[1:]
    listing = "--list" in args
    args = [a for a in args if a != "--list"]
    found = main(args[0])
    print(f"{len(found)} findings")
    if listing:
        for f in sorted(found):
            print(" ".join(f))
