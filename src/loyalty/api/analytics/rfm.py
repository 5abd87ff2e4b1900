"""RFM over HTTP: the saved parameters, runs on demand, each run's segment sizes and
members, and the migration of customers between two runs.

Scope: whole-network callers see every customer scored; a scoped operator or client sees
the customers whose home store lies in their scope (an anonymous card has no home store,
so it is out of every scoped caller's reach), counted and listed alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Controller, Request, Response, get, post, put
from litestar.datastructures import State
from litestar.params import FromPath, FromQuery, JSONBody, Parameter
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composed, Identifier

from loyalty.api.access import Action, actor, caller, covers_everywhere, requires
from loyalty.api.analytics.formats import negotiated
from loyalty.api.analytics.revenue import caught_up_to, reported_stores
from loyalty.api.i18n import request_messages
from loyalty.api.lists import Limit, Offset, Page
from loyalty.domain.segmentation import RfmPolicy
from loyalty.projections.balances import Balances
from loyalty.projections.revenue import Revenue
from loyalty.projections.rfm_runs import RunView, compute_run, policy_of, run_of, runs
from loyalty.projections.tables import serving_tables


class PolicyView(msgspec.Struct, frozen=True, kw_only=True):
    policy: RfmPolicy
    saved_by: str | None


class RunRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    as_of: date | None = None
    """The day scored (default: today, UTC)."""
    policy: RfmPolicy | None = None
    """Scale, thresholds and rules (default: the saved ones)."""


class SegmentView(msgspec.Struct, frozen=True, kw_only=True):
    segment: str
    name: str
    """The segment's name in the request's language."""
    customers: int


class RunSummary(msgspec.Struct, frozen=True, kw_only=True):
    run_id: UUID
    as_of: date
    position: int
    previous: UUID | None
    customers: int
    """Customers scored that the caller reaches."""
    segments: list[SegmentView]
    digest: str
    computed_by: str
    computed_at: datetime
    policy: RfmPolicy


class Member(msgspec.Struct, frozen=True, kw_only=True):
    customer_id: UUID
    cards: list[str]
    segment: str
    r: int
    f: int
    m: int
    recency_days: int
    frequency: int
    monetary: Decimal


class Migration(msgspec.Struct, frozen=True, kw_only=True):
    from_segment: str | None
    to_segment: str | None
    customers: int


RunId = Annotated[UUID, Parameter(description="an RFM run's id")]


def reached_stores(request: Request[object, object, State]) -> list[str] | None:
    """The home stores whose customers the caller reaches; ``None``: every customer."""
    services = request.app.state.services
    network = services.desk.program.network()
    session = caller(request)
    if covers_everywhere(session, network):
        return None
    return list(reported_stores(session, network, None, by_node=False))


def scoped(
    curs: Cursor[DictRow], request: Request[object, object, State], alias: str
) -> tuple[Composed, list[Any]]:
    """The join that keeps the caller's customers (of table ``alias``), and its parameters."""
    stores = reached_stores(request)
    if stores is None:
        return SQL("").format(), []
    settings = request.app.state.services.settings
    tables = serving_tables(curs, settings, Balances.name)
    if tables is None:
        return SQL("JOIN (SELECT NULL::uuid AS customer_id) c ON false").format(), []
    return (
        SQL("JOIN {} c ON c.customer_id = {}.customer_id AND c.home_store = ANY(%s)").format(
            tables("customers"), Identifier(alias)
        ),
        [stores],
    )


def summary_of(
    curs: Cursor[DictRow], request: Request[object, object, State], run: RunView
) -> RunSummary:
    names = request_messages(request)[1]
    counts = segment_counts(curs, request, run)
    segments = [
        SegmentView(
            segment=code,
            name=names.get(f"segment_{code}", code),
            customers=counts.get(code, 0),
        )
        for code in dict.fromkeys(rule.segment for rule in run.parameters.rules)
    ]
    return RunSummary(
        run_id=run.run_id,
        as_of=run.as_of,
        position=run.position,
        previous=run.previous,
        customers=sum(counts.values()),
        segments=segments,
        digest=run.digest,
        computed_by=run.computed_by,
        computed_at=run.computed_at,
        policy=RfmPolicy(
            scale=run.parameters.scale,
            thresholds=run.parameters.thresholds,
            rules=run.parameters.rules,
        ),
    )


def segment_counts(
    curs: Cursor[DictRow], request: Request[object, object, State], run: RunView
) -> Mapping[str, int]:
    if reached_stores(request) is None:
        return {size.segment: size.customers for size in run.sizes}
    join, params = scoped(curs, request, "s")
    settings = request.app.state.services.settings
    curs.execute(
        SQL(
            "SELECT s.segment, count(*) AS customers FROM {}.rfm_scores s {}"
            " WHERE s.run_id = %s GROUP BY s.segment"
        ).format(Identifier(settings.read_schema), join),
        [*params, run.run_id],
    )
    return {row["segment"]: row["customers"] for row in curs.fetchall()}


class AnalyticsRfmController(Controller):
    path = "/api/v1/analytics/rfm"
    tags = ("Analytics",)

    @get(
        "/policy",
        operation_id="getRfmPolicy",
        summary="The saved RFM parameters: scale, thresholds, segment rules",
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
    )
    def get_policy(self, request: Request[object, object, State]) -> PolicyView:
        policy = policy_of(request.app.state.services.ledger)
        return PolicyView(policy=policy.policy, saved_by=policy.by)

    @put(
        "/policy",
        operation_id="saveRfmPolicy",
        summary="Save the RFM parameters scheduled runs use",
        description="Rules must cover every score pattern exactly once and every segment must"
        " be reachable; a refusal names the first problem (invalid_rfm_parameters).",
        sync_to_thread=True,
        guards=[requires(Action.RUN_ANALYTICS)],
    )
    def save_policy(
        self, request: Request[object, object, State], data: JSONBody[RfmPolicy]
    ) -> PolicyView:
        ledger = request.app.state.services.ledger
        policy = policy_of(ledger)
        policy.save(data, by=actor(request))
        ledger.save(policy)
        return PolicyView(policy=policy.policy, saved_by=policy.by)

    @post(
        "/runs",
        operation_id="runRfm",
        summary="Score every customer now (or answer the stored run of the same facts)",
        sync_to_thread=True,
        guards=[requires(Action.RUN_ANALYTICS)],
    )
    def run(
        self,
        request: Request[object, object, State],
        data: JSONBody[RunRequest],
        position: FromQuery[Annotated[int | None, Parameter(ge=1)]] = None,
    ) -> RunSummary:
        services = request.app.state.services
        caught_up_to(request, Revenue, position)
        policy = data.policy or policy_of(services.ledger).policy
        as_of = data.as_of or datetime.now(UTC).date()
        run = compute_run(services.ledger, services.settings, policy.on(as_of), actor(request))
        with services.ledger.ledger_recorder.datastore.transaction() as curs:
            return summary_of(curs, request, run)

    @get(
        "/runs",
        operation_id="listRfmRuns",
        summary="The RFM runs, newest first",
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
    )
    def list_runs(
        self, request: Request[object, object, State], limit: Limit = 50, offset: Offset = 0
    ) -> Page[RunSummary]:
        services = request.app.state.services
        with services.ledger.ledger_recorder.datastore.transaction() as curs:
            found = runs(curs, services.settings)
            items = [summary_of(curs, request, run) for run in found[offset : offset + limit]]
        return Page(items=items, total=len(found), limit=limit, offset=offset)

    @get(
        "/runs/{run_id:uuid}",
        operation_id="getRfmRun",
        summary="One run: its parameters and the size of each segment in the caller's reach",
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
    )
    def get_run(
        self, request: Request[object, object, State], run_id: FromPath[UUID]
    ) -> RunSummary:
        services = request.app.state.services
        with services.ledger.ledger_recorder.datastore.transaction() as curs:
            return summary_of(curs, request, run_of(curs, services.settings, run_id))

    @get(
        "/runs/{run_id:uuid}/members",
        operation_id="listRfmMembers",
        summary="A run's customers (of one segment), with their scores and cards, by page",
        description="JSON, CSV (Accept: text/csv) or Parquet (application/vnd.apache.parquet).",
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
    )
    def members(
        self,
        request: Request[object, object, State],
        run_id: FromPath[UUID],
        segment: FromQuery[Annotated[str | None, Parameter(max_length=64)]] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response[Any]:
        services = request.app.state.services
        settings = services.settings
        with services.ledger.ledger_recorder.datastore.transaction() as curs:
            run_of(curs, settings, run_id)
            join, params = scoped(curs, request, "s")
            balances = serving_tables(curs, settings, Balances.name)
            cards = (
                SQL(
                    "(SELECT array_agg(code ORDER BY code) FROM {} k"
                    " WHERE k.customer_id = s.customer_id)"
                ).format(balances("cards"))
                if balances
                else SQL("ARRAY[]::text[]")
            )
            curs.execute(
                SQL(
                    "SELECT s.customer_id, {} AS cards, s.segment, s.r, s.f, s.m,"
                    " s.recency_days, s.frequency, s.monetary"
                    " FROM {}.rfm_scores s {} WHERE s.run_id = %s"
                    " AND (%s::text IS NULL OR s.segment = %s)"
                    " ORDER BY s.customer_id LIMIT %s OFFSET %s"
                ).format(cards, Identifier(settings.read_schema), join),
                [*params, run_id, segment, segment, limit, offset],
            )
            items = [msgspec.convert(row, Member) for row in curs.fetchall()]
        return negotiated(request, items, f"rfm-{run_id}")

    @get(
        "/migration",
        operation_id="rfmMigration",
        summary="How the customers of one run moved between segments by a later run",
        description="Customers only in the later run come from no segment (null), customers"
        " only in the earlier one go to none.",
        sync_to_thread=True,
        guards=[requires(Action.READ_ANALYTICS)],
    )
    def migration(
        self,
        request: Request[object, object, State],
        before: FromQuery[UUID],
        after: FromQuery[UUID],
    ) -> Response[Any]:
        services = request.app.state.services
        settings = services.settings
        with services.ledger.ledger_recorder.datastore.transaction() as curs:
            run_of(curs, settings, before)
            run_of(curs, settings, after)
            join, params = scoped(curs, request, "m")
            curs.execute(
                SQL(
                    "SELECT m.from_segment, m.to_segment, count(*) AS customers FROM ("
                    " SELECT coalesce(a.customer_id, b.customer_id) AS customer_id,"
                    " a.segment AS from_segment, b.segment AS to_segment"
                    " FROM (SELECT customer_id, segment FROM {s}.rfm_scores WHERE run_id = %s) a"
                    " FULL JOIN (SELECT customer_id, segment FROM {s}.rfm_scores"
                    " WHERE run_id = %s) b ON a.customer_id = b.customer_id) m {join}"
                    " GROUP BY m.from_segment, m.to_segment"
                    " ORDER BY m.from_segment NULLS FIRST, m.to_segment NULLS FIRST"
                ).format(s=Identifier(settings.read_schema), join=join),
                [before, after, *params],
            )
            rows = [msgspec.convert(row, Migration) for row in curs.fetchall()]
        return negotiated(request, rows, "rfm-migration")
