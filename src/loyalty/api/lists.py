"""One convention for every list endpoint: ``limit`` and ``offset`` to page, ``sort`` to
order (comma-separated field names, ``-`` for descending: ``sort=-price,sku``), filters
as plain query parameters; the answer is a :class:`Page` with the ``total`` matched."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Generic, TypeVar

import msgspec
from litestar.params import Parameter

from loyalty.api.errors import InvalidField

T = TypeVar("T", bound=msgspec.Struct)

Limit = Annotated[int, Parameter(ge=1, le=500, description="at most this many items")]
Offset = Annotated[int, Parameter(ge=0, description="skip this many items first")]
Sort = Annotated[
    str | None,
    Parameter(max_length=200, description="fields to order by, '-' for descending: -price,sku"),
]


class Page(msgspec.Struct, Generic[T], frozen=True, kw_only=True):
    items: list[T]
    total: int
    limit: int
    offset: int


def page_of(
    items: Sequence[T], limit: int, offset: int, sort: str | None, sortable: Sequence[str]
) -> Page[T]:
    """``items`` ordered by ``sort`` (fields of ``sortable`` only), then paged."""
    ordered = list(items)
    for field in reversed([f.strip() for f in (sort or "").split(",") if f.strip()]):
        name = field.removeprefix("-")
        if name not in sortable:
            raise InvalidField(
                f"sort by one of {', '.join(sortable)} (prefix '-' to descend)", field="sort"
            )
        ordered.sort(key=lambda item: sort_key(getattr(item, name)), reverse=field.startswith("-"))
    return Page(
        items=ordered[offset : offset + limit], total=len(ordered), limit=limit, offset=offset
    )


def sort_key(value: Any) -> tuple[bool, Any]:
    """Orders ``None`` last, whatever the type of the other values."""
    return (value is None, value if value is not None else 0)
