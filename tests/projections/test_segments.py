"""Segment snapshots, projected from the RFM runs' events into documents (PostgreSQL and
MongoDB alike): each run's sizes and every customer's latest segment."""

from __future__ import annotations

from datetime import timedelta

from loyalty.bootstrap import Services
from loyalty.domain import ids
from loyalty.domain.segmentation import RfmParameters
from loyalty.projections.registry import Registry
from loyalty.projections.revenue import Revenue
from loyalty.projections.rfm_runs import compute_run
from loyalty.projections.runner import read_datastore
from loyalty.projections.segments import CUSTOMERS, RUNS, SegmentSnapshots
from loyalty.settings import Settings
from tests.builders import Clock, line, program, purchase
from tests.projections.reading import caught_up
from tests.projections.test_rfm_runs import AS_OF, FIXED, post_all, spending


def snapshot(settings: Settings, collection: str, key: str) -> dict[str, object] | None:
    datastore = read_datastore(settings)
    model = SegmentSnapshots.open(
        settings, Registry(settings, datastore).serving(SegmentSnapshots).generation, datastore
    )
    try:
        return model.view.get(collection, key)
    finally:
        model.close()
        datastore.close()


def test_each_run_and_each_customers_latest_segment_become_documents(
    services: Services, clock: Clock, store: Settings
) -> None:
    services.applier.apply(program())
    clock.advance(hours=2)
    spending(services, clock)
    with caught_up(store, [Revenue]):
        first = compute_run(
            services.ledger, store, RfmParameters(as_of=AS_OF, thresholds=FIXED), "t"
        )
    post_all(
        services,
        clock,
        [
            purchase(f"z{n}", line("BREAD", "50.00"), card="C2", at=clock.now + timedelta(days=n))
            for n in (1, 2, 3, 4)
        ],
    )
    with caught_up(store, [Revenue]):
        later = compute_run(
            services.ledger, store, RfmParameters(as_of=clock.now.date(), thresholds=FIXED), "t"
        )

    with caught_up(store, [SegmentSnapshots]):
        run = snapshot(store, RUNS, str(first.run_id))
        c2 = snapshot(store, CUSTOMERS, str(ids.customer_id_for_card("C2")))
        c3 = snapshot(store, CUSTOMERS, str(ids.customer_id_for_card("C3")))

    assert run is not None and run["customers"] == 3
    assert {s["segment"]: s["customers"] for s in run["sizes"]}["lost"] == 1  # type: ignore[union-attr, index]
    assert c2 is not None and c2["previous"] == "lost" and c2["segment"] != "lost"
    assert c2["run_id"] == str(later.run_id) and c2["as_of"] == clock.now.date().isoformat()
    assert c3 is not None and c3["segment"] == "loyal" and c3["run_id"] == str(first.run_id)
