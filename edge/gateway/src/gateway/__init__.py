"""Souk's API gateway: the single public entry on :8080."""
