"""bff-mobile's adapters: its cart storage (SQLAlchemy), and the clients of catalog and orders."""
