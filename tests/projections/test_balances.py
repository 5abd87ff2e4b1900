"""Balances and histories, followed from the log by the real runner, against the ledger."""

from __future__ import annotations

import threading
import time
from datetime import date
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from loyalty.bootstrap import Services
from loyalty.commands.admin import block_card, replace_card, unblock_card
from loyalty.commands.apply import CustomerSpec
from loyalty.commands.customers import register
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.customer import Profile
from loyalty.projections.balances import Balances
from loyalty.projections.runner import read_datastore, rebuild, rebuilding_alone, running
from loyalty.projections.status import wait_until
from loyalty.settings import Settings
from tests.builders import Clock, line, program, purchase, redemption, return_of
from tests.projections.reading import caught_up, head, rows


@pytest.fixture
def chain(services: Services, clock: Clock) -> Services:
    services.applier.apply(program())
    clock.advance(hours=2)
    return services


def balances(settings: Settings, table: str, order: str) -> list[dict[str, Any]]:
    return rows(settings, "balances", table, order)


def test_balances_follow_the_ledger_account_by_account(chain: Services, settings: Settings) -> None:
    chain.desk.post([purchase("r1", line("BREAD", "12.50")), purchase("r2", card="C2")])
    chain.desk.post([return_of("r3", "r1", line("BREAD", "12.50")), purchase("r4")])
    (redeemed,) = chain.desk.post([redemption("r5", card="C2")])
    assert redeemed.status == 201, redeemed  # type: ignore[union-attr]
    block_card(chain.ledger, "C3", "lost")

    with caught_up(settings, [Balances]):
        accounts = balances(settings, "accounts", "account_id")
        history = balances(settings, "history", "occurred_at, movement_id")
        cards = balances(settings, "cards", "code")

    ledger = {
        a.id: a
        for a in chain.ledger.load_all(
            ids.account_id(ids.campaign_id("club"), ids.customer_id_for_card(card))
            for card in ("C1", "C2")
        ).values()
        if isinstance(a, Account)
    }
    assert {(r["account_id"], r["points"], r["credits"]) for r in accounts} == {
        (a.id, a.points, a.credits) for a in ledger.values()
    }
    assert all(r["earned"] - r["spent"] == r["points"] for r in accounts)
    assert [h["movement_id"] for h in history] == ["r1", "r2", "r3", "r4", "r5"]
    assert [h["points_after"] for h in history if h["card"] == "C1"] == [12, 0, 10]
    assert [h["points_after"] for h in history if h["card"] == "C2"] == [10, 0]
    assert {c["code"]: c["status"] for c in cards} == {
        "C1": "active",
        "C2": "active",
        "C3": "blocked",
    }
    assert Decimal(history[0]["amount"]) == Decimal("12.50")


def snapshot(settings: Settings) -> tuple[list[dict[str, Any]], ...]:
    return tuple(
        balances(settings, table, order)
        for table, order in (
            ("accounts", "account_id"),
            ("cards", "code"),
            ("history", "account_id, version"),
            ("customers", "customer_id"),
        )
    )


@pytest.mark.parametrize("parallel_from", [100_000, 1], ids=["folded here", "in processes"])
def test_a_rebuild_swaps_in_exactly_what_incremental_processing_built(
    chain: Services, settings: Settings, parallel_from: int
) -> None:
    chain.desk.post([purchase("r1", line("BREAD", "12.50")), purchase("r2", card="C2")])
    block_card(chain.ledger, "C2", "lost")
    with caught_up(settings, [Balances]):
        chain.desk.post([return_of("r3", "r1", line("BREAD", "12.50")), purchase("r4")])
        unblock_card(chain.ledger, "C2", "found")
        replace_card(chain.ledger, "C2", "C9")
        block_card(chain.ledger, "C9", "worn")
        register(chain.ledger, "C1", Profile(first_name="Ada"), date(2026, 5, 1))
        waiting = read_datastore(settings)
        assert wait_until(waiting, settings, Balances, head(settings), 20)
        waiting.close()
    incremental = snapshot(settings)
    cards = {c["code"]: (c["status"], c["successor"]) for c in incremental[1]}
    assert (cards["C2"], cards["C9"]) == (("replaced", "C9"), ("blocked", None))
    assert [c["signed_up_on"] for c in incremental[3]] == [date(2026, 5, 1)]

    datastore = read_datastore(settings)
    generation = rebuild(
        msgspec.structs.replace(settings, fill_parallel_from=parallel_from), Balances, datastore
    )
    datastore.close()

    assert generation == 2
    assert snapshot(settings) == incremental


class Crashing(Balances):
    """Balances that fail once, half-way through a batch, as a process killed mid-write."""

    name = "balances"
    crashed = False

    def apply(self, curs: Any, facts: Any) -> None:
        super().apply(curs, facts)
        if not Crashing.crashed:
            Crashing.crashed = True
            raise RuntimeError("killed")


def test_a_batch_that_fails_is_applied_once_when_the_runner_starts_again(
    chain: Services, settings: Settings
) -> None:
    chain.desk.post([purchase("r1"), purchase("r2", card="C2"), purchase("r3")])
    datastore = read_datastore(settings)
    with (
        pytest.raises(RuntimeError, match="killed"),
        running(settings, [Crashing], datastore) as check,
    ):
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            check()
            time.sleep(0.02)
    datastore.close()
    with caught_up(settings, [Balances]):
        accounts = balances(settings, "accounts", "account_id")

    assert Crashing.crashed
    assert sorted((r["movements"], r["points"]) for r in accounts) == [(1, 10), (2, 20)]


def test_customers_are_known_by_signup_day_and_home_store_and_nothing_personal(
    services: Services, clock: Clock, settings: Settings
) -> None:
    giulia = CustomerSpec(
        cards=("C7",),
        profile=Profile(first_name="Giulia", last_name="Bianchi", email="g@example.org"),
        signed_up_on=clock.now.date(),
        home_store="s2",
    )
    services.applier.apply(program(customers=(giulia,)))

    with caught_up(settings, [Balances]):
        customers = balances(settings, "customers", "customer_id")

    assert [(c["signed_up_on"], c["home_store"], c["erased"]) for c in customers] == [
        (clock.now.date(), "s2", False)
    ]
    assert set(customers[0]) == {"customer_id", "signed_up_on", "home_store", "erased"}


def test_a_rebuild_waits_while_another_rebuild_of_the_read_model_holds_its_lock(
    chain: Services, settings: Settings
) -> None:
    chain.desk.post([purchase("r1")])
    datastore = read_datastore(settings)
    stop = threading.Event()
    with rebuilding_alone(settings, "balances", stop) as alone:
        assert alone
        waiting = threading.Thread(
            target=lambda: results.append(rebuild(settings, Balances, datastore, stop=stop))
        )
        results: list[int | None] = []
        waiting.start()
        stop.set()
        waiting.join(timeout=30)
    generation = rebuild(settings, Balances, datastore)
    datastore.close()

    assert results == [None]
    assert generation == 2
