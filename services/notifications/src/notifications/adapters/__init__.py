"""Notifications' adapters: SQLAlchemy storage."""
