"""The catalog's model: products, categories and their rules, in plain Python."""
