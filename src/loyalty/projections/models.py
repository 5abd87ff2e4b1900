"""Every read model the read side keeps, by name, and everything that follows the log."""

from __future__ import annotations

from loyalty.projections.balances import Balances
from loyalty.projections.customer360 import Customer360
from loyalty.projections.dashboard import Dashboard
from loyalty.projections.publication import Publication
from loyalty.projections.revenue import Revenue
from loyalty.projections.runner import ReadModel
from loyalty.projections.segments import SegmentSnapshots
from loyalty.settings import Settings

READ_MODELS: dict[str, type[ReadModel]] = {
    model.name: model for model in (Balances, Revenue, Customer360, SegmentSnapshots, Dashboard)
}


def followers(settings: Settings) -> dict[str, type[ReadModel]]:
    """What ``loyalty projections run`` keeps up with the log: the read models, and the
    publication of events to NATS unless ``LOYALTY_NATS_URL`` is empty."""
    if not settings.nats_url:
        return READ_MODELS
    return {**READ_MODELS, Publication.name: Publication}
