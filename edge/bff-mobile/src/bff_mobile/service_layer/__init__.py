"""Use cases of the mobile app: its home screen, its order list, its cart."""
