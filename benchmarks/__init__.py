"""Benchmarks of the loyalty ledger's write paths (not tests; never run in CI).

Run them with ``.venv/bin/python -m benchmarks.run`` (see ``benchmarks/README.md``).
"""
