"""Identity rotates its signing key while requests with tokens flow: none of them fails.

The next key is in the JWKS before it signs, so the gateway's and the services' cached key
sets already hold it when the first token it signed arrives; tokens of the retired key stay
valid until they expire.
"""

from __future__ import annotations

import threading
import uuid

import httpx
from joserfc import jws


def _token(gateway: httpx.Client, credentials: tuple[str, str]) -> str:
    response = gateway.post(
        "/oauth/token",
        data={"grant_type": "client_credentials", "scope": "orders:read"},
        auth=credentials,
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def _kid(token: str) -> str:
    kid: str = jws.extract_compact(token.encode()).headers()["kid"]  # unverified: which key
    return kid


def test_rotating_the_signing_key_under_traffic_fails_no_request(souk, gateway):
    statuses: list[int] = []
    kids: set[str] = set()
    stop = threading.Event()

    def caller() -> None:
        with httpx.Client(base_url=souk.gateway_url, timeout=10.0) as client:
            while not stop.is_set():
                # A fresh token each round: signed by the current key.
                token = _token(client, souk.client_credentials("souk-cli"))
                kids.add(_kid(token))
                for _ in range(5):
                    response = client.get(
                        f"/api/orders/{uuid.uuid4()}",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    # A script's token is no customer's: 403 customer-required, once the
                    # gateway has checked its signature (a bad one would be a 401).
                    customer_required = response.status_code == 403 and response.json()[
                        "type"
                    ].endswith("/customer-required")
                    statuses.append(404 if customer_required else response.status_code)

    callers = [threading.Thread(target=caller) for _ in range(2)]
    for thread in callers:
        thread.start()
    try:
        souk.wait_until(lambda: len(statuses) >= 20, message="traffic flowing")
        rotated = httpx.post(f"{souk.url('identity')}/internal/keys/rotate", timeout=10)
        assert rotated.status_code == 200, rotated.text
        new_kid = rotated.json()["signing"]
        souk.wait_until(lambda: new_kid in kids, timeout=30, message="tokens of the new key")
        after = len(statuses)
        souk.wait_until(lambda: len(statuses) >= after + 20, message="traffic after the rotation")
    finally:
        stop.set()
        for thread in callers:
            thread.join(timeout=15)

    assert len(kids) == 2, kids
    refused = [s for s in statuses if s not in (200, 404)]
    assert refused == [], f"{len(refused)} of {len(statuses)} requests refused: {refused[:5]}"
