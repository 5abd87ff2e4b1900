"""PostgreSQL ``COPY``'s text format: rows written as text made by the caller, for the bulk
loads where letting psycopg adapt each value would cost more than the load itself."""

from __future__ import annotations

COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def copy_field(value: str) -> str:
    """``value`` as a field of ``COPY``'s text format."""
    return value.translate(COPY_ESCAPES)
