"""Souk catalog service: products, categories, search."""
