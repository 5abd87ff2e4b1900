"""Audit API, read-only, for auditors (and admins, and clients of the Audit family): the
hash chain walked, the signed checkpoints with the key that verifies them, and a replay of
the rule engine over the ledger."""

from __future__ import annotations

from datetime import datetime

import msgspec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from litestar import Controller, Request, get, post
from litestar.datastructures import State
from litestar.params import JSONBody

from loyalty.api.access import Action, requires
from loyalty.commands.audit import Auditor, ChainReport, Checkpoint
from loyalty.commands.replay import ReplayReport, replay


class ReplayRequest(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    start: datetime | None = msgspec.field(default=None, name="from")
    end: datetime | None = msgspec.field(default=None, name="to")


class PublicKey(msgspec.Struct, frozen=True, kw_only=True):
    algorithm: str
    key: str
    """Raw public key, hex."""


def auditor_of(request: Request[object, object, State]) -> Auditor:
    auditor: Auditor = request.app.state.services.auditor
    return auditor


class AuditController(Controller):
    path = "/api/v1/audit"
    tags = ("Audit",)

    @get(
        "/chain",
        operation_id="verifyChain",
        summary="Walk the hash chain and the signed checkpoints; the first broken link",
        sync_to_thread=True,
        guards=[requires(Action.AUDIT_LOG)],
    )
    def chain(self, request: Request[object, object, State]) -> ChainReport:
        return auditor_of(request).verify()

    @get(
        "/checkpoints",
        operation_id="listCheckpoints",
        summary="The signed checkpoints of the chain (link and signature in base64)",
        sync_to_thread=True,
        guards=[requires(Action.AUDIT_LOG)],
    )
    def checkpoints(self, request: Request[object, object, State]) -> list[Checkpoint]:
        return auditor_of(request).checkpoints()

    @get(
        "/public-key",
        operation_id="checkpointPublicKey",
        summary="The Ed25519 key that verifies the checkpoints' signatures",
        guards=[requires(Action.AUDIT_LOG)],
    )
    async def public_key(self, request: Request[object, object, State]) -> PublicKey:
        raw = auditor_of(request).key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        return PublicKey(algorithm="ed25519", key=raw.hex())

    @post(
        "/replay",
        operation_id="replayLedger",
        summary="Derive every movement (from/to by occurred_at) again and compare bit for bit",
        status_code=200,
        sync_to_thread=True,
        guards=[requires(Action.AUDIT_LOG)],
    )
    def replay(
        self, request: Request[object, object, State], data: JSONBody[ReplayRequest]
    ) -> ReplayReport:
        return replay(auditor_of(request).ledger, data.start, data.end)
