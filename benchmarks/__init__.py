"""Benchmarks of the loyalty ledger's write paths (not tests; never run in CI).

Run them with ``scripts/bench`` (see the Benchmarks section of the README).
"""
