"""The write side: application services on the Ledger event-sourced application."""
