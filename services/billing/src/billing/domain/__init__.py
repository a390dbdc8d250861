"""Billing's model in plain Python: payments and their lifecycle, customer accounts and their
ledger."""
