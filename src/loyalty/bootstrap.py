"""The composition root: builds the services from settings, and nothing connects before."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from loyalty.adapters.secrets import checkpoint_key, secret_key
from loyalty.commands.apply import ProgramApplier
from loyalty.commands.audit import Auditor
from loyalty.commands.auth import Authenticator
from loyalty.commands.catalog import CatalogDesk
from loyalty.commands.ledger import Ledger
from loyalty.commands.movements import MovementDesk
from loyalty.commands.periodic import Periodic
from loyalty.commands.retention import apply_retention
from loyalty.commands.writer import GroupCommitWriter
from loyalty.domain.operator import Role
from loyalty.settings import Settings


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    settings: Settings
    ledger: Ledger
    desk: MovementDesk
    writer: GroupCommitWriter
    applier: ProgramApplier
    authenticator: Authenticator
    catalog: CatalogDesk
    auditor: Auditor
    checkpoints: Periodic
    retention: Periodic

    def start_jobs(self) -> None:
        """The server's timers: signing the log's head, applying retention periods."""
        self.checkpoints.start()
        self.retention.start()

    def close(self) -> None:
        self.retention.stop()
        self.checkpoints.stop()
        self.writer.stop()
        self.ledger.close()


def build_services(settings: Settings, clock: Callable[[], datetime] = utc_now) -> Services:
    ledger = Ledger(settings)
    desk = MovementDesk(
        ledger,
        clock,
        timedelta(seconds=settings.max_future_skew_s),
        cached_aggregates=settings.aggregate_cache,
    )
    key = secret_key(settings)
    auditor = Auditor(ledger, checkpoint_key(key))
    return Services(
        settings=settings,
        ledger=ledger,
        desk=desk,
        writer=GroupCommitWriter(desk, settings.max_batch),
        applier=ProgramApplier(ledger, clock),
        authenticator=Authenticator(
            ledger,
            clock,
            key,
            access_ttl=timedelta(seconds=settings.access_token_ttl_s),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_s),
            two_factor_roles=frozenset(
                Role(r.strip()) for r in settings.two_factor_roles.split(",") if r.strip()
            ),
        ),
        catalog=CatalogDesk(ledger),
        auditor=auditor,
        checkpoints=Periodic(
            "checkpoints", settings.checkpoint_interval_s, lambda: auditor.sign_head(clock())
        ),
        retention=Periodic(
            "retention",
            settings.retention_interval_h * 3600,
            lambda: apply_retention(
                ledger,
                settings.retention_profile_days,
                settings.retention_auth_days,
                clock(),
                "scheduler",
            ),
        ),
    )
