"""Fixtures of the read side's tests."""

from __future__ import annotations

from collections.abc import Iterator

import msgspec
import pytest

from loyalty.settings import Settings
from tests.adapters.mongo import mongo_url as mongo_url


@pytest.fixture(params=["postgres", "mongodb"])
def store(request: pytest.FixtureRequest, settings: Settings) -> Iterator[Settings]:
    """The test's settings with documents in PostgreSQL or in MongoDB."""
    if request.param == "postgres":
        yield settings
        return
    url: str = request.getfixturevalue("mongo_url")
    yield msgspec.structs.replace(settings, document_store="mongodb", mongo_url=url)
