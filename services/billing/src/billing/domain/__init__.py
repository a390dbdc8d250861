"""Billing's model: payments and the rules of their lifecycle, in plain Python."""
