"""Access tokens are checked against the issuer's published keys; routes declare their scopes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from fastapi import APIRouter, FastAPI
from joserfc import jwt
from joserfc.jwk import ECKey, OKPKey

from chassis import ServiceSettings
from chassis.auth import (
    AccessToken,
    AccessTokenValidator,
    InvalidTokenError,
    IssuerKeys,
    KeysUnavailableError,
    Rejection,
    Revocations,
    TokenValidator,
    require_scopes,
)

if TYPE_CHECKING:
    from chassis.tests.conftest import LogCapture

ISSUER = "http://identity.souk.test"
AUDIENCE = "orders"
COOLDOWN = 30.0
# Longer than the first back-off (1 s): a refresh stamped before its fetch would be due again.
FROZEN_FETCH_TIMEOUT = 1.2

# Issuers publish Ed25519 keys under RFC 8037's "EdDSA"; joserfc nudges towards RFC 9864 names.
pytestmark = pytest.mark.filterwarnings("ignore:EdDSA is deprecated")

Running = Callable[[FastAPI], contextlib.AbstractAsyncContextManager[httpx.AsyncClient]]


class Clock:
    """Monotonic time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class RunningClock(Clock):
    """Monotonic time that runs as real time does, and jumps ahead when the test says so."""

    def __init__(self) -> None:
        super().__init__()
        self._started = time.monotonic()

    def __call__(self) -> float:
        return self.now + time.monotonic() - self._started


class Issuer:
    """A stand-in identity service: signs access tokens and publishes its keys as a JWKS."""

    def __init__(self) -> None:
        self.signing_key: OKPKey | ECKey = OKPKey.generate_key(
            "Ed25519", parameters={"kid": "ed-1"}
        )
        self.published: list[OKPKey | ECKey] = [self.signing_key]
        self.jwks_requests = 0
        self.jwks_url = ""
        self.down = False
        self.junk: list[Any] = []
        self.revoked_grants: list[str] = []
        self.revocation_requests: list[str | None] = []  # the If-None-Match of each
        self.revocations_url = ""
        self.frozen = False  # answers nothing until thawed, like a process under SIGSTOP
        self.thawed = asyncio.Event()

    def jwks(self) -> dict[str, Any]:
        return {"keys": [*self.junk, *(key.as_dict(private=False) for key in self.published)]}

    def rotate_to(self, key: OKPKey | ECKey) -> None:
        """Publish ``key`` next to the old ones and sign with it from now on."""
        self.published.append(key)
        self.signing_key = key

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": "ada",
            "aud": AUDIENCE,
            "client_id": "souk-web",
            "scope": "orders:read orders:write",
            "jti": uuid.uuid4().hex,
            "iat": now,
            "nbf": now,
            "exp": now + 300,
        }
        claims.update(overrides)
        return {name: value for name, value in claims.items() if value is not None}

    def token(
        self, key: OKPKey | ECKey | None = None, *, typ: str | None = "at+jwt", **overrides: Any
    ) -> str:
        key = key or self.signing_key
        alg = "EdDSA" if isinstance(key, OKPKey) else "ES256"
        header = {"alg": alg, "kid": key.kid, **({"typ": typ} if typ else {})}
        return jwt.encode(header, self.claims(**overrides), key, algorithms=[alg])


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    """An issuer whose JWKS is served over real HTTP on a loopback port."""
    issuer = Issuer()

    async def jwks(_: web.Request) -> web.Response:
        issuer.jwks_requests += 1
        if issuer.frozen:
            await issuer.thawed.wait()
        if issuer.down:
            return web.json_response({"title": "down for maintenance"}, status=503)
        return web.json_response(issuer.jwks())

    async def revocations(request: web.Request) -> web.Response:
        issuer.revocation_requests.append(request.headers.get("If-None-Match"))
        if issuer.frozen:
            await issuer.thawed.wait()
        if issuer.down:
            return web.json_response({"title": "down for maintenance"}, status=503)
        etag = '"' + hashlib.sha256(",".join(issuer.revoked_grants).encode()).hexdigest() + '"'
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.json_response({"grants": issuer.revoked_grants}, headers={"ETag": etag})

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    app.router.add_get("/internal/revocations", revocations)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    issuer.jwks_url = str(server.make_url("/.well-known/jwks.json"))
    issuer.revocations_url = str(server.make_url("/internal/revocations"))
    yield issuer
    issuer.thawed.set()
    await server.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def validator(issuer: Issuer, clock: Clock) -> AsyncIterator[TokenValidator]:
    keys = IssuerKeys(issuer.jwks_url, refresh_cooldown=COOLDOWN, max_age=600, clock=clock)
    validator = TokenValidator(keys, issuer=ISSUER, audience=AUDIENCE)
    yield validator
    await validator.close()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


async def _rejection(validator: TokenValidator, token: str) -> Rejection:
    with pytest.raises(InvalidTokenError) as caught:
        await validator.validate(token)
    return caught.value.reason


# --- The validator ----------------------------------------------------------------------------


async def test_a_token_signed_by_the_issuer_is_accepted_with_its_scopes(
    issuer: Issuer, validator: TokenValidator
) -> None:
    exp = int(time.time()) + 120
    token = await validator.validate(issuer.token(jti="order-token-1", exp=exp))

    assert token == AccessToken(
        subject="ada",
        client_id="souk-web",
        scopes=frozenset({"orders:read", "orders:write"}),
        token_id="order-token-1",  # noqa: S106 - a token's id, not a secret
        expires_at=datetime.fromtimestamp(exp, UTC),
    )
    assert token.grants("orders:write")
    assert not token.grants("orders:write", "billing:read")


async def test_an_es256_token_is_accepted_as_well(
    issuer: Issuer, validator: TokenValidator
) -> None:
    issuer.rotate_to(ECKey.generate_key("P-256", parameters={"kid": "ec-1"}))

    token = await validator.validate(issuer.token(client_id=None, scope="orders:read"))

    assert token.client_id is None
    assert token.scopes == {"orders:read"}


async def test_a_token_expired_a_moment_ago_is_still_accepted_within_the_leeway(
    issuer: Issuer, validator: TokenValidator
) -> None:
    token = await validator.validate(issuer.token(exp=int(time.time()) - 5))

    assert token.subject == "ada"


async def test_an_expired_token_is_rejected(issuer: Issuer, validator: TokenValidator) -> None:
    token = issuer.token(exp=int(time.time()) - 120)

    assert await _rejection(validator, token) == Rejection.EXPIRED


async def test_a_token_not_valid_yet_is_rejected(issuer: Issuer, validator: TokenValidator) -> None:
    token = issuer.token(nbf=int(time.time()) + 120)

    assert await _rejection(validator, token) == Rejection.NOT_YET_VALID


async def test_a_token_issued_in_the_future_is_rejected(
    issuer: Issuer, validator: TokenValidator
) -> None:
    token = issuer.token(iat=int(time.time()) + 120)

    assert await _rejection(validator, token) == Rejection.NOT_YET_VALID


async def test_a_token_for_another_audience_is_rejected(
    issuer: Issuer, validator: TokenValidator
) -> None:
    token = issuer.token(aud="billing")

    assert await _rejection(validator, token) == Rejection.WRONG_AUDIENCE


async def test_a_token_listing_this_audience_among_others_is_accepted(
    issuer: Issuer, validator: TokenValidator
) -> None:
    token = await validator.validate(issuer.token(aud=["billing", AUDIENCE]))

    assert token.subject == "ada"


async def test_a_token_from_another_issuer_is_rejected(
    issuer: Issuer, validator: TokenValidator
) -> None:
    token = issuer.token(iss="http://evil.test")

    assert await _rejection(validator, token) == Rejection.WRONG_ISSUER


async def test_a_token_whose_payload_was_tampered_with_fails_the_signature_check(
    issuer: Issuer, validator: TokenValidator
) -> None:
    header, _, signature = issuer.token(scope="orders:read").split(".")
    upgraded = _b64(json.dumps(issuer.claims(scope="orders:read admin")).encode())

    assert await _rejection(validator, f"{header}.{upgraded}.{signature}") == (
        Rejection.BAD_SIGNATURE
    )


async def test_a_token_with_alg_none_is_rejected(issuer: Issuer, validator: TokenValidator) -> None:
    token = _unsigned({"alg": "none", "kid": "ed-1"}, issuer.claims()) + "."

    assert await _rejection(validator, token) == Rejection.ALGORITHM_NOT_ALLOWED


async def test_hs256_signed_with_the_public_key_as_secret_is_rejected(
    issuer: Issuer, validator: TokenValidator
) -> None:
    # The classic key-confusion attack: the public key is public, so anyone can MAC with it.
    signing_input = _unsigned({"alg": "HS256", "kid": "ed-1"}, issuer.claims(scope="admin"))
    secret = issuer.signing_key.as_pem(private=False)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()

    assert await _rejection(validator, f"{signing_input}.{_b64(mac)}") == (
        Rejection.ALGORITHM_NOT_ALLOWED
    )


async def test_a_token_naming_a_key_made_for_another_algorithm_is_rejected(
    issuer: Issuer, validator: TokenValidator
) -> None:
    ec_key = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    issuer.published.append(ec_key)
    _, payload, signature = issuer.token().split(".")
    forged_header = _b64(json.dumps({"alg": "EdDSA", "kid": "ec-1", "typ": "at+jwt"}).encode())

    assert await _rejection(validator, f"{forged_header}.{payload}.{signature}") == (
        Rejection.ALGORITHM_NOT_ALLOWED
    )


@pytest.mark.parametrize("claim", ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "scope"])
async def test_a_token_without_a_required_claim_is_malformed(
    issuer: Issuer, validator: TokenValidator, claim: str
) -> None:
    token = issuer.token(**{claim: None})

    assert await _rejection(validator, token) == Rejection.MALFORMED


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "e30.e30.", "ImFsZyI.e30.AAAA"])
async def test_garbage_is_malformed(validator: TokenValidator, token: str) -> None:
    assert await _rejection(validator, token) == Rejection.MALFORMED


def _with_header(token: str, **header: Any) -> str:
    """``token`` with fields put into its header; the signature no longer matches."""
    encoded_header, payload, signature = token.split(".")
    fields = json.loads(base64.urlsafe_b64decode(encoded_header + "=="))
    return f"{_b64(json.dumps({**fields, **header}).encode())}.{payload}.{signature}"


@pytest.mark.parametrize("crit", [5, None, [{}], "exp", [1]])
async def test_a_crit_header_that_is_not_a_list_of_names_is_malformed(
    issuer: Issuer, validator: TokenValidator, crit: object
) -> None:
    assert await _rejection(validator, _with_header(issuer.token(), crit=crit)) == (
        Rejection.MALFORMED
    )


async def test_a_token_naming_no_key_is_rejected_as_unknown_key(
    issuer: Issuer, validator: TokenValidator
) -> None:
    token = _unsigned({"alg": "EdDSA", "typ": "at+jwt"}, issuer.claims()) + ".AAAA"

    assert await _rejection(validator, token) == Rejection.UNKNOWN_KEY


@pytest.mark.parametrize("typ", [None, "JWT", "id_token+jwt", "at+jwt+x"])
async def test_a_jwt_that_does_not_say_it_is_an_access_token_is_rejected(
    issuer: Issuer, validator: TokenValidator, typ: str | None
) -> None:
    # An ID token or any other JWT of the same issuer, signed with the same key, must not
    # pass for an access token (RFC 9068 §4).
    token = issuer.token(typ=typ)

    assert await _rejection(validator, token) == Rejection.NOT_AN_ACCESS_TOKEN


async def test_the_media_type_form_of_the_access_token_type_is_accepted(
    issuer: Issuer, validator: TokenValidator
) -> None:
    token = issuer.token(typ="application/AT+JWT")

    assert (await validator.validate(token)).subject == "ada"


async def test_a_token_with_a_scope_that_is_not_a_string_is_malformed(
    issuer: Issuer, validator: TokenValidator
) -> None:
    token = issuer.token(scope=["orders:read"])

    assert await _rejection(validator, token) == Rejection.MALFORMED


async def test_a_rejection_never_repeats_the_token(
    issuer: Issuer, validator: TokenValidator
) -> None:
    token = issuer.token(aud="billing")

    with pytest.raises(InvalidTokenError) as caught:
        await validator.validate(token)

    for part in token.split("."):
        assert part not in str(caught.value)
        assert part not in caught.value.description


# --- The key set: cache, refresh on unknown kid, rate limit, rotation -------------------------


async def test_the_key_set_is_fetched_once_and_then_served_from_the_cache(
    issuer: Issuer, validator: TokenValidator
) -> None:
    for _ in range(5):
        await validator.validate(issuer.token())

    assert issuer.jwks_requests == 1


async def test_an_unknown_kid_triggers_exactly_one_refresh_and_is_then_rejected(
    issuer: Issuer, validator: TokenValidator, clock: Clock
) -> None:
    await validator.validate(issuer.token())
    clock.advance(COOLDOWN)
    stranger = OKPKey.generate_key("Ed25519", parameters={"kid": "stranger"})

    rejection = await _rejection(validator, issuer.token(key=stranger))

    assert rejection == Rejection.UNKNOWN_KEY
    assert issuer.jwks_requests == 2


async def test_a_flood_of_unknown_kids_refreshes_at_most_once_per_cooldown(
    issuer: Issuer, validator: TokenValidator, clock: Clock
) -> None:
    await validator.validate(issuer.token())
    clock.advance(COOLDOWN)
    forged = [
        issuer.token(key=OKPKey.generate_key("Ed25519", parameters={"kid": f"forged-{n}"}))
        for n in range(20)
    ]

    at_once = await asyncio.gather(
        *(validator.validate(token) for token in forged), return_exceptions=True
    )
    one_by_one = [await _rejection(validator, token) for token in forged]
    assert issuer.jwks_requests == 2

    clock.advance(COOLDOWN)
    await _rejection(validator, forged[0])
    await _rejection(validator, forged[1])

    assert all(isinstance(result, InvalidTokenError) for result in at_once)
    assert set(one_by_one) == {Rejection.UNKNOWN_KEY}
    assert issuer.jwks_requests == 3


async def test_a_token_signed_by_a_newly_published_key_is_accepted_after_the_refresh(
    issuer: Issuer, validator: TokenValidator, clock: Clock
) -> None:
    old_token = issuer.token()
    await validator.validate(old_token)
    clock.advance(COOLDOWN)

    issuer.rotate_to(OKPKey.generate_key("Ed25519", parameters={"kid": "ed-2"}))
    new = await validator.validate(issuer.token(sub="grace"))
    old = await validator.validate(old_token)

    assert (new.subject, old.subject) == ("grace", "ada")
    assert issuer.jwks_requests == 2


async def test_a_key_the_issuer_withdrew_stops_working_once_the_set_ages(
    issuer: Issuer, validator: TokenValidator, clock: Clock
) -> None:
    old_token = issuer.token()
    await validator.validate(old_token)
    issuer.published = [OKPKey.generate_key("Ed25519", parameters={"kid": "ed-2"})]

    clock.advance(601)

    assert await _rejection(validator, old_token) == Rejection.UNKNOWN_KEY


async def test_an_unreachable_issuer_means_keys_unavailable_not_a_bad_token(
    issuer: Issuer, free_port: int, clock: Clock
) -> None:
    keys = IssuerKeys(f"http://127.0.0.1:{free_port}/.well-known/jwks.json", clock=clock)
    validator = TokenValidator(keys, issuer=ISSUER, audience=AUDIENCE)
    try:
        with pytest.raises(KeysUnavailableError):
            await validator.validate(issuer.token())
    finally:
        await validator.close()


async def test_cached_keys_keep_working_while_the_issuer_is_down(
    issuer: Issuer, validator: TokenValidator, clock: Clock
) -> None:
    await validator.validate(issuer.token())
    issuer.down = True
    clock.advance(601)

    token = await validator.validate(issuer.token())

    assert token.subject == "ada"
    assert issuer.jwks_requests == 2


async def test_entries_of_the_jwks_that_cannot_verify_tokens_are_skipped(
    issuer: Issuer, validator: TokenValidator
) -> None:
    issuer.junk = [
        {"kty": "oct", "kid": "shared-secret", "k": "c2VjcmV0"},
        {"kty": ["EC"], "kid": "odd"},
        {"kty": "OKP", "crv": "Ed25519", "x": "not base64!", "kid": "broken"},
        {"kty": "OKP", "crv": "Ed25519", "x": "AAAA"},
        "not a key",
    ]

    token = await validator.validate(issuer.token())

    assert token.subject == "ada"


async def test_a_key_on_a_curve_nobody_knows_is_skipped_and_the_others_still_verify(
    issuer: Issuer, validator: TokenValidator, clock: Clock
) -> None:
    issuer.junk = [{"kty": "EC", "crv": "P-192", "x": "AAAA", "y": "AAAA", "kid": "p-192"}]
    same_kid = OKPKey.generate_key("Ed25519", parameters={"kid": "p-192"})

    token = await validator.validate(issuer.token())
    clock.advance(COOLDOWN)
    rejections = [await _rejection(validator, issuer.token(key=same_kid)) for _ in range(5)]

    assert token.subject == "ada"
    assert set(rejections) == {Rejection.UNKNOWN_KEY}
    assert issuer.jwks_requests == 2  # the cooldown holds


async def test_a_failing_issuer_is_asked_again_after_a_growing_back_off(
    issuer: Issuer, validator: TokenValidator, clock: Clock
) -> None:
    await validator.validate(issuer.token())
    issuer.down = True
    clock.advance(COOLDOWN)
    stranger = issuer.token(key=OKPKey.generate_key("Ed25519", parameters={"kid": "stranger"}))
    asked = []
    for _ in range(8):  # 0.5 s apart: tries at 0, 1, then 2 s later, then 4 s later
        await _rejection(validator, stranger)
        asked.append(issuer.jwks_requests)
        clock.advance(0.5)

    assert asked == [2, 2, 3, 3, 3, 3, 4, 4]


async def test_a_frozen_issuer_costs_one_fetch_timeout_not_one_per_waiting_request(
    issuer: Issuer,
) -> None:
    clock = RunningClock()
    keys = IssuerKeys(
        issuer.jwks_url,
        refresh_cooldown=COOLDOWN,
        max_age=600,
        fetch_timeout=FROZEN_FETCH_TIMEOUT,
        clock=clock,
    )
    validator = TokenValidator(keys, issuer=ISSUER, audience=AUDIENCE)
    try:
        await validator.validate(issuer.token())
        issuer.frozen = True
        clock.advance(601)  # the set has aged: the next request refreshes it

        started = time.monotonic()
        accepted = await asyncio.gather(*(validator.validate(issuer.token()) for _ in range(5)))
        elapsed = time.monotonic() - started
        again = await validator.validate(issuer.token())
    finally:
        await validator.close()

    assert {token.subject for token in [*accepted, again]} == {"ada"}
    assert issuer.jwks_requests == 2  # one shared fetch, and none again during the back-off
    assert elapsed < 2 * FROZEN_FETCH_TIMEOUT  # five fetches in turn would take five


# --- Routes that require scopes ---------------------------------------------------------------


def _orders_router() -> APIRouter:
    router = APIRouter()

    @router.post("/orders")
    async def place_order(
        token: Annotated[AccessToken, require_scopes("orders:write")],
    ) -> dict[str, str]:
        return {"customer": token.subject}

    @router.get("/me", dependencies=[require_scopes()])
    async def whoami() -> dict[str, str]:
        return {"hello": "caller"}

    return router


@pytest.fixture
def orders_app(make_app: Callable[..., FastAPI], validator: TokenValidator) -> FastAPI:
    app = make_app(_orders_router())
    app.state.token_validator = validator
    return app


async def test_a_route_answers_401_with_a_bearer_challenge_without_a_token(
    orders_app: FastAPI, running: Running
) -> None:
    async with running(orders_app) as client:
        response = await client.post("/orders")

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == "application/problem+json"


async def test_a_route_answers_401_invalid_token_to_a_bad_token_and_never_logs_it(
    orders_app: FastAPI,
    running: Running,
    issuer: Issuer,
    settings: ServiceSettings,
    capture_logs: Callable[[ServiceSettings], LogCapture],
) -> None:
    logs = capture_logs(settings)
    token = issuer.token(exp=int(time.time()) - 120)
    async with running(orders_app) as client:
        response = await client.post("/orders", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="invalid_token", error_description="The access token expired"'
    )
    assert response.json()["reason"] == "expired"
    assert token not in response.text
    rejections = [r for r in logs.records() if r["event"] == "access token rejected"]
    assert [r["reason"] for r in rejections] == ["expired"]
    assert not any(part in line for line in logs.lines() for part in token.split("."))


async def test_a_route_answers_401_not_500_to_a_token_with_an_odd_crit_header(
    orders_app: FastAPI, running: Running, issuer: Issuer
) -> None:
    token = _with_header(issuer.token(), crit=5)
    async with running(orders_app) as client:
        response = await client.post("/orders", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.json()["reason"] == "malformed"


async def test_a_route_answers_403_insufficient_scope_to_a_token_lacking_the_scope(
    orders_app: FastAPI, running: Running, issuer: Issuer
) -> None:
    token = issuer.token(scope="orders:read")
    async with running(orders_app) as client:
        response = await client.post("/orders", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_scope", scope="orders:write"'
    )
    assert response.json()["required_scopes"] == ["orders:write"]


async def test_a_route_answers_200_to_a_token_with_the_scope(
    orders_app: FastAPI, running: Running, issuer: Issuer
) -> None:
    token = issuer.token(sub="ada")
    async with running(orders_app) as client:
        placed = await client.post("/orders", headers={"Authorization": f"Bearer {token}"})
        me = await client.get("/me", headers={"Authorization": f"Bearer {token}"})

    assert placed.status_code == 200
    assert placed.json() == {"customer": "ada"}
    assert me.status_code == 200


async def test_a_route_answers_503_while_the_issuer_keys_cannot_be_fetched(
    make_app: Callable[..., FastAPI], running: Running, issuer: Issuer, free_port: int
) -> None:
    keys = IssuerKeys(f"http://127.0.0.1:{free_port}/jwks")
    app = make_app(_orders_router())
    app.state.token_validator = TokenValidator(keys, issuer=ISSUER, audience=AUDIENCE)
    try:
        async with running(app) as client:
            response = await client.post(
                "/orders", headers={"Authorization": f"Bearer {issuer.token()}"}
            )
    finally:
        await keys.close()

    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


async def test_the_openapi_document_declares_bearer_auth(
    orders_app: FastAPI, running: Running
) -> None:
    async with running(orders_app) as client:
        document = (await client.get("/openapi.json")).json()

    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


class FixedTokenValidator:
    """An AccessTokenValidator that knows one token, as a test or the gateway may plug in."""

    def __init__(self, token: str, access_token: AccessToken) -> None:
        self.token = token
        self.access_token = access_token

    async def validate(self, token: str) -> AccessToken:
        if token != self.token:
            raise InvalidTokenError(Rejection.BAD_SIGNATURE)
        return self.access_token


async def test_a_route_accepts_any_access_token_validator_on_the_app_state(
    make_app: Callable[..., FastAPI], running: Running
) -> None:
    granted = AccessToken(
        subject="grace",
        client_id=None,
        scopes=frozenset({"orders:write"}),
        token_id=uuid.uuid4().hex,
        expires_at=datetime.now(UTC),
    )
    validator: AccessTokenValidator = FixedTokenValidator("opaque", granted)
    app = make_app(_orders_router())
    app.state.token_validator = validator
    async with running(app) as client:
        placed = await client.post("/orders", headers={"Authorization": "Bearer opaque"})
        refused = await client.post("/orders", headers={"Authorization": "Bearer other"})

    assert placed.json() == {"customer": "grace"}
    assert refused.json()["reason"] == "bad-signature"


# --- Revoked grants ---------------------------------------------------------------------------

MAX_AGE = 5.0


@pytest.fixture
async def checking_revocations(issuer: Issuer, clock: Clock) -> AsyncIterator[TokenValidator]:
    """A validator that also asks the issuer which grants it revoked, at most every 5 s."""
    keys = IssuerKeys(issuer.jwks_url, refresh_cooldown=COOLDOWN, max_age=600, clock=clock)
    revocations = Revocations(issuer.revocations_url, max_age=MAX_AGE, clock=clock)
    validator = TokenValidator(keys, issuer=ISSUER, audience=AUDIENCE, revocations=revocations)
    yield validator
    await validator.close()


async def test_a_token_of_a_revoked_grant_is_refused_once_the_list_is_refreshed(
    issuer: Issuer, clock: Clock, checking_revocations: TokenValidator
) -> None:
    token = issuer.token(sid="grant-1")
    assert (await checking_revocations.validate(token)).grant_id == "grant-1"

    issuer.revoked_grants.append("grant-1")  # the user signed out: the family is revoked
    clock.advance(MAX_AGE)

    assert await _rejection(checking_revocations, token) == Rejection.REVOKED
    # Tokens of other grants, and a client's own tokens (no grant), are not affected.
    assert (await checking_revocations.validate(issuer.token(sid="grant-2"))).subject == "ada"
    assert (await checking_revocations.validate(issuer.token())).grant_id is None


async def test_the_list_is_asked_for_at_most_once_per_max_age_and_conditionally(
    issuer: Issuer, clock: Clock, checking_revocations: TokenValidator
) -> None:
    token = issuer.token(sid="grant-1")
    for _ in range(20):
        await checking_revocations.validate(token)
    assert len(issuer.revocation_requests) == 1

    clock.advance(MAX_AGE)
    await checking_revocations.validate(token)

    assert len(issuer.revocation_requests) == 2
    assert issuer.revocation_requests[1] is not None  # If-None-Match: answered 304


async def test_an_idle_validator_asks_for_nothing(
    issuer: Issuer, clock: Clock, checking_revocations: TokenValidator
) -> None:
    clock.advance(10 * MAX_AGE)

    assert issuer.revocation_requests == []


async def test_while_the_issuer_is_down_the_last_list_stays_in_force(
    issuer: Issuer, clock: Clock, checking_revocations: TokenValidator
) -> None:
    issuer.revoked_grants.append("grant-1")
    await checking_revocations.validate(issuer.token(sid="grant-0"))  # fetches the list
    issuer.down = True
    clock.advance(MAX_AGE)

    assert await _rejection(checking_revocations, issuer.token(sid="grant-1")) == Rejection.REVOKED
    assert (await checking_revocations.validate(issuer.token(sid="grant-2"))).subject == "ada"


async def test_a_sid_that_is_not_a_string_is_malformed(
    issuer: Issuer, checking_revocations: TokenValidator
) -> None:
    assert await _rejection(checking_revocations, issuer.token(sid=["grant-1"])) == (
        Rejection.MALFORMED
    )


async def test_a_frozen_identity_stalls_one_fetch_not_every_request_in_turn(
    issuer: Issuer,
) -> None:
    clock = RunningClock()
    keys = IssuerKeys(issuer.jwks_url, refresh_cooldown=COOLDOWN, max_age=600, clock=clock)
    revocations = Revocations(
        issuer.revocations_url, max_age=MAX_AGE, fetch_timeout=FROZEN_FETCH_TIMEOUT, clock=clock
    )
    validator = TokenValidator(keys, issuer=ISSUER, audience=AUDIENCE, revocations=revocations)
    issuer.revoked_grants.append("grant-1")
    try:
        await validator.validate(issuer.token(sid="grant-0"))  # the list as it was
        issuer.frozen = True
        clock.advance(MAX_AGE)

        started = time.monotonic()
        results = await asyncio.gather(
            *(validator.validate(issuer.token(sid=f"grant-{n % 2}")) for n in range(6)),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - started
        clock.advance(0.5)  # within the back-off: the last list, and nothing asked
        refused = await _rejection(validator, issuer.token(sid="grant-1"))
    finally:
        await validator.close()

    assert len(issuer.revocation_requests) == 2  # the first list, then one shared try
    assert elapsed < 2 * FROZEN_FETCH_TIMEOUT  # six fetches in turn would take six
    assert refused == Rejection.REVOKED  # the last good list stays in force
    assert [isinstance(result, InvalidTokenError) for result in results] == [False, True] * 3
