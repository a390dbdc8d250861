"""Billing's HTTP API: routes, the JSON they speak, and errors as problem+json."""
