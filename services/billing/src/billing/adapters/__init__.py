"""Billing's adapters: SQLAlchemy storage and the HTTP client of the payment providers."""
