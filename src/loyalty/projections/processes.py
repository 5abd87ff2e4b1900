"""Followers that ``loyalty projections run`` keeps in processes of their own.

The read models share one process; a follower whose class says ``own_process`` (the
publication to NATS) runs in a child process, so that its work does not take the read
models' interpreter lock under load and hold back their lag. A child follows until it is
sent SIGTERM (by the parent, or with the parent's whole process group) or the parent is
gone; one that dies is started again by :func:`apart`'s check.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing.process import BaseProcess

from loyalty.projections.runner import ReadModel, read_datastore, running
from loyalty.settings import Settings

log = logging.getLogger(__name__)

_spawn = multiprocessing.get_context("spawn")

RESTART_AFTER_S = 5.0
"""How long after its start a child that died waits to be started again (one that cannot
start at all is then tried every few seconds, not at every check)."""


def follow_alone(settings: Settings, model_class: type[ReadModel]) -> None:
    """A child's body: follows the log for ``model_class`` until SIGTERM or the parent is
    gone, then applies what it holds. Interrupts are the parent's to handle.

    The stop is a signal, not an event shared with the parent: setting a
    ``multiprocessing.Event`` waits for every process waiting on it to wake, forever for
    one killed while it waited (as a group's SIGTERM kills the children)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    parent = os.getppid()
    datastore = read_datastore(settings, pool_size=2)
    try:
        with running(settings, [model_class], datastore) as check:
            while not stopping.wait(0.5) and os.getppid() == parent:
                check()
    finally:
        datastore.close()


@contextmanager
def apart(
    settings: Settings, model_classes: Sequence[type[ReadModel]]
) -> Iterator[Callable[[], None]]:
    """Runs each of ``model_classes`` in a child process until the block ends; yields a
    check (call it regularly) that starts again a child that died."""
    started_at: dict[type[ReadModel], float] = {}

    def started(model_class: type[ReadModel]) -> BaseProcess:
        started_at[model_class] = time.monotonic()
        process = _spawn.Process(
            target=follow_alone,
            args=(settings, model_class),
            name=f"follow-{model_class.name}",
            daemon=False,
        )
        process.start()
        print(f"{model_class.name}: following in process {process.pid}", file=sys.stderr)
        return process

    children = {model_class: started(model_class) for model_class in model_classes}

    def check() -> None:
        for model_class, process in children.items():
            due = started_at[model_class] + RESTART_AFTER_S <= time.monotonic()
            if not process.is_alive() and due:
                log.error(
                    "%s's process ended (exit code %s): starting it again",
                    model_class.name,
                    process.exitcode,
                )
                children[model_class] = started(model_class)

    try:
        yield check
    finally:
        for process in children.values():
            process.terminate()
        for process in children.values():
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
