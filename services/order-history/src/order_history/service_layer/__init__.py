"""Use cases of order-history: taking in an event, rebuilding from the archive, reading."""
