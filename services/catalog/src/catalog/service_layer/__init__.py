"""Use cases of the catalog: command handlers, queries and the ports they need."""
