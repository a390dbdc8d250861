"""What drives orders: the HTTP API, and the runner of checkouts in the background."""
