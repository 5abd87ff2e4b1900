"""The four scenarios: (a) raw INSERT+COMMIT, (b) naive, (c) POS over HTTP, (d) ingest vs COPY.

Each returns a plain dict of figures (rates per second, latencies in milliseconds, CPU
cores busy, WAL written) that ``benchmarks.run`` prints and stores.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import nats
import psycopg
from eventsourcing.application import AggregateNotFoundError
from nats.js.errors import NotFoundError
from psycopg import sql

from benchmarks.system import CpuWindow, wal_delta, wal_snapshot
from benchmarks.workload import Layout, Purchases, timestamp
from loyalty.adapters.eventstore import MovementKey
from loyalty.adapters.migrations import apply_migrations
from loyalty.bootstrap import Services, build_services
from loyalty.commands.ingest import IngestSummary
from loyalty.commands.movements import receipt_of, request_digest
from loyalty.commands.schemas import PostMovement
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.card import Card
from loyalty.domain.customer import CustomerFacts
from loyalty.domain.movement import Movement, check_movement
from loyalty.rules.engine import Context, derive
from loyalty.rules.schedule import local_time
from loyalty.settings import Settings

if TYPE_CHECKING:
    from loyalty.commands.replay import ReplayReport

BASELINE_SCHEMA = "bench_baseline"
_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(PostMovement)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def latency_summary(latencies_s: list[float]) -> dict[str, float | None]:
    if not latencies_s:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(latencies_s)

    def rank(share: float) -> float:
        index = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
        return round(ordered[index] * 1000, 2)

    return {"p50": rank(0.50), "p99": rank(0.99), "max": round(ordered[-1] * 1000, 2)}


def checkpoint(settings: Settings) -> None:
    """Flushes dirty pages before a measured phase so that no checkpoint lands in it (as the
    administrator: the event store's role may not)."""
    try:
        with psycopg.connect(settings.admin_conninfo(), autocommit=True) as conn:
            conn.execute("CHECKPOINT")
    except psycopg.Error as error:  # not a superuser: measure anyway
        log(f"CHECKPOINT skipped: {error}")


# --- the throw-away database ---------------------------------------------------------------


@contextmanager
def bench_database(base: Settings, keep: bool = False) -> Iterator[Settings]:
    """A fresh database ``loyalty_bench_<random>``, dropped on the way out."""
    name = f"loyalty_bench_{secrets.token_hex(4)}"
    admin = base.admin_conninfo("postgres")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    log(f"created database {name}")
    settings = msgspec.structs.replace(
        base,
        pg_db=name,
        pg_schema="loyalty",
        nats_stream=name.upper(),
        nats_subject=f"{name}.events",
    )
    try:
        yield settings
    finally:
        if keep:
            log(f"kept database {name} (--keep-db)")
        else:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )
            delete_stream(settings)
            log(f"dropped database {name} and its event stream")


def delete_stream(settings: Settings) -> None:
    """Deletes the event stream of a benchmark's deployment, if it was created."""

    async def delete() -> None:
        client = await nats.connect(settings.nats_url, max_reconnect_attempts=1)
        try:
            await client.jetstream().delete_stream(settings.events_stream)
        except NotFoundError:
            pass
        finally:
            await client.close()

    if settings.nats_url:
        asyncio.run(delete())


@dataclass
class Setup:
    settings: Settings
    services: Services
    layout: Layout
    applied_at: float
    apply_seconds: float
    apply_events: int
    analyzed: bool


def prepare(settings: Settings, layout: Layout, analyze: bool = True) -> Setup:
    """Migrations, then the benchmark's program, applied through the real applier.

    ``analyze`` runs ``ANALYZE`` once the program is in, as autovacuum would soon do on a
    live database; without statistics the planner picks sequential scans for the
    aggregate catch-up query (see the README), whatever the ``autovacuum`` setting.
    """
    apply_migrations(settings)
    with psycopg.connect(settings.admin_conninfo(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
                sql.Identifier(BASELINE_SCHEMA), sql.Identifier(settings.pg_user)
            )
        )
    services = build_services(settings)
    started = time.perf_counter()
    report = services.applier.apply(layout.program())
    elapsed = time.perf_counter() - started
    log(f"applied the program: {report.events:,} events in {elapsed:.1f} s")
    if analyze:
        with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
            conn.execute("ANALYZE")
    return Setup(settings, services, layout, time.time(), elapsed, report.events, analyze)


# --- (a) raw INSERT + COMMIT -----------------------------------------------------------------


def raw_insert(setup: Setup, seconds: float) -> dict[str, Any]:
    """One connection, one row per transaction: INSERT a movement's JSON, COMMIT, repeat."""
    conninfo = setup.settings.conninfo()
    table = sql.Identifier(BASELINE_SCHEMA, "raw_movements")
    purchases = Purchases("raw", setup.layout.cards("pos"), setup.layout.terminals(), seed=7)
    with psycopg.connect(conninfo) as conn:
        conn.execute(
            sql.SQL(
                "CREATE TABLE {} (id bigserial PRIMARY KEY, payload jsonb NOT NULL,"
                " recorded_at timestamptz NOT NULL DEFAULT now())"
            ).format(table)
        )
        conn.commit()
        checkpoint(setup.settings)
        insert = sql.SQL("INSERT INTO {} (payload) VALUES (%s::jsonb)").format(table)
        latencies: list[float] = []
        payload_bytes = 0
        wal_before = wal_snapshot(conninfo)
        cpu = CpuWindow({"bench_process": [os.getpid()]}).start()
        now = timestamp()
        started = time.perf_counter()
        deadline = started + seconds
        while (begin := time.perf_counter()) < deadline:
            _, body = purchases.next(now)
            payload_bytes += len(body)
            conn.execute(insert, (body.decode(),), prepare=True)
            conn.commit()
            latencies.append(time.perf_counter() - begin)
        elapsed = time.perf_counter() - started
        cpu_figures = cpu.stop()
    rows = len(latencies)
    return {
        "rows": rows,
        "seconds": round(elapsed, 2),
        "rate_per_s": round(rows / elapsed, 1),
        "payload_bytes_mean": round(payload_bytes / max(rows, 1)),
        "latency_ms": latency_summary(latencies),
        "cpu": cpu_figures,
        "wal": wal_delta(wal_before, wal_snapshot(conninfo), rows),
    }


# --- (b) naive: load, call the method, save, one at a time ----------------------------------


def naive(setup: Setup, seconds: float) -> dict[str, Any]:
    """Each movement on its own: ``repository.get`` the card and the account (or open it),
    derive with the rule engine, ``account.record``, ``Application.save`` with its
    idempotency record. No grouping, no cache, one transaction per movement."""
    ledger = setup.services.ledger
    program = setup.services.desk.program.current()
    purchases = Purchases("naive", setup.layout.cards("naive"), setup.layout.terminals(), seed=11)
    conninfo = setup.settings.conninfo()
    checkpoint(setup.settings)
    latencies: list[float] = []
    opened = 0
    wal_before = wal_snapshot(conninfo)
    cpu = CpuWindow({"bench_process": [os.getpid()]}).start()
    started = time.perf_counter()
    deadline = started + seconds
    while (begin := time.perf_counter()) < deadline:
        _, body = purchases.next(timestamp())
        command = _decoder.decode(body)
        card = ledger.repository.get(ids.card_id(command.card))
        assert isinstance(card, Card)
        card.check_can_move()
        location = program.location(command.terminal)
        movement = Movement(
            movement_id=command.movement_id,
            type=command.type,
            card=command.card,
            occurred_at=command.occurred_at,
            amount=command.amount,
            currency=command.currency,
            lines=command.lines,
            location=location,
            source=f"terminal:{command.terminal}",
        )
        check_movement(movement)
        day = local_time(movement.occurred_at, location.timezone).date()
        campaign = program.campaign_at(location, day)
        try:
            account = ledger.repository.get(ids.account_id(campaign.id, card.customer_id))
        except AggregateNotFoundError:
            account = Account(campaign_id=campaign.id, customer_id=card.customer_id)
            opened += 1
        context = Context(
            campaign=campaign,
            account=account,
            promotions=program.promotions_in_force(campaign.id, movement.occurred_at),
            clusters=program.clusters_in_force(movement.occurred_at),
            facts=CustomerFacts(card_status=card.status),
        )
        derivation = derive(movement, context)
        account.record(movement, derivation)
        response = _encoder.encode(receipt_of(movement, derivation, account))
        ledger.save(
            account,
            movement_keys=[
                MovementKey(
                    source=command.terminal,
                    movement_id=command.movement_id,
                    request_digest=request_digest(command),
                    response=response,
                    account_id=account.id,
                    account_version=account.version,
                )
            ],
        )
        latencies.append(time.perf_counter() - begin)
    elapsed = time.perf_counter() - started
    cpu_figures = cpu.stop()
    count = len(latencies)
    return {
        "movements": count,
        "accounts_opened": opened,
        "seconds": round(elapsed, 2),
        "rate_per_s": round(count / elapsed, 1),
        "latency_ms": latency_summary(latencies),
        "cpu": cpu_figures,
        "wal": wal_delta(wal_before, wal_snapshot(conninfo), count),
    }


# --- (c) the POS path over HTTP --------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def loyalty_command() -> list[str]:
    script = Path(sys.executable).parent / "loyalty"
    return [str(script)] if script.exists() else [sys.executable, "-m", "loyalty.cli"]


@contextmanager
def server(settings: Settings, workdir: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """``loyalty serve`` on a free port of 127.0.0.1, on the benchmark's database."""
    port = free_port()
    env = {
        **os.environ,
        "LOYALTY_PG_DB": settings.pg_db,
        "LOYALTY_PG_SCHEMA": settings.pg_schema,
        "LOYALTY_NATS_STREAM": settings.events_stream,
        "LOYALTY_NATS_SUBJECT": settings.events_subject,
        "LOYALTY_HTTP_HOST": "127.0.0.1",
        "LOYALTY_HTTP_PORT": str(port),
    }
    log_path = workdir / "server.log"
    with log_path.open("wb") as output:
        process = subprocess.Popen(
            [*loyalty_command(), "serve"], env=env, stdout=output, stderr=subprocess.STDOUT
        )
    try:
        wait_healthy(process, port, log_path)
        yield process, port
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_healthy(process: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"loyalty serve exited:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"loyalty serve did not answer /health:\n{log_path.read_text()[-3000:]}")


def pos_http(
    setup: Setup, seconds: float, warmup: float, clients: int, workdir: Path
) -> dict[str, Any]:
    """The real server, and the load generator in a process of its own."""
    conninfo = setup.settings.conninfo()
    layout = setup.layout
    checkpoint(setup.settings)
    with server(setup.settings, workdir) as (process, port):
        command = [
            sys.executable, "-m", "benchmarks.loadgen",
            "--port", str(port),
            "--clients", str(clients),
            "--warmup", str(warmup),
            "--seconds", str(seconds),
            "--prefix", "pos",
            "--stores", str(layout.stores),
            "--terminals-per-store", str(layout.terminals_per_store),
            "--pos-cards", str(layout.pos_cards),
        ]  # fmt: skip
        root = Path(__file__).resolve().parent.parent
        generator = subprocess.Popen(
            command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert generator.stdout is not None and generator.stderr is not None
        cpu = CpuWindow({"server": [process.pid], "loadgen": [generator.pid]})
        wal_before: dict[str, int] = {}
        cpu_figures: dict[str, float] = {}
        wal_after: dict[str, int] = {}
        stderr_rest = []
        for raw in generator.stderr:
            line = raw.decode(errors="replace").strip()
            if line == "window-start":
                wal_before = wal_snapshot(conninfo)
                cpu.start()
            elif line == "window-end":
                cpu_figures = cpu.stop()
                wal_after = wal_snapshot(conninfo)
            elif line:
                stderr_rest.append(line)
        output = generator.stdout.read()
        if generator.wait() != 0 or not output.strip():
            raise RuntimeError("the load generator failed:\n" + "\n".join(stderr_rest[-30:]))
        result: dict[str, Any] = msgspec.json.decode(output)
        server_log = (workdir / "server.log").read_text(errors="replace")
    result["cpu"] = cpu_figures
    if wal_before and wal_after:
        result["wal"] = wal_delta(wal_before, wal_after, result["completed"])
    result["recorded_in_db"] = count_keys(setup.settings, "pos-%")
    result["server_log_tail"] = server_log[-2000:] if server_log.strip() else ""
    result["pool_size"] = setup.settings.pg_pool_size
    result["max_batch"] = setup.settings.max_batch
    return result


def count_keys(settings: Settings, pattern: str) -> int:
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT count(*) FROM {}.movement_keys WHERE movement_id LIKE %s").format(
                sql.Identifier(settings.pg_schema)
            ),
            (pattern,),
        ).fetchone()
    return int(row[0]) if row else 0


# --- (d) loyalty ingest vs a raw COPY --------------------------------------------------------


def write_ndjson(setup: Setup, movements: int, path: Path) -> int:
    purchases = Purchases("ing", setup.layout.cards("ingest"), setup.layout.terminals(), seed=13)
    size = 0
    with path.open("wb") as out:
        for _ in range(movements):
            _, body = purchases.next(timestamp())
            out.write(body + b"\n")
            size += len(body) + 1
    return size


def ingest_vs_copy(
    setup: Setup, movements: int, batch_size: int, workdir: Path, copy_runs: int = 3
) -> dict[str, Any]:
    conninfo = setup.settings.conninfo()
    source_path = workdir / "movements.ndjson"
    size = write_ndjson(setup, movements, source_path)
    log(f"wrote {movements:,} movements ({size / 1e6:.1f} MB) to {source_path.name}")

    checkpoint(setup.settings)
    wal_before = wal_snapshot(conninfo)
    started = time.perf_counter()
    done = subprocess.run(
        [*loyalty_command(), "ingest", str(source_path), "--batch-size", str(batch_size)],
        env={
            **os.environ,
            "LOYALTY_PG_DB": setup.settings.pg_db,
            "LOYALTY_PG_SCHEMA": setup.settings.pg_schema,
            "LOYALTY_NATS_STREAM": setup.settings.events_stream,
            "LOYALTY_NATS_SUBJECT": setup.settings.events_subject,
        },
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"loyalty ingest failed:\n{done.stderr.decode()[-3000:]}")
    summary = msgspec.json.decode(done.stdout.strip().splitlines()[-1], type=IngestSummary)
    ingest_result = {
        "command": f"loyalty ingest movements.ndjson --batch-size {batch_size}",
        "lines": summary.lines,
        "accepted": summary.accepted,
        "replayed": summary.replayed,
        "rejected": summary.rejected,
        "reasons": summary.reasons,
        "batch_size": batch_size,
        "seconds": round(elapsed, 2),
        "rate_per_s": round(summary.lines / elapsed, 1),
        "file_bytes": size,
        "wal": wal_delta(wal_before, wal_snapshot(conninfo), summary.lines),
    }

    table = sql.Identifier(BASELINE_SCHEMA, "copied_movements")
    with psycopg.connect(conninfo) as conn:
        conn.execute(sql.SQL("CREATE TABLE {} (line jsonb NOT NULL)").format(table))
        conn.commit()
    timings = []
    for _ in range(copy_runs):
        with psycopg.connect(conninfo) as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(table))
            conn.commit()
        checkpoint(setup.settings)
        with psycopg.connect(conninfo) as conn:
            started = time.perf_counter()
            with (
                source_path.open("rb") as source,
                conn.cursor() as cursor,
                cursor.copy(sql.SQL("COPY {} (line) FROM STDIN").format(table)) as copy,
            ):
                rows = 0
                for raw in source:
                    copy.write_row((raw.rstrip(b"\n").decode(),))
                    rows += 1
            conn.commit()
            timings.append(time.perf_counter() - started)
    median = statistics.median(timings)
    copy_result = {
        "rows": rows,
        "runs": copy_runs,
        "seconds_each": [round(t, 3) for t in timings],
        "seconds_median": round(median, 3),
        "rate_per_s": round(rows / median, 1),
        "target_table": "bench_baseline.copied_movements (line jsonb)",
    }
    return {"ingest": ingest_result, "copy": copy_result}


def new_workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="loyalty-bench-"))


# --- (e) audit: verify and replay against a raw scan ------------------------------------------


def audit(settings: Settings, services: Services, alone: bool = True) -> dict[str, Any]:
    """Over the log as it stands: a raw keyset scan of every stored event into Python (the
    baseline), ``loyalty audit verify``, and ``loyalty audit replay`` as the command runs it
    (accounts split over one process per core) and, if ``alone``, in one process, each on
    its own. Whether the log verified and replayed identically is part of the figures."""
    from loyalty.commands.replay import default_workers, last_notification_id, replay

    ledger = services.ledger
    query = sql.SQL(
        "SELECT notification_id, originator_id, originator_version, topic, state, link"
        " FROM {} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
    ).format(sql.Identifier(settings.pg_schema, "ledger_events"))
    checkpoint(settings)
    started = time.perf_counter()
    rows, after = 0, 0
    while True:
        batch = ledger.query(query, (after, 20_000))
        rows += len(batch)
        if len(batch) < 20_000:
            break
        after = batch[-1][0]
    scan_seconds = time.perf_counter() - started
    verified = services.auditor.verify()
    workers = default_workers(last_notification_id(ledger))
    replayed = replay(ledger, workers=workers)
    one_process = replay(ledger, workers=1) if alone else replayed
    figures = {
        "intact": verified.intact,
        "identical": replayed.identical and one_process.identical,
        "first_differences": [msgspec.to_builtins(d) for d in replayed.first_differences[:5]],
        "events": rows,
        "raw_scan": {
            "seconds": round(scan_seconds, 3),
            "rate_per_s": round(rows / scan_seconds, 1),
        },
        "verify": {"seconds": verified.seconds, "rate_per_s": verified.events_per_second},
        "replay": replay_figures(replayed, workers),
    }
    if alone:
        figures["replay_one_process"] = replay_figures(one_process, 1)
    return figures


def replay_figures(report: ReplayReport, workers: int) -> dict[str, Any]:
    return {
        "workers": workers,
        "seconds": report.seconds,
        "rate_per_s": report.events_per_second,
        "movements": report.movements,
        "movements_per_s": report.movements_per_second,
    }
