"""Bundled benchmark trainables (see :mod:`firepbt.benchmarks.nqm`)."""
