"""Shape versions: a generation stored in another shape than the code's is refused by reads
and by writes, rebuilt by the runner if older, left alone if newer; a fresh database starts
in the code's shape."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from loyalty.bootstrap import Services
from loyalty.domain.errors import ReadModelRebuilding
from loyalty.projections.balances import Balances
from loyalty.projections.customer360 import Customer360
from loyalty.projections.registry import Registry, Superseded
from loyalty.projections.runner import (
    Runner,
    read_datastore,
    running,
    serving_model,
    start,
)
from loyalty.projections.status import status_of, wait_until
from loyalty.projections.tables import serving_tables
from loyalty.settings import Settings
from tests.builders import Clock, program, purchase
from tests.projections.reading import caught_up, head, record_shape


class ReshapedBalances(Balances):
    """Balances as a release that changed what they store would declare them."""

    name = Balances.name
    shape = Balances.shape + 1


@pytest.fixture
def posted(services: Services, clock: Clock) -> Services:
    services.applier.apply(program())
    clock.advance(hours=2)
    services.desk.post([purchase("r1"), purchase("r2", card="C2")])
    return services


def registry_row(settings: Settings, name: str) -> dict[str, Any] | None:
    with psycopg.connect(settings.conninfo(), row_factory=dict_row) as conn:
        return conn.execute(
            SQL(
                "SELECT generation, shape, building, building_shape FROM {}.projections"
                " WHERE name = %s"
            ).format(Identifier(settings.read_schema)),
            (name,),
        ).fetchone()


def movement_ids(settings: Settings, generation: int) -> list[str]:
    """The movements in the history of the given generation of the balances."""
    table = Identifier(settings.read_schema, f"balances_{generation}_history")
    with psycopg.connect(settings.conninfo()) as conn:
        found = conn.execute(SQL("SELECT movement_id FROM {} ORDER BY 1").format(table))
        return [row[0] for row in found.fetchall()]


def table_exists(settings: Settings, table: str) -> bool:
    with psycopg.connect(settings.conninfo()) as conn:
        row = conn.execute(
            "SELECT to_regclass(%s) IS NOT NULL", (f"{settings.read_schema}.{table}",)
        ).fetchone()
    return bool(row and row[0])


def until(condition: Callable[[], bool], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def names(runners: list[Runner]) -> set[str]:
    return {runner.model.name for runner in runners}


def test_reads_refuse_a_generation_of_an_older_shape(posted: Services, settings: Settings) -> None:
    with caught_up(settings, [Balances, Customer360]):
        pass
    record_shape(settings, "balances", Balances.shape - 1)
    record_shape(settings, "customer360", Customer360.shape - 1)
    datastore = read_datastore(settings)
    try:
        with datastore.transaction() as curs, pytest.raises(ReadModelRebuilding) as tables:
            serving_tables(curs, settings, Balances.name)
        with (
            pytest.raises(ReadModelRebuilding) as documents,
            serving_model(settings, datastore, Customer360),
        ):
            pass
        with pytest.raises(ReadModelRebuilding):
            wait_until(datastore, settings, Balances, head(settings), timeout=0)
        status = status_of(settings, datastore, Balances)
    finally:
        datastore.close()

    assert (tables.value.status, tables.value.code) == (503, "read_model_rebuilding")
    assert tables.value.context == {
        "projection": "balances",
        "shape": Balances.shape - 1,
        "code_shape": Balances.shape,
        "retry_after": 30,
    }
    assert documents.value.context["projection"] == "customer360"
    assert (status.shape, status.code_shape) == (Balances.shape - 1, Balances.shape)
    assert status.position == head(settings)


def test_running_rebuilds_a_generation_of_an_older_shape_and_swaps_it_in(
    posted: Services, settings: Settings
) -> None:
    with caught_up(settings, [Balances]):
        pass
    record_shape(settings, "balances", Balances.shape - 1)
    posted.desk.post([purchase("r3", card="C3")])
    datastore = read_datastore(settings)
    try:
        with running(settings, [Balances, Customer360], datastore) as check:
            while_rebuilding = names(check())
            until(lambda: names(check()) == {"balances", "customer360"})
            assert wait_until(datastore, settings, Customer360, head(settings), timeout=30)
            assert wait_until(datastore, settings, Balances, head(settings), timeout=30)
        with datastore.transaction() as curs:
            tables = serving_tables(curs, settings, Balances.name)
    finally:
        datastore.close()

    assert while_rebuilding == {"customer360"}
    assert registry_row(settings, "balances") == {
        "generation": 2,
        "shape": Balances.shape,
        "building": None,
        "building_shape": None,
    }
    assert tables is not None and tables.generation == 2
    assert movement_ids(settings, 2) == ["r1", "r2", "r3"]
    assert not table_exists(settings, "balances_1_history")


def test_a_fresh_database_starts_in_the_codes_shape(posted: Services, settings: Settings) -> None:
    datastore = read_datastore(settings)
    try:
        with running(settings, [ReshapedBalances], datastore) as check:
            generations = [runner.model.generation for runner in check()]
            assert wait_until(datastore, settings, ReshapedBalances, head(settings), timeout=30)
    finally:
        datastore.close()

    assert generations == [1]
    assert registry_row(settings, "balances") == {
        "generation": 1,
        "shape": Balances.shape + 1,
        "building": None,
        "building_shape": None,
    }
    assert movement_ids(settings, 1) == ["r1", "r2"]


def test_running_leaves_a_generation_of_a_newer_shape_alone(
    posted: Services, settings: Settings
) -> None:
    with caught_up(settings, [Balances]):
        pass
    record_shape(settings, "balances", Balances.shape + 1)
    posted.desk.post([purchase("r3", card="C3")])
    datastore = read_datastore(settings)
    try:
        with running(settings, [Balances, Customer360], datastore) as check:
            assert wait_until(datastore, settings, Customer360, head(settings), timeout=30)
            followed = names(check())
    finally:
        datastore.close()

    assert followed == {"customer360"}
    assert registry_row(settings, "balances") == {
        "generation": 1,
        "shape": Balances.shape + 1,
        "building": None,
        "building_shape": None,
    }
    assert movement_ids(settings, 1) == ["r1", "r2"]


def test_a_runner_stops_before_writing_to_a_generation_of_another_shape(
    posted: Services, settings: Settings
) -> None:
    datastore = read_datastore(settings)
    try:
        Registry(settings, datastore).serving(Balances)
        record_shape(settings, "balances", Balances.shape - 1)
        runner = start(settings, Balances, 1, datastore)
        try:
            until(runner.runner.is_interrupted.is_set)
            error = runner.error()
        finally:
            runner.close()
    finally:
        datastore.close()

    assert isinstance(error, Superseded)
    older, current = Balances.shape - 1, Balances.shape
    assert str(error) == f"balances generation 1 has shape {older}, not {current}"
    assert movement_ids(settings, 1) == []
