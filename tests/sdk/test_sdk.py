"""The official SDK (alpaca-py 0.44) against `tradewarden sim`.

The SDK's strict pydantic models are the referee: every response below is parsed by them, so
a missing or mistyped field fails the test. Every TradingClient method of alpaca-api.md §6.1 is
called, and Alpaca's semantics are checked through it. Raw HTTP (requests) is used only where
the SDK would hide what is tested (headers, retried 429s, broken bodies, timeouts).
"""

import json
import signal
import subprocess
import time
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
from alpaca.common.enums import Sort
from alpaca.common.exceptions import APIError
from alpaca.trading.enums import (
    AccountStatus,
    OrderClass,
    OrderSide,
    OrderStatus,
    OrderType,
    PositionSide,
    QueryOrderStatus,
    TimeInForce,
)
from alpaca.trading.models import FailedClosePositionDetails, Order
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetCalendarRequest,
    GetOrderByIdRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
    StopLimitOrderRequest,
    StopLossRequest,
    StopOrderRequest,
    TakeProfitRequest,
    TrailingStopOrderRequest,
)

from conftest import BIN


def market(symbol, qty, side, **kw):
    return MarketOrderRequest(symbol=symbol, qty=qty, side=side, time_in_force=TimeInForce.DAY, **kw)


def limit(symbol, qty, side, price, **kw):
    return LimitOrderRequest(
        symbol=symbol, qty=qty, side=side, limit_price=price, time_in_force=TimeInForce.GTC, **kw
    )


def api_error(fn, *args, **kwargs):
    with pytest.raises(APIError) as info:
        fn(*args, **kwargs)
    return info.value


def D(text):
    return Decimal(str(text))


def assert_account_consistent(client):
    a = client.get_account()
    positions = client.get_all_positions()
    long_mv = sum((D(p.market_value) for p in positions if p.side == PositionSide.LONG), Decimal(0))
    short_mv = sum((D(p.market_value) for p in positions if p.side == PositionSide.SHORT), Decimal(0))
    assert D(a.long_market_value) == long_mv
    assert D(a.short_market_value) == short_mv
    assert D(a.equity) == D(a.cash) + long_mv + short_mv
    assert D(a.portfolio_value) == D(a.equity)
    multiplier = D(a.multiplier)
    margin = (long_mv - short_mv) / multiplier
    assert D(a.initial_margin) == margin
    assert D(a.buying_power) <= max(Decimal(0), (D(a.equity) - margin) * multiplier)
    return a


# ----- account, positions ------------------------------------------------------------------


def test_get_account(client):
    a = client.get_account()
    assert a.status == AccountStatus.ACTIVE
    assert isinstance(a.id, uuid.UUID)
    assert a.account_number
    assert D(a.cash) == 100000
    assert D(a.long_market_value) == 1850
    assert D(a.equity) == D("101850")
    assert D(a.buying_power) == 2 * (D("101850") - D("925"))
    assert a.multiplier == "2" and a.shorting_enabled is True
    assert a.pattern_day_trader is None and a.daytrade_count is None
    assert_account_consistent(client)


def test_get_all_positions_and_get_open_position(client):
    positions = client.get_all_positions()
    assert [p.symbol for p in positions] == ["AAPL"]
    p = client.get_open_position("AAPL")
    assert (p.qty, p.side, p.exchange.value, p.asset_class.value) == ("10", PositionSide.LONG, "NASDAQ", "us_equity")
    assert (D(p.avg_entry_price), D(p.current_price), D(p.market_value)) == (180, 185, 1850)
    assert (D(p.cost_basis), D(p.unrealized_pl)) == (1800, 50)
    assert client.get_open_position(p.asset_id).symbol == "AAPL"
    e = api_error(client.get_open_position, "MSFT")
    assert (e.status_code, e.code, e.message) == (404, 40410000, "position does not exist")


def test_trailing_slash_in_url_override_is_tolerated(sim):
    client = sim.client(url=sim.url + "/")
    assert client.get_clock().is_open is True
    assert sim.state()["requests"] == {"GET /v2/clock": 1}


# ----- orders and Alpaca's position semantics ----------------------------------------------


def test_short_from_flat(client):
    order = client.submit_order(market("MSFT", 15, OrderSide.SELL))
    assert isinstance(order, Order)
    assert (order.status, order.side, order.filled_qty) == (OrderStatus.FILLED, OrderSide.SELL, "15")
    p = client.get_open_position("MSFT")
    assert (p.qty, p.side) == ("-15", PositionSide.SHORT)
    assert D(p.market_value) == D("-6225") and D(p.cost_basis) == D("-6225")
    assert D(client.get_account().short_market_value) == D("-6225")
    assert_account_consistent(client)


def test_sells_while_short_deepen_it(sim, client):
    client.submit_order(market("MSFT", 10, OrderSide.SELL))
    sim.prices(MSFT="425.00")
    client.submit_order(market("MSFT", 10, OrderSide.SELL))
    p = client.get_open_position("MSFT")
    assert (p.qty, p.side, D(p.avg_entry_price)) == ("-20", PositionSide.SHORT, D("420"))
    assert_account_consistent(client)


def test_selling_more_than_a_long_is_403(client):
    e = api_error(client.submit_order, market("AAPL", 12, OrderSide.SELL))
    assert (e.status_code, e.code) == (403, 40310000)
    body = json.loads(str(e))
    assert body["message"] == "insufficient qty available for order (requested: 12, available: 10)"
    assert (body["available"], body["existing_qty"], body["held_for_orders"], body["symbol"]) == ("10", "10", "0", "AAPL")
    assert client.get_open_position("AAPL").qty == "10"


def test_selling_the_whole_long_removes_the_position(client):
    client.submit_order(market("AAPL", 10, OrderSide.SELL))
    assert client.get_all_positions() == []
    assert api_error(client.get_open_position, "AAPL").status_code == 404
    assert_account_consistent(client)


def test_no_shorting_refuses_short_sales(client):
    cfg = client.get_account_configurations()
    cfg.no_shorting = True
    client.set_account_configurations(cfg)
    e = api_error(client.submit_order, market("MSFT", 1, OrderSide.SELL))
    assert (e.status_code, e.code, e.message) == (403, 40310000, "account is not allowed to short")
    assert client.get_all_positions()[0].symbol == "AAPL"


def test_duplicate_client_order_id_is_422(client):
    client.submit_order(limit("MSFT", 1, OrderSide.BUY, 400, client_order_id="bot-0001"))
    e = api_error(client.submit_order, market("MSFT", 1, OrderSide.BUY, client_order_id="bot-0001"))
    assert (e.status_code, e.code, e.message) == (422, 40010001, "client_order_id must be unique")
    client.cancel_orders()
    assert api_error(client.submit_order, market("MSFT", 1, OrderSide.BUY, client_order_id="bot-0001")).status_code == 422


def test_symbol_without_a_price_is_422(client):
    e = api_error(client.submit_order, market("NOPRICE", 1, OrderSide.BUY))
    assert (e.status_code, e.code) == (422, 42210000)


def test_limit_order_rests_then_fills_when_the_price_crosses(sim, client):
    order = client.submit_order(limit("AAPL", 5, OrderSide.BUY, 180))
    assert (order.status, order.type, order.limit_price) == (OrderStatus.NEW, OrderType.LIMIT, "180")
    assert order.filled_qty == "0" and order.filled_avg_price is None
    assert client.get_open_position("AAPL").qty == "10"
    sim.prices(AAPL="181.00")
    assert client.get_order_by_id(order.id).status == OrderStatus.NEW
    filled = sim.prices(AAPL="179.50")["filled"]
    assert [o["id"] for o in filled] == [str(order.id)]
    o = client.get_order_by_id(order.id)
    assert (o.status, o.filled_qty, D(o.filled_avg_price)) == (OrderStatus.FILLED, "5", D("179.50"))
    assert o.filled_at is not None
    assert client.get_open_position("AAPL").qty == "15"
    # A sell limit fills at or above its price.
    sell = client.submit_order(limit("AAPL", 15, OrderSide.SELL, 190))
    assert sell.status == OrderStatus.NEW
    assert client.get_open_position("AAPL").qty_available == "0"
    sim.prices(AAPL="190")
    assert client.get_order_by_id(sell.id).status == OrderStatus.FILLED
    assert client.get_all_positions() == []
    assert_account_consistent(client)


def test_other_order_types(sim, client):
    stop = client.submit_order(
        StopOrderRequest(symbol="AAPL", qty=2, side=OrderSide.SELL, stop_price=170, time_in_force=TimeInForce.GTC)
    )
    stop_limit = client.submit_order(
        StopLimitOrderRequest(
            symbol="AAPL", qty=2, side=OrderSide.SELL, stop_price=172, limit_price=171, time_in_force=TimeInForce.DAY
        )
    )
    trailing = client.submit_order(
        TrailingStopOrderRequest(symbol="AAPL", qty=2, side=OrderSide.SELL, trail_percent=10, time_in_force=TimeInForce.GTC)
    )
    assert [o.status for o in (stop, stop_limit, trailing)] == [OrderStatus.NEW] * 3
    assert (trailing.type, trailing.trail_percent, D(trailing.stop_price)) == (OrderType.TRAILING_STOP, "10", D("166.5"))
    assert client.get_open_position("AAPL").qty_available == "4"
    sim.prices(AAPL="169")
    assert client.get_order_by_id(stop.id).status == OrderStatus.FILLED
    assert client.get_order_by_id(stop_limit.id).status == OrderStatus.NEW  # triggered, limit not met
    assert client.get_order_by_id(trailing.id).status == OrderStatus.NEW
    sim.prices(AAPL="165")
    assert client.get_order_by_id(trailing.id).status == OrderStatus.FILLED
    # Notional (fractional) market orders.
    notional = client.submit_order(
        MarketOrderRequest(symbol="TSLA", notional=250.5, side=OrderSide.BUY, time_in_force=TimeInForce.DAY)
    )
    assert (notional.qty, notional.notional, notional.status) == (None, "250.5", OrderStatus.FILLED)
    assert D(client.get_open_position("TSLA").qty) == D("1.002")
    # Bracket orders are refused with a sentence, not misread.
    bracket = MarketOrderRequest(
        symbol="MSFT",
        qty=1,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        order_class=OrderClass.BRACKET,
        take_profit=TakeProfitRequest(limit_price=500),
        stop_loss=StopLossRequest(stop_price=400),
    )
    e = api_error(client.submit_order, bracket)
    assert e.status_code == 422 and "not supported" in e.message
    assert_account_consistent(client)


def test_get_orders_open_closed_all_and_filters(client):
    filled = client.submit_order(market("MSFT", 1, OrderSide.BUY, client_order_id="a"))
    time.sleep(0.002)
    open_msft = client.submit_order(limit("MSFT", 1, OrderSide.BUY, 300, client_order_id="b"))
    time.sleep(0.002)
    open_aapl = client.submit_order(limit("AAPL", 1, OrderSide.SELL, 300, client_order_id="c"))

    def ids(**kw):
        return [o.client_order_id for o in client.get_orders(GetOrdersRequest(**kw))]

    assert [o.client_order_id for o in client.get_orders()] == ["c", "b"]  # open, newest first
    assert ids(status=QueryOrderStatus.OPEN) == ["c", "b"]
    assert ids(status=QueryOrderStatus.CLOSED) == ["a"]
    assert ids(status=QueryOrderStatus.ALL) == ["c", "b", "a"]
    assert ids(status=QueryOrderStatus.ALL, direction=Sort.ASC) == ["a", "b", "c"]
    assert ids(status=QueryOrderStatus.ALL, symbols=["MSFT"]) == ["b", "a"]
    assert ids(status=QueryOrderStatus.ALL, symbols=["MSFT", "AAPL"], limit=2) == ["c", "b"]
    assert ids(status=QueryOrderStatus.ALL, side=OrderSide.SELL) == ["c"]
    # Python datetimes stop at microseconds; the simulator's timestamps have nanoseconds.
    after_filled = filled.submitted_at + timedelta(microseconds=1)
    assert ids(status=QueryOrderStatus.ALL, after=after_filled, nested=True) == ["c", "b"]
    assert ids(status=QueryOrderStatus.ALL, until=open_aapl.submitted_at) == ["b", "a"]
    assert ids(after=datetime.now(timezone.utc) + timedelta(hours=1)) == []
    assert open_msft.id != open_aapl.id


def test_get_order_by_id_and_by_client_id(client):
    order = client.submit_order(limit("MSFT", 2, OrderSide.BUY, 400, client_order_id="mine-1"))
    got = client.get_order_by_id(order.id)
    assert (got.id, got.client_order_id, got.qty, got.symbol) == (order.id, "mine-1", "2", "MSFT")
    assert got.updated_at is not None and got.submitted_at is not None
    assert client.get_order_by_id(str(order.id), GetOrderByIdRequest(nested=True)).id == order.id
    assert client.get_order_by_client_id("mine-1").id == order.id
    assert api_error(client.get_order_by_client_id, "unknown").status_code == 404
    assert api_error(client.get_order_by_id, uuid.uuid4()).status_code == 404


def test_replace_order_by_id(client):
    old = client.submit_order(limit("MSFT", 5, OrderSide.BUY, 400))
    new = client.replace_order_by_id(old.id, ReplaceOrderRequest(qty=3, limit_price=405, client_order_id="repl-1"))
    assert new.id != old.id and new.replaces == old.id
    assert (new.qty, D(new.limit_price), new.status, new.client_order_id) == ("3", 405, OrderStatus.NEW, "repl-1")
    replaced = client.get_order_by_id(old.id)
    assert (replaced.status, replaced.replaced_by) == (OrderStatus.REPLACED, new.id)
    assert [o.id for o in client.get_orders()] == [new.id]
    e = api_error(client.replace_order_by_id, old.id, ReplaceOrderRequest(qty=1))
    assert (e.status_code, e.code) == (422, 42210000)


def test_cancel_order_by_id_and_422_for_a_filled_order(client):
    resting = client.submit_order(limit("MSFT", 1, OrderSide.BUY, 300))
    assert client.cancel_order_by_id(resting.id) is None
    o = client.get_order_by_id(resting.id)
    assert o.status == OrderStatus.CANCELED and o.canceled_at is not None
    filled = client.submit_order(market("MSFT", 1, OrderSide.BUY))
    e = api_error(client.cancel_order_by_id, filled.id)
    assert (e.status_code, e.code, e.message) == (422, 42210000, 'order is already in "filled" state')
    assert api_error(client.cancel_order_by_id, resting.id).status_code == 422
    assert api_error(client.cancel_order_by_id, uuid.uuid4()).status_code == 404


def test_cancel_orders(client):
    a = client.submit_order(limit("MSFT", 1, OrderSide.BUY, 300))
    b = client.submit_order(limit("AAPL", 1, OrderSide.SELL, 300))
    client.submit_order(market("TSLA", 1, OrderSide.BUY))
    responses = client.cancel_orders()
    assert sorted(str(r.id) for r in responses) == sorted([str(a.id), str(b.id)])
    assert all(r.status == 200 for r in responses)
    assert client.get_orders() == []
    assert client.cancel_orders() == []


# ----- closing positions -------------------------------------------------------------------


def test_close_position_whole_qty_and_percentage(client):
    part = client.close_position("AAPL", ClosePositionRequest(qty="3"))
    assert (part.side, part.qty, part.type, part.status) == (OrderSide.SELL, "3", OrderType.MARKET, OrderStatus.FILLED)
    assert client.get_open_position("AAPL").qty == "7"
    client.close_position("AAPL", ClosePositionRequest(percentage="50"))
    assert client.get_open_position("AAPL").qty == "4"
    rest = client.close_position("AAPL")
    assert rest.qty == "4"
    assert client.get_all_positions() == []
    e = api_error(client.close_position, "AAPL")
    assert (e.status_code, e.code) == (404, 40410000)
    # A short closes with a buy.
    client.submit_order(market("MSFT", 4, OrderSide.SELL))
    assert client.close_position("MSFT").side == OrderSide.BUY
    assert client.get_all_positions() == []
    assert_account_consistent(client)


def test_close_all_positions_honours_cancel_orders(client):
    client.submit_order(market("MSFT", 5, OrderSide.SELL))
    client.submit_order(limit("AAPL", 10, OrderSide.SELL, 999))  # holds every AAPL share
    results = {r.symbol: r for r in client.close_all_positions()}
    assert results["MSFT"].status == 200 and isinstance(results["MSFT"].body, Order)
    assert results["AAPL"].status == 403 and isinstance(results["AAPL"].body, FailedClosePositionDetails)
    assert results["AAPL"].body.code == 40310000
    assert client.get_open_position("AAPL").qty == "10"
    results = client.close_all_positions(cancel_orders=True)
    assert [(r.symbol, r.status) for r in results] == [("AAPL", 200)]
    assert results[0].body.side == OrderSide.SELL
    assert client.get_all_positions() == []
    assert client.get_orders() == []
    assert client.close_all_positions(cancel_orders=True) == []


# ----- clock, calendar, configurations -----------------------------------------------------


def test_get_clock(sim, client):
    c = client.get_clock()
    assert c.is_open is True
    assert c.timestamp < c.next_close < c.next_open
    assert c.timestamp.utcoffset() in (timedelta(hours=-4), timedelta(hours=-5))
    sim.admin("/_sim/clock", {"is_open": False})
    c = client.get_clock()
    assert c.is_open is False
    assert c.timestamp < c.next_open < c.next_close
    assert (c.next_open.hour, c.next_open.minute, c.next_close.hour) == (9, 30, 16)


def test_get_calendar(client):
    days = client.get_calendar(GetCalendarRequest(start=date(2025, 3, 10), end=date(2025, 3, 16)))
    assert [d.date for d in days] == [date(2025, 3, d) for d in range(10, 15)]
    assert (days[0].open, days[0].close) == (datetime(2025, 3, 10, 9, 30), datetime(2025, 3, 10, 16, 0))
    assert len(client.get_calendar()) >= 20


def test_account_configurations_get_and_set(client):
    cfg = client.get_account_configurations()
    assert (cfg.no_shorting, cfg.suspend_trade, cfg.max_margin_multiplier, cfg.ptp_no_exception_entry) == (
        False,
        False,
        "2",
        False,
    )
    cfg.suspend_trade = True
    cfg.max_margin_multiplier = "4"
    out = client.set_account_configurations(cfg)  # sends the whole model, nulls included
    assert (out.suspend_trade, out.max_margin_multiplier, out.no_shorting, out.fractional_trading) == (True, "4", False, True)
    assert client.get_account_configurations() == out
    assert client.get_account().trade_suspended_by_user is True
    e = api_error(client.submit_order, market("MSFT", 1, OrderSide.BUY))
    assert (e.status_code, e.code) == (403, 40310000)


# ----- account figures, auth, admin state, faults ------------------------------------------


def test_account_figures_stay_consistent_through_trades(sim, client):
    assert_account_consistent(client)
    client.submit_order(market("MSFT", 20, OrderSide.SELL))
    client.submit_order(market("TSLA", 7, OrderSide.BUY))
    sim.prices(MSFT="430.25", TSLA="240.10", AAPL="190")
    a = assert_account_consistent(client)
    assert D(a.cash) == D("100000") + 20 * D("415") - 7 * D("250")
    client.submit_order(market("MSFT", 5, OrderSide.BUY))
    client.close_position("TSLA")
    a = assert_account_consistent(client)
    assert D(a.cash) == D("100000") + 20 * D("415") - 7 * D("250") - 5 * D("430.25") + 7 * D("240.10")
    pos = {p.symbol: p for p in client.get_all_positions()}
    assert D(pos["MSFT"].market_value) == -15 * D("430.25")
    assert D(pos["MSFT"].unrealized_pl) == D(pos["MSFT"].market_value) - D(pos["MSFT"].cost_basis)


def test_wrong_keys_get_401_when_the_scenario_has_auth(start_sim):
    sim = start_sim({"auth": {"key_id": "PKTEST", "secret_key": "s3cret"}, "prices": {"AAPL": "1"}})
    e = api_error(sim.client("PKTEST", "wrong").get_account)
    assert (e.status_code, e.code, e.message) == (401, 40110000, "request is not authorized")
    assert api_error(sim.client("KEY", "SECRET").get_all_positions).status_code == 401
    assert sim.client("PKTEST", "s3cret").get_account().status == AccountStatus.ACTIVE
    assert sim.raw("GET", "/v2/account", key="", secret="").status_code == 401


def test_sim_state_counts_requests_per_template(sim, client):
    order = client.submit_order(limit("MSFT", 1, OrderSide.BUY, 300, client_order_id="s-1"))
    client.get_all_positions()
    client.get_all_positions()
    client.get_account()
    client.get_order_by_id(order.id)
    client.get_order_by_client_id("s-1")
    client.cancel_order_by_id(order.id)
    state = sim.state()
    assert state["requests"] == {
        "POST /v2/orders": 1,
        "GET /v2/positions": 2,
        "GET /v2/account": 1,
        "GET /v2/orders/{order_id}": 1,
        "GET /v2/orders:by_client_order_id": 1,
        "DELETE /v2/orders/{order_id}": 1,
    }
    assert [o["status"] for o in state["orders"]] == ["canceled"]
    assert [p["symbol"] for p in state["positions"]] == ["AAPL"]
    # The admin view uses the same strict shapes.
    Order(**state["orders"][0])


def test_rate_limit_answers_429_with_headers(sim):
    sim.faults(rate_limit_per_min=3)
    answers = [sim.raw("GET", "/v2/clock") for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert [r.headers["X-RateLimit-Remaining"] for r in answers] == ["2", "1", "0", "0"]
    last = answers[-1]
    assert last.json() == {"code": 42910000, "message": "rate limit exceeded"}
    assert last.headers["X-RateLimit-Limit"] == "3"
    reset = int(last.headers["X-RateLimit-Reset"])
    assert time.time() < reset <= time.time() + 61


def test_injected_faults(sim, client):
    sim.faults(error_rate=1.0, seed=1)
    e = api_error(client.get_account)  # alpaca-py does not retry a 500
    assert (e.status_code, e.code) == (500, 50010000)
    sim.faults(malformed_rate=1.0, seed=1)
    with pytest.raises(requests.exceptions.JSONDecodeError):
        client.get_all_positions()
    sim.faults(timeout_rate=1.0, seed=1)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        sim.raw("GET", "/v2/clock", timeout=0.5)
    assert time.monotonic() - started >= 0.5
    sim.faults(latency_ms=200)
    started = time.monotonic()
    assert client.get_clock() is not None
    assert time.monotonic() - started >= 0.2


def test_faults_are_deterministic_with_a_seed(sim):
    def run():
        sim.faults(error_rate=0.3, malformed_rate=0.3, seed=42, rate_limit_per_min=0)
        out = []
        for _ in range(30):
            r = sim.raw("GET", "/v2/account")
            try:
                r.json()
                out.append(r.status_code)
            except ValueError:
                out.append("malformed")
        return out

    first = run()
    assert first == run()
    assert {200, 500, "malformed"} <= set(first)


# ----- the command ---------------------------------------------------------------------------


def test_sigterm_stops_the_simulator_cleanly(sim):
    sim.proc.send_signal(signal.SIGTERM)
    assert sim.proc.wait(timeout=5) == 0


def test_bad_scenario_exits_2_without_a_url(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"positions": [{"symbol": "AAPL", "qty": "ten"}]}')
    run = subprocess.run([str(BIN), "sim", "--scenario", str(path)], capture_output=True, text=True, timeout=15)
    assert run.returncode == 2
    assert run.stdout == ""
    assert "not a decimal" in run.stderr
