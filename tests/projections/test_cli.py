"""``loyalty projections``: status, rebuild and run, as an operator runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import msgspec
import pytest

from loyalty.bootstrap import Services
from loyalty.cli import main
from loyalty.projections.status import ProjectionStatus
from loyalty.settings import Settings
from tests.builders import Clock, program, purchase
from tests.test_cli import use_database


@pytest.fixture
def posted(services: Services, clock: Clock, settings: Settings) -> Services:
    services.applier.apply(program())
    clock.advance(hours=2)
    services.desk.post([purchase("r1"), purchase("r2", card="C2")])
    return services


def statuses(capsys: pytest.CaptureFixture[str]) -> dict[str, ProjectionStatus]:
    assert main(["projections", "status", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    found = [msgspec.json.decode(line, type=ProjectionStatus) for line in lines]
    return {s.name: s for s in found}


def test_status_shows_the_lag_until_a_rebuild_catches_up(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    posted: Services,
) -> None:
    use_database(monkeypatch, settings)

    before = statuses(capsys)
    assert main(["projections", "rebuild", "revenue"]) == 0
    rebuilt = capsys.readouterr().err
    after = statuses(capsys)

    assert set(before) == {
        "balances",
        "revenue",
        "customer360",
        "segments",
        "dashboard",
        "publication",
    }
    assert before["revenue"].position == 0 and before["revenue"].lag_events == 4
    assert before["revenue"].lag_seconds > 0
    assert "revenue: generation 2 serves reads" in rebuilt
    assert (after["revenue"].generation, after["revenue"].lag_events) == (2, 0)
    assert after["revenue"].position == after["revenue"].head > 0
    assert after["balances"].lag_events > 0


def test_rebuilding_an_unknown_read_model_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    use_database(monkeypatch, settings)

    assert main(["projections", "rebuild", "nothing"]) == 2

    assert "error [unknown_projection]" in capsys.readouterr().err


def test_run_follows_the_log_in_its_own_process_and_stops_on_sigterm(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    posted: Services,
) -> None:
    use_database(monkeypatch, settings)
    env = {**os.environ, "LOYALTY_PG_DB": settings.pg_db, "LOYALTY_PG_SCHEMA": settings.pg_schema}
    process = subprocess.Popen([sys.executable, "-m", "loyalty.cli", "projections", "run"], env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if all(s.lag_events == 0 for s in statuses(capsys).values()):
                break
            time.sleep(0.1)
        caught_up = statuses(capsys)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)

    assert code == 0
    assert all(s.lag_events == 0 and s.position == s.head for s in caught_up.values())
    assert caught_up["balances"].head > 0 and caught_up["revenue"].head > 0
    assert caught_up["publication"].position == caught_up["publication"].head
