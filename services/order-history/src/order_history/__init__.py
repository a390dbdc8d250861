"""Souk order history: each customer's orders, projected from the events of four services."""
