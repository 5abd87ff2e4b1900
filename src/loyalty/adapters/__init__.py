"""Adapters: PostgreSQL (event store, migrations) behind the application services."""
