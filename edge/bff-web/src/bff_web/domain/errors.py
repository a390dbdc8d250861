"""What can go wrong in the storefront's own model, and with the shop as the pages ask it."""

from __future__ import annotations


class StorefrontError(Exception):
    """The root of the storefront's errors."""


class CartLimitReached(StorefrontError):
    """The cart would hold more lines, or more of one product, than an order may."""


class InvalidQuantity(StorefrontError):
    """A quantity below zero or above what one order line may hold."""


class NotInCart(StorefrontError):
    """A change to a line the cart does not have."""

    MESSAGE = "that product is not in your cart"


class ProductNotFound(StorefrontError):
    """The catalog has no product with this id."""


class OrderNotFound(StorefrontError):
    """The customer has no order with this id (another customer's is not theirs to see)."""


class SignInRequired(StorefrontError):
    """The page needs a signed-in customer, and this session has none (or it lapsed)."""


class SignInFailed(StorefrontError):
    """The sign-in could not be completed: a wrong state, or a code identity refused."""


class SignUpRefused(StorefrontError):
    """Identity refused the new account; the message says why, in words for the customer."""


class CheckoutRefused(StorefrontError):
    """Orders refused the order as placed (an unknown product, an empty cart)."""
