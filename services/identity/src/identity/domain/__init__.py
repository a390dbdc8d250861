"""Identity's model: accounts, clients, grants and signing keys, in plain Python."""
