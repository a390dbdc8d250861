"""bff-web's settings: the chassis's, plus the storefront's own, from BFF_WEB_* variables."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings


class BffWebSettings(ServiceSettings):
    """The chassis's settings for the storefront's backend.

    Upstreams: ``catalog`` (http), ``inventory`` (grpc), ``orders`` and ``identity`` (http).
    ``public_url`` is where browsers reach the shop (the gateway, which is also the tokens'
    issuer); identity sends them back to ``{public_url}/auth/callback`` after sign-in.
    """

    model_config = SettingsConfigDict(env_prefix="BFF_WEB_")

    service: str = "bff-web"
    port: int = 8010
    public_url: str = "http://localhost:8080"
    client_id: str = Field(default="bff-web", description="The storefront's client at identity.")
    # Required: a confidential client has a secret; the topology gives the development one.
    client_secret: SecretStr
    connect_timeout: float = Field(default=1.0, gt=0, description="Seconds to connect.")
    catalog_timeout: float = Field(default=2.0, gt=0, description="Seconds per catalog call.")
    # Stock is a nice-to-have on a product page: a slow inventory must not hold the page.
    inventory_timeout: float = Field(default=0.8, gt=0, description="Seconds per stock call.")
    orders_timeout: float = Field(default=5.0, gt=0, description="Seconds per orders call.")
    identity_timeout: float = Field(default=5.0, gt=0, description="Seconds per identity call.")
    # Opening an account and signing it in at once, all told; the gateway gives a page 10 s.
    sign_up_seconds: float = Field(
        default=8.0, gt=0, description="Seconds for sign-up and the sign-in it includes."
    )
    session_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    # Refresh the access token when less than this is left of it.
    token_refresh_margin_seconds: int = Field(default=60, ge=0, le=600)
    products_per_page: int = Field(default=12, ge=1, le=100)
    orders_per_page: int = Field(
        default=10, ge=1, le=100, description="Orders per page of a customer's My orders."
    )

    @field_validator("public_url")
    @classmethod
    def _public_url_is_an_origin(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"public_url {value!r} is not an http(s) URL")
        return value.rstrip("/")

    @property
    def redirect_uri(self) -> str:
        """Where identity sends the browser back with a code: registered with the client."""
        return f"{self.public_url}/auth/callback"
