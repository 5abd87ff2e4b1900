"""Loyalty ledger: an event-sourced CQRS loyalty program and customer analytics system."""

__version__ = "0.1.0"
