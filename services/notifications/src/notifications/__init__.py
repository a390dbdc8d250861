"""Souk notifications service: what each customer is told about their orders and payments."""
