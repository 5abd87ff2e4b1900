"""Bulk loading: ``loyalty ingest FILE`` records NDJSON movements through the same path as
the tills, in groups, and reports what was accepted, replayed and rejected (and why).

A re-run of the same file appends nothing: every line is idempotent on its
(terminal, movement_id), exactly as over HTTP.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import BinaryIO

import msgspec

from loyalty.commands.movements import MovementDesk, Recorded
from loyalty.commands.schemas import PostMovement

_decoder = msgspec.json.Decoder(PostMovement)
_encoder = msgspec.json.Encoder()


class Rejected(msgspec.Struct, frozen=True, kw_only=True):
    """One line of the rejects file."""

    line: int
    movement_id: str | None
    code: str
    message: str


class IngestSummary(msgspec.Struct, kw_only=True):
    lines: int = 0
    accepted: int = 0
    replayed: int = 0
    rejected: int = 0
    reasons: dict[str, int] = msgspec.field(default_factory=dict)


Parsed = tuple[int, PostMovement | Rejected]


def parse(lines: Iterable[bytes]) -> Iterator[Parsed]:
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            yield number, _decoder.decode(raw)
        except msgspec.DecodeError as error:
            code = (
                "invalid_field" if isinstance(error, msgspec.ValidationError) else "malformed_json"
            )
            yield number, Rejected(line=number, movement_id=None, code=code, message=str(error))


def ingest(
    desk: MovementDesk,
    source: BinaryIO,
    rejects: BinaryIO,
    batch_size: int = 500,
    progress: Callable[[IngestSummary], None] = lambda _: None,
) -> IngestSummary:
    summary = IngestSummary()
    reasons: Counter[str] = Counter()
    parsed = parse(source)
    while batch := list(islice(parsed, batch_size)):
        commands = [(n, item) for n, item in batch if isinstance(item, PostMovement)]
        outcomes = desk.post([command for _, command in commands])
        results: dict[int, Recorded | Rejected] = {
            n: item for n, item in batch if isinstance(item, Rejected)
        }
        for (number, command), outcome in zip(commands, outcomes, strict=True):
            results[number] = (
                outcome
                if isinstance(outcome, Recorded)
                else Rejected(
                    line=number,
                    movement_id=command.movement_id,
                    code=outcome.code,
                    message=outcome.message,
                )
            )
        for number in sorted(results):
            result = results[number]
            summary.lines += 1
            if isinstance(result, Rejected):
                summary.rejected += 1
                reasons[result.code] += 1
                rejects.write(_encoder.encode(result) + b"\n")
            elif result.status == 201:
                summary.accepted += 1
            else:
                summary.replayed += 1
        summary.reasons = dict(reasons)
        progress(summary)
    return summary
