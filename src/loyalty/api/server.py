"""Serving the API: one uvicorn server per process, ``LOYALTY_HTTP_WORKERS`` processes.

Each process has its own group-commit writer (its own GIL). Every process binds its own
listening socket with ``SO_REUSEPORT``, so that the kernel spreads new connections over
them evenly; with one shared socket, the first process to wake up accepts a whole burst of
tills' keep-alive connections and the others stay idle.

A server process holds a large, long-lived heap (the aggregate cache). CPython's full
collections walk all of it and stalled every request for 40-120 ms, several times a
minute, as the cache grew (measured with ``gc.callbacks``): the p99 latency was those
stalls. So once started a process freezes what it has loaded (``gc.freeze``) and collects
the old generations rarely; young cyclic garbage is still collected as usual.
"""

from __future__ import annotations

import gc
import multiprocessing
import signal
import socket
from types import FrameType

import uvicorn
from litestar import Litestar

from loyalty.api.app import create_app
from loyalty.domain.errors import LoyaltyError
from loyalty.settings import Settings

GC_THRESHOLDS = (20_000, 20, 1_000)
"""Young collections every 20,000 net allocations; a full one after 400 million."""


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


def app_from_env() -> Litestar:
    """The application of one server process, configured from its environment."""
    app = create_app(Settings.from_env())
    app.on_startup.append(settle_heap)
    return app


def settle_heap(app: Litestar) -> None:
    """Loads the program, then keeps the GC off what stays loaded."""
    app.state.services.desk.program.current()
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def run_one(host: str, port: int) -> None:
    """One server process: the app built from the environment, on its own socket."""
    config = uvicorn.Config(
        "loyalty.api.server:app_from_env",
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
