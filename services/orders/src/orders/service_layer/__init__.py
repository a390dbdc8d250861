"""Use cases of orders: placing and cancelling, the checkout, queries, and their ports."""
