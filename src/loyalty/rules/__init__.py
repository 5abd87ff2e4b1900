"""The promotion rule engine: a pure function from a movement and its context to the
transactions it earns. No clock, no randomness, no I/O; decimal arithmetic for money."""

from loyalty.rules.engine import AccountState, Context, OriginalMovement, PromotionInForce, derive

__all__ = ["AccountState", "Context", "OriginalMovement", "PromotionInForce", "derive"]
