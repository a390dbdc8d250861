"""ETags and conditional GET: a client that already has this version gets 304 and no body."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

import pytest
from fastapi import APIRouter, FastAPI, Request
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from chassis.etags import conditional_json, etag_for, etag_matches, etag_of

PRODUCT = {"id": 7, "name": "Mint tea", "price": {"amount": "3.50", "currency": "MAD"}}


def _router() -> APIRouter:
    router = APIRouter()

    @router.get("/products/7")
    async def product(request: Request) -> object:
        return conditional_json(request, PRODUCT, headers={"Cache-Control": "no-cache"})

    @router.put("/products/7")
    async def replace(request: Request) -> object:
        return conditional_json(request, PRODUCT)

    return router


@pytest.fixture
def client(make_app: Callable[..., FastAPI]) -> TestClient:
    return TestClient(make_app(_router()))


@pytest.fixture
def etag(client: TestClient) -> str:
    return client.get("/products/7").headers["etag"]


def test_conditional_json_returns_the_json_with_a_strong_etag(client: TestClient) -> None:
    response = client.get("/products/7")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == PRODUCT
    assert response.headers["etag"] == etag_for(response.content)
    assert response.headers["etag"].startswith('"')
    assert response.headers["cache-control"] == "no-cache"


def test_the_etag_is_stable_across_requests(client: TestClient, etag: str) -> None:
    assert client.get("/products/7").headers["etag"] == etag


@pytest.mark.parametrize(
    "if_none_match",
    ["{etag}", "W/{etag}", '"other", {etag}', '"a",W/{etag} , "b"', "*", " * "],
    ids=["same", "weak", "list", "list-weak", "star", "star-spaced"],
)
def test_a_matching_if_none_match_gets_304_with_no_body(
    client: TestClient, etag: str, if_none_match: str
) -> None:
    response = client.get("/products/7", headers={"If-None-Match": if_none_match.format(etag=etag)})

    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag
    assert response.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("if_none_match", ['"0123"', 'W/"0123"', '"a", "b"', ""])
def test_a_different_if_none_match_gets_the_full_200(
    client: TestClient, if_none_match: str
) -> None:
    response = client.get("/products/7", headers={"If-None-Match": if_none_match})

    assert response.status_code == 200
    assert response.json() == PRODUCT


def test_if_none_match_does_not_turn_an_unsafe_method_into_a_304(
    client: TestClient, etag: str
) -> None:
    response = client.put("/products/7", headers={"If-None-Match": etag})

    assert response.status_code == 200
    assert response.json() == PRODUCT


def test_the_etag_is_computed_over_compact_json() -> None:
    body = json.dumps(PRODUCT, separators=(",", ":")).encode()

    assert etag_for(body) == '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


@pytest.mark.parametrize(
    ("header", "etag", "expected"),
    [
        (None, '"abc"', False),
        ("", '"abc"', False),
        ('"abc"', '"abc"', True),
        ('W/"abc"', '"abc"', True),
        ('"abc"', 'W/"abc"', True),
        ('W/"abc"', 'W/"abc"', True),
        ('"abd"', '"abc"', False),
        ('"abc', '"abc"', False),
        ("abc", '"abc"', False),
        ('"x","abc"', '"abc"', True),
        ('"x" ,  "abc"  ', '"abc"', True),
        ('"x", "y"', '"abc"', False),
        ("*", '"abc"', True),
    ],
)
def test_etag_matches_uses_weak_comparison(header: str | None, etag: str, expected: bool) -> None:
    assert etag_matches(header, etag) is expected


@pytest.mark.parametrize(
    ("header", "etag", "expected"),
    [
        ('"abc"', '"abc"', True),
        ('"x", "abc"', '"abc"', True),
        ('W/"abc"', '"abc"', False),
        ('"abc"', 'W/"abc"', False),
        ('W/"abc"', 'W/"abc"', False),
        ('"abd"', '"abc"', False),
        (None, '"abc"', False),
        ("*", '"abc"', True),
    ],
)
def test_etag_matches_with_weak_false_uses_strong_comparison_for_if_match(
    header: str | None, etag: str, expected: bool
) -> None:
    assert etag_matches(header, etag, weak=False) is expected


def test_an_entity_tag_containing_a_comma_still_matches_itself() -> None:
    # RFC 9110 §8.8.3: etagc includes "," (only DQUOTE is excluded), so a header list must
    # be split between quoted tags, not at every comma.
    assert etag_matches('"v1,2"', '"v1,2"')
    assert etag_matches('"x", W/"v1,2"', '"v1,2"')
    assert not etag_matches('"v1", "2"', '"v1,2"')


def test_etag_of_is_the_etag_conditional_json_sends(client: TestClient) -> None:
    assert client.get("/products/7").headers["etag"] == etag_of(PRODUCT)


@given(st.binary())
def test_a_bodys_etag_matches_itself_strong_weak_and_in_a_list(body: bytes) -> None:
    tag = etag_for(body)

    assert etag_matches(tag, tag)
    assert etag_matches(f"W/{tag}", tag)
    assert etag_matches(f'"unrelated", {tag}', tag)
    assert etag_matches(tag, tag, weak=False)
    assert not etag_matches(f"W/{tag}", tag, weak=False)


@given(st.binary(), st.binary())
def test_different_bodies_have_different_etags(first: bytes, second: bytes) -> None:
    if first == second:
        assert etag_for(first) == etag_for(second)
    else:
        assert not etag_matches(etag_for(first), etag_for(second))


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(_JSON_VALUES)
def test_an_etag_is_the_one_the_stdlib_json_rendering_of_the_content_had(content: object) -> None:
    # ETags handed out before the body was rendered with orjson must still match: a client's
    # If-Match or If-None-Match from an older release names the same representation.
    stdlib = json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()

    assert etag_of(content) == etag_for(stdlib)
