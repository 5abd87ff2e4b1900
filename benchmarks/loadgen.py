"""A cheap closed-loop HTTP load generator for the Terminal API.

Each of ``--clients`` clients holds one keep-alive HTTP/1.1 connection and keeps exactly
one request in flight: a distinct purchase (its own ``movement_id``) on a random card at a
random terminal, with that terminal's key. Requests are assembled from pre-encoded bytes
and responses are read with raw asyncio streams (status line, ``Content-Length``, body),
so the client spends little CPU per request. After ``--warmup`` seconds it measures for
``--seconds``: throughput of the responses completed in the window and their latencies.

Run by ``benchmarks.run`` in a process of its own (own GIL); it can also be pointed at a
server already loaded with the benchmark's program::

    .venv/bin/python -m benchmarks.loadgen --port 8000 --clients 32 --seconds 10

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from benchmarks.workload import Layout, Purchases, timestamp

PATH = b"/api/v1/terminal/movements"


@dataclass
class Run:
    warmup_s: float
    measure_s: float
    now: bytes = b""
    started_ns: int = 0
    window_start_ns: int = 0
    window_end_ns: int = 0
    stop: bool = False
    latencies_ns: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    statuses_total: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    samples: list[str] = field(default_factory=list)


def percentile(ordered: list[int], share: float) -> float:
    """Nearest-rank percentile of an ascending list, in milliseconds."""
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(share * len(ordered) + 0.5)))
    return ordered[rank - 1] / 1e6


def signal(event: str) -> None:
    """Tells the parent process (``benchmarks.run``) where the measured window lies."""
    print(event, file=sys.stderr, flush=True)


async def tick(run: Run) -> None:
    """Keeps ``run.now`` (occurred_at) current, every 50 ms."""
    while not run.stop:
        run.now = timestamp()
        await asyncio.sleep(0.05)


async def client(number: int, host: str, port: int, purchases: Purchases, run: Run) -> None:
    heads = {
        key: (
            b"POST "
            + PATH
            + b" HTTP/1.1\r\nHost: "
            + f"{host}:{port}".encode()
            + b"\r\nAuthorization: Bearer "
            + key.encode()
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
        )
        for _, key in purchases.terminals
    }
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while not run.stop:
            key, body = purchases.next(run.now)
            request = b"".join((heads[key], str(len(body)).encode(), b"\r\n\r\n", body))
            sent = time.perf_counter_ns()
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                lowered = head.lower()
                at = lowered.find(b"\r\ncontent-length:")
                if at < 0:
                    raise ValueError("response without content-length")
                end = lowered.find(b"\r\n", at + 2)
                answer = await reader.readexactly(int(lowered[at + 17 : end]))
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                run.errors[type(error).__name__] += 1
                writer.close()
                if run.stop:
                    return
                await asyncio.sleep(0.05)
                reader, writer = await asyncio.open_connection(host, port)
                continue
            done = time.perf_counter_ns()
            run.statuses_total[status] += 1
            if sent >= run.window_start_ns and done <= run.window_end_ns:
                run.latencies_ns.append(done - sent)
                run.statuses[status] += 1
            if status != 201 and len(run.samples) < 5:
                run.samples.append(f"{status} {answer[:300].decode(errors='replace')}")
            if b"\r\nconnection: close" in lowered:
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
    finally:
        writer.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    layout = Layout(
        stores=args.stores,
        terminals_per_store=args.terminals_per_store,
        pos_cards=args.pos_cards,
    )
    cards, terminals = layout.cards("pos"), layout.terminals()
    run = Run(warmup_s=args.warmup, measure_s=args.seconds, now=timestamp())
    ticker = asyncio.create_task(tick(run))
    run.started_ns = time.perf_counter_ns()
    run.window_start_ns = run.started_ns + int(args.warmup * 1e9)
    run.window_end_ns = run.window_start_ns + int(args.seconds * 1e9)
    clients = [
        asyncio.create_task(
            client(
                n,
                args.host,
                args.port,
                Purchases(f"{args.prefix}-c{n:03d}", cards, terminals, args.seed + n),
                run,
            )
        )
        for n in range(args.clients)
    ]
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.sleep((run.window_start_ns - time.perf_counter_ns()) / 1e9)
    signal("window-start")
    await asyncio.sleep((run.window_end_ns - time.perf_counter_ns()) / 1e9)
    signal("window-end")
    run.stop = True
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.wait_for(asyncio.gather(*clients, return_exceptions=True), timeout=60)
    ticker.cancel()
    ordered = sorted(run.latencies_ns)
    completed = len(ordered)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    return {
        "clients": args.clients,
        "warmup_s": args.warmup,
        "measure_s": args.seconds,
        "completed": completed,
        "throughput_per_s": round(completed / args.seconds, 1),
        "latency_ms": {
            "p50": round(percentile(ordered, 0.50), 2),
            "p90": round(percentile(ordered, 0.90), 2),
            "p99": round(percentile(ordered, 0.99), 2),
            "p99_9": round(percentile(ordered, 0.999), 2),
            "max": round(ordered[-1] / 1e6, 2) if ordered else None,
            "mean": round(sum(ordered) / completed / 1e6, 2) if ordered else None,
        },
        "statuses": {str(k): v for k, v in sorted(run.statuses.items())},
        "non_201": sum(v for k, v in run.statuses.items() if k != 201),
        "statuses_total": {str(k): v for k, v in sorted(run.statuses_total.items())},
        "created_total": run.statuses_total.get(201, 0),
        "connection_errors": dict(run.errors),
        "error_samples": run.samples,
        "loadgen_cpu_s_per_s": round(cpu / (args.warmup + args.seconds), 3),
        "pid": os.getpid(),
    }


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.loadgen", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--prefix", default="pos", help="movement_id prefix (make it unique)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--stores", type=int, default=Layout.stores)
    parser.add_argument("--terminals-per-store", type=int, default=Layout.terminals_per_store)
    parser.add_argument("--pos-cards", type=int, default=Layout.pos_cards)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        import uvloop  # installed with uvicorn[standard]

        result = uvloop.run(main_async(args))
    except ImportError:
        result = asyncio.run(main_async(args))
    json.dump(result, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
