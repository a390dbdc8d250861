"""How the inventory is reached: gRPC for services, read-only HTTP for operators, a timer."""
