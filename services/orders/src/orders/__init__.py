"""Souk orders service: order placement and the checkout."""
