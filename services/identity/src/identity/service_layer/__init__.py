"""Identity's use cases: register, sign in, issue, refresh and revoke tokens, rotate keys."""
