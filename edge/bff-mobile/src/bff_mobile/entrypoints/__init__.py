"""bff-mobile's way in: the HTTP API the mobile app calls through the gateway."""
