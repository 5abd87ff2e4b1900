"""Group commit: the one thread that records movements, many to a transaction.

Requests queue up while the previous group is being committed; the writer takes all that
waits (up to ``max_batch``) as the next group. Under load the groups grow and the table
lock, the ``NOTIFY`` and the commit are paid once per group; alone, a request is its own
group and waits for nobody. The writer also serves card reads, after the writes queued
before them (read-your-writes), and authenticates terminal keys against the program it
has just refreshed.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any

from loyalty.commands.movements import MovementDesk, Outcome
from loyalty.commands.schemas import CardView, PostMovement
from loyalty.domain.errors import AuthenticationFailed, LoyaltyError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PostJob:
    key_digest: str
    command: PostMovement


@dataclass(frozen=True, slots=True)
class CardJob:
    key_digest: str
    card: str


Job = PostJob | CardJob


@dataclass(slots=True)
class Ticket:
    job: Job
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


class ServiceUnavailable(LoyaltyError):
    status = 503
    code = "service_unavailable"


class GroupCommitWriter:
    def __init__(self, desk: MovementDesk, max_batch: int = 256) -> None:
        self.desk = desk
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[Ticket | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="group-commit", daemon=True)
        self._started = False

    def start(self) -> None:
        if not self._started:
            self._started = True
            self._thread.start()

    def stop(self) -> None:
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout=10)

    async def submit(self, job: Job) -> Any:
        """The job's result: an :data:`Outcome` for a post, a :class:`CardView` for a read."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._queue.put(Ticket(job, future, loop))
        result = await future
        if isinstance(result, LoyaltyError):
            raise result
        return result

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            tickets = [first]
            while len(tickets) < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                tickets.append(nxt)
            results = self._results(tickets)
            deliver(tickets, results)

    def _results(self, tickets: list[Ticket]) -> list[Any]:
        try:
            return self.handle([t.job for t in tickets])
        except Exception:
            log.exception("a group of %d requests failed", len(tickets))
            error = ServiceUnavailable("the ledger could not record this request; retry")
            return [error] * len(tickets)

    def handle(self, jobs: list[Job]) -> list[Outcome | CardView]:
        results: list[Any] = [None] * len(jobs)
        posts = [(index, job) for index, job in enumerate(jobs) if isinstance(job, PostJob)]
        outcomes = self.desk.post(
            [job.command for _, job in posts], [job.key_digest for _, job in posts]
        )
        for (index, _), outcome in zip(posts, outcomes, strict=True):
            results[index] = outcome
        reads = [(index, job) for index, job in enumerate(jobs) if isinstance(job, CardJob)]
        if reads:
            program = self.desk.program.current()
            for index, job in reads:
                terminal = program.terminal_keys.get(job.key_digest)
                results[index] = (
                    self.card(job, terminal)
                    if terminal is not None
                    else AuthenticationFailed("unknown or revoked terminal key")
                )
        return results

    def card(self, job: CardJob, terminal: str) -> CardView | LoyaltyError:
        try:
            return self.desk.card_view(job.card, terminal)
        except LoyaltyError as error:
            return error


def deliver(tickets: list[Ticket], results: list[Any]) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
    for ticket, result in zip(tickets, results, strict=True):
        by_loop.setdefault(ticket.loop, []).append((ticket.future, result))
    for loop, pairs in by_loop.items():
        loop.call_soon_threadsafe(settle, pairs)


def settle(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in pairs:
        if not future.done():
            future.set_result(result)
