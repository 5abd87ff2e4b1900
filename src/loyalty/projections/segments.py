"""Segment snapshots: each RFM run's sizes, and every customer's segment as the runs left
it, as documents (PostgreSQL or MongoDB), projected from the runs' events in the ledger
(``RfmRun.Computed``, ``RfmRun.SegmentsChanged``): rebuildable like any read model, and
what outreach and dashboards read to target a segment."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from loyalty.adapters.documents import DocumentChange
from loyalty.domain.segmentation import RfmRun
from loyalty.projections import feed
from loyalty.projections.documents import DocumentModel
from loyalty.projections.feed import Fact, topic_of

RUNS, CUSTOMERS = "runs", "customers"


class SegmentSnapshots(DocumentModel):
    name = "segments"
    topics = (topic_of(RfmRun.Computed), topic_of(RfmRun.SegmentsChanged))

    def changes(self, facts: Sequence[Fact]) -> list[DocumentChange]:
        found: list[DocumentChange] = []
        runs: dict[str, feed.RfmRunComputed] = {}
        for fact in facts:
            run_id = str(fact.originator_id)
            body = fact.body
            if isinstance(body, feed.RfmRunComputed):
                runs[run_id] = body
                found.append(run_document(run_id, body))
            else:
                as_of = self.as_of(run_id, runs)
                found += [customer_document(run_id, as_of, c) for c in body.changes]
        return found

    def as_of(self, run_id: str, runs: dict[str, feed.RfmRunComputed]) -> str | None:
        """The as-of day of a run, computed in this batch or an earlier one."""
        if run_id in runs:
            return runs[run_id].parameters.as_of.isoformat()
        stored = self.view.get(RUNS, run_id)
        return str(stored["as_of"]) if stored else None


def run_document(run_id: str, run: feed.RfmRunComputed) -> DocumentChange:
    return DocumentChange(
        collection=RUNS,
        key=run_id,
        body={
            "as_of": run.parameters.as_of.isoformat(),
            "position": run.position,
            "previous": str(run.previous) if run.previous else None,
            "customers": run.customers,
            "sizes": msgspec.to_builtins(run.sizes),
            "digest": run.digest,
            "computed_at": run.timestamp.isoformat(),
        },
    )


def customer_document(run_id: str, as_of: str | None, change: feed.SegmentChange) -> DocumentChange:
    """A customer's segment after a run (``None``: no longer scored: the document goes)."""
    return DocumentChange(
        collection=CUSTOMERS,
        key=str(change.customer_id),
        body=None
        if change.after is None
        else {"segment": change.after, "previous": change.before, "run_id": run_id, "as_of": as_of},
    )
