"""Shape versions: what a generation of a read model stores, as a number
(:attr:`~loyalty.projections.runner.ReadModel.shape`) that a release bumps whenever it
changes a read model's tables, columns or documents, or what they hold.

The registry records the shape of the generation serving reads and of the one being
built. A generation of another shape than the code's is never read, nor extended, as if it
had the code's shape:

- reads refuse it with :class:`~loyalty.domain.errors.ReadModelRebuilding` (a retryable
  503), rather than answer from tables the code would misread or create empty;
- each batch checks the shape of the generation it writes to, with the registry row it
  already holds (a runner finds itself superseded otherwise);
- ``loyalty projections run`` rebuilds a serving generation of an *older* shape into the
  next generation, in a thread of its own (:class:`Reshaping`) while it follows the other
  read models as usual, and swaps it in once it has caught up, as ``loyalty projections
  rebuild`` does. It leaves one of a *newer* shape alone: a newer release built it, and a
  rollback rebuilds it explicitly (``loyalty projections rebuild NAME``) rather than two
  releases rebuilding it in turn while both run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from loyalty.domain.errors import ReadModelRebuilding

RETRY_AFTER_S = 30
"""What a refused read suggests waiting: a rebuild takes minutes on a large log."""


class Reshaped(Exception):
    """A generation of an older shape was rebuilt in the code's and swapped in."""


def refuse_other_shape(name: str, shape: int, code_shape: int) -> None:
    """Raises :class:`ReadModelRebuilding` unless the serving generation of the read model
    ``name``, of shape ``shape``, has the code's shape."""
    if shape != code_shape:
        raise ReadModelRebuilding(
            f"the {name} figures are stored in shape {shape} and this release reads shape"
            f" {code_shape}: they are being rebuilt",
            projection=name,
            shape=shape,
            code_shape=code_shape,
            retry_after=RETRY_AFTER_S,
        )


def code_shape(name: str) -> int:
    """The shape this release gives the read model called ``name`` (for readers that know
    it by name only)."""
    from loyalty.projections.models import READ_MODELS  # the models import this module's users

    return READ_MODELS[name].shape


class Reshaping:
    """A read model being rebuilt in the code's shape by ``build`` (given an event that asks
    it to stop; an unfinished rebuild is redone from the start next time), in a thread of
    its own."""

    def __init__(self, name: str, build: Callable[[threading.Event], object]) -> None:
        self.name = name
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self.thread = threading.Thread(target=self.run, args=(build,), name=f"reshape-{name}")
        self.thread.start()

    def run(self, build: Callable[[threading.Event], object]) -> None:
        try:
            build(self.stop)
        except BaseException as error:
            self.failure = error

    def error(self) -> BaseException | None:
        """What ended the rebuild (:class:`Reshaped` once swapped in); ``None`` until then."""
        if self.thread.is_alive():
            return None
        return self.failure or Reshaped(f"{self.name} was rebuilt in this release's shape")

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
