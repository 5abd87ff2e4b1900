"""A MongoDB server for the tests: ``LOYALTY_TEST_MONGO_URL`` when it names one, else a
SecantusDB server (a MongoDB-wire-compatible test dependency) started for the session in
memory on a free port and stopped by its pid at the end."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.errors import PyMongoError

START_TIMEOUT_S = 30.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers_ping(url: str) -> bool:
    client: MongoClient[dict[str, object]] = MongoClient(url, serverSelectionTimeoutMS=250)
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


def _stop(server: subprocess.Popen[bytes]) -> None:
    os.kill(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.kill(server.pid, signal.SIGKILL)
        server.wait()


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    given = os.environ.get("LOYALTY_TEST_MONGO_URL")
    if given:
        yield given
        return
    port = _free_port()
    script = Path(sys.executable).parent / "secantusd-py"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [str(script), "--host", "127.0.0.1", "--port", str(port), "--storage-path", ":memory:"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"mongodb://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while not _answers_ping(url):
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    pytest.fail(f"SecantusDB did not start on {url}:\n{log.read().decode()}")
            yield url
        finally:
            if server.poll() is None:
                _stop(server)
