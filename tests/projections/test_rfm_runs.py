"""RFM runs over the revenue facts: measures checked by hand, runs stored once and
recorded in the ledger with the segment changes since the run before."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import psycopg
import pytest
from eventsourcing.persistence import ProgrammingError
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from loyalty.bootstrap import Services
from loyalty.commands.schemas import PostMovement
from loyalty.domain import ids
from loyalty.domain.segmentation import RfmParameters, RfmRun, Thresholds
from loyalty.projections.revenue import Revenue
from loyalty.projections.rfm_runs import compute_run
from loyalty.settings import Settings
from tests.builders import START, Clock, line, program, purchase, return_of
from tests.projections.reading import caught_up

DAY = timedelta(days=1)
AS_OF = date(2026, 6, 20)
FIXED = Thresholds(
    mode="fixed",
    recency_days=(2, 5, 10, 15),
    frequency=(2, 3, 4, 5),
    monetary=(Decimal(20), Decimal(50), Decimal(100), Decimal(200)),
)


def post_all(services: Services, clock: Clock, movements: list[PostMovement]) -> None:
    for movement in movements:
        clock.now = max(clock.now, movement.occurred_at + timedelta(minutes=1))
        (outcome,) = services.desk.post([movement])
        assert outcome.status == 201, outcome  # type: ignore[union-attr]


def spending(services: Services, clock: Clock) -> None:
    """C1 buys three times (the last on 18 June, one purchase partly returned), C2 once on
    2 June, C3 twice."""
    at = START + timedelta(hours=3)
    post_all(
        services,
        clock,
        [
            purchase("a1", line("BREAD", "40.00"), at=at),
            purchase("a2", line("WINE", "60.00"), line("MILK", "5.00"), at=at + 5 * DAY),
            return_of("a3", "a2", line("WINE", "60.00"), at=at + 6 * DAY),
            purchase("a4", line("BREAD", "30.00"), at=at + 17 * DAY),
            purchase("b1", line("BREAD", "15.00"), card="C2", at=at + DAY),
            purchase("c1", line("BREAD", "120.00"), card="C3", at=at + 10 * DAY),
            purchase("c2", line("BREAD", "100.00"), card="C3", at=at + 12 * DAY),
        ],
    )


@pytest.fixture
def chain(services: Services, clock: Clock) -> Services:
    services.applier.apply(program())
    clock.advance(hours=2)
    return services


def test_a_run_scores_recency_frequency_and_net_spend_as_of_its_day(
    chain: Services, clock: Clock, settings: Settings
) -> None:
    spending(chain, clock)
    parameters = RfmParameters(as_of=AS_OF, thresholds=FIXED)

    with caught_up(settings, [Revenue]):
        run = compute_run(chain.ledger, settings, parameters, by="operator:mia")
    scored = {row["customer_id"]: row for row in run_scores(settings, run.run_id)}

    c1, c2, c3 = (ids.customer_id_for_card(card) for card in ("C1", "C2", "C3"))
    assert {
        c: (s["recency_days"], s["frequency"], s["monetary"], s["r"], s["f"], s["m"])
        for c, s in scored.items()
    } == {
        c1: (2, 3, Decimal("75.00"), 5, 3, 3),
        c2: (18, 1, Decimal("15.00"), 1, 1, 1),
        c3: (7, 2, Decimal("220.00"), 3, 2, 5),
    }
    assert {c: s["segment"] for c, s in scored.items()} == {
        c1: "potential_loyalist",
        c2: "lost",
        c3: "loyal",
    }
    assert (run.customers, run.as_of, run.computed_by) == (3, AS_OF, "operator:mia")
    sizes = {s.segment: s.customers for s in run.sizes}
    assert sizes["loyal"] == sizes["lost"] == sizes["potential_loyalist"] == 1
    assert sum(sizes.values()) == 3


def test_a_run_as_of_a_past_day_ignores_the_facts_after_it(
    chain: Services, clock: Clock, settings: Settings
) -> None:
    spending(chain, clock)
    parameters = RfmParameters(as_of=date(2026, 6, 9), thresholds=FIXED)

    with caught_up(settings, [Revenue]):
        run = compute_run(chain.ledger, settings, parameters, by="operator:mia")
    scored = {row["customer_id"]: row for row in run_scores(settings, run.run_id)}

    c1, c2 = (ids.customer_id_for_card(card) for card in ("C1", "C2"))
    assert {c: (s["recency_days"], s["frequency"], s["monetary"]) for c, s in scored.items()} == {
        c1: (3, 2, Decimal("45.00")),
        c2: (7, 1, Decimal("15.00")),
    }


def test_the_same_facts_and_parameters_give_the_stored_run_and_one_ledger_record(
    chain: Services, clock: Clock, settings: Settings
) -> None:
    spending(chain, clock)
    parameters = RfmParameters(as_of=AS_OF)

    with caught_up(settings, [Revenue]):
        first = compute_run(chain.ledger, settings, parameters, by="operator:mia")
        again = compute_run(chain.ledger, settings, parameters, by="operator:root")

    recorded = chain.ledger.repository.get(first.run_id)
    assert again == first
    assert isinstance(recorded, RfmRun) and recorded.digest == first.digest
    assert recorded.version == 2  # computed, then the three customers' first segments


def test_a_later_run_records_the_segment_changes_since_the_run_before(
    chain: Services, clock: Clock, settings: Settings
) -> None:
    spending(chain, clock)
    with caught_up(settings, [Revenue]):
        first = compute_run(
            chain.ledger, settings, RfmParameters(as_of=AS_OF, thresholds=FIXED), by="t"
        )
    post_all(
        chain,
        clock,
        [
            purchase(f"b{n}", line("BREAD", "50.00"), card="C2", at=clock.now + n * DAY)
            for n in (2, 3, 4, 5)
        ],
    )
    with caught_up(settings, [Revenue]):
        later = compute_run(
            chain.ledger,
            settings,
            RfmParameters(as_of=clock.now.date(), thresholds=FIXED),
            by="t",
        )

    recorded = chain.ledger.repository.get(later.run_id)
    assert later.previous == first.run_id
    assert isinstance(recorded, RfmRun) and recorded.changes >= 1
    before = {r["customer_id"]: r["segment"] for r in run_scores(settings, first.run_id)}
    after = {r["customer_id"]: r["segment"] for r in run_scores(settings, later.run_id)}
    assert before[ids.customer_id_for_card("C2")] == "lost"
    assert after[ids.customer_id_for_card("C2")] != "lost"


def run_scores(settings: Settings, run_id: object) -> list[dict[str, object]]:
    with psycopg.connect(settings.conninfo(), row_factory=dict_row) as conn:
        return conn.execute(
            SQL("SELECT * FROM {}.rfm_scores WHERE run_id = %s ORDER BY customer_id").format(
                Identifier(settings.read_schema)
            ),
            (run_id,),
        ).fetchall()


def test_a_run_the_ledger_refused_to_record_is_not_stored_and_is_computed_again(
    chain: Services, clock: Clock, settings: Settings
) -> None:
    spending(chain, clock)
    parameters = RfmParameters(as_of=AS_OF)
    with psycopg.connect(settings.conninfo(), autocommit=True) as conn:
        conn.execute(
            SQL(
                "CREATE FUNCTION {schema}.refuse() RETURNS trigger LANGUAGE plpgsql"
                " AS $$ BEGIN RAISE EXCEPTION 'refused'; END $$;"
                " CREATE TRIGGER refuse_rfm_runs BEFORE INSERT ON {schema}.ledger_events"
                " FOR EACH ROW WHEN (NEW.topic LIKE '%%RfmRun%%')"
                " EXECUTE FUNCTION {schema}.refuse()"
            ).format(schema=Identifier(settings.pg_schema))
        )
        with caught_up(settings, [Revenue]), pytest.raises(ProgrammingError, match="refused"):
            compute_run(chain.ledger, settings, parameters, by="t")
        stored_after_refusal = stored_runs(settings)
        conn.execute(
            SQL("DROP TRIGGER refuse_rfm_runs ON {}.ledger_events").format(
                Identifier(settings.pg_schema)
            )
        )

    run = compute_run(chain.ledger, settings, parameters, by="t")

    assert stored_after_refusal == 0
    assert stored_runs(settings) == 1 and len(run_scores(settings, run.run_id)) == 3
    recorded = chain.ledger.repository.get(run.run_id)
    assert isinstance(recorded, RfmRun) and recorded.changes == 3


def stored_runs(settings: Settings) -> int:
    with psycopg.connect(settings.conninfo()) as conn:
        row = conn.execute(
            SQL("SELECT count(*) FROM {}.rfm_runs").format(Identifier(settings.read_schema))
        ).fetchone()
    assert row is not None
    return int(row[0])


def test_a_run_before_anyone_bought_scores_no_one_and_the_next_run_starts_from_it(
    chain: Services, clock: Clock, settings: Settings
) -> None:
    with caught_up(settings, [Revenue]):
        empty = compute_run(chain.ledger, settings, RfmParameters(as_of=AS_OF), by="t")
    spending(chain, clock)
    with caught_up(settings, [Revenue]):
        later = compute_run(chain.ledger, settings, RfmParameters(as_of=AS_OF), by="t")

    assert empty.customers == 0 and all(size.customers == 0 for size in empty.sizes)
    assert later.previous == empty.run_id and later.customers == 3
    recorded = chain.ledger.repository.get(later.run_id)
    assert isinstance(recorded, RfmRun) and recorded.changes == 3
