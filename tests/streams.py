"""Reading and deleting the NATS JetStream streams the tests' deployments publish to."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import nats
from nats.js.errors import NotFoundError

from loyalty.settings import Settings


def published(settings: Settings) -> list[tuple[str, dict[str, str], bytes]]:
    """(subject, headers, payload) of every message of the deployment's stream, in order."""

    async def read() -> list[tuple[str, dict[str, str], bytes]]:
        client = await nats.connect(settings.nats_url)
        try:
            js = client.jetstream()
            info = await js.stream_info(settings.events_stream)
            found = []
            for sequence in range(info.state.first_seq, info.state.last_seq + 1):
                message = await js.get_msg(settings.events_stream, sequence)
                found.append((message.subject, dict(message.headers or {}), message.data or b""))
            return found
        finally:
            await client.close()

    return asyncio.run(read())


def delete_streams(url: str, names: Iterable[str]) -> None:
    """Deletes the streams of ``names`` that exist."""

    async def delete() -> None:
        client = await nats.connect(url)
        try:
            js = client.jetstream()
            existing = {info.config.name for info in await js.streams_info()}
            for name in existing.intersection(names):
                await js.delete_stream(name)
        except NotFoundError:
            pass
        finally:
            await client.close()

    asyncio.run(delete())
