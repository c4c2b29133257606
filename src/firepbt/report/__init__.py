"""Reporting: tables, plots, the live view and loggers, all read from the run's journal."""
