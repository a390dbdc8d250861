"""What Souk's services share and nothing else: value types, event schemas, public API models."""

from contracts.money import Currency, Money, MoneyError

__all__ = ["Currency", "Money", "MoneyError"]
