"""Pausing Python's cyclic garbage collector around work that allocates a great many
objects in no cycle, where its repeated passes over the whole heap cost more than they free."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """Without the cyclic garbage collector for the block; as it was after it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
