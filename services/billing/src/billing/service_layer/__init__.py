"""Use cases of billing: command handlers, queries and the ports they need."""
