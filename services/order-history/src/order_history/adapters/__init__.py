"""Order-history's adapters: SQLAlchemy storage of the read model and the event archive."""
