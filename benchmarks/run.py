"""Runs the benchmark suite: ``.venv/bin/python -m benchmarks.run [--quick] [...]``.

Side by side, on one machine, in one throw-away database:

(a) raw psycopg: single-row INSERT + COMMIT of a movement's JSON, one connection;
(b) naive: load the aggregates, call the method, ``Application.save``, one at a time;
(c) the POS path over HTTP (``loyalty serve``) with 32 concurrent keep-alive clients;
(d) ``loyalty ingest`` of an NDJSON file vs a raw ``COPY`` of the same rows;
(e) ``loyalty audit verify`` and ``replay`` of the resulting log vs a raw scan of it.

Prints a table with the targets and writes ``benchmarks/results/<UTC time>.json`` and
``benchmarks/results/latest.json``. See the Benchmarks section of the README.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from benchmarks import scenarios
from benchmarks.system import describe_machine
from benchmarks.workload import Layout
from loyalty.settings import Settings

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("a", "b", "c", "d", "e")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run (~30 s)")
    parser.add_argument(
        "--seconds", type=float, help="measured seconds of (a), (b) and (c) (default 20)"
    )
    parser.add_argument("--warmup", type=float, help="warm-up seconds of (c) (default 5)")
    parser.add_argument(
        "--movements", type=int, help="NDJSON lines for (d), ingest and COPY (default 20000)"
    )
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients of (c)")
    parser.add_argument("--batch-size", type=int, default=500, help="batch size of (d)")
    parser.add_argument(
        "--only",
        default=",".join(SCENARIOS),
        help="comma-separated scenarios to run, of a,b,c,d,e (default all)",
    )
    parser.add_argument(
        "--no-analyze",
        action="store_true",
        help="skip the ANALYZE after the program is applied (planner without statistics)",
    )
    parser.add_argument("--keep-db", action="store_true", help="do not drop the database")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where the JSON goes")
    return parser


def options_of(args: argparse.Namespace) -> dict[str, Any]:
    quick = args.quick
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SCENARIOS)
    if unknown:
        raise SystemExit(f"--only: unknown scenario(s) {sorted(unknown)}; use a,b,c,d,e")
    return {
        "quick": quick,
        "seconds": args.seconds or (4.0 if quick else 20.0),
        "warmup": args.warmup if args.warmup is not None else (2.0 if quick else 5.0),
        "movements": args.movements or (2_000 if quick else 20_000),
        "clients": args.clients,
        "batch_size": args.batch_size,
        "only": only,
        "analyze": not args.no_analyze,
    }


def layout_of(options: dict[str, Any]) -> Layout:
    if options["quick"]:
        return Layout(naive_cards=500, pos_cards=2_000, ingest_cards=1_000)
    return Layout()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = options_of(args)
    layout = layout_of(options)
    base = Settings.from_env()
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    figures: dict[str, Any] = {}
    workdir = scenarios.new_workdir()
    try:
        with scenarios.bench_database(base, keep=args.keep_db) as settings:
            machine = describe_machine(settings.admin_conninfo(settings.pg_db))
            setup = scenarios.prepare(settings, layout, analyze=options["analyze"])
            try:
                figures["setup"] = {
                    "database": settings.pg_db,
                    "apply_seconds": round(setup.apply_seconds, 2),
                    "apply_events": setup.apply_events,
                    "analyzed": setup.analyzed,
                    "layout": msgspec.to_builtins(layout_dict(layout)),
                }
                run_scenarios(setup, options, workdir, figures)
            finally:
                setup.services.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    targets = evaluate(figures)
    report = {
        "benchmark": "loyalty-ledger write paths",
        "command": " ".join([".venv/bin/python -m benchmarks.run", *(argv or sys.argv[1:])]),
        "started_at": started_at.isoformat(timespec="seconds"),
        "duration_s": round(time.perf_counter() - started, 1),
        "options": options,
        "machine": machine,
        "results": figures,
        "targets": targets,
    }
    print_table(report)
    write_results(report, args.output, started_at)
    return 0


def layout_dict(layout: Layout) -> dict[str, int]:
    return {
        "stores": layout.stores,
        "terminals": layout.stores * layout.terminals_per_store,
        "naive_cards": layout.naive_cards,
        "pos_cards": layout.pos_cards,
        "ingest_cards": layout.ingest_cards,
        "promotions": 3,
    }


def run_scenarios(
    setup: scenarios.Setup, options: dict[str, Any], workdir: Path, figures: dict[str, Any]
) -> None:
    only, seconds = options["only"], options["seconds"]
    if "a" in only:
        scenarios.log(f"(a) raw INSERT + COMMIT for {seconds:g} s")
        figures["a_raw_insert"] = scenarios.raw_insert(setup, seconds)
    if "b" in only:
        scenarios.log(f"(b) naive load/record/save for {seconds:g} s")
        figures["b_naive"] = scenarios.naive(setup, seconds)
    if "c" in only:
        scenarios.log(
            f"(c) POS over HTTP, {options['clients']} clients:"
            f" {options['warmup']:g} s warm-up + {seconds:g} s"
        )
        figures["c_pos_http"] = scenarios.pos_http(
            setup, seconds, options["warmup"], options["clients"], workdir
        )
    if "d" in only:
        scenarios.log(f"(d) ingest vs COPY of {options['movements']:,} movements")
        both = scenarios.ingest_vs_copy(setup, options["movements"], options["batch_size"], workdir)
        figures["d_ingest"] = both["ingest"]
        figures["d_copy"] = both["copy"]
    if "e" in only:
        scenarios.log("(e) audit verify and replay vs a raw scan of the log")
        figures["e_audit"] = scenarios.audit(setup.settings, setup.services)


def rate(figures: dict[str, Any], key: str) -> float | None:
    found = figures.get(key)
    if not found:
        return None
    value = found.get("rate_per_s", found.get("throughput_per_s"))
    return float(value) if value is not None else None


def evaluate(figures: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its measured ratio and PASS/MISS."""
    a, b, c = rate(figures, "a_raw_insert"), rate(figures, "b_naive"), rate(figures, "c_pos_http")
    ingest, copy = rate(figures, "d_ingest"), rate(figures, "d_copy")
    pos = figures.get("c_pos_http") or {}
    p99 = (pos.get("latency_ms") or {}).get("p99")
    targets = []

    def target(name: str, measured: str, ratio: float | None, goal: float, higher: bool) -> None:
        if ratio is None:
            targets.append({"target": name, "measured": "not run", "ratio": None, "pass": None})
            return
        passed = ratio >= goal if higher else ratio < goal
        targets.append(
            {"target": name, "measured": measured, "ratio": round(ratio, 3), "pass": passed}
        )

    target(
        "(c) throughput >= (a) raw INSERT+COMMIT rate",
        f"{c:,.0f}/s vs {a:,.0f}/s" if a and c else "",
        c / a if a and c is not None else None,
        1.0,
        True,
    )
    target(
        "(c) throughput >= 4 x (b) naive",
        f"{c:,.0f}/s vs 4 x {b:,.0f}/s" if b and c else "",
        c / b if b and c is not None else None,
        4.0,
        True,
    )
    target("(c) p99 latency < 50 ms", f"p99 {p99} ms" if p99 is not None else "", p99, 50.0, False)
    target(
        "(d) ingest >= 1/3 of raw COPY rate",
        f"{ingest:,.0f}/s vs {copy:,.0f}/s / 3" if ingest and copy else "",
        ingest / copy if ingest is not None and copy else None,
        1 / 3,
        True,
    )
    audit = figures.get("e_audit") or {}
    scan = (audit.get("raw_scan") or {}).get("rate_per_s")
    replayed = (audit.get("replay") or {}).get("rate_per_s")
    target(
        "(e) replay >= 1/3 of the raw scan rate",
        f"{replayed:,.0f} vs {scan:,.0f} events/s" if scan and replayed else "",
        replayed / scan if scan and replayed else None,
        1 / 3,
        True,
    )
    if audit:
        targets.append(
            {
                "target": "(e) the log verifies and replays identically (check)",
                "measured": f"intact {audit['intact']}, identical {audit['identical']}",
                "ratio": None,
                "pass": audit["intact"] and audit["identical"],
            }
        )
    if pos:
        errors = pos.get("non_201", 0) + sum(pos.get("connection_errors", {}).values())
        targets.append(
            {
                "target": "(c) every response 201 (check)",
                "measured": f"{errors} non-201/connection errors",
                "ratio": None,
                "pass": errors == 0,
            }
        )
    return targets


def print_table(report: dict[str, Any]) -> None:
    figures, machine = report["results"], report["machine"]
    out = sys.stdout
    print(file=out)
    print(
        f"loyalty ledger benchmarks  {report['started_at']}  ({report['duration_s']:g} s)"
        f"{'  [--quick]' if report['options']['quick'] else ''}",
        file=out,
    )
    print(
        f"{machine['cpu_model']}, {machine['cpu_count']} cores, "
        f"{machine['memory_total_mib']:,} MiB, Python {machine['python']}, "
        f"{(machine['postgresql'] or '').split(' on ')[0]}",
        file=out,
    )
    print(file=out)
    header = f"{'scenario':<50} {'rate/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}  notes"
    print(header, file=out)
    print("-" * len(header), file=out)

    def row(label: str, found: dict[str, Any] | None, notes: str = "") -> None:
        if not found:
            print(f"{label:<50} {'(not run)':>10}", file=out)
            return
        value = found.get("rate_per_s", found.get("throughput_per_s"))
        latency = found.get("latency_ms") or {}

        def ms(name: str) -> str:
            v = latency.get(name)
            return f"{v:>8.2f}" if isinstance(v, int | float) else f"{'':>8}"

        print(f"{label:<50} {value:>10,.0f} {ms('p50')} {ms('p99')} {ms('max')}  {notes}", file=out)

    a, b = figures.get("a_raw_insert", {}), figures.get("b_naive", {})
    c, d, copy = (
        figures.get("c_pos_http", {}),
        figures.get("d_ingest", {}),
        figures.get("d_copy", {}),
    )
    row(
        "(a) raw psycopg INSERT + COMMIT, 1 connection",
        figures.get("a_raw_insert"),
        f"{a.get('rows', 0):,} rows of ~{a.get('payload_bytes_mean', 0)} B" if a else "",
    )
    row(
        "(b) naive get/record/save, one at a time",
        figures.get("b_naive"),
        f"{b.get('movements', 0):,} movements" if b else "",
    )
    row(
        f"(c) POS over HTTP, {c.get('clients', '?')} clients",
        figures.get("c_pos_http"),
        (
            f"{c.get('completed', 0):,} in window, {c.get('non_201', 0)} non-201, "
            f"{(c.get('wal') or {}).get('items_per_wal_sync', '?')} movements/WAL sync"
        )
        if c
        else "",
    )
    row(
        f"(d) loyalty ingest, batch {d.get('batch_size', '?')}",
        figures.get("d_ingest"),
        f"{d.get('accepted', 0):,} accepted, {d.get('rejected', 0):,} rejected" if d else "",
    )
    row(
        "    raw COPY of the same rows (jsonb)",
        figures.get("d_copy"),
        f"median of {copy.get('runs', 0)} runs" if copy else "",
    )
    audit = figures.get("e_audit") or {}
    workers = (audit.get("replay") or {}).get("workers", "?")
    for label, part in (
        ("(e) raw scan of the stored events", "raw_scan"),
        ("    loyalty audit verify", "verify"),
        (f"    loyalty audit replay (processes: {workers})", "replay"),
        ("    loyalty audit replay (processes: 1)", "replay_one_process"),
    ):
        row(label, audit.get(part), f"{audit.get('events', 0):,} events" if audit else "")
    print(file=out)
    print(f"{'target':<50} {'measured':<32} {'ratio':>8}  result", file=out)
    print("-" * len(header), file=out)
    for t in report["targets"]:
        verdict = {True: "PASS", False: "MISS", None: "-"}[t["pass"]]
        ratio = "" if t["ratio"] is None else f"{t['ratio']:.2f}"
        print(f"{t['target']:<50} {t['measured']:<32} {ratio:>8}  {verdict}", file=out)
    if c.get("cpu"):
        cpu = c["cpu"]
        print(file=out)
        print(
            "(c) CPU cores busy: server {server_cores}, postgres {postgres_cores}, "
            "load generator {loadgen_cores}; machine {machine_busy_share:.0%} busy".format(**cpu),
            file=out,
        )
    print(file=out)


def write_results(report: dict[str, Any], output: Path, started_at: datetime) -> None:
    output.mkdir(parents=True, exist_ok=True)
    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    text = json.dumps(report, indent=2, sort_keys=False) + "\n"
    (output / f"{stamp}.json").write_text(text)
    (output / "latest.json").write_text(text)
    print(f"results: {output / f'{stamp}.json'} (and latest.json)", file=sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
