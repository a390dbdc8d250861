"""bff-mobile: the API of Souk's mobile app, shaped for its screens."""
