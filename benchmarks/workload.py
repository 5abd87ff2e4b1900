"""The benchmark's program (network, campaign, promotions, cards) and its movements.

Every scenario posts the same kind of purchase: 4 to 7 lines from a small catalogue,
encoded exactly as a till sends it (the POS schema, ``PostMovement``), about 600 to 900
bytes of JSON. Cards are split into disjoint ranges, one per scenario, so that no
scenario finds accounts another one has warmed up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from loyalty.commands.apply import (
    CampaignSpec,
    CardRange,
    NetworkSpec,
    NodeSpec,
    ProgramFile,
    PromotionSpec,
    TerminalKeySpec,
)
from loyalty.domain.campaign import CampaignTerms
from loyalty.domain.network import NodeKind
from loyalty.domain.promotion import FixedPoints, PointsPerAmount, PointsPerUnit, PromotionTerms

ROOT = "bench"
REGIONS = ("north", "south")
CAMPAIGN = "club"

# (sku, department, unit price)
CATALOGUE: tuple[tuple[str, str, str], ...] = (
    ("APPLE-GOLDEN-1KG", "fresh", "2.49"),
    ("BANANA-BIO-1KG", "fresh", "1.99"),
    ("TOMATO-PACHINO-500G", "fresh", "2.79"),
    ("SALAD-MIX-250G", "fresh", "1.59"),
    ("BREAD-CIABATTA", "bakery", "1.20"),
    ("CROISSANT-6PK", "bakery", "3.40"),
    ("PASTA-SPAGHETTI-500G", "grocery", "0.99"),
    ("OLIVE-OIL-EVO-1L", "grocery", "8.90"),
    ("RICE-CARNAROLI-1KG", "grocery", "3.20"),
    ("COFFEE-ESPRESSO-250G", "grocery", "4.50"),
    ("WINE-CHIANTI-750ML", "drinks", "12.90"),
    ("WATER-NATURALE-6X1.5L", "drinks", "2.10"),
    ("BEER-LAGER-6X330ML", "drinks", "5.60"),
    ("CHIPS-PAPRIKA-150G", "snacks", "1.89"),
    ("CHOCOLATE-DARK-100G", "snacks", "2.30"),
    ("DETERGENT-LIQUID-2L", "household", "6.75"),
)


@dataclass(frozen=True)
class Terminal:
    code: str
    key: str


@dataclass(frozen=True)
class Layout:
    """How big the benchmark's program is."""

    stores: int = 8
    terminals_per_store: int = 2
    naive_cards: int = 2_000
    pos_cards: int = 8_000
    ingest_cards: int = 4_000

    def terminals(self) -> list[Terminal]:
        return [
            Terminal(code=f"s{s:02d}-pos{t}", key=f"bench-key-s{s:02d}-pos{t}")
            for s in range(1, self.stores + 1)
            for t in range(1, self.terminals_per_store + 1)
        ]

    def card_range(self, scenario: str) -> CardRange:
        count = {"naive": self.naive_cards, "pos": self.pos_cards, "ingest": self.ingest_cards}
        prefix = {"naive": "BN", "pos": "BP", "ingest": "BI"}
        return CardRange(prefix=prefix[scenario], first=1, last=count[scenario], width=8)

    def cards(self, scenario: str) -> list[str]:
        return self.card_range(scenario).codes()

    def program(self) -> ProgramFile:
        nodes: list[NodeSpec] = [
            NodeSpec(code=r, name=r.title(), kind=NodeKind.SUB_NETWORK, parent=ROOT)
            for r in REGIONS
        ]
        for s in range(1, self.stores + 1):
            store = f"s{s:02d}"
            nodes.append(
                NodeSpec(
                    code=store,
                    name=f"Store {s}",
                    kind=NodeKind.STORE,
                    parent=REGIONS[s % len(REGIONS)],
                    timezone="Europe/Rome",
                )
            )
        for terminal in self.terminals():
            nodes.append(
                NodeSpec(
                    code=terminal.code,
                    name=terminal.code,
                    kind=NodeKind.TERMINAL,
                    parent=terminal.code.split("-")[0],
                    api_keys=(TerminalKeySpec(key=terminal.key),),
                )
            )
        return ProgramFile(
            network=NetworkSpec(code=ROOT, name="Benchmark chain"),
            nodes=tuple(nodes),
            campaigns=(
                CampaignSpec(
                    code=CAMPAIGN,
                    terms=CampaignTerms(name="Club", nodes=(ROOT,), starts_on=date(2020, 1, 1)),
                ),
            ),
            promotions=(
                PromotionSpec(
                    code="base-points",
                    campaign=CAMPAIGN,
                    terms=PromotionTerms(name="1 point per euro", benefits=(PointsPerAmount(),)),
                ),
                PromotionSpec(
                    code="fresh-bonus",
                    campaign=CAMPAIGN,
                    terms=PromotionTerms(
                        name="2 points per fresh item",
                        benefits=(PointsPerUnit(points=2, departments=("fresh",)),),
                        priority=1,
                    ),
                ),
                PromotionSpec(
                    code="spend-40",
                    campaign=CAMPAIGN,
                    terms=PromotionTerms(
                        name="25 points above 40 euro",
                        benefits=(FixedPoints(points=25),),
                        min_spend=Decimal(40),
                        receipt_message="Spesa sopra 40 euro: 25 punti in regalo!",
                    ),
                ),
            ),
            card_ranges=tuple(self.card_range(s) for s in ("naive", "pos", "ingest")),
        )


def timestamp(now: datetime | None = None) -> bytes:
    """RFC 3339 in UTC, to the millisecond: what a till puts in ``occurred_at``."""
    now = now or datetime.now(UTC)
    return now.isoformat(timespec="milliseconds").replace("+00:00", "Z").encode()


class Baskets:
    """Pre-encoded baskets (``amount`` and ``lines``), so that a movement costs little to make."""

    def __init__(self, seed: int, count: int = 512) -> None:
        rng = random.Random(seed)
        self.items: list[tuple[bytes, bytes]] = [self._basket(rng) for _ in range(count)]

    @staticmethod
    def _basket(rng: random.Random) -> tuple[bytes, bytes]:
        lines = []
        total = Decimal(0)
        for sku, department, price in rng.sample(CATALOGUE, rng.randint(4, 7)):
            quantity = rng.randint(1, 4)
            amount = Decimal(price) * quantity
            total += amount
            lines.append(
                f'{{"sku":"{sku}","department":"{department}","quantity":"{quantity}",'
                f'"unit_price":"{price}","amount":"{amount}"}}'
            )
        return str(total).encode(), ("[" + ",".join(lines) + "]").encode()


class Purchases:
    """Distinct purchases on random cards at random terminals, as POS JSON bodies."""

    def __init__(self, prefix: str, cards: list[str], terminals: list[Terminal], seed: int) -> None:
        self.prefix = prefix
        self.rng = random.Random(seed)
        self.cards = [c.encode() for c in cards]
        self.terminals = [(t.code.encode(), t.key) for t in terminals]
        self.baskets = Baskets(seed).items
        self.sequence = 0

    def next(self, occurred_at: bytes) -> tuple[str, bytes]:
        """The next purchase: (the terminal's API key, the JSON body)."""
        self.sequence += 1
        terminal, key = self.terminals[self.rng.randrange(len(self.terminals))]
        card = self.cards[self.rng.randrange(len(self.cards))]
        amount, lines = self.baskets[self.rng.randrange(len(self.baskets))]
        body = b"".join(
            (
                b'{"movement_id":"',
                f"{self.prefix}-{self.sequence:08d}".encode(),
                b'","type":"purchase","card":"',
                card,
                b'","terminal":"',
                terminal,
                b'","occurred_at":"',
                occurred_at,
                b'","amount":"',
                amount,
                b'","currency":"EUR","lines":',
                lines,
                b"}",
            )
        )
        return key, body
