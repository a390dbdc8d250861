"""Souk inventory service: stock per SKU and reservations, over gRPC."""
