"""Following the log: a generation's batches and their committer."""

from __future__ import annotations

import time

from loyalty.bootstrap import Services
from loyalty.projections.balances import Balances
from loyalty.projections.registry import Registry
from loyalty.projections.runner import read_datastore, start
from loyalty.settings import Settings
from tests.builders import Clock, line, program, purchase
from tests.projections.reading import head


def test_a_held_generation_commits_no_batch_until_released(
    services: Services, settings: Settings, clock: Clock
) -> None:
    """While a rebuild indexes a generation, its batches wait rather than time out on the
    tables' locks; they are committed once it is released."""
    services.applier.apply(program())
    clock.advance(hours=2)
    datastore = read_datastore(settings)
    serving = Registry(settings, datastore).serving(Balances).generation
    runner = start(settings, Balances, serving, datastore)
    try:
        with runner.model.held():
            assert runner.model.lock.locked()
            assert runner.model.committer is None
            (outcome,) = services.desk.post([purchase("a1", line("BREAD", "10.00"))])
            assert outcome.status == 201, outcome  # type: ignore[union-attr]
        committer = runner.model.committer
        assert committer is not None and committer.is_alive()
        deadline = time.monotonic() + 30
        while runner.position < head(settings) and time.monotonic() < deadline:
            runner.model.flush()
            time.sleep(0.02)

        assert runner.position == head(settings)
        assert runner.error() is None
    finally:
        runner.close()
        datastore.close()
