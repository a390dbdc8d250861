"""What the mobile app shows, in plain Python: product cards, order summaries, the cart."""
