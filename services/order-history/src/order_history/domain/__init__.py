"""Order-history's model: an order as its customer looks back on it, in plain Python."""
