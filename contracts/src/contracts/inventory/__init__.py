"""The inventory service's gRPC contract, versioned by package (``v1``)."""
