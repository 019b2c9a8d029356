"""Fixtures for the SDK compatibility suite: each test gets its own `tradewarden sim` process.

The binary is $TRADEWARDEN_BIN, else ./target/debug/tradewarden (run `cargo build` first). It
is started as `tradewarden sim --scenario <tmp json> --listen 127.0.0.1:0`; its first stdout
line is the base URL. alpaca-py 0.44's TradingClient is pointed at it with `url_override`.
"""

import json
import os
import pathlib
import select
import signal
import subprocess
import warnings

import pytest
import requests

with warnings.catch_warnings():
    # alpaca-py imports websockets' deprecated legacy API; not ours to fix.
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.trading.client import TradingClient

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(os.environ.get("TRADEWARDEN_BIN") or ROOT / "target" / "debug" / "tradewarden")
STARTUP_TIMEOUT_S = 15

# AAPL is held long, MSFT is flat; both have prices.
DEFAULT_SCENARIO = {
    "account": {"cash": "100000"},
    "positions": [{"symbol": "AAPL", "qty": "10", "avg_entry_price": "180.00"}],
    "prices": {"AAPL": "185.00", "MSFT": "415.00", "TSLA": "250.00"},
    "clock": {"is_open": True},
}


class Sim:
    """A running simulator: its URL, SDK clients, raw HTTP and the /_sim admin API."""

    def __init__(self, url, proc):
        self.url = url
        self.proc = proc

    def client(self, key="KEY", secret="SECRET", url=None):
        return TradingClient(key, secret, paper=True, url_override=url or self.url)

    def admin(self, path, body):
        r = requests.post(self.url + path, json=body, timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def prices(self, **prices):
        return self.admin("/_sim/prices", prices)

    def faults(self, **faults):
        return self.admin("/_sim/faults", faults)

    def state(self):
        r = requests.get(self.url + "/_sim/state", timeout=5)
        assert r.status_code == 200, r.text
        return r.json()

    def raw(self, method, path, key="KEY", secret="SECRET", timeout=5, **kwargs):
        """A trading-API request without the SDK (no retries, full access to headers)."""
        headers = {"APCA-API-KEY-ID": key, "APCA-API-SECRET-KEY": secret}
        return requests.request(method, self.url + path, headers=headers, timeout=timeout, **kwargs)


def _start(binary, scenario_path, log_path):
    if not binary.exists():
        pytest.fail(f"{binary} does not exist: run `cargo build` first (or set TRADEWARDEN_BIN)")
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [str(binary), "sim", "--scenario", str(scenario_path), "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE,
        stderr=log,
    )
    log.close()
    ready, _, _ = select.select([proc.stdout], [], [], STARTUP_TIMEOUT_S)
    line = proc.stdout.readline().decode().strip() if ready else ""
    if not line.startswith("http://"):
        proc.kill()
        proc.wait()
        pytest.fail(f"the simulator did not print its URL (got {line!r}); stderr: {log_path.read_text()}")
    return proc, line


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    proc.stdout.close()


@pytest.fixture
def start_sim(tmp_path):
    """start_sim(scenario_dict) -> Sim; every simulator is stopped after the test."""
    procs = []

    def start(scenario=None):
        n = len(procs)
        path = tmp_path / f"scenario{n}.json"
        path.write_text(json.dumps(DEFAULT_SCENARIO if scenario is None else scenario))
        proc, url = _start(BIN, path, tmp_path / f"sim{n}.stderr")
        procs.append(proc)
        return Sim(url, proc)

    yield start
    for proc in procs:
        _stop(proc)


@pytest.fixture
def sim(start_sim):
    return start_sim()


@pytest.fixture
def client(sim):
    return sim.client()
