"""The POS contract and other boundary schemas, declared once for API, CLI and storage."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

import msgspec

from loyalty.domain.card import CardStatus
from loyalty.domain.movement import Line, MovementType, TransactionKind

Key = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f]+$")]
"""A movement id, card code or terminal code: 1 to 64 characters, no control characters."""
Currency = Annotated[str, msgspec.Meta(pattern="^[A-Z]{3}$")]
"""ISO 4217 (``EUR``), or ``PTS`` for points."""
MAX_LINES = 1000


class PostMovement(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """``POST /api/v1/terminal/movements`` and one line of ``loyalty ingest``."""

    movement_id: Key
    type: MovementType
    card: Key
    terminal: Key
    occurred_at: datetime
    amount: Decimal
    currency: Currency
    lines: Annotated[tuple[Line, ...], msgspec.Meta(max_length=MAX_LINES)] = ()
    original_movement_id: str | None = None
    """Checked like a Key in the domain: litestar cannot document an optional constrained str."""


class ReceiptTransaction(msgspec.Struct, frozen=True, kw_only=True):
    kind: TransactionKind
    amount: Decimal
    currency: str
    promotion: str | None
    promotion_version: int | None


class Balance(msgspec.Struct, frozen=True, kw_only=True):
    points: int
    credits: Decimal


class MovementReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """What the till prints: the benefits of the movement and the balance after it."""

    movement_id: str
    card: str
    transactions: tuple[ReceiptTransaction, ...]
    balance: Balance
    receipt_messages: tuple[str, ...]


class CardView(msgspec.Struct, frozen=True, kw_only=True):
    """What a till may know of a card: no personal data at all."""

    card: str
    status: CardStatus
    registered: bool
    """Whether the card's holder is registered (nothing personal: the till needs none)."""
    campaign: str | None
    balance: Balance


class Adjust(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An operator's manual correction of a card's balance in a campaign."""

    movement_id: str
    card: str
    campaign: str
    points: int = 0
    credits: Decimal = Decimal(0)
    reason: str
    operator: str
    occurred_at: datetime
