"""The inventory's model: stock items, reservations and their rules, in plain Python."""
