"""Analytics answers in the format the client asks for with ``Accept``: JSON by default,
CSV (``text/csv``) or Parquet (``application/vnd.apache.parquet``).

JSON keeps the answer's shape (nested objects, decimal strings). CSV and Parquet are
tables: nested fields become dotted columns (``figures.revenue``), money stays decimal
(Parquet's decimal type; plain digits in CSV), and a list of rows is one row each.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec
import polars as pl
from litestar import Request, Response
from litestar.datastructures import State
from litestar.response import Stream

JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
FORMATS = (JSON, CSV, PARQUET)
STREAM_CHUNK = 1000
"""Rows per chunk of a streamed JSON list."""

_encoder = msgspec.json.Encoder(decimal_format="string")


def accepted(request: Request[object, object, State]) -> str:
    """The format the request accepts best (JSON when it names none of ours)."""
    return request.accept.best_match(list(FORMATS), default=JSON) or JSON


def flat(value: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested mapping as one level, keys joined with dots."""
    found: dict[str, Any] = {}
    for key, item in value.items():
        name = f"{prefix}{key}"
        if isinstance(item, Mapping):
            found |= flat(item, f"{name}.")
        elif isinstance(item, list | tuple):
            found[name] = ",".join(str(i) for i in item)
        else:
            found[name] = item
    return found


def table_of(rows: Sequence[msgspec.Struct]) -> pl.DataFrame:
    records = [
        flat(msgspec.to_builtins(row, builtin_types=(Decimal, date, datetime))) for row in rows
    ]
    columns = list(dict.fromkeys(name for record in records for name in record))
    return pl.DataFrame({name: [r.get(name) for r in records] for name in columns}, strict=False)


def tabular(table: pl.DataFrame, media_type: str, name: str) -> Response[bytes]:
    buffer = io.BytesIO()
    if media_type == CSV:
        table.write_csv(buffer)
    else:
        table.write_parquet(buffer)
    extension = "csv" if media_type == CSV else "parquet"
    return Response(
        buffer.getvalue(),
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{name}.{extension}"'},
    )


def json_chunks(rows: Iterable[msgspec.Struct]) -> Iterator[bytes]:
    """A JSON array, a chunk of rows at a time."""
    yield b"["
    chunk: list[msgspec.Struct] = []
    first = True
    for row in rows:
        chunk.append(row)
        if len(chunk) == STREAM_CHUNK:
            yield (b"" if first else b",") + _encoder.encode(chunk)[1:-1]
            first, chunk = False, []
    if chunk:
        yield (b"" if first else b",") + _encoder.encode(chunk)[1:-1]
    yield b"]"


def negotiated(
    request: Request[object, object, State],
    rows: Sequence[msgspec.Struct] | pl.DataFrame,
    name: str,
) -> Response[Any]:
    """``rows`` in the format the request accepts: a JSON array streamed in chunks, or one
    CSV or Parquet table (named ``name`` for download)."""
    media_type = accepted(request)
    if media_type != JSON:
        table = rows if isinstance(rows, pl.DataFrame) else table_of(rows)
        return tabular(table, media_type, name)
    if isinstance(rows, pl.DataFrame):
        return Stream((line for line in (rows.write_json().encode(),)), media_type=JSON)
    return Stream(json_chunks(rows), media_type=JSON)
