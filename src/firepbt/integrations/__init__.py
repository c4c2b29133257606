"""Integrations with training frameworks (each imports its framework; install the extra)."""
