#!/usr/bin/env python3
"""Seeds fuzz/corpus/<target>/ from the repository's examples and hand-written edge cases.

    python3 scripts/fuzz-seed.py

Files are named seed-<sha1 prefix> so re-running is idempotent; the fuzzer adds its own
(libFuzzer names them by their SHA-1). `scripts/fuzz.sh --minimize` merges the corpus down to
the inputs that add coverage.
"""

import hashlib
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
EX = ROOT / "examples"


def add(target: str, data: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    name = "seed-" + hashlib.sha1(data).hexdigest()[:16]
    (d / name).write_bytes(data)


def head(path: pathlib.Path, lines: int) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[:lines])


def tail(path: pathlib.Path, lines: int) -> bytes:
    return b"".join(path.read_bytes().splitlines(keepends=True)[-lines:])


def jsonl() -> None:
    for log in ["stock-bot/bot/logs/run.jsonl", "stock-bot/bot/logs/exits.jsonl",
                "ordinis/bot/logs/events.jsonl", "ordinis/bot/logs/positions.jsonl",
                "ordinis/snapshots/torn-snapshot/bot/logs/positions.jsonl"]:
        add("jsonl_scan", tail(EX / log, 6))
    ev = '{"ts": "2025-12-19T15:59:30Z", "event": "EXIT", "symbol": "AAPL"}'
    cyc = '{"ts": 1766159990, "event": "CYCLE"}'
    for text in [
        f"{ev}\n{cyc}\n",
        f"{ev}\r\n\r\n   \r\n{cyc}\r\n",                      # CRLF and blank lines
        f"{ev}\n{cyc}\n{{\"ts\": \"2025-12",                    # torn last line
        f"{ev}\n{cyc}",                                         # unterminated but complete
        f"{ev}\n[1, 2]",                                        # complete, not an object
        f"{ev}\nnot json\n{{\"event\": \"EXIT\"}}\n{{\"ts\": null}}\n",
        '{"ts": 1766159990000, "event": "EXIT"}\n{"ts": "1766159990"}\n',
        '{"ts": "2025-12-19 15:59:59", "event": "EXIT"}\n{"ts": "9999-12-31T23:59:59Z"}\n',
        '{"ts": -62135596800}\n{"ts": 1e400}\n{"ts": "NaN"}\n',
        '{"ts": "2025-12-19T15:59:30Z", "ts": 0}\n',            # duplicate key
        "[" * 200 + "\n",                                       # deep nesting
    ]:
        add("jsonl_scan", text.encode())
    add("jsonl_scan", ev.encode() + b"\n{\"ts\": \"x\x00\"}\n\xff\xfe{}\n" + cyc.encode() + b"\n")
    add("jsonl_scan", ev.encode() + b"\n{\"ts\": \"caf\xc3")  # a multi-byte character cut in half


def bot() -> None:
    add("bot_json", (EX / "stock-bot/bot/state/executor_state.json").read_bytes())
    add("bot_json", (EX / "stock-bot/bot/state/position_metadata.json").read_bytes())
    add("bot_json", (EX / "stock-bot/snapshots/metadata-truncated/bot/state/position_metadata.json").read_bytes())
    add("bot_json", tail(EX / "ordinis/bot/logs/positions.jsonl", 1))
    add("bot_json", tail(EX / "ordinis/snapshots/torn-snapshot/bot/logs/positions.jsonl", 2))
    docs = [
        {"opens": {"AAPL": {"qty": 10, "entry_price": "187.25"}, "CHWY": {"qty": "-1596", "entry_price": 38.1}}},
        {"opens": {"AAPL": {"qty": "-0"}, "MSFT": {"qty": 1e-7}}},
        {"positions": [{"symbol": "AAPL", "quantity": "10", "side": "long", "price": {"avg": "1"}},
                       {"symbol": "CHWY", "quantity": 5, "side": "short"},
                       {"symbol": "CHWY", "quantity": 5, "side": "sell"}]},
        {"AAPL": {"qty": "1e3", "side": "buy"}, "meta": {"AAPL": {"entry_score": 0.7}}},
        {"opens": {"AAPL": {"qty": "NaN"}, "BAD SYMBOL": {"qty": 1}, "X": {"qty": True}}},
        {"opens": {"AAPL": {"qty": "79228162514264337593543950335"}, "B": {"qty": "-79228162514264337593543950335"}}},
    ]
    for d in docs:
        add("bot_json", json.dumps(d).encode())
    add("bot_json", b'{"opens": {"AAPL": {"qty": 10}, "AAPL": {"qty": -5}}}')
    add("bot_json", b'{"opens": {"AAPL": {"qty": 1e400}}}')
    add("bot_json", b'{"opens": {"AAPL": {"qty": 1234567890123456789012345678901234567890}}}')
    add("bot_json", b'{"opens": {"AAPL": {"qty": NaN}}}')
    add("bot_json", b'{"opens": {"AAPL"')


def config() -> None:
    add("config_toml", (EX / "stock-bot/tradewarden.toml").read_bytes()
        .replace(b'rules = ["../../rules/default.toml"]', b'rules = ["rules/default.toml"]'))
    add("config_toml", (EX / "ordinis/tradewarden.toml").read_bytes())
    add("config_toml", (EX / "ordinis/rules.toml").read_bytes())
    add("config_toml", (ROOT / "rules/default.toml").read_bytes())
    add("config_toml", b'[bot]\nroot = "."\n[bot.positions]\nfile = "s.json"\n')
    add("config_toml", b'[bot]\n[bot.positions]\nlog = "positions"\n[logs.positions]\nfile = "p.jsonl"\n'
        b'[schedule]\ncron = "*/5 9-16 * * Mon-Fri"\ntz = "America/New_York"\n'
        b'[actions.exec.stop-bot]\ncommand = ["systemctl", "stop", "bot"]\ntimeout = "30s"\n'
        b'[alerts.email]\ntransport = "smtp"\nhost = "h"\nport = 587\nfrom = "a@b.c"\nto = ["d@e.f"]\n'
        b'[server]\nlisten = ""\n')
    add("config_toml", b'[[rule]]\nid = "x"\ncheck = "log_activity"\nseverity = "warning"\nlog = "run"\n'
        b'within = "1h"\nmatch = { event = "EXIT", n = 1 }\nfor = "3 cycles"\nactions = ["exec:stop-bot"]\n')
    add("config_toml", b"a = " + b"[" * 300 + b"\n")
    add("config_toml", b"[bot]\nroot = 1\n[bot]\n\x00\xff")


def broker() -> None:
    seen = set()
    for p in sorted(EX.glob("*/snapshots/*/broker/*.json")):
        data = p.read_bytes()
        if data not in seen and len(data) < 6000:
            seen.add(data)
            add("broker_json", data)
    add("broker_json", b'[{"symbol":"A","qty":"-0","side":""}]')
    add("broker_json", b'[{"symbol":"A","qty":"5","side":"short"},{"symbol":"B","qty":1e400}]')
    add("broker_json", b'[{"symbol":"A","qty":"1","qty":"2"}]')
    add("broker_json", b'{"timestamp":"9999-12-31T23:59:59Z","is_open":true}')


def stamps() -> None:
    for s in ["2025-12-19T16:05:11.878296+00:00", "2025-12-19T11:05:11-05:00", "2025-12-19 16:05:11",
              "2025-12-19T16:05", "1766160311", "1766160311000", "1766160311000000", "1766160311000000000",
              "1766160311.5", "-1", "0", "-0", "9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z",
              "-62135596800", "1e3", " 10 ", "NaN", "Infinity", "79228162514264337593543950335",
              "0.0000000000000000000000000001", "\"2025-12-19T16:05:11Z\"", "1766160311.123456789",
              "null", "[1]", "{}", "true", "1e400", "123456789012345678901234567890123456789"]:
        add("timestamps", s.encode())


if __name__ == "__main__":
    jsonl()
    bot()
    config()
    broker()
    stamps()
    for t in sorted(CORPUS.iterdir()):
        files = list(t.iterdir())
        print(f"{t.name}: {len(files)} files, {sum(f.stat().st_size for f in files)} bytes")
