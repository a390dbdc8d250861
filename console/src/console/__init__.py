"""Souk's console: traces, logs, metrics, instances and dead letters of a running Souk."""
