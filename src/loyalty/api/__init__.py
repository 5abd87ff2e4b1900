"""The HTTP API (litestar + msgspec), versioned under /api/v1."""
