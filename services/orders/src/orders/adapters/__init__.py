"""Storage for orders, and the clients of the catalog, inventory and billing services."""
