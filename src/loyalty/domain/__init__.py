"""The loyalty domain: aggregates and value objects. Pure: no I/O, no clock, no randomness."""
