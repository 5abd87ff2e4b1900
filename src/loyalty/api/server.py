"""Serving the API: one uvicorn server per process, ``LOYALTY_HTTP_WORKERS`` processes.

Each process has its own group-commit writer (its own GIL). Every process binds its own
listening socket with ``SO_REUSEPORT``, so that the kernel spreads new connections over
them evenly; with one shared socket, the first process to wake up accepts a whole burst of
tills' keep-alive connections and the others stay idle.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
from types import FrameType

import uvicorn

from loyalty.domain.errors import LoyaltyError


class PortInUse(LoyaltyError):
    code = "port_in_use"


def serve(host: str, port: int, workers: int) -> None:
    """Serves until interrupted; refuses a port another server already listens on."""
    check_port_free(host, port)
    if workers <= 1:
        run_one(host, port)
        return
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=run_one, args=(host, port), name=f"api-{n}") for n in range(workers)
    ]
    for process in processes:
        process.start()

    def stop(signum: int, _: FrameType | None) -> None:
        for process in processes:
            if process.is_alive() and process.pid is not None:
                process.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for process in processes:
        process.join()


def run_one(host: str, port: int) -> None:
    """One server process: the app built from the environment, on its own socket."""
    config = uvicorn.Config(
        "loyalty.api.app:app_from_env",
        factory=True,
        log_level="warning",
        access_log=False,
    )
    uvicorn.Server(config).run(sockets=[reuse_port_socket(host, port)])


def reuse_port_socket(host: str, port: int) -> socket.socket:
    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def check_port_free(host: str, port: int) -> None:
    """Binds without ``SO_REUSEPORT`` once: fails if any server (ours included) is there."""
    with socket.socket(family_of(host), socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise PortInUse(f"cannot listen on {host}:{port}: {error.strerror}") from None


def family_of(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET
