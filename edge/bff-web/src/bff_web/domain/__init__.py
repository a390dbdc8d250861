"""The storefront's own small model: the cart, the session, and the shop as its pages show it."""
