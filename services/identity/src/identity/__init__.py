"""Souk identity service: accounts and the OAuth 2 authorization server that signs access tokens."""
