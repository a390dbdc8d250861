"""Refresh tokens rotate on each use; a reused one revokes its family; revocation ends it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .conftest import CLI, WEB, token, tokens_for_amina
from .validation import published_keys, validated_claims

if TYPE_CHECKING:
    import httpx

    from .conftest import Clock

# An access token lives 600 s by default; identity's JWKS leeway adds 60.
TOKENS_OUTLIVED = 600 + 60


async def refresh(identity: httpx.AsyncClient, refresh_token: str) -> httpx.Response:
    return await token(identity, grant_type="refresh_token", refresh_token=refresh_token)


async def test_each_refresh_returns_new_tokens_and_a_new_refresh_token(
    identity: httpx.AsyncClient, amina: str
) -> None:
    first = await tokens_for_amina(identity)

    second = await refresh(identity, first["refresh_token"])
    third = await refresh(identity, second.json()["refresh_token"])

    assert second.status_code == third.status_code == 200
    refresh_tokens = {first["refresh_token"], second.json()["refresh_token"]}
    assert len(refresh_tokens | {third.json()["refresh_token"]}) == 3
    assert third.json()["access_token"] != second.json()["access_token"]


async def test_a_refresh_may_narrow_the_scope_but_not_widen_it(
    identity: httpx.AsyncClient, amina: str
) -> None:
    first = await tokens_for_amina(identity)

    narrowed = await token(
        identity,
        grant_type="refresh_token",
        refresh_token=first["refresh_token"],
        scope="orders:read",
    )
    widened = await token(
        identity,
        grant_type="refresh_token",
        refresh_token=narrowed.json()["refresh_token"],
        scope="orders:read catalog:write",
    )

    assert narrowed.json()["scope"] == "orders:read"
    assert widened.json()["error"] == "invalid_scope"


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(
    identity: httpx.AsyncClient, amina: str
) -> None:
    stolen = (await tokens_for_amina(identity))["refresh_token"]
    legitimate = (await refresh(identity, stolen)).json()["refresh_token"]

    reuse = await refresh(identity, stolen)

    assert reuse.status_code == 400
    assert reuse.json()["error"] == "invalid_grant"
    assert (await refresh(identity, legitimate)).json()["error"] == "invalid_grant"


async def test_another_sign_in_is_a_family_of_its_own_that_a_reuse_leaves_alone(
    identity: httpx.AsyncClient, amina: str
) -> None:
    stolen = (await tokens_for_amina(identity))["refresh_token"]
    other = (await tokens_for_amina(identity))["refresh_token"]
    await refresh(identity, stolen)

    await refresh(identity, stolen)

    assert (await refresh(identity, other)).status_code == 200


async def test_a_revoked_refresh_token_and_its_family_no_longer_work(
    identity: httpx.AsyncClient, amina: str
) -> None:
    first = (await tokens_for_amina(identity))["refresh_token"]
    current = (await refresh(identity, first)).json()["refresh_token"]

    response = await identity.post("/oauth/revoke", data={"token": current, "client_id": WEB})

    assert response.status_code == 200
    assert (await refresh(identity, current)).json()["error"] == "invalid_grant"


async def test_revoking_an_unknown_token_answers_ok_as_rfc_7009_asks(
    identity: httpx.AsyncClient,
) -> None:
    response = await identity.post("/oauth/revoke", data={"token": "nonsense", "client_id": WEB})

    assert response.status_code == 200


async def test_a_client_cannot_revoke_another_clients_refresh_token(
    identity: httpx.AsyncClient, amina: str
) -> None:
    current = (await tokens_for_amina(identity))["refresh_token"]

    await identity.post(
        "/oauth/revoke",
        data={"token": current},
        auth=CLI,
    )

    assert (await refresh(identity, current)).status_code == 200


async def test_an_unknown_refresh_token_is_invalid_grant(identity: httpx.AsyncClient) -> None:
    response = await refresh(identity, "made-up")

    assert response.json()["error"] == "invalid_grant"


async def revoked_grants(identity: httpx.AsyncClient) -> list[str]:
    response = await identity.get("/internal/revocations")
    assert response.status_code == 200, response.text
    grants: list[str] = response.json()["grants"]
    return grants


async def grant_of(identity: httpx.AsyncClient, access_token: str) -> str:
    sid: str = validated_claims(access_token, await published_keys(identity))["sid"]
    return sid


async def test_a_revoked_family_is_listed_so_validators_refuse_its_access_tokens(
    identity: httpx.AsyncClient, amina: str
) -> None:
    signed_in = await tokens_for_amina(identity)
    other = await tokens_for_amina(identity)
    family = await grant_of(identity, signed_in["access_token"])
    assert await revoked_grants(identity) == []

    await identity.post(
        "/oauth/revoke", data={"token": signed_in["refresh_token"], "client_id": WEB}
    )

    assert await revoked_grants(identity) == [family]
    assert await grant_of(identity, other["access_token"]) != family


async def test_a_family_revoked_by_refresh_token_reuse_is_listed_too(
    identity: httpx.AsyncClient, amina: str
) -> None:
    stolen = await tokens_for_amina(identity)
    refreshed = (await refresh(identity, stolen["refresh_token"])).json()

    await refresh(identity, stolen["refresh_token"])

    family = await grant_of(identity, refreshed["access_token"])
    assert family == await grant_of(identity, stolen["access_token"])
    assert await revoked_grants(identity) == [family]


async def test_a_revoked_family_leaves_the_list_once_its_access_tokens_have_expired(
    identity: httpx.AsyncClient, amina: str, clock: Clock
) -> None:
    signed_in = await tokens_for_amina(identity)
    await identity.post(
        "/oauth/revoke", data={"token": signed_in["refresh_token"], "client_id": WEB}
    )

    clock.advance(TOKENS_OUTLIVED - 1)
    assert len(await revoked_grants(identity)) == 1
    clock.advance(2)
    assert await revoked_grants(identity) == []


async def test_an_unchanged_list_is_answered_not_modified(
    identity: httpx.AsyncClient, amina: str
) -> None:
    first = await identity.get("/internal/revocations")

    again = await identity.get(
        "/internal/revocations", headers={"If-None-Match": first.headers["ETag"]}
    )

    assert again.status_code == 304


async def test_a_clients_own_token_names_no_family(identity: httpx.AsyncClient) -> None:
    response = await token(identity, grant_type="client_credentials", auth=CLI)

    claims = validated_claims(response.json()["access_token"], await published_keys(identity))
    assert "sid" not in claims


async def test_revoking_an_access_token_revokes_its_grant(
    identity: httpx.AsyncClient, amina: str
) -> None:
    signed_in = await tokens_for_amina(identity)
    family = await grant_of(identity, signed_in["access_token"])

    response = await identity.post(
        "/oauth/revoke", data={"token": signed_in["access_token"], "client_id": WEB}
    )

    assert response.status_code == 200
    assert await revoked_grants(identity) == [family]
    refreshed = await refresh(identity, signed_in["refresh_token"])
    assert refreshed.json()["error"] == "invalid_grant"


async def test_a_forged_or_another_clients_access_token_revokes_nothing(
    identity: httpx.AsyncClient, amina: str
) -> None:
    signed_in = await tokens_for_amina(identity)
    header, payload, _ = signed_in["access_token"].split(".")
    forged = f"{header}.{payload}.{'A' * 86}"

    await identity.post("/oauth/revoke", data={"token": forged, "client_id": WEB})
    await identity.post("/oauth/revoke", data={"token": signed_in["access_token"]}, auth=CLI)

    assert await revoked_grants(identity) == []
