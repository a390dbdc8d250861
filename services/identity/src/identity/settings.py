"""Identity's settings: the chassis's, and the authorization server's, from IDENTITY_* variables."""

from __future__ import annotations

from typing import Self

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from chassis import ServiceSettings

DEFAULT_SCOPES = [
    "catalog:write",
    "orders:read",
    "orders:write",
    "payments:read",
    "payments:write",
    "stock:read",
    "stock:write",
]


# A client secret shorter than this is a placeholder or a password, not a generated secret
# (`souk up` makes 43 characters of URL-safe base64, 256 bits).
MIN_SECRET_LENGTH = 32


class ClientRegistration(BaseModel):
    """A client identity registers at start-up; without a secret it is a public client.

    A ``confidential`` client must be given a secret (from ``client_secrets`` or ``secret``);
    an ``internal`` one is a service of the shop: identity issues it tokens only when it asks
    directly, never through the public edge (see ``IdentitySettings``).
    """

    client_id: str = Field(min_length=1, max_length=100)
    name: str = Field(min_length=1, max_length=200)
    secret: SecretStr | None = None
    confidential: bool = False
    internal: bool = False
    scopes: list[str]
    redirect_uris: list[str] = Field(default_factory=list)

    @field_validator("secret")
    @classmethod
    def _secret_is_not_a_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(
                f"a client secret has at least {MIN_SECRET_LENGTH} characters: generate one "
                "(`souk up` does, per installation) instead of a placeholder"
            )
        return value


# The demo's clients: a script that manages the catalog, a browser app customers sign in to,
# the web storefront's backend (bff-web, a confidential client that keeps tokens server-side)
# and the orders service, which pays with billing and reserves stock with inventory.
# "{issuer}" in a redirect URI stands for the issuer: the storefront is served by the same
# gateway, so its callback lives under the same public URL.
# No secret is written here: `souk up` generates one per installation and hands them over in
# IDENTITY_CLIENT_SECRETS (see docs/security.md); identity refuses to start without them.
DEMO_CLIENTS = [
    ClientRegistration(
        client_id="souk-cli",
        name="Souk command line",
        confidential=True,
        scopes=["catalog:write", "orders:read"],
    ),
    ClientRegistration(
        client_id="souk-web",
        name="Souk shop front",
        scopes=["orders:read", "orders:write"],
        redirect_uris=["http://127.0.0.1:8765/callback"],
    ),
    ClientRegistration(
        client_id="bff-web",
        name="Souk storefront",
        confidential=True,
        internal=True,
        # stock:read for its own token (client credentials): product pages show stock.
        scopes=["orders:read", "orders:write", "stock:read"],
        redirect_uris=["{issuer}/auth/callback"],
    ),
    ClientRegistration(
        client_id="orders",
        name="Souk orders service",
        confidential=True,
        internal=True,
        scopes=["payments:read", "payments:write", "stock:read", "stock:write"],
    ),
]


class IdentitySettings(ServiceSettings):
    """The chassis's settings for identity, with what its tokens say and how long they live.

    ``issuer`` is the public base URL identity is reached at (through the gateway); the
    endpoints in the discovery document are under it.
    """

    model_config = SettingsConfigDict(env_prefix="IDENTITY_")

    service: str = "identity"
    port: int = 8006
    issuer: str = "http://127.0.0.1:8080"
    audience: str = "souk"
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    clients: list[ClientRegistration] = Field(default_factory=lambda: list(DEMO_CLIENTS))
    # client id → secret (JSON), from `souk up`'s per-installation secrets file: fills in the
    # secret of each confidential client named in ``clients``.
    client_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    access_token_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    refresh_token_ttl_seconds: int = Field(default=14 * 24 * 3600, ge=60)
    code_ttl_seconds: int = Field(default=60, ge=10, le=600)
    # A JWKS cache may hold a retired key this much longer than its last token lives.
    jwks_leeway_seconds: int = Field(default=60, ge=0)
    password_time_cost: int = Field(default=3, ge=1)
    password_memory_kib: int = Field(default=65536, ge=32)
    # Hashes at once (each holds password_memory_kib), and how many more may wait for one.
    password_max_concurrent: int = Field(default=4, ge=1)
    password_max_waiting: int = Field(default=32, ge=0)

    @field_validator("clients")
    @classmethod
    def _redirects_under_the_issuer(
        cls, clients: list[ClientRegistration], info: ValidationInfo
    ) -> list[ClientRegistration]:
        issuer = str(info.data.get("issuer", "")).rstrip("/")
        # Copies: the demo clients are shared by every settings object of the process.
        return [
            client.model_copy(
                update={
                    "redirect_uris": [u.replace("{issuer}", issuer) for u in client.redirect_uris]
                }
            )
            for client in clients
        ]

    @model_validator(mode="after")
    def _confidential_clients_have_secrets(self) -> Self:
        known = {client.client_id for client in self.clients}
        unknown = sorted(set(self.client_secrets) - known)
        if unknown:
            raise ValueError(f"client_secrets names clients that are not registered: {unknown}")
        clients = []
        for configured in self.clients:
            client = configured
            given = self.client_secrets.get(client.client_id)
            if given is not None:
                # Validated like a registration's own secret: no placeholders.
                client = ClientRegistration.model_validate(
                    {**client.model_dump(), "secret": given.get_secret_value()}
                )
            if client.confidential and client.secret is None:
                raise ValueError(
                    f"client {client.client_id!r} is confidential and has no secret: `souk up` "
                    "generates one per installation; elsewhere set IDENTITY_CLIENT_SECRETS"
                )
            clients.append(client)
        # Frozen settings: the filled-in registrations replace the configured ones.
        object.__setattr__(self, "clients", clients)
        return self

    @property
    def internal_client_ids(self) -> frozenset[str]:
        """The shop's own services: their tokens are never issued through the public edge."""
        return frozenset(client.client_id for client in self.clients if client.internal)

    @model_validator(mode="after")
    def _clients_ask_for_known_scopes(self) -> Self:
        for client in self.clients:
            unknown = set(client.scopes) - set(self.scopes)
            if unknown:
                raise ValueError(f"client {client.client_id!r}: unknown scopes {sorted(unknown)}")
        return self
