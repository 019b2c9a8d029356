#!/usr/bin/env python3
"""The straightforward baseline the benchmark compares tradewarden against.

It does what a hand-written audit script does (field notes §3): read every file whole, parse
every log line, and run the same checks as rules/default.toml on a genbot snapshot directory:
no shorts, position match (qty and entry price), metadata completeness, main-loop freshness
(newest `run` event under 5 minutes), exit evaluations in the last hour, exposure limits, and
the account guard. It prints the number of findings.

    python3 benches/baseline.py DIR
"""
import json
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path


def ts(v):
    if isinstance(v, (int, float)):
        return datetime.fromtimestamp(v / 1000 if v > 1e11 else v, tz=timezone.utc)
    t = datetime.fromisoformat(v.replace("Z", "+00:00"))
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def main(d):
    d = Path(d)
    meta_toml = (d / "snapshot.toml").read_text()
    now = ts(meta_toml.split('"')[1])
    broker = {n: json.loads((d / "broker" / f"{n}.json").read_text()) for n in ("account", "positions", "orders", "account_configurations")}
    state = json.loads((d / "bot/state/executor_state.json").read_text())["opens"]
    meta = json.loads((d / "bot/state/position_metadata.json").read_text())
    findings = []
    equity = Decimal(broker["account"]["equity"])
    gross = Decimal(0)
    held = {}
    for p in broker["positions"]:
        q = Decimal(p["qty"])
        held[p["symbol"]] = q
        gross += abs(Decimal(p["market_value"]))
        if q < 0:
            findings.append(("no-shorts", p["symbol"]))
        bot = state.get(p["symbol"])
        if bot is None:
            findings.append(("untracked", p["symbol"]))
        else:
            if Decimal(str(bot["qty"])) != q:
                findings.append(("qty", p["symbol"]))
            bp = Decimal(str(bot["entry_price"]))
            ap = Decimal(p["avg_entry_price"])
            if abs(bp - ap) / ap * 100 > 1:
                findings.append(("price", p["symbol"]))
        m = meta.get(p["symbol"])
        if m is None or any(m.get(k) is None for k in ("entry_score", "entry_ts", "components")):
            findings.append(("metadata", p["symbol"]))
        elif Decimal(str(m["entry_score"])) <= 0 or ts(m["entry_ts"]) > now:
            findings.append(("metadata", p["symbol"]))
        if abs(Decimal(p["market_value"])) / equity * 100 > 10:
            findings.append(("concentration", p["symbol"]))
        if abs(Decimal(p["market_value"])) < 500:
            findings.append(("too-small", p["symbol"]))
    for s in state:
        if s not in held:
            findings.append(("orphaned", s))
    if gross / equity * 100 > 150:
        findings.append(("gross", "account"))
    if len(held) > 30:
        findings.append(("too-many", "account"))
    if not broker["account_configurations"].get("no_shorting"):
        findings.append(("shorting", "account"))
    logs = {}
    for f in sorted((d / "bot/logs").glob("*.jsonl")):
        newest, last_hour = None, 0
        with open(f, "rb") as fh:
            for raw in fh:
                try:
                    rec = json.loads(raw)
                    t = ts(rec["ts"])
                except Exception:
                    continue
                newest = t if newest is None or t > newest else newest
                if t >= now - timedelta(hours=1):
                    last_hour += 1
        logs[f.stem] = (newest, last_hour)
    if logs.get("run", (None,))[0] is None or now - logs["run"][0] > timedelta(minutes=5):
        findings.append(("main-loop", "run"))
    if logs.get("exits", (None, 0))[1] < 1:
        findings.append(("exits", "exits"))
    print(f"{len(findings)} findings")


if __name__ == "__main__":
    main(sys.argv[1])
