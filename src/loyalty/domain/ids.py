"""Deterministic identifiers: every stream id derives from a business key.

A code names a thing for people; its UUID is ``uuid5(namespace, code)``, so the same
program file or the same POS request always addresses the same stream, and no lookup
table is needed to go from a code to its stream. The ids the write path computes for
every movement are memoised (SHA-1 per call is a measurable share of a movement's cost).
"""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID, uuid5

_CACHED = 1 << 18

_ROOT = UUID("6f1c9a52-3f0e-4d55-9a3b-0c0e6c2b7a11")

NODE = uuid5(_ROOT, "node")
CAMPAIGN = uuid5(_ROOT, "campaign")
PROMOTION = uuid5(_ROOT, "promotion")
CLUSTER = uuid5(_ROOT, "cluster")
CARD = uuid5(_ROOT, "card")
CUSTOMER = uuid5(_ROOT, "customer")
ACCOUNT = uuid5(_ROOT, "account")
BUDGET = uuid5(_ROOT, "budget")
PRIZE = uuid5(_ROOT, "prize")
NETWORK_ID = uuid5(_ROOT, "network")
OPERATOR = uuid5(_ROOT, "operator")
SIGN_INS = uuid5(_ROOT, "sign-ins")
API_CLIENT = uuid5(_ROOT, "api-client")
CATALOG_ID = uuid5(_ROOT, "catalog")
TRANSLATIONS_ID = uuid5(_ROOT, "translations")
PRIVACY_POLICY_ID = uuid5(_ROOT, "privacy-policy")
CONSENT_CHECKS_ID = uuid5(_ROOT, "consent-checks")
RETENTION_ID = uuid5(_ROOT, "retention")


@lru_cache(maxsize=_CACHED)
def node_id(code: str) -> UUID:
    return uuid5(NODE, code)


def campaign_id(code: str) -> UUID:
    return uuid5(CAMPAIGN, code)


def promotion_id(code: str) -> UUID:
    return uuid5(PROMOTION, code)


def cluster_id(code: str) -> UUID:
    return uuid5(CLUSTER, code)


@lru_cache(maxsize=_CACHED)
def card_id(code: str) -> UUID:
    return uuid5(CARD, code)


@lru_cache(maxsize=_CACHED)
def customer_id_for_card(card_code: str) -> UUID:
    """The customer an anonymous card belongs to until it is registered."""
    return uuid5(CUSTOMER, f"card:{card_code}")


def customer_id(ref: str) -> UUID:
    """The customer known to an external system (CRM, import) under ``ref``."""
    return uuid5(CUSTOMER, f"ref:{ref}")


@lru_cache(maxsize=_CACHED)
def account_id(campaign: UUID, customer: UUID) -> UUID:
    return uuid5(ACCOUNT, f"{campaign}/{customer}")


@lru_cache(maxsize=_CACHED)
def budget_id(promotion: UUID) -> UUID:
    return uuid5(BUDGET, str(promotion))


@lru_cache(maxsize=_CACHED)
def prize_id(campaign: UUID, code: str) -> UUID:
    return uuid5(PRIZE, f"{campaign}/{code}")


def operator_id(username: str) -> UUID:
    return uuid5(OPERATOR, username)


def sign_ins_id(username: str) -> UUID:
    return uuid5(SIGN_INS, username)


def api_client_id(name: str) -> UUID:
    return uuid5(API_CLIENT, name)


SEGMENTATION_POLICY_ID = uuid5(_ROOT, "segmentation-policy")
RFM_RUN = uuid5(_ROOT, "rfm-run")


def rfm_run_id(key: str) -> UUID:
    """The run of the parameters and log position that ``key`` digests."""
    return uuid5(RFM_RUN, key)
