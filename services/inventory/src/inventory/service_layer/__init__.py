"""Use cases of the inventory: command handlers, queries and the ports they need."""
