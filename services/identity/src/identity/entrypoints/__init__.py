"""Identity's HTTP entry points: accounts, discovery and keys, and the OAuth 2 endpoints."""
