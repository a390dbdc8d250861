"""Use cases of notifications: taking in an event, listing a customer's notifications."""
