"""Order-history's ways in: the consumers of four topics, the read-only API, the rebuild route."""
