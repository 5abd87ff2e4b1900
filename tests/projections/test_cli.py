"""``loyalty projections``: status, rebuild and run, as an operator runs them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from queue import Queue

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


def started_run(settings: Settings, *options: str) -> subprocess.Popen[str]:
    """``loyalty projections run`` with ``options`` on the test's database, its stderr piped."""
    env = {**os.environ, "LOYALTY_PG_DB": settings.pg_db, "LOYALTY_PG_SCHEMA": settings.pg_schema}
    return subprocess.Popen(
        [sys.executable, "-m", "loyalty.cli", "projections", "run", *options],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )


def caught_up_statuses(
    capsys: pytest.CaptureFixture[str], followed: set[str]
) -> dict[str, ProjectionStatus]:
    """The statuses once every one of ``followed`` has no lag (or after a minute)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if all(statuses(capsys)[name].lag_events == 0 for name in followed):
            break
        time.sleep(0.1)
    return statuses(capsys)


def run_until_caught_up(
    capsys: pytest.CaptureFixture[str], settings: Settings, *options: str
) -> tuple[dict[str, ProjectionStatus], int, str]:
    """Starts ``loyalty projections run`` with ``options``, waits until what it follows
    (every follower, or those ``--only`` names) has caught up, stops it with SIGTERM;
    returns the statuses seen then, its exit code and what it printed on stderr."""
    process = started_run(settings, *options)
    followed = set(options[1].split(",")) if options else set(statuses(capsys))
    try:
        caught_up = caught_up_statuses(capsys, followed)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    return caught_up, process.returncode, err


def child_pids(stderr: str) -> list[int]:
    return [int(line.rsplit(" ", 1)[1]) for line in stderr.splitlines() if "in process" in line]


def test_run_follows_the_log_publishing_from_a_child_process_and_stops_on_sigterm(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    posted: Services,
) -> None:
    use_database(monkeypatch, settings)

    caught_up, code, err = run_until_caught_up(capsys, settings)

    assert code == 0
    assert all(s.lag_events == 0 and s.position == s.head for s in caught_up.values())
    assert caught_up["balances"].head > 0 and caught_up["revenue"].head > 0
    assert caught_up["publication"].position == caught_up["publication"].head
    assert "following the log for balances, revenue, customer360, segments, dashboard\n" in err
    [child] = child_pids(err)
    assert f"publication: following in process {child}" in err
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def lines_printed(process: subprocess.Popen[str]) -> Queue[str]:
    """What ``process`` prints on stderr, line by line, as it prints it."""
    lines: Queue[str] = Queue()
    assert process.stderr is not None
    stderr = process.stderr
    threading.Thread(target=lambda: [lines.put(line) for line in stderr], daemon=True).start()
    return lines


def next_child(printed: Queue[str]) -> int:
    """The pid of the next child process the run says it started (within a minute)."""
    deadline = time.monotonic() + 60
    while True:
        line = printed.get(timeout=max(deadline - time.monotonic(), 0.1))
        if pids := child_pids(line):
            return pids[0]


def test_run_starts_the_publication_again_when_its_process_dies(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    posted: Services,
) -> None:
    use_database(monkeypatch, settings)
    process = started_run(settings)
    printed = lines_printed(process)
    try:
        first = next_child(printed)
        os.kill(first, signal.SIGKILL)
        second = next_child(printed)
        seen = caught_up_statuses(capsys, {"publication"})
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)

    assert second != first
    assert seen["publication"].position == seen["publication"].head > 0
    assert process.returncode == 0


def test_run_stops_when_its_whole_process_group_gets_sigterm(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    posted: Services,
) -> None:
    """As ``kill -TERM -PGID``, a container's stop or a terminal's close: the child is
    signalled with the parent, not only by it."""
    use_database(monkeypatch, settings)
    process = started_run(settings)
    try:
        child = next_child(lines_printed(process))
        caught_up_statuses(capsys, {"publication"})
        for pid in (child, process.pid):
            os.kill(pid, signal.SIGTERM)
        process.wait(timeout=60)
    finally:
        process.kill()

    assert process.returncode == 0
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)


def test_run_only_some_follows_those_alone(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    posted: Services,
) -> None:
    use_database(monkeypatch, settings)

    seen, code, err = run_until_caught_up(capsys, settings, "--only", "revenue,publication")

    assert code == 0
    assert "following the log for revenue\n" in err and len(child_pids(err)) == 1
    assert seen["revenue"].position == seen["revenue"].head > 0
    assert seen["publication"].position == seen["publication"].head > 0
    assert seen["balances"].position == 0


def test_run_only_the_publication_follows_it_in_the_same_process(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    posted: Services,
) -> None:
    use_database(monkeypatch, settings)

    seen, code, err = run_until_caught_up(capsys, settings, "--only", "publication")

    assert code == 0
    assert "following the log for publication\n" in err and child_pids(err) == []
    assert seen["publication"].position == seen["publication"].head > 0
    assert seen["revenue"].position == 0


def test_run_only_an_unknown_name_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], settings: Settings
) -> None:
    use_database(monkeypatch, settings)

    assert main(["projections", "run", "--only", "revenue,nothing"]) == 2

    assert "error [unknown_projection]: no read model is called nothing" in capsys.readouterr().err
