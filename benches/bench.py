#!/usr/bin/env python3
"""Whole-process benchmark of tradewarden (issue 7), with the baseline measured in the same run.

    python3 benches/bench.py [--quick] [--work DIR] [--runs N] [--skip-soak] [--skip-baseline]

1. Builds the release binary and the genbot generator.
2. For each size: generates a bot (benches/support/gen.rs), runs `tradewarden audit --replay`
   N times (after one warm-up run) and records the median wall time and the peak RSS
   (getrusage of the child), then runs benches/baseline.py once on the same data and reports
   the ratio. Sizes: logs of 10 MB, 100 MB, 500 MB and 2 GB (three logs, 2,000 positions), and
   100, 2,000 and 10,000 positions (three 100 MB logs).
3. Broker requests per cycle: `tradewarden audit` against `tradewarden sim`, counted by the
   simulator (`GET /_sim/state`).
4. Daemon soak: `tradewarden run --max-cycles N` against the simulator every 10 ms, RSS sampled
   from /proc at the start and the end.

Prints a Markdown table (the one in BENCHMARKS.md). Data lives in --work (default /tmp/tw-bench)
and is reused between runs when the options match. Files are warm in the page cache for both
tradewarden and the baseline: each is measured after the generator (or a warm-up) read them.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "target/release/tradewarden"
GEN = ROOT / "target/release/examples/genbot"


def sh(*cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def timed(cmd):
    """Runs cmd; returns (seconds, peak RSS in MB, exit code, stdout)."""
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = p.stdout.read()
    _, status, ru = os.wait4(p.pid, 0)
    return time.perf_counter() - t, ru.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), out


def generate(work, positions, log_mb, logs=3):
    d = work / f"bot-p{positions}-l{log_mb}"
    stamp = d / ".complete"
    if not stamp.exists():
        if d.exists():
            shutil.rmtree(d)
        sh(str(GEN), "--out", str(d), "--positions", str(positions), "--log-mb", str(log_mb), "--logs", str(logs), stdout=subprocess.DEVNULL)
        stamp.write_text("ok")
    return d


def audit(d, runs):
    cmd = [str(BIN), "audit", "-c", str(d / "tradewarden.toml"), "--replay", str(d), "--format", "json"]
    timed(cmd)  # warm-up
    samples = [timed(cmd) for _ in range(runs)]
    findings = len(json.loads(samples[-1][3])["findings"])
    return statistics.median(s[0] for s in samples), max(s[1] for s in samples), findings


def baseline(d):
    secs, rss, code, out = timed([sys.executable, str(ROOT / "benches/baseline.py"), str(d)])
    assert code == 0, f"baseline failed on {d}"
    return secs, rss, out.decode().strip()


def start_sim(scenario):
    f = tempfile.NamedTemporaryFile("w", suffix=".json", delete=False)
    json.dump(scenario, f)
    f.close()
    p = subprocess.Popen([str(BIN), "sim", "--scenario", f.name, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    url = p.stdout.readline().strip()
    return p, url


def sim_config(tmp, url, every="30s"):
    bot = tmp / "bot"
    (bot / "state").mkdir(parents=True, exist_ok=True)
    (bot / "logs").mkdir(parents=True, exist_ok=True)
    (bot / "state/executor_state.json").write_text(json.dumps({"opens": {"AAPL": {"qty": 10, "entry_price": "180"}}}))
    (bot / "state/position_metadata.json").write_text(json.dumps({"AAPL": {"entry_score": 0.8, "entry_ts": "2026-11-19T15:00:00Z", "components": {}}}))
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    (bot / "logs/run.jsonl").write_text(json.dumps({"ts": now, "event": "CYCLE"}) + "\n")
    (bot / "logs/exits.jsonl").write_text(json.dumps({"ts": now, "event": "EXIT_EVAL"}) + "\n")
    cfg = tmp / "tradewarden.toml"
    cfg.write_text(f"""rules = [{str(ROOT / 'rules/default.toml')!r}]
state_dir = "state"
[broker]
kind = "alpaca"
base_url = "{url}"
[bot]
root = "bot"
[bot.positions]
file = "state/executor_state.json"
at = "/opens"
entry_price = "entry_price"
[bot.metadata]
file = "state/position_metadata.json"
[logs.run]
file = "logs/run.jsonl"
[logs.exits]
file = "logs/exits.jsonl"
[schedule]
every = "{every}"
[server]
listen = ""
""".replace("'", '"'))
    return cfg


SCENARIO = {"positions": [{"symbol": "AAPL", "qty": "10", "avg_entry_price": "180.00"}], "prices": {"AAPL": "185.00"},
            "clock": {"is_open": True}, "configurations": {"no_shorting": True}}


def requests_per_audit():
    p, url = start_sim(SCENARIO)
    try:
        with tempfile.TemporaryDirectory() as t:
            cfg = sim_config(Path(t), url)
            env = dict(os.environ, APCA_API_KEY_ID="bench", APCA_API_SECRET_KEY="bench")
            subprocess.run([str(BIN), "audit", "-c", str(cfg)], env=env, stdout=subprocess.DEVNULL, check=False)
            state = json.load(urllib.request.urlopen(url + "/_sim/state"))
            return sum(v for k, v in state["requests"].items() if not k.split(" ")[1].startswith("/_sim"))
    finally:
        p.terminate()
        p.wait()


def rss_mb(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def soak(cycles):
    p, url = start_sim(SCENARIO)
    try:
        with tempfile.TemporaryDirectory() as t:
            cfg = sim_config(Path(t), url, every="10ms")
            env = dict(os.environ, APCA_API_KEY_ID="bench", APCA_API_SECRET_KEY="bench", RUST_LOG="error")
            d = subprocess.Popen([str(BIN), "run", "-c", str(cfg), "--max-cycles", str(cycles)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            audits = Path(t) / "state/audits.jsonl"
            start_rss = None
            t0 = time.time()
            while d.poll() is None:
                n = sum(1 for _ in open(audits)) if audits.exists() else 0
                if start_rss is None and n >= 100:
                    start_rss = rss_mb(d.pid)
                if n >= cycles - 50:
                    end_rss = rss_mb(d.pid)
                time.sleep(0.2)
            return start_rss or 0.0, locals().get("end_rss", 0.0), time.time() - t0, d.returncode
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small sizes only (a smoke test of the script)")
    ap.add_argument("--work", default="/tmp/tw-bench")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--skip-soak", action="store_true")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--soak-cycles", type=int, default=10_000)
    a = ap.parse_args()
    work = Path(a.work)
    work.mkdir(parents=True, exist_ok=True)
    sh("cargo", "build", "--release", "--bin", "tradewarden", "--example", "genbot", cwd=ROOT, stdout=subprocess.DEVNULL)

    if a.quick:
        sizes = [(100, 10), (2000, 10)]
    else:
        sizes = [(2000, 10), (2000, 100), (2000, 500), (2000, 2000), (100, 100), (10_000, 100)]
    print("| positions | log size (×3 logs) | tradewarden median | peak RSS | findings | baseline | baseline RSS | ratio |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for positions, log_mb in sizes:
        d = generate(work, positions, log_mb)
        secs, rss, findings = audit(d, a.runs)
        if a.skip_baseline:
            b = "-", "-", "-"
        else:
            bs, brss, bout = baseline(d)
            b = f"{bs * 1000:.0f} ms ({bout})", f"{brss:.0f} MB", f"{bs / secs:.0f}×"
        size = f"{log_mb} MB" if log_mb < 1000 else f"{log_mb / 1000:g} GB"
        print(f"| {positions:,} | {size} | {secs * 1000:.1f} ms | {rss:.1f} MB | {findings} | {b[0]} | {b[1]} | {b[2]} |", flush=True)
    print()
    try:
        print(f"broker requests per audit (counted by the simulator): {requests_per_audit()}")
    except Exception as e:  # the simulator or client missing in this build
        print(f"broker requests per audit: not measured ({e})")
    if not a.skip_soak:
        start, end, secs, code = soak(a.soak_cycles)
        print(f"daemon soak: {a.soak_cycles} cycles in {secs:.0f} s (exit {code}); RSS after 100 cycles {start:.1f} MB, at the end {end:.1f} MB")


if __name__ == "__main__":
    main()
