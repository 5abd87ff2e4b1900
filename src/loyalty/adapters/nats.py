"""The NATS JetStream stream that committed events are published to (``nats-py``).

nats-py is asynchronous; the ledger's followers are threads. An :class:`EventStream` keeps
one connection on an event loop of its own thread and publishes a batch at a time from any
thread, waiting for JetStream's acknowledgement of every message. Each message carries a
``Nats-Msg-Id``: JetStream drops a message whose id it has seen within the stream's
duplicate window, so a batch published again after a crash lands once.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import msgspec
import nats
from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

T = TypeVar("T")

DUPLICATE_WINDOW = timedelta(hours=1)
"""How long JetStream remembers message ids (a publisher down longer than this may send a
batch twice after restarting; consumers can tell by the message id too)."""


class Message(msgspec.Struct, frozen=True):
    subject: str
    message_id: str
    payload: bytes


class EventStream:
    """A JetStream stream over ``<subject>.>``, created if missing."""

    def __init__(self, url: str, stream: str, subject: str, timeout_s: float = 10.0) -> None:
        self.stream = stream
        self.subject = subject
        self.timeout_s = timeout_s
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="nats", daemon=True)
        self._thread.start()
        try:
            self._client: Client = self._run(nats.connect(url, connect_timeout=timeout_s))
            self._js: JetStreamContext = self._client.jetstream(timeout=timeout_s)
            self._run(self._ensure_stream())
        except BaseException:
            self._stop_loop()
            raise

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    async def _ensure_stream(self) -> None:
        try:
            await self._js.stream_info(self.stream)
        except NotFoundError:
            await self._js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.subject}.>"],
                    duplicate_window=DUPLICATE_WINDOW.total_seconds(),
                )
            )

    def publish(self, messages: Sequence[Message]) -> None:
        """Publishes ``messages`` and returns once JetStream has stored every one."""
        if messages:
            self._run(self._publish(messages))

    async def _publish(self, messages: Sequence[Message]) -> None:
        await asyncio.gather(
            *(
                self._js.publish(
                    m.subject,
                    m.payload,
                    timeout=self.timeout_s,
                    stream=self.stream,
                    headers={"Nats-Msg-Id": m.message_id},
                )
                for m in messages
            )
        )

    def close(self) -> None:
        try:
            self._run(self._client.drain())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()
