"""Bulk ingest of NDJSON movements through the same path as the tills."""

from __future__ import annotations

import io

import msgspec
import pytest

from loyalty.bootstrap import Services
from loyalty.commands.ingest import ingest
from tests.builders import Clock, as_json, line, program, purchase


@pytest.fixture
def chain(services: Services, clock: Clock) -> Services:
    services.applier.apply(program())
    clock.advance(hours=2)
    return services


def ndjson(*rows: object) -> bytes:
    return b"".join(
        (row if isinstance(row, bytes) else msgspec.json.encode(row)) + b"\n" for row in rows
    )


def test_ingest_accepts_rejects_with_reasons_and_replays_nothing_new(chain: Services) -> None:
    source = ndjson(
        as_json(purchase("a1", line("BREAD", "10.00"))),
        b"not json at all",
        as_json(purchase("a2", card="NOPE")),
        as_json(purchase("a3", line("BREAD", "5.00"), card="C2")),
    )
    rejects = io.BytesIO()

    summary = ingest(chain.desk, io.BytesIO(source), rejects, batch_size=2)
    again = ingest(chain.desk, io.BytesIO(source), io.BytesIO(), batch_size=3)

    assert (summary.lines, summary.accepted, summary.rejected) == (4, 2, 2)
    assert summary.reasons == {"malformed_json": 1, "unknown_card": 1}
    lines = [msgspec.json.decode(row) for row in rejects.getvalue().splitlines()]
    assert [(r["line"], r["code"]) for r in lines] == [(2, "malformed_json"), (3, "unknown_card")]
    assert (again.accepted, again.replayed, again.rejected) == (0, 2, 2)


def test_ingest_reports_progress_per_batch(chain: Services) -> None:
    source = ndjson(*(as_json(purchase(f"p{i}")) for i in range(5)))
    seen: list[int] = []

    ingest(
        chain.desk,
        io.BytesIO(source),
        io.BytesIO(),
        batch_size=2,
        progress=lambda s: seen.append(s.lines),
    )

    assert seen == [2, 4, 5]
