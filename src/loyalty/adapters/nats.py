"""The NATS JetStream stream that committed events are published to (``nats-py``).

nats-py is asynchronous; the ledger's followers are threads. An :class:`EventStream` keeps
one connection, opened on first use, on an event loop of its own thread, and publishes a
batch at a time from any thread, waiting for JetStream's acknowledgement of every message.
Each message carries a ``Nats-Msg-Id``: JetStream drops a message whose id it has seen
within the stream's duplicate window, so a batch published again after a crash lands once.
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
CONNECT_ATTEMPTS = 3
"""Attempts to reach the server, 1 s apart, before a publication fails (and is retried by
its follower) instead of waiting on nats-py's default two minutes."""


class Message(msgspec.Struct, frozen=True):
    subject: str
    message_id: str
    payload: bytes


class MessageTooLarge(Exception):
    """A message over the server's ``max_payload``: it can never be published as it is."""


class EventStream:
    """A JetStream stream over ``<subject>.>``, created if missing."""

    def __init__(self, url: str, stream: str, subject: str, timeout_s: float = 10.0) -> None:
        self.url = url
        self.stream = stream
        self.subject = subject
        self.timeout_s = timeout_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Client | None = None
        self._js: JetStreamContext | None = None

    def _run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def _connected(self) -> JetStreamContext:
        if self._js is not None:
            return self._js
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
            self._thread = threading.Thread(target=self._loop.run_forever, name="nats", daemon=True)
            self._thread.start()
        self._client = self._run(
            nats.connect(
                self.url,
                connect_timeout=self.timeout_s,
                max_reconnect_attempts=CONNECT_ATTEMPTS,
                reconnect_time_wait=1,
            )
        )
        js = self._client.jetstream(timeout=self.timeout_s)
        self._run(self._ensure_stream(js))
        self._js = js
        return js

    async def _ensure_stream(self, js: JetStreamContext) -> None:
        try:
            await js.stream_info(self.stream)
        except NotFoundError:
            await js.add_stream(
                StreamConfig(
                    name=self.stream,
                    subjects=[f"{self.subject}.>"],
                    duplicate_window=DUPLICATE_WINDOW.total_seconds(),
                )
            )

    def publish(self, messages: Sequence[Message]) -> None:
        """Publishes ``messages`` and returns once JetStream has stored every one."""
        if not messages:
            return
        js = self._connected()
        assert self._client is not None
        limit = self._client.max_payload
        for message in messages:
            if len(message.payload) > limit:
                raise MessageTooLarge(
                    f"message {message.message_id} ({message.subject}) holds"
                    f" {len(message.payload):,} bytes, over the server's max_payload {limit:,}"
                )
        self._run(self._publish(js, messages))

    async def _publish(self, js: JetStreamContext, messages: Sequence[Message]) -> None:
        await asyncio.gather(
            *(
                js.publish(
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
        if self._loop is None or self._thread is None:
            return
        try:
            if self._client is not None:
                self._run(self._client.drain())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()
            self._loop = self._thread = self._client = self._js = None
