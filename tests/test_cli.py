"""The ``loyalty`` command line, run as an operator would run it."""

from __future__ import annotations

import io
from pathlib import Path

import msgspec
import pytest

from loyalty.bootstrap import Services
from loyalty.cli import main, progress_line
from loyalty.commands.ingest import IngestSummary
from loyalty.settings import Settings
from tests.builders import Clock, as_json, line, program, purchase


def use_database(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("LOYALTY_PG_DB", settings.pg_db)
    monkeypatch.setenv("LOYALTY_PG_SCHEMA", settings.pg_schema)


def test_the_progress_bar_fills_with_the_bytes_read() -> None:
    summary = IngestSummary(lines=10, accepted=9, rejected=1)

    half = progress_line(summary, done_bytes=50, total_bytes=100, started=0.0)
    done = progress_line(summary, done_bytes=100, total_bytes=100, started=0.0)

    assert half.startswith("[" + "#" * 15 + "." * 15 + "]  50%")
    assert done.startswith("[" + "#" * 30 + "] 100%")
    assert "10 lines  9 accepted  0 replayed  1 rejected" in done


def test_ingest_prints_a_summary_and_writes_the_rejects_next_to_the_file(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    settings: Settings,
    services: Services,
    clock: Clock,
) -> None:
    services.applier.apply(program())
    use_database(monkeypatch, settings)
    source = tmp_path / "movements.ndjson"
    source.write_bytes(
        msgspec.json.encode(as_json(purchase("a1", line("BREAD", "10.00"))))
        + b"\n"
        + msgspec.json.encode(as_json(purchase("a2", card="NOPE")))
        + b"\n"
    )

    assert main(["ingest", str(source)]) == 0

    out, err = capsys.readouterr()
    summary = msgspec.json.decode(out.strip().splitlines()[-1], type=IngestSummary)
    assert (summary.lines, summary.accepted, summary.rejected) == (2, 1, 1)
    assert "] 100%" in err
    rejects = (tmp_path / "movements.rejects.ndjson").read_bytes().splitlines()
    assert [msgspec.json.decode(r)["code"] for r in rejects] == ["unknown_card"]


def test_operator_add_reads_the_password_from_stdin_and_refuses_a_weak_one(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    settings: Settings,
    services: Services,
) -> None:
    services.applier.apply(program())
    use_database(monkeypatch, settings)
    monkeypatch.setattr("sys.stdin", io.StringIO("correct horse battery staple\n"))

    added = main(
        [
            "operator",
            "add",
            "Anna",
            "--role",
            "store_manager",
            "--scope",
            "s1",
            "s2",
            "--password-stdin",
        ]
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("password2026\n"))
    weak = main(["operator", "add", "bruno", "--role", "admin", "--password-stdin"])

    out, err = capsys.readouterr()
    assert added == 0 and "operator anna added: store_manager, scope s1 s2" in out
    assert weak == 2 and "error [weak_password]" in err


def test_a_setting_without_a_valid_value_is_refused_before_any_command_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOYALTY_AGGREGATE_CACHE", "0")

    assert main(["migrate"]) == 2
    assert capsys.readouterr().err == (
        "error [invalid_setting]: LOYALTY_AGGREGATE_CACHE is not valid: expected `int` >= 1\n"
    )
