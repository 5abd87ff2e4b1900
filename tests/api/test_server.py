"""``loyalty serve``: several server processes on one port, and a clear refusal of a busy port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from loyalty.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve_command(port: int) -> list[str]:
    return [sys.executable, "-m", "loyalty.cli", "serve", "--port", str(port)]


def environment(settings: Settings, workers: int, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "LOYALTY_PG_DB": settings.pg_db,
        "LOYALTY_PG_SCHEMA": settings.pg_schema,
        "LOYALTY_HTTP_WORKERS": str(workers),
        **extra,
    }


def healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@contextmanager
def running(
    settings: Settings, port: int, workers: int, **extra: str
) -> Iterator[subprocess.Popen[bytes]]:
    """``loyalty serve`` on ``port`` until the block ends; ``extra``: more environment."""
    server = subprocess.Popen(serve_command(port), env=environment(settings, workers, **extra))
    try:
        deadline = time.monotonic() + 60
        while not healthy(port):
            assert server.poll() is None, "loyalty serve exited"
            assert time.monotonic() < deadline, "loyalty serve never answered /health"
            time.sleep(0.2)
        yield server
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)


def test_two_server_processes_answer_and_stop_on_sigterm(settings: Settings) -> None:
    port = free_port()
    with running(settings, port, workers=2) as server:
        assert healthy(port)
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
    assert not healthy(port)


def test_a_second_server_on_a_busy_port_is_refused(settings: Settings) -> None:
    port = free_port()
    with running(settings, port, workers=1):
        second = subprocess.run(
            serve_command(port), env=environment(settings, 2), capture_output=True, timeout=60
        )

    assert second.returncode == 2
    assert b"error [port_in_use]" in second.stderr
