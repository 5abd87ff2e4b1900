"""What the benchmark ran on, and where the CPU went while it ran (Linux ``/proc``)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import psycopg

PACKAGES = ("loyalty-ledger", "eventsourcing", "psycopg", "litestar", "uvicorn", "msgspec")
PG_SETTINGS = (
    "autovacuum",
    "fsync",
    "synchronous_commit",
    "wal_sync_method",
    "commit_delay",
    "shared_buffers",
    "max_wal_size",
    "full_page_writes",
)
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def describe_machine(conninfo: str) -> dict[str, Any]:
    """Platform, CPU, memory, Python, PostgreSQL (and its durability settings), versions."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        version = conn.execute("SELECT version()").fetchone()
        settings = dict(
            conn.execute(
                "SELECT name, setting || coalesce(' ' || unit, '') FROM pg_settings"
                " WHERE name = ANY(%s) ORDER BY name",
                (list(PG_SETTINGS),),
            ).fetchall()
        )
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "memory_total_mib": meminfo_mib("MemTotal"),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "postgresql": version[0] if version else None,
        "postgresql_settings": settings,
        "packages": {name: package_version(name) for name in PACKAGES},
        "git_commit": git(["rev-parse", "HEAD"]),
        "git_dirty": bool(git(["status", "--porcelain", "--untracked-files=no"])),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def meminfo_mib(key: str) -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(f"{key}:"):
                return int(line.split()[1]) // 1024
    except OSError:
        pass
    return None


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git(args: list[str]) -> str | None:
    root = Path(__file__).resolve().parent.parent
    try:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of one process so far."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def with_descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (a server's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, ()))
    return found


def largest_peak_rss_kib(pids: list[int]) -> int:
    """The largest peak resident memory (``VmHWM``, KiB) among ``pids`` (0 for those gone)."""
    largest = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                largest = max(largest, int(line.split()[1]))
    return largest


def postgres_pids() -> list[int]:
    """Every process called ``postgres`` (server backends and background workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def machine_cpu() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from the first line of /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    total = sum(values[:8])
    return float(total - idle), float(total)


@dataclass
class CpuWindow:
    """CPU seconds spent per wall-clock second by groups of processes over one window.

    A value of 1.0 is one core kept busy; ``machine`` is the share of all cores in use.
    PostgreSQL backends that connect during the window are not counted (start the window
    once the pools are warm).
    """

    groups: dict[str, list[int]]
    started: float = 0.0
    before: dict[str, float] = field(default_factory=dict)
    machine_before: tuple[float, float] = (0.0, 0.0)

    def start(self) -> CpuWindow:
        self.groups = {
            **{
                name: [p for pid in pids for p in with_descendants(pid)]
                for name, pids in self.groups.items()
            },
            "postgres": postgres_pids(),
        }
        self.before = {name: self._sum(pids) for name, pids in self.groups.items()}
        self.machine_before = machine_cpu()
        self.started = time.perf_counter()
        return self

    def stop(self) -> dict[str, float]:
        elapsed = time.perf_counter() - self.started
        busy, total = machine_cpu()
        result = {
            f"{name}_cores": round((self._sum(pids) - self.before[name]) / elapsed, 3)
            for name, pids in self.groups.items()
        }
        jiffies = total - self.machine_before[1]
        result["machine_busy_share"] = round(
            (busy - self.machine_before[0]) / jiffies if jiffies else 0.0, 3
        )
        return result

    @staticmethod
    def _sum(pids: list[int]) -> float:
        return sum(s for s in (process_cpu_seconds(p) for p in pids) if s is not None)


def wal_snapshot(conninfo: str) -> dict[str, int]:
    """Cluster-wide WAL counters (PostgreSQL 14+), and this database's commits."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        row = conn.execute(
            "SELECT w.wal_records, w.wal_bytes::bigint, w.wal_write, w.wal_sync, d.xact_commit"
            " FROM pg_stat_wal w, pg_stat_database d WHERE d.datname = current_database()"
        ).fetchone()
    assert row is not None
    names = ("wal_records", "wal_bytes", "wal_writes", "wal_syncs", "commits")
    return dict(zip(names, (int(v) for v in row), strict=True))


def wal_delta(before: dict[str, int], after: dict[str, int], items: int) -> dict[str, Any]:
    """WAL written and synced over a phase, in total and per item recorded."""
    delta = {name: after[name] - before[name] for name in before}
    per = max(items, 1)
    return {
        **delta,
        "wal_bytes_per_item": round(delta["wal_bytes"] / per, 1),
        "items_per_wal_sync": round(items / delta["wal_syncs"], 2) if delta["wal_syncs"] else None,
    }
