"""Every read model the read side keeps, by name."""

from __future__ import annotations

from loyalty.projections.balances import Balances
from loyalty.projections.customer360 import Customer360
from loyalty.projections.dashboard import Dashboard
from loyalty.projections.revenue import Revenue
from loyalty.projections.runner import ReadModel
from loyalty.projections.segments import SegmentSnapshots

READ_MODELS: dict[str, type[ReadModel]] = {
    model.name: model for model in (Balances, Revenue, Customer360, SegmentSnapshots, Dashboard)
}
