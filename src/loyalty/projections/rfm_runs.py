"""RFM runs: every customer scored from the revenue facts, stored, recorded in the ledger
and compared with the run before.

A run reads the revenue read model's facts up to its as-of day in one snapshot, together
with the log position they reflect; its id derives from its parameters and that position,
so asking again for the same run on the same facts returns the stored one. The ledger
records each run (:class:`~loyalty.domain.segmentation.RfmRun`) with the segment changes it
found against the previous run, in chunks of :data:`CHUNK` customers, so promotions and
outreach can target segments from the log alone.
"""

from __future__ import annotations

import hashlib
import io
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from datetime import date, datetime
from typing import Any
from uuid import UUID

import msgspec
import polars as pl
from eventsourcing.persistence import IntegrityError
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier, Literal

from loyalty.commands.collector import collector_paused
from loyalty.commands.ledger import Ledger
from loyalty.domain import ids
from loyalty.domain.errors import UnknownRfmRun
from loyalty.domain.segmentation import (
    RfmParameters,
    RfmRun,
    SegmentationPolicy,
    SegmentChange,
    SegmentSize,
    check_parameters,
)
from loyalty.projections.revenue import Revenue
from loyalty.projections.rfm import SCORED_COLUMNS, scores, segment_changes, segment_sizes
from loyalty.projections.tables import Tables, serving_tables
from loyalty.settings import Settings

CHUNK = 10_000
"""Segment changes per ledger event."""

_encoder = msgspec.json.Encoder(decimal_format="string")

PURCHASES = """
COPY (
    SELECT customer_id, max(day) FILTER (WHERE type = 'purchase'),
           count(*) FILTER (WHERE type = 'purchase'), sum(revenue)
    FROM {sales} WHERE day <= {as_of} AND type IN ('purchase', 'return')
    GROUP BY customer_id HAVING count(*) FILTER (WHERE type = 'purchase') > 0
) TO STDOUT WITH (FORMAT csv)
"""
PURCHASES_TO_DATE = """
COPY (
    SELECT customer_id, last_purchase_on, purchases, spend FROM {customers} WHERE purchases > 0
) TO STDOUT WITH (FORMAT csv)
"""
"""What :data:`PURCHASES` gives when no fact lies after the as-of day: the running totals
per customer the revenue read model keeps, read instead of summing every fact again."""


class RunView(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID
    as_of: date
    parameters: RfmParameters
    position: int
    """The log position whose revenue facts the run scored."""
    previous: UUID | None
    customers: int
    sizes: tuple[SegmentSize, ...]
    digest: str
    """SHA-256 of the scores (customer, r, f, m, segment), to compare repeated runs."""
    computed_by: str
    computed_at: datetime


PURCHASES_SCHEMA = pl.Schema(
    {
        "customer_id": pl.String(),
        "last_purchase_on": pl.Date(),
        "purchases": pl.Int64(),
        "spend": pl.Decimal(38, 2),
    }
)
"""What :func:`purchases_as_of` gives: one row per customer who purchased."""

PURCHASES_CSV = pl.Schema({**PURCHASES_SCHEMA, "spend": pl.String()})
""":data:`PURCHASES_SCHEMA` as copied out, net spend as text (read exactly as decimal next)."""


def purchases_as_of(curs: Cursor[DictRow], tables: Tables, as_of: date) -> pl.DataFrame:
    """Per customer who purchased by ``as_of``: last purchase day, purchases, net spend."""
    curs.execute(SQL("SELECT max(day) AS newest FROM {}").format(tables("sales")))
    row = curs.fetchone()
    newest = row["newest"] if row else None
    if newest is None or newest <= as_of:
        statement = SQL(PURCHASES_TO_DATE).format(customers=tables("customers"))
    else:
        statement = SQL(PURCHASES).format(sales=tables("sales"), as_of=Literal(as_of))
    frame = copied_frame(curs, statement, PURCHASES_CSV)
    return frame.with_columns(pl.col("spend").str.to_decimal(scale=2))


def run_key(parameters: RfmParameters, position: int) -> str:
    return hashlib.sha256(_encoder.encode(parameters) + f"@{position}".encode()).hexdigest()


def digest_of(scored: pl.DataFrame) -> str:
    columns = scored.select("customer_id", "r", "f", "m", "segment")
    return hashlib.sha256(columns.write_csv().encode()).hexdigest()


def compute_run(ledger: Ledger, settings: Settings, parameters: RfmParameters, by: str) -> RunView:
    """Scores every customer as of ``parameters.as_of`` from the revenue facts the read
    side holds now; the stored run if these facts were scored so already.

    The facts and the previous run are read in one snapshot; scoring and recording in the
    ledger happen with no transaction open (they take seconds for a million customers,
    past the server's idle-in-transaction timeout). The run is stored while it is recorded,
    in a transaction that commits only once the ledger holds it."""
    check_parameters(parameters)
    datastore = ledger.ledger_recorder.datastore
    with datastore.transaction(commit=False) as curs:
        curs.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        tables = serving_tables(curs, settings, Revenue.name)
        position = 0
        frame = pl.DataFrame(schema=PURCHASES_SCHEMA)
        if tables is not None:
            curs.execute(SQL("SELECT position FROM {} WHERE id = 1").format(tables("progress")))
            row = curs.fetchone()
            position = int(row["position"]) if row else 0
            frame = purchases_as_of(curs, tables, parameters.as_of)
        run_id = ids.rfm_run_id(run_key(parameters, position))
        stored = find_run(curs, settings, run_id)
        if stored is not None:
            return stored
        previous = latest_run_id(curs, settings)
        before = previous_segments(curs, settings, previous)
    scored = scores(frame, parameters)
    changes = segment_changes(before, scored)
    sizes = tuple(
        SegmentSize(segment=segment, customers=customers)
        for segment, customers in segment_sizes(scored, parameters.rules).iter_rows()
    )
    run = Run(
        run_id=run_id,
        parameters=parameters,
        position=position,
        previous=previous,
        sizes=sizes,
        digest=digest_of(scored),
        by=by,
    )
    with datastore.transaction(commit=True) as curs, ThreadPoolExecutor(1) as recorder:
        curs.execute("SET LOCAL idle_in_transaction_session_timeout = 0")
        recording = recorder.submit(record, ledger, run, changes)
        store_run(curs, settings, run, scored)
        recording.result()
        found = find_run(curs, settings, run_id)
    assert found is not None
    return found


class Run(msgspec.Struct, frozen=True, kw_only=True):
    """What a run records in the ledger and stores beside its scores."""

    run_id: UUID
    parameters: RfmParameters
    position: int
    previous: UUID | None
    sizes: tuple[SegmentSize, ...]
    digest: str
    by: str


def store_run(curs: Cursor[DictRow], settings: Settings, run: Run, scored: pl.DataFrame) -> None:
    """The run and its scores in the read schema, unless a run computed at the same time
    stored them first."""
    schema = Identifier(settings.read_schema)
    curs.execute(
        SQL(
            "INSERT INTO {}.rfm_runs (run_id, as_of, parameters, position, previous,"
            " customers, sizes, digest, computed_by)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (run_id) DO NOTHING"
        ).format(schema),
        (
            run.run_id,
            run.parameters.as_of,
            _encoder.encode(run.parameters).decode(),
            run.position,
            run.previous,
            scored.height,
            _encoder.encode(run.sizes).decode(),
            run.digest,
            run.by,
        ),
    )
    if curs.rowcount == 0:
        return
    with curs.copy(
        SQL(
            "COPY {}.rfm_scores (run_id, customer_id, recency_days, frequency, monetary,"
            " r, f, m, fm, segment) FROM STDIN WITH (FORMAT csv)"
        ).format(schema)
    ) as copy:
        rows = scored.select(pl.lit(str(run.run_id)).alias("run_id"), *SCORED_COLUMNS)
        copy.write(rows.write_csv(include_header=False))


def record(ledger: Ledger, run: Run, changes: pl.DataFrame) -> None:
    """The run and its segment changes, as events of one ledger transaction (already
    recorded by an earlier attempt whose rows were not written: nothing to add)."""
    recorded = RfmRun.compute(
        run_id=run.run_id,
        parameters=run.parameters,
        position=run.position,
        previous=run.previous,
        sizes=run.sizes,
        digest=run.digest,
        by=run.by,
    )
    # building a million changes set off the collector's passes: 2.7 s of 3.4 s, measured
    with collector_paused():
        rows = msgspec.convert(changes.rows(), list[SegmentChange])
        for start in range(0, len(rows), CHUNK):
            recorded.record_changes(tuple(rows[start : start + CHUNK]))
        with suppress(IntegrityError):
            ledger.save(recorded)


SEGMENTS_SCHEMA = pl.Schema({"customer_id": pl.String(), "segment": pl.String()})


def previous_segments(
    curs: Cursor[DictRow], settings: Settings, run_id: UUID | None
) -> pl.DataFrame:
    """Each customer's segment in run ``run_id`` (none: no customer)."""
    if run_id is None:
        return pl.DataFrame(schema=SEGMENTS_SCHEMA)
    statement = SQL(
        "COPY (SELECT customer_id, segment FROM {}.rfm_scores WHERE run_id = {})"
        " TO STDOUT WITH (FORMAT csv)"
    ).format(Identifier(settings.read_schema), Literal(str(run_id)))
    return copied_frame(curs, statement, SEGMENTS_SCHEMA)


def copied_frame(
    curs: Cursor[DictRow], statement: SQL | Composed, schema: pl.Schema
) -> pl.DataFrame:
    """The rows a ``COPY … TO STDOUT WITH (FORMAT csv)`` statement gives, as a frame of
    ``schema`` (none: an empty one)."""
    data = bytearray()
    with curs.copy(statement) as copy:
        for block in copy:
            data += block
    return pl.read_csv(io.BytesIO(data), has_header=False, schema=schema, raise_if_empty=False)


def latest_run_id(curs: Cursor[DictRow], settings: Settings) -> UUID | None:
    curs.execute(
        SQL("SELECT run_id FROM {}.rfm_runs ORDER BY computed_at DESC, run_id LIMIT 1").format(
            Identifier(settings.read_schema)
        )
    )
    row = curs.fetchone()
    return row["run_id"] if row else None


RUN_COLUMNS = (
    "run_id, as_of, parameters, position, previous, customers, sizes, digest, computed_by,"
    " computed_at"
)


def view_of(row: dict[str, Any]) -> RunView:
    return msgspec.convert(row, RunView, strict=False)


def find_run(curs: Cursor[DictRow], settings: Settings, run_id: UUID) -> RunView | None:
    curs.execute(
        SQL("SELECT " + RUN_COLUMNS + " FROM {}.rfm_runs WHERE run_id = %s").format(
            Identifier(settings.read_schema)
        ),
        (run_id,),
    )
    row = curs.fetchone()
    return view_of(row) if row else None


def run_of(curs: Cursor[DictRow], settings: Settings, run_id: UUID) -> RunView:
    found = find_run(curs, settings, run_id)
    if found is None:
        raise UnknownRfmRun(f"no RFM run has the id {run_id}", run=str(run_id))
    return found


def runs(curs: Cursor[DictRow], settings: Settings) -> list[RunView]:
    """Every run, newest first."""
    curs.execute(
        SQL("SELECT " + RUN_COLUMNS + " FROM {}.rfm_runs ORDER BY computed_at DESC").format(
            Identifier(settings.read_schema)
        )
    )
    return [view_of(row) for row in curs.fetchall()]


def policy_of(ledger: Ledger) -> SegmentationPolicy:
    """The saved RFM parameters (the defaults until a client saves some)."""
    found = ledger.load_all([ids.SEGMENTATION_POLICY_ID]).get(ids.SEGMENTATION_POLICY_ID)
    return found if isinstance(found, SegmentationPolicy) else SegmentationPolicy()


def scheduled_run(ledger: Ledger, settings: Settings, today: date) -> RunView:
    """The daily run: the saved parameters, as of ``today``."""
    return compute_run(ledger, settings, policy_of(ledger).policy.on(today), by="schedule")
