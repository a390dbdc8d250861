"""Identity through the gateway: discovery, sign-up, the code flow with PKCE, client credentials.

The public identity routes work end to end through the gateway, redirects and Basic auth
included; signing out (revoking the refresh token) ends the family's access tokens everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
from joserfc import jwt
from joserfc.jwk import KeySet

WEB_CALLBACK = "http://127.0.0.1:8765/callback"


def _claims(gateway, token: str) -> dict:
    keys = KeySet.import_key_set(gateway.get("/.well-known/jwks.json").json())
    return jwt.decode(token, keys, algorithms=["ES256"]).claims


def test_discovery_and_signing_keys_are_public_through_the_gateway(gateway):
    discovery = gateway.get("/.well-known/openid-configuration")

    assert discovery.status_code == 200
    metadata = discovery.json()
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert "client_credentials" in metadata["grant_types_supported"]
    jwks = gateway.get("/.well-known/jwks.json").json()
    assert jwks["keys"], "no signing key published"
    assert all("d" not in key for key in jwks["keys"]), "a private key was published"


def _signed_up(gateway) -> tuple[str, str, str]:
    """A new customer: (their account id, email, password)."""
    email, password = f"amina-{uuid.uuid4().hex[:8]}@example.com", "sesame-opens-the-souk"
    registered = gateway.post("/api/users", json={"email": email, "password": password})
    assert registered.status_code == 201, registered.text
    return registered.json()["id"], email, password


def _code_flow(gateway, email: str, password: str) -> dict:
    """The token answer of the code flow with PKCE, run as the public client souk-web."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    consent = gateway.post(
        "/oauth/authorize",
        data={
            "response_type": "code",
            "client_id": "souk-web",
            "redirect_uri": WEB_CALLBACK,
            "scope": "orders:read orders:write",
            "state": "e2e",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "email": email,
            "password": password,
        },
    )
    assert consent.status_code == 302, consent.text
    location = consent.headers["location"]
    assert location.startswith(WEB_CALLBACK)
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == ["e2e"]
    tokens = gateway.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "client_id": "souk-web",
            "code": query["code"][0],
            "redirect_uri": WEB_CALLBACK,
            "code_verifier": verifier,
        },
    )
    assert tokens.status_code == 200, tokens.text
    return tokens.json()


def test_a_customer_signs_up_and_gets_tokens_by_the_code_flow_with_pkce(gateway):
    account, email, password = _signed_up(gateway)

    tokens = _code_flow(gateway, email, password)

    claims = _claims(gateway, tokens["access_token"])
    assert claims["sub"] == account
    assert set(claims["scope"].split()) == {"orders:read", "orders:write"}


def _refused_within(url: str, token: str, seconds: float) -> bool:
    """Whether ``url`` starts answering 401 to ``token`` within ``seconds``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        answer = httpx.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=10)
        if answer.status_code == 401:
            return "revoked" in answer.headers.get("WWW-Authenticate", "")
        assert answer.status_code == 200, answer.text
        time.sleep(0.2)
    return False


def test_signing_out_ends_the_access_token_too_at_the_gateway_and_at_the_service(souk, gateway):
    _, email, password = _signed_up(gateway)
    tokens = _code_flow(gateway, email, password)
    at_gateway = f"{souk.gateway_url}/api/orders"
    at_orders = f"{souk.url('orders')}/orders"  # past the gateway: orders checks for itself
    for url in (at_gateway, at_orders):
        answer = httpx.get(url, headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert answer.status_code == 200, answer.text

    revoked = gateway.post(
        "/oauth/revoke", data={"token": tokens["refresh_token"], "client_id": "souk-web"}
    )

    assert revoked.status_code == 200
    # Validators read identity's revocation list at most every 5 s while they are busy.
    assert _refused_within(at_gateway, tokens["access_token"], seconds=15)
    assert _refused_within(at_orders, tokens["access_token"], seconds=15)
    # A new sign-in is a new family: it works.
    again = _code_flow(gateway, email, password)["access_token"]
    assert httpx.get(at_gateway, headers={"Authorization": f"Bearer {again}"}).status_code == 200


def test_a_script_gets_a_token_by_client_credentials_through_the_gateway(souk, gateway):
    response = gateway.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        auth=souk.client_credentials("souk-cli"),
    )

    assert response.status_code == 200, response.text
    claims = _claims(gateway, response.json()["access_token"])
    assert (claims["sub"], claims["scope"]) == ("souk-cli", "orders:read")
    refused = gateway.post(
        "/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=("souk-cli", "not-the-secret"),
    )
    assert refused.status_code == 401
    assert refused.json()["error"] == "invalid_client"


def test_souk_token_prints_a_token_the_gateway_accepts(souk, gateway):
    souk_command = Path(sys.executable).with_name("souk")
    printed = subprocess.run(
        # No secret given: `souk token` reads the one `souk up` made for this installation.
        [str(souk_command), "token", "--client", "souk-cli", "--scope", "orders:read",
         "--gateway", souk.gateway_url, "--data-dir", str(souk.data_dir)],
        env={k: v for k, v in os.environ.items() if k != "SOUK_CLIENT_SECRET"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip

    assert printed.returncode == 0, printed.stderr
    token = printed.stdout.strip()
    # Valid at the gateway (no 401); a script is no customer, so /api/orders says so.
    listed = gateway.get("/api/orders", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 403, listed.text
    assert listed.json()["type"] == "https://souk.dev/problems/customer-required"
    refused = subprocess.run(
        [str(souk_command), "token", "--client", "souk-cli", "--gateway", souk.gateway_url],
        env={**os.environ, "SOUK_CLIENT_SECRET": "wrong"},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    assert "invalid_client" in refused.stderr
    assert "wrong" not in refused.stderr
