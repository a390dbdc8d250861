"""Notifications' ways in: the consumers of the order and payment events, and the HTTP API."""
