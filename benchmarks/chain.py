"""A synthetic retail chain for benchmarks: the documented generator.

``python -m benchmarks.chain --out DIR`` writes, deterministically from ``--seed``:

- ``DIR/program.toml``: the program, for ``loyalty apply`` (:class:`ProgramFile`);
- ``DIR/movements.ndjson``: the movements, one POS body (``PostMovement``) a line, in
  ``occurred_at`` order, for ``loyalty ingest``;
- ``DIR/manifest.json``: the parameters, what was produced and the files' SHA-256, so a
  benchmark can check it loads what it expects (:class:`Manifest`).

The defaults are the full size: 10,000,000 movements, 1,000,000 customers, 200 stores,
20,000 SKUs, 730 days from 2024-01-01. In process: ``generate(out, ChainSize(...))``.

Promotions are in force from the moment they are applied, never in the past. For the
movements to earn points, apply the program at or before ``Manifest.apply_program_at``
(the day before ``start``, 00:00 UTC) with a settable clock, and ingest with a clock at or
after ``Manifest.last_occurred_at``. ``loyalty apply`` on the real clock still accepts every
movement, but then no promotion was in force when they happened: the engine grants nothing.

The model (every draw from ``random.Random``, one stream per part, seeded from ``--seed``):

Network
    Root ``chain`` -> 4 regions -> 3 store groups each (distributors, franchises) -> stores.
    Stores go to regions by share (north 40 %, center 25 %, south 25 %, international
    10 %, largest remainder) and round-robin to their region's groups. Italian stores are
    in ``Europe/Rome``; international ones cycle through Madrid, Lisbon, Athens, Berlin and
    Vienna (UTC+0 to UTC+3: every local opening hour falls on the same UTC date, and no
    daylight-saving change happens during opening hours). Store traffic weight:
    log-normal(0, 0.6). Terminals by traffic rank: top 15 % of stores 4, next 25 % 3,
    next 35 % 2, the rest 1; terminal ``<store>-pos<n>``, key ``chain-key-<terminal>``.

Program
    One campaign ``club`` on the root from ``start``. Five promotions: 1 point per euro
    (floor); 2 points per euro on fruit and vegetables (at most 100 a receipt); 40 points
    from 80 euro (twice a month per customer); double points on Saturday and Sunday
    09:00-12:00 (at most 400 a receipt); 5 % off baby products. Cards ``CH00000001`` ...
    as one anonymous card range, one card per customer.

Catalogue
    40 departments, each with a share of the SKUs, a median price and whether it is sold
    by weight. SKU codes are EAN-13 (``800`` + item number + check digit). Price per SKU:
    the department median times log-normal(0, 0.5), to the cent, at least 0.19; from 1
    euro up, ending in 9 cents. Popularity: Zipf with exponent 0.9 over a random ranking
    of the SKUs.

Customers
    Activity weight: Pareto(alpha 1.25, minimum 1) truncated at 200 (a customer's visits are
    proportional to it: the heaviest shop about 50 times as often as the mean, many only
    once or twice, some never). 70 % are members from the first day; the rest join at an
    even pace over the period (a customer shops only from their join day). Home store by
    store traffic weight; 88 % of visits there, the rest at a store drawn by traffic weight.
    Basket parameter: log-normal(ln 3.0, 0.45).

Calendar
    Movements per day, allocated exactly (largest remainder) in proportion to
    weekday x month x occasion x growth. Weekday (Mon..Sun): 0.90, 0.85, 0.90, 0.95, 1.15,
    1.45, 0.70. Month (Jan..Dec): 0.92, 0.88, 0.96, 1.00, 1.00, 0.98, 0.95, 0.78, 0.98, 1.00,
    1.04, 1.30. Occasions: closed on 1 January and 25 December; x1.25 from 15 to 24
    December; x1.20 on 31 December; x0.50 on 15 August. Growth: +5 % a year, compounded
    daily. Local time: hours 8 to 20 weighted 0.45, 0.75, 1.00, 1.10, 0.95, 0.60, 0.50,
    0.60, 0.80, 1.05, 1.20, 0.95, 0.55 (opening hours 08:00-21:00), the second uniform.

Purchases
    Lines: 1 + floor(exponential with mean = the customer's basket parameter, x1.15 in
    December), at most 12; SKUs by popularity, a SKU at most once a receipt. Quantity:
    1 (74 %), 2 (18 %), 3 (4 %), 4 (2 %), 6 (2 %); by weight: log-normal(ln 0.6 kg, 0.55)
    to the gram, within 0.05-5 kg. Line amount = quantity x unit price rounded half up to
    the cent; the movement amount is the sum of its lines.

Returns
    2.05 % of purchases (about 2 % of the movements) are returned 1 + min(29,
    floor(exponential, mean 4)) days later (dropped past the last day), by the same card
    at the same terminal: one line (70 %), two (20 %) or all (10 %); a line of several
    whole units gives back part of them half the time, a weighed line all of it.

Movement ids are ``YYYYMMDD-NNNN`` (the local date and the terminal's receipt of the
day), unique per terminal. ``occurred_at`` is the store's local time with its offset.
Memory is bounded by one day of movements, the returns pending and three numbers per
customer; nothing else grows with the number of movements.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import random
import resource
import sys
import time
from array import array
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from decimal import Decimal
from enum import Enum
from itertools import accumulate
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec

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
from loyalty.domain.promotion import (
    Caps,
    FixedPoints,
    HourRange,
    Multiplier,
    PercentDiscount,
    Period,
    PeriodCap,
    PointsPerAmount,
    PromotionTerms,
    When,
)

GENERATOR = "benchmarks.chain/1"
ROOT = "chain"
CAMPAIGN = "club"
CURRENCY = "EUR"
CARD_PREFIX = "CH"
PROGRAM_FILE = "program.toml"
MOVEMENTS_FILE = "movements.ndjson"
MANIFEST_FILE = "manifest.json"

# (code, name, share of stores, time zones cycled over its stores, cities cycled)
REGIONS: tuple[tuple[str, str, float, tuple[str, ...], tuple[str, ...]], ...] = (
    ("north", "Regione Nord", 0.40, ("Europe/Rome",), ("Milano", "Torino", "Bologna", "Verona")),
    ("center", "Regione Centro", 0.25, ("Europe/Rome",), ("Roma", "Firenze", "Perugia")),
    ("south", "Regione Sud e Isole", 0.25, ("Europe/Rome",), ("Napoli", "Bari", "Palermo")),
    (
        "international",
        "Estero",
        0.10,
        ("Europe/Madrid", "Europe/Lisbon", "Europe/Athens", "Europe/Berlin", "Europe/Vienna"),
        ("Madrid", "Lisboa", "Athina", "Berlin", "Wien"),
    ),
)
GROUPS_PER_REGION = 3
STORE_WEIGHT_SIGMA = 0.6
TERMINAL_TIERS = ((0.15, 4), (0.40, 3), (0.75, 2), (1.0, 1))
"""(cumulative share of stores by traffic rank, terminals each)."""

# (department, share of SKUs, median price in cents (per kg when weighed), sold by weight)
DEPARTMENTS: tuple[tuple[str, float, int, bool], ...] = (
    ("fruit", 3.0, 249, True),
    ("vegetables", 3.0, 229, True),
    ("meat", 2.5, 1290, True),
    ("fish", 1.5, 1690, True),
    ("deli", 2.5, 1990, True),
    ("cheese", 2.5, 1650, True),
    ("bakery", 2.0, 190, False),
    ("pastry", 2.0, 350, False),
    ("dairy", 4.0, 149, False),
    ("eggs", 0.5, 259, False),
    ("frozen", 4.0, 349, False),
    ("pasta", 3.0, 119, False),
    ("rice", 1.0, 229, False),
    ("flour", 1.0, 109, False),
    ("canned", 3.0, 159, False),
    ("sauces", 2.5, 219, False),
    ("oil", 1.5, 649, False),
    ("condiments", 2.0, 199, False),
    ("breakfast", 3.0, 279, False),
    ("coffee", 2.0, 449, False),
    ("tea", 1.0, 249, False),
    ("sweets", 3.5, 239, False),
    ("snacks", 3.5, 189, False),
    ("water", 1.0, 59, False),
    ("soft-drinks", 2.5, 139, False),
    ("juice", 1.5, 179, False),
    ("beer", 2.0, 129, False),
    ("wine", 4.0, 690, False),
    ("spirits", 2.0, 1590, False),
    ("baby", 2.0, 499, False),
    ("pet", 2.5, 249, False),
    ("cleaning", 3.0, 329, False),
    ("laundry", 1.5, 699, False),
    ("paper", 1.5, 349, False),
    ("personal-care", 4.0, 319, False),
    ("beauty", 3.0, 649, False),
    ("pharmacy", 1.5, 790, False),
    ("household", 3.0, 599, False),
    ("stationery", 1.5, 299, False),
    ("seasonal", 2.0, 990, False),
)
PRICE_SIGMA = 0.5
MIN_PRICE_CENTS = 19
ZIPF_EXPONENT = 0.9

PARETO_ALPHA = 1.25
WEIGHT_CAP = 200.0
MEMBERS_AT_START = 0.70
HOME_SHARE = 0.88
BASKET_MEDIAN = 3.0
BASKET_SIGMA = 0.45
DECEMBER_BASKET = 1.15
MAX_LINES = 12
QUANTITIES = ((0.74, 1), (0.92, 2), (0.96, 3), (0.98, 4), (1.0, 6))
"""(cumulative probability, units) of a line sold by the piece; at most 7 units."""
QUANTITY_CUTS = [share for share, _ in QUANTITIES[:-1]]
QUANTITY_VALUES = [units for _, units in QUANTITIES]
WEIGHED_MEDIAN_KG = 0.6
WEIGHED_SIGMA = 0.55
WEIGHED_GRAMS = (50, 5000)

WEEKDAY_FACTOR = (0.90, 0.85, 0.90, 0.95, 1.15, 1.45, 0.70)
MONTH_FACTOR = (0.92, 0.88, 0.96, 1.00, 1.00, 0.98, 0.95, 0.78, 0.98, 1.00, 1.04, 1.30)
CLOSED = ((1, 1), (12, 25))
OCCASIONS = {(12, 31): 1.20, (8, 15): 0.50, **{(12, d): 1.25 for d in range(15, 25)}}
GROWTH_PER_YEAR = 0.05
OPENING_HOUR = 8
HOUR_FACTOR = (0.45, 0.75, 1.00, 1.10, 0.95, 0.60, 0.50, 0.60, 0.80, 1.05, 1.20, 0.95, 0.55)

RETURN_RATE = 0.0205
RETURN_DELAY_MEAN_DAYS = 4.0
RETURN_DELAY_MAX_DAYS = 30
RETURN_LINES = ((0.70, 1), (0.90, 2), (1.0, 0))
"""(cumulative probability, lines returned; 0 = all of them)."""


class ChainSize(msgspec.Struct, frozen=True, kw_only=True):
    """How big the chain is, when, and the seed: everything the output depends on."""

    movements: int = 10_000_000
    customers: int = 1_000_000
    stores: int = 200
    skus: int = 20_000
    days: int = 730
    start: date = date(2024, 1, 1)
    seed: int = 1

    @property
    def end(self) -> date:
        """The last day (local), inclusive."""
        return self.start + timedelta(days=self.days - 1)

    def check(self) -> None:
        if self.movements < 0:
            raise ValueError("movements must not be negative")
        for name in ("customers", "stores", "skus", "days"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")


class FileDigest(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    bytes: int
    sha256: str


class Counts(msgspec.Struct, frozen=True, kw_only=True):
    movements: int
    by_type: dict[str, int]
    lines: int
    revenue: Decimal
    """Purchases minus returns, in the movements' currency."""
    cards: int
    customers_shopping: int
    """Customers with at least one purchase."""
    stores: int
    terminals: int
    departments: int
    skus: int


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """What a chain directory holds; deterministic like the files it describes."""

    generator: str
    size: ChainSize
    program: FileDigest
    movements: FileDigest
    counts: Counts
    first_day: date
    last_day: date
    first_occurred_at: datetime | None
    last_occurred_at: datetime | None
    apply_program_at: datetime
    """Apply the program at or before this instant, so that its promotions are in force
    for every movement."""


def stream(size: ChainSize, part: str) -> random.Random:
    """An independent random stream per part: the catalogue does not change with the
    number of movements, nor the network with the number of SKUs."""
    return random.Random(f"{size.seed}/{part}")


def largest_remainder(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` split in proportion to ``weights``, exactly (ties to the first)."""
    whole = sum(weights)
    if total == 0 or whole <= 0:
        return [0] * len(weights)
    shares = [total * w / whole for w in weights]
    counts = [math.floor(s) for s in shares]
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - shares[i], i))
    for i in order[: total - sum(counts)]:
        counts[i] += 1
    return counts


def cents(value: int) -> str:
    return f"{value // 100}.{value % 100:02d}"


# --- the network ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    code: str
    name: str
    group: str
    timezone: str
    weight: float
    terminals: tuple[str, ...]


@dataclass(frozen=True)
class Network:
    groups: tuple[tuple[str, str, str], ...]
    """(code, name, region) of each store group."""
    stores: tuple[Store, ...]

    @property
    def terminals(self) -> list[str]:
        return [t for s in self.stores for t in s.terminals]


def build_network(size: ChainSize) -> Network:
    rng = stream(size, "network")
    weights = [rng.lognormvariate(0.0, STORE_WEIGHT_SIGMA) for _ in range(size.stores)]
    rank = {s: r for r, s in enumerate(sorted(range(size.stores), key=lambda s: -weights[s]))}
    per_region = largest_remainder(size.stores, [share for _, _, share, _, _ in REGIONS])
    width = max(3, len(str(size.stores)))
    groups: list[tuple[str, str, str]] = []
    stores: list[Store] = []
    for (region, name, _, zones, cities), count in zip(REGIONS, per_region, strict=True):
        codes = [f"{region}-g{k}" for k in range(1, GROUPS_PER_REGION + 1)]
        groups += [(c, f"{name}, gruppo {k}", region) for k, c in enumerate(codes, start=1)]
        for local in range(count):
            index = len(stores)
            code = f"st{index + 1:0{width}d}"
            tier = next(n for share, n in TERMINAL_TIERS if rank[index] < share * size.stores)
            stores.append(
                Store(
                    code=code,
                    name=f"{cities[local % len(cities)]} {index + 1}",
                    group=codes[local % GROUPS_PER_REGION],
                    timezone=zones[local % len(zones)],
                    weight=weights[index],
                    terminals=tuple(f"{code}-pos{t}" for t in range(1, tier + 1)),
                )
            )
    return Network(groups=tuple(groups), stores=tuple(stores))


def terminal_key(terminal: str) -> str:
    return f"chain-key-{terminal}"


def card_range(size: ChainSize) -> CardRange:
    return CardRange(
        prefix=CARD_PREFIX, first=1, last=size.customers, width=max(8, len(str(size.customers)))
    )


def build_program(size: ChainSize, network: Network) -> ProgramFile:
    nodes = [
        NodeSpec(code=code, name=name, kind=NodeKind.SUB_NETWORK, parent=ROOT)
        for code, name, _, _, _ in REGIONS
    ]
    nodes += [
        NodeSpec(code=code, name=name, kind=NodeKind.SUB_NETWORK, parent=region)
        for code, name, region in network.groups
    ]
    for store in network.stores:
        nodes.append(
            NodeSpec(
                code=store.code,
                name=store.name,
                kind=NodeKind.STORE,
                parent=store.group,
                timezone=store.timezone,
            )
        )
        nodes += [
            NodeSpec(
                code=terminal,
                name=f"{store.name} cassa {n}",
                kind=NodeKind.TERMINAL,
                parent=store.code,
                api_keys=(TerminalKeySpec(key=terminal_key(terminal)),),
            )
            for n, terminal in enumerate(store.terminals, start=1)
        ]
    campaign = CampaignTerms(name="Club Chain", nodes=(ROOT,), starts_on=size.start)
    return ProgramFile(
        network=NetworkSpec(code=ROOT, name="Synthetic retail chain"),
        nodes=tuple(nodes),
        campaigns=(CampaignSpec(code=CAMPAIGN, terms=campaign),),
        promotions=promotions(),
        card_ranges=(card_range(size),),
    )


def promotions() -> tuple[PromotionSpec, ...]:
    def spec(code: str, **terms: Any) -> PromotionSpec:
        return PromotionSpec(code=code, campaign=CAMPAIGN, terms=PromotionTerms(**terms))

    per_euro = Decimal("1.00")
    return (
        spec(
            "base-points",
            name="1 point per euro",
            priority=100,
            benefits=(PointsPerAmount(points=1, per=per_euro),),
        ),
        spec(
            "fresh-points",
            name="2 points per euro of fruit and vegetables",
            priority=90,
            benefits=(
                PointsPerAmount(points=2, per=per_euro, departments=("fruit", "vegetables")),
            ),
            caps=Caps(per_movement_points=100),
        ),
        spec(
            "spend-80",
            name="40 points from 80 euro",
            priority=80,
            min_spend=Decimal("80.00"),
            benefits=(FixedPoints(points=40),),
            caps=Caps(per_customer=PeriodCap(period=Period.MONTH, uses=2)),
            receipt_message="Spesa sopra 80 euro: 40 punti in regalo!",
        ),
        spec(
            "weekend-double",
            name="Double points on weekend mornings",
            priority=10,
            when=When(weekdays=(6, 7), hours=(HourRange(start=clock_time(9), end=clock_time(12)),)),
            benefits=(Multiplier(factor=Decimal(2)),),
            caps=Caps(per_movement_points=400),
        ),
        spec(
            "baby-discount",
            name="5% off baby products",
            priority=70,
            benefits=(PercentDiscount(percent=Decimal(5), departments=("baby",)),),
        ),
    )


# --- program as TOML -------------------------------------------------------------------------


def plain(value: object) -> object:
    """A struct as TOML-ready builtins: empty fields are omitted, and so are fields left at
    their default except in benefits (which read better in full); tagged unions carry their
    tag; enums, decimals and times become strings; dates stay dates."""
    if isinstance(value, msgspec.Struct):
        config = type(value).__struct_config__
        out: dict[str, object] = {}
        if config.tag_field is not None:
            out[config.tag_field] = config.tag
        for field in msgspec.structs.fields(value):
            item = getattr(value, field.name)
            default = (
                field.default_factory()
                if field.default_factory is not msgspec.NODEFAULT
                else field.default
            )
            if item is None or item == ():
                continue
            if default is msgspec.NODEFAULT or item != default or config.tag is not None:
                out[field.encode_name] = plain(item)
        return out
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bool | int | date | str):
        return value
    if isinstance(value, Decimal | clock_time):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, str):
        return msgspec.json.encode(value).decode()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + " }"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def toml_table(header: str, table: dict[str, object]) -> list[str]:
    """``[header]`` (or ``[[header]]``): scalars first, then one level of sub-tables."""
    lines = [header]
    lines += [f"{k} = {toml_value(v)}" for k, v in table.items() if not isinstance(v, dict)]
    name = header.strip("[]")
    for key, sub in table.items():
        if isinstance(sub, dict):
            lines += [f"[{name}.{key}]", *(f"{k} = {toml_value(v)}" for k, v in sub.items())]
    return [*lines, ""]


def program_toml(program: ProgramFile) -> str:
    document = plain(program)
    assert isinstance(document, dict)
    lines = [
        "# A synthetic retail chain for benchmarks, written by benchmarks/chain.py.",
        "# Terminal keys appear in clear: benchmark data only.",
        "",
    ]
    for key, value in document.items():
        if isinstance(value, dict):
            lines += toml_table(f"[{key}]", value)
        else:
            assert isinstance(value, list)
            for item in value:
                lines += toml_table(f"[[{key}]]", item)
    return "\n".join(lines)


# --- catalogue, customers, calendar ----------------------------------------------------------


def ean13(number: int) -> str:
    body = f"800{number:09d}"
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(body))
    return body + str((10 - total % 10) % 10)


def shelf_price(median: int, rng: random.Random) -> int:
    price = round(median * rng.lognormvariate(0.0, PRICE_SIGMA))
    if price >= 100:
        price = price - price % 10 + 9
    return max(MIN_PRICE_CENTS, price)


@dataclass(frozen=True)
class Catalogue:
    codes: list[str]
    departments: list[str]
    prices: list[int]
    price_text: list[str]
    weighed: list[bool]
    popularity: list[float]
    """Cumulative Zipf weights, SKU by SKU."""


def build_catalogue(size: ChainSize) -> Catalogue:
    rng = stream(size, "catalogue")
    shares = list(accumulate(share for _, share, _, _ in DEPARTMENTS))
    picked = rng.choices(range(len(DEPARTMENTS)), cum_weights=shares, k=size.skus)
    prices = [shelf_price(DEPARTMENTS[d][2], rng) for d in picked]
    ranks = list(range(1, size.skus + 1))
    rng.shuffle(ranks)
    return Catalogue(
        codes=[ean13(n + 1) for n in range(size.skus)],
        departments=[DEPARTMENTS[d][0] for d in picked],
        prices=prices,
        price_text=[cents(p) for p in prices],
        weighed=[DEPARTMENTS[d][3] for d in picked],
        popularity=list(accumulate(r**-ZIPF_EXPONENT for r in ranks)),
    )


@dataclass(frozen=True)
class Customers:
    activity: array[float]
    """Cumulative activity weights, customer by customer (index = card number - 1)."""
    home: array[int]
    basket: array[float]
    members_at_start: int

    def eligible(self, day: int, days: int) -> int:
        """How many customers (a prefix of them) have joined by ``day``."""
        joining = len(self.home) - self.members_at_start
        return self.members_at_start + min(joining, -(-(day + 1) * joining // days))


def build_customers(size: ChainSize, network: Network) -> Customers:
    rng = stream(size, "customers")
    store_cum = list(accumulate(s.weight for s in network.stores))
    last_store = len(store_cum) - 1
    activity = array("d", bytes(8 * size.customers))
    home = array("I", bytes(4 * size.customers))
    basket = array("d", bytes(8 * size.customers))
    total = 0.0
    mu = math.log(BASKET_MEDIAN)
    for c in range(size.customers):
        total += min(rng.paretovariate(PARETO_ALPHA), WEIGHT_CAP)
        activity[c] = total
        home[c] = bisect_right(store_cum, rng.random() * store_cum[-1], 0, last_store)
        basket[c] = rng.lognormvariate(mu, BASKET_SIGMA)
    return Customers(
        activity=activity,
        home=home,
        basket=basket,
        members_at_start=max(1, math.ceil(size.customers * MEMBERS_AT_START)),
    )


def day_weight(day: date, index: int) -> float:
    if (day.month, day.day) in CLOSED:
        return 0.0
    return (
        WEEKDAY_FACTOR[day.weekday()]
        * MONTH_FACTOR[day.month - 1]
        * OCCASIONS.get((day.month, day.day), 1.0)
        * math.exp(math.log1p(GROWTH_PER_YEAR) * index / 365.25)
    )


def daily_counts(size: ChainSize) -> list[int]:
    days = [size.start + timedelta(days=i) for i in range(size.days)]
    weights = [day_weight(d, i) for i, d in enumerate(days)]
    if size.movements and not any(weights):
        raise ValueError("the stores are closed every day of the period")
    return largest_remainder(size.movements, weights)


# --- movements -------------------------------------------------------------------------------

Record = list[Any]
"""[utc seconds, order, terminal, card, local time, amount, lines json, original record,
movement id]: one movement of the day, encoded once its id is known."""
UTC_S, ORDER, TERMINAL, CARD, LOCAL, AMOUNT, LINES, ORIGINAL, MOVEMENT_ID = range(9)


@dataclass
class Tally:
    purchases: int = 0
    returns: int = 0
    lines: int = 0
    revenue_cents: int = 0
    first: str | None = None
    last: str | None = None
    last_utc: int = -(2**62)


class MovementMaker:
    """Makes the movements day by day; one day's movements and the pending returns are
    all it holds."""

    def __init__(self, size: ChainSize) -> None:
        self.size = size
        self.network = build_network(size)
        self.catalogue = build_catalogue(size)
        self.customers = build_customers(size, self.network)
        self.rng = stream(size, "movements")
        stores = self.network.stores
        self.store_cum = list(accumulate(s.weight for s in stores))
        self.terminal_codes = self.network.terminals
        firsts = list(accumulate((len(s.terminals) for s in stores), initial=0))
        self.store_terminals = [tuple(range(firsts[i], firsts[i + 1])) for i in range(len(stores))]
        self.zones = sorted({s.timezone for s in stores})
        self.terminal_zone = [self.zones.index(s.timezone) for s in stores for _ in s.terminals]
        self.hour_cum = list(accumulate(HOUR_FACTOR))
        self.shoppers = bytearray(size.customers)
        self.pending: dict[int, list[tuple[int, str, Record, str, int]]] = {}
        self.line_cache: dict[int, str] = {}
        self.card_format = f"{CARD_PREFIX}%0{card_range(size).width}d"
        self.tally = Tally()

    def day(self, index: int, count: int) -> list[str]:
        """The movements of day ``index`` as JSON lines, in ``occurred_at`` order."""
        day = self.size.start + timedelta(days=index)
        epoch = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
        offsets = [utc_offset(day, zone) for zone in self.zones]
        clock = DayClock(day.isoformat(), epoch, offsets, self.hour_cum, self.rng)
        due = self.pending.pop(index, [])[:count]
        records = [self.return_record(n, entry, clock) for n, entry in enumerate(due)]
        december = DECEMBER_BASKET if day.month == 12 else 1.0
        self.purchases(index, count - len(due), records, clock, december)
        records.sort(key=lambda r: (r[UTC_S], r[ORDER]))
        return self.encode(day.strftime("%Y%m%d"), records)

    def return_record(
        self, order: int, entry: tuple[int, str, Record, str, int], clock: DayClock
    ) -> Record:
        terminal, card, original, lines, amount = entry
        utc, local = clock.moment(self.terminal_zone[terminal])
        self.tally.returns += 1
        self.tally.lines += lines.count('{"sku"')
        self.tally.revenue_cents -= amount
        return [utc, order, terminal, card, local, cents(amount), lines, original, None]

    def purchases(
        self, index: int, count: int, records: list[Record], clock: DayClock, december: float
    ) -> None:
        rng, customers, catalogue = self.rng, self.customers, self.catalogue
        rand, expo, choices = rng.random, rng.expovariate, rng.choices
        activity, home, basket = customers.activity, customers.home, customers.basket
        hi = customers.eligible(index, self.size.days)
        total = activity[hi - 1]
        store_cum, store_total = self.store_cum, self.store_cum[-1]
        last_store = len(store_cum) - 1
        skus, popularity = range(len(catalogue.codes)), catalogue.popularity
        prices, weighed, cache = catalogue.prices, catalogue.weighed, self.line_cache
        cut, quantities = QUANTITY_CUTS, QUANTITY_VALUES
        order = len(records)
        for _ in range(count):
            c = bisect_right(activity, rand() * total, 0, hi - 1)
            self.shoppers[c] = 1
            store = home[c]
            if rand() >= HOME_SHARE:
                store = bisect_right(store_cum, rand() * store_total, 0, last_store)
            terminals = self.store_terminals[store]
            terminal = terminals[int(rand() * len(terminals))]
            size = min(MAX_LINES, 1 + int(expo(1.0 / (basket[c] * december))))
            picked = choices(skus, cum_weights=popularity, k=size)
            if size > 1:
                picked = list(dict.fromkeys(picked))
            lines = []
            amount = 0
            for s in picked:
                if weighed[s]:
                    line = self.weighed_line(s)
                else:
                    quantity = quantities[bisect_right(cut, rand())]
                    text = cache.get(s * 8 + quantity) or self.unit_line(s, quantity)
                    line = (s, quantity, quantity * prices[s], text)
                amount += line[2]
                lines.append(line)
            utc, local = clock.moment(self.terminal_zone[terminal])
            card = self.card_format % (c + 1)
            text = ",".join(json for _, _, _, json in lines)
            record = [utc, order, terminal, card, local, cents(amount), text, None, None]
            records.append(record)
            order += 1
            self.tally.purchases += 1
            self.tally.lines += len(lines)
            self.tally.revenue_cents += amount
            if rand() < RETURN_RATE:
                self.schedule_return(index, terminal, card, record, lines)

    def weighed_line(self, sku: int) -> tuple[int, int, int, str]:
        """(sku, grams, amount in cents, JSON) of a line sold by weight."""
        low, high = WEIGHED_GRAMS
        kg = self.rng.lognormvariate(math.log(WEIGHED_MEDIAN_KG), WEIGHED_SIGMA)
        grams = min(high, max(low, int(kg * 1000)))
        amount = (grams * self.catalogue.prices[sku] + 500) // 1000
        quantity = f"{grams // 1000}.{grams % 1000:03d}"
        return sku, grams, amount, self.line_json(sku, quantity, amount)

    def unit_line(self, sku: int, quantity: int) -> str:
        """The JSON of ``quantity`` whole units of ``sku`` (made once, then cached)."""
        key = sku * 8 + quantity
        text = self.line_cache.get(key)
        if text is None:
            text = self.line_json(sku, str(quantity), quantity * self.catalogue.prices[sku])
            self.line_cache[key] = text
        return text

    def line_json(self, sku: int, quantity: str, amount: int) -> str:
        catalogue = self.catalogue
        return (
            f'{{"sku":"{catalogue.codes[sku]}","department":"{catalogue.departments[sku]}",'
            f'"quantity":"{quantity}","unit_price":"{catalogue.price_text[sku]}",'
            f'"amount":"{cents(amount)}"}}'
        )

    def schedule_return(
        self,
        index: int,
        terminal: int,
        card: str,
        record: Record,
        lines: list[tuple[int, int, int, str]],
    ) -> None:
        rng = self.rng
        delay = 1 + min(RETURN_DELAY_MAX_DAYS - 1, int(rng.expovariate(1 / RETURN_DELAY_MEAN_DAYS)))
        if index + delay >= self.size.days:
            return
        r = rng.random()
        wanted = next(n for share, n in RETURN_LINES if r < share) or len(lines)
        chosen = sorted(rng.sample(range(len(lines)), min(wanted, len(lines))))
        returned: list[str] = []
        amount = 0
        for i in chosen:
            sku, quantity, line_amount, json = lines[i]
            if not self.catalogue.weighed[sku] and quantity > 1 and rng.random() < 0.5:
                quantity = rng.randint(1, quantity - 1)
                line_amount, json = (
                    quantity * self.catalogue.prices[sku],
                    self.unit_line(sku, quantity),
                )
            returned.append(json)
            amount += line_amount
        entry = (terminal, card, record, ",".join(returned), amount)
        self.pending.setdefault(index + delay, []).append(entry)

    def encode(self, day: str, records: list[Record]) -> list[str]:
        receipts: dict[int, int] = {}
        out = []
        codes, tally = self.terminal_codes, self.tally
        for record in records:
            terminal = record[TERMINAL]
            receipt = receipts.get(terminal, 0) + 1
            receipts[terminal] = receipt
            movement_id = record[MOVEMENT_ID] = f"{day}-{receipt:04d}"
            original = record[ORIGINAL]
            kind, tail = (
                ("purchase", "}")
                if original is None
                else ("return", f',"original_movement_id":"{original[MOVEMENT_ID]}"}}')
            )
            out.append(
                f'{{"movement_id":"{movement_id}","type":"{kind}","card":"{record[CARD]}",'
                f'"terminal":"{codes[terminal]}","occurred_at":"{record[LOCAL]}",'
                f'"amount":"{record[AMOUNT]}","currency":"{CURRENCY}",'
                f'"lines":[{record[LINES]}]{tail}'
            )
            record[LINES] = None  # a pending return keeps the record: only its id matters
            if record[UTC_S] < tally.last_utc:
                raise AssertionError("movements out of order: a time zone outside UTC+0..+3?")
            tally.last_utc = record[UTC_S]
        if records:
            tally.first = tally.first or records[0][LOCAL]
            tally.last = records[-1][LOCAL]
        return out


class DayClock:
    """Local times of one day, drawn from the hourly profile, with their UTC instant."""

    def __init__(
        self,
        day: str,
        epoch: int,
        offsets: list[int],
        hour_cum: list[float],
        rng: random.Random,
    ) -> None:
        self.day = day
        self.epoch = epoch
        self.offsets = offsets
        self.suffixes = [
            f"{'+' if o >= 0 else '-'}{abs(o) // 3600:02d}:{abs(o) % 3600 // 60:02d}"
            for o in offsets
        ]
        self.hour_cum = hour_cum
        self.total = hour_cum[-1]
        self.last = len(hour_cum) - 1
        self.rand = rng.random

    def moment(self, zone: int) -> tuple[int, str]:
        hour = OPENING_HOUR + bisect_right(self.hour_cum, self.rand() * self.total, 0, self.last)
        second = hour * 3600 + int(self.rand() * 3600)
        local = (
            f"{self.day}T{hour:02d}:{second // 60 % 60:02d}:{second % 60:02d}{self.suffixes[zone]}"
        )
        return self.epoch + second - self.offsets[zone], local


def utc_offset(day: date, zone: str) -> int:
    """The zone's offset on ``day`` in seconds (the same all through opening hours)."""
    offset = datetime(day.year, day.month, day.day, 12, tzinfo=ZoneInfo(zone)).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())


# --- the whole chain -------------------------------------------------------------------------


def generate(
    out: Path, size: ChainSize, progress: Callable[[int, int], None] | None = None
) -> Manifest:
    """Writes ``program.toml``, ``movements.ndjson`` and ``manifest.json`` into ``out``.

    Args:
        out: the directory (made if missing; the three files are overwritten).
        size: the chain's size, period and seed.
        progress: called after each day with (movements written, movements in all).
    """
    size.check()
    out.mkdir(parents=True, exist_ok=True)
    maker = MovementMaker(size)
    program = build_program(size, maker.network)
    program_bytes = program_toml(program).encode()
    (out / PROGRAM_FILE).write_bytes(program_bytes)
    digest = hashlib.sha256()
    written = 0
    with (out / MOVEMENTS_FILE).open("wb", buffering=1 << 20) as target:
        for index, count in enumerate(daily_counts(size)):
            lines = maker.day(index, count)
            if lines:
                chunk = ("\n".join(lines) + "\n").encode()
                digest.update(chunk)
                target.write(chunk)
                written += len(lines)
            if progress is not None:
                progress(written, size.movements)
    manifest = build_manifest(size, maker, program_bytes, digest, out)
    (out / MANIFEST_FILE).write_bytes(msgspec.json.format(msgspec.json.encode(manifest)) + b"\n")
    return manifest


def build_manifest(
    size: ChainSize,
    maker: MovementMaker,
    program_bytes: bytes,
    digest: hashlib._Hash,
    out: Path,
) -> Manifest:
    tally = maker.tally
    movements = tally.purchases + tally.returns
    start = datetime(size.start.year, size.start.month, size.start.day, tzinfo=UTC)
    return Manifest(
        generator=GENERATOR,
        size=size,
        program=FileDigest(
            path=PROGRAM_FILE,
            bytes=len(program_bytes),
            sha256=hashlib.sha256(program_bytes).hexdigest(),
        ),
        movements=FileDigest(
            path=MOVEMENTS_FILE,
            bytes=(out / MOVEMENTS_FILE).stat().st_size,
            sha256=digest.hexdigest(),
        ),
        counts=Counts(
            movements=movements,
            by_type={"purchase": tally.purchases, "return": tally.returns},
            lines=tally.lines,
            revenue=Decimal(tally.revenue_cents).scaleb(-2),
            cards=size.customers,
            customers_shopping=sum(maker.shoppers),
            stores=len(maker.network.stores),
            terminals=len(maker.terminal_codes),
            departments=len(set(maker.catalogue.departments)),
            skus=size.skus,
        ),
        first_day=size.start,
        last_day=size.end,
        first_occurred_at=datetime.fromisoformat(tally.first) if tally.first else None,
        last_occurred_at=datetime.fromisoformat(tally.last) if tally.last else None,
        apply_program_at=start - timedelta(days=1),
    )


def main(argv: Sequence[str] | None = None) -> int:
    defaults = ChainSize()
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.chain",
        description="Write a synthetic retail chain (program, movements, manifest).",
    )
    parser.add_argument("--out", type=Path, required=True, help="the directory to write")
    parser.add_argument("--movements", type=int, default=defaults.movements)
    parser.add_argument("--customers", type=int, default=defaults.customers)
    parser.add_argument("--stores", type=int, default=defaults.stores)
    parser.add_argument("--skus", type=int, default=defaults.skus)
    parser.add_argument("--days", type=int, default=defaults.days)
    parser.add_argument("--start", type=date.fromisoformat, default=defaults.start)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    size = ChainSize(
        movements=args.movements,
        customers=args.customers,
        stores=args.stores,
        skus=args.skus,
        days=args.days,
        start=args.start,
        seed=args.seed,
    )
    try:
        size.check()
    except ValueError as error:
        parser.error(str(error))
    began = shown = time.perf_counter()

    def show(done: int, total: int) -> None:
        nonlocal shown
        now = time.perf_counter()
        if now - shown >= 0.5 or done == total:
            shown = now
            rate = done / (now - began)
            print(f"\r{done:,}/{total:,} movements, {rate:,.0f}/s", end="", file=sys.stderr)

    manifest = generate(args.out, size, show)
    elapsed = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"\n{manifest.counts.movements:,} movements in {elapsed:.1f} s"
        f" ({manifest.counts.movements / elapsed:,.0f}/s), peak RSS {peak:.0f} MiB",
        file=sys.stderr,
    )
    print(args.out / MANIFEST_FILE)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
