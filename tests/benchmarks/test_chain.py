"""The synthetic chain generator: deterministic, valid for the ledger, shaped as documented."""

from __future__ import annotations

import hashlib
import io
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import msgspec
import pytest
from benchmarks.chain import (
    CAMPAIGN,
    MANIFEST_FILE,
    MOVEMENTS_FILE,
    PROGRAM_FILE,
    ChainSize,
    Manifest,
    build_network,
    build_program,
    generate,
)

from loyalty.bootstrap import Services
from loyalty.commands.apply import read_program
from loyalty.commands.ingest import ingest, parse
from loyalty.commands.replay import replay
from loyalty.commands.schemas import PostMovement
from loyalty.domain import ids
from loyalty.domain.account import Account
from loyalty.domain.movement import CENT, Movement, MovementType, check_movement
from loyalty.domain.network import NodeKind
from tests.builders import Clock

SMALL = ChainSize(
    movements=2_000, customers=300, stores=5, skus=200, days=60, start=date(2025, 3, 1), seed=7
)
FILES = (PROGRAM_FILE, MOVEMENTS_FILE, MANIFEST_FILE)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("chain")
    generate(out, SMALL)
    return out


@pytest.fixture(scope="module")
def movements(chain: Path) -> list[PostMovement]:
    parsed = [item for _, item in parse((chain / MOVEMENTS_FILE).open("rb"))]
    assert all(isinstance(item, PostMovement) for item in parsed)
    return [item for item in parsed if isinstance(item, PostMovement)]


@pytest.fixture(scope="module")
def manifest(chain: Path) -> Manifest:
    return msgspec.json.decode((chain / MANIFEST_FILE).read_bytes(), type=Manifest)


def test_the_same_seed_writes_the_same_bytes(chain: Path, tmp_path: Path) -> None:
    generate(tmp_path, SMALL)

    for name in FILES:
        assert (tmp_path / name).read_bytes() == (chain / name).read_bytes(), name


def test_another_seed_writes_other_movements(chain: Path, tmp_path: Path) -> None:
    generate(tmp_path, msgspec.structs.replace(SMALL, seed=8))

    assert (tmp_path / MOVEMENTS_FILE).read_bytes() != (chain / MOVEMENTS_FILE).read_bytes()


def test_every_line_is_a_pos_movement_the_domain_accepts(
    movements: list[PostMovement],
) -> None:
    assert len(movements) == SMALL.movements
    for command in movements:
        check_movement(
            Movement(
                movement_id=command.movement_id,
                type=command.type,
                card=command.card,
                occurred_at=command.occurred_at,
                amount=command.amount,
                currency=command.currency,
                lines=command.lines,
                original_movement_id=command.original_movement_id,
            )
        )


def test_line_amounts_are_quantity_times_price_to_the_cent(
    movements: list[PostMovement],
) -> None:
    for command in movements:
        assert 1 <= len(command.lines) <= 12
        for line in command.lines:
            expected = (line.quantity * line.unit_price).quantize(CENT, ROUND_HALF_UP)
            assert line.amount == expected, (command.movement_id, line)
        assert command.amount == sum(line.amount for line in command.lines)


def test_movements_are_in_time_order_within_opening_hours_of_the_period(
    movements: list[PostMovement],
) -> None:
    instants = [command.occurred_at for command in movements]

    assert instants == sorted(instants)
    for moment in instants:
        assert SMALL.start <= moment.date() <= SMALL.end
        assert 8 <= moment.hour < 21
        assert moment.utcoffset() is not None


def test_movement_ids_are_unique_per_terminal(movements: list[PostMovement]) -> None:
    keys = Counter((command.terminal, command.movement_id) for command in movements)

    assert keys.most_common(1)[0][1] == 1


def test_returns_give_back_part_of_an_earlier_purchase_of_the_same_card(
    movements: list[PostMovement],
) -> None:
    seen: dict[tuple[str, str], PostMovement] = {}
    returns = 0
    for command in movements:
        if command.type is MovementType.RETURN:
            returns += 1
            assert command.original_movement_id is not None
            original = seen[(command.terminal, command.original_movement_id)]
            assert original.type is MovementType.PURCHASE
            assert original.card == command.card
            assert original.occurred_at < command.occurred_at
            bought = {line.sku: line for line in original.lines}
            for line in command.lines:
                assert line.quantity <= bought[line.sku].quantity
                assert line.unit_price == bought[line.sku].unit_price
        seen[(command.terminal, command.movement_id)] = command

    assert 0.01 < returns / len(movements) < 0.035


def test_the_program_file_reads_back_as_the_program_generated(chain: Path) -> None:
    program = read_program(chain / PROGRAM_FILE)

    assert program == build_program(SMALL, build_network(SMALL))
    kinds = Counter(node.kind for node in program.nodes)
    assert kinds[NodeKind.STORE] == SMALL.stores
    assert kinds[NodeKind.SUB_NETWORK] == 4 + 4 * 3
    stores = {node.code: node for node in program.nodes if node.kind is NodeKind.STORE}
    assert all(node.timezone for node in stores.values())
    per_store = Counter(node.parent for node in program.nodes if node.kind is NodeKind.TERMINAL)
    assert set(per_store) == set(stores)
    assert all(1 <= count <= 4 for count in per_store.values())
    assert all(node.api_keys for node in program.nodes if node.kind is NodeKind.TERMINAL)
    assert [(r.first, r.last) for r in program.card_ranges] == [(1, SMALL.customers)]
    assert 3 <= len(program.promotions) <= 5


def test_movements_name_terminals_and_cards_of_the_program(
    chain: Path, movements: list[PostMovement]
) -> None:
    program = read_program(chain / PROGRAM_FILE)
    terminals = {node.code for node in program.nodes if node.kind is NodeKind.TERMINAL}
    cards = {code for card_range in program.card_ranges for code in card_range.codes()}

    assert {command.terminal for command in movements} <= terminals
    assert {command.card for command in movements} <= cards


def test_spend_is_heavy_tailed_over_customers(movements: list[PostMovement]) -> None:
    spend: dict[str, Decimal] = defaultdict(Decimal)
    for command in movements:
        sign = -1 if command.type is MovementType.RETURN else 1
        spend[command.card] += sign * command.amount
    ranked = sorted(spend.values(), reverse=True)
    top = ranked[: SMALL.customers // 10]

    assert sum(top) / sum(ranked) > Decimal("0.4")
    visits = Counter(c.card for c in movements if c.type is MovementType.PURCHASE)
    assert max(visits.values()) >= 10 * min(visits.values())


def test_saturdays_outnumber_tuesdays(movements: list[PostMovement]) -> None:
    weekdays = Counter(command.occurred_at.isoweekday() for command in movements)

    assert weekdays[6] > 1.3 * weekdays[2]


def test_the_manifest_describes_the_files(chain: Path, manifest: Manifest) -> None:
    data = (chain / MOVEMENTS_FILE).read_bytes()

    assert manifest.size == SMALL
    assert manifest.movements.sha256 == hashlib.sha256(data).hexdigest()
    assert manifest.movements.bytes == len(data)
    program = (chain / PROGRAM_FILE).read_bytes()
    assert manifest.program.sha256 == hashlib.sha256(program).hexdigest()
    assert manifest.counts.movements == data.count(b"\n") == SMALL.movements
    assert manifest.counts.by_type["return"] == data.count(b'"type":"return"')
    assert 0 < manifest.counts.customers_shopping <= SMALL.customers
    assert manifest.first_occurred_at is not None and manifest.last_occurred_at is not None
    assert manifest.apply_program_at < manifest.first_occurred_at


def test_the_ledger_accepts_every_generated_movement(
    chain: Path,
    manifest: Manifest,
    movements: list[PostMovement],
    services: Services,
    clock: Clock,
) -> None:
    """Applied before the first movement (so its promotions are in force), ingested, and
    derived again identically by the audit replay."""
    clock.now = manifest.apply_program_at
    services.applier.apply(read_program(chain / PROGRAM_FILE))
    assert manifest.last_occurred_at is not None
    clock.now = manifest.last_occurred_at + timedelta(minutes=1)
    rejects = io.BytesIO()

    with (chain / MOVEMENTS_FILE).open("rb") as source:
        summary = ingest(services.desk, source, rejects, batch_size=250)

    assert rejects.getvalue() == b""
    assert (summary.accepted, summary.rejected) == (SMALL.movements, 0)
    busiest = Counter(command.card for command in movements).most_common(1)[0][0]
    account: object = services.ledger.repository.get(
        ids.account_id(ids.campaign_id(CAMPAIGN), ids.customer_id_for_card(busiest))
    )
    assert isinstance(account, Account)
    assert account.points > 0
    report = replay(services.ledger)
    assert (report.identical, report.movements) == (True, SMALL.movements)


def test_a_chain_without_movements_has_an_empty_movements_file(tmp_path: Path) -> None:
    size = msgspec.structs.replace(SMALL, movements=0, days=3, start=date(2025, 12, 24))

    manifest = generate(tmp_path, size)

    assert manifest.counts.movements == 0
    assert (tmp_path / MOVEMENTS_FILE).read_bytes() == b""
    assert manifest.first_occurred_at is None
    assert isinstance(manifest.apply_program_at, datetime)


def test_a_period_when_every_store_is_closed_cannot_hold_movements(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="closed"):
        generate(tmp_path, msgspec.structs.replace(SMALL, days=1, start=date(2025, 12, 25)))
