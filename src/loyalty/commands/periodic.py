"""Jobs the server runs on a timer (signing the log's head, applying retention periods):
each in a daemon thread of its own, every ``interval`` seconds; a failure is logged and
tried again at the next tick."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Periodic:
    def __init__(self, name: str, interval: float, task: Callable[[], object]) -> None:
        self.name = name
        self.interval = interval
        self.task = task
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Starts the timer (an interval of 0 or less never runs the task)."""
        if self.interval > 0 and self._thread is None:
            self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
            self._thread.start()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.task()
            except Exception:
                log.exception(
                    "periodic job %s failed; it runs again in %s s", self.name, self.interval
                )

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
