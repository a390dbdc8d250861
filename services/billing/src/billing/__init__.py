"""Souk billing service: payments against external providers, with failover."""
