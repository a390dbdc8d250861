"""Clients of catalog, inventory, orders and identity, and the session store."""
