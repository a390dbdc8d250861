"""Notifications' model: what an event tells a customer, in plain Python."""
