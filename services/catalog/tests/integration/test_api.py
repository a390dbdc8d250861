"""The catalog's HTTP API, served by the real app on a seeded SQLite catalog."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from catalog.adapters.demo_catalog import load_demo_catalog
from catalog.domain.model import product_id_for
from services.catalog.tests.integration.conftest import bearer

if TYPE_CHECKING:
    from fastapi.testclient import TestClient
    from httpx import Response

PROBLEM = "application/problem+json"
DEMO_SIZE = len(load_demo_catalog().products)
SAFFRON_ID = product_id_for("SPC-SAFFRON-2G")

NEW_LANTERN: dict[str, Any] = {
    "sku": "LMP-STAR-LANTERN-S",
    "name": "Star lantern, small",
    "description": "Pierced brass, 20 cm.",
    "category": "lamps-lanterns",
    "price": {"amount": 3900, "currency": "EUR"},
}


def problem_of(response: Response, status: int, problem_type: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["type"] == f"https://souk.dev/problems/{problem_type}"
    assert body["status"] == status
    return body


def test_the_first_page_lists_twenty_products_by_name_out_of_the_whole_catalog(
    client: TestClient,
) -> None:
    body = client.get("/products").json()

    names = [item["name"] for item in body["items"]]
    assert len(names) == 20
    assert names == sorted(names, key=str.lower)
    assert (body["page"], body["page_size"], body["total"]) == (1, 20, DEMO_SIZE)
    assert body["pages"] == -(-DEMO_SIZE // 20)


def test_a_listed_product_shows_its_price_in_minor_units(client: TestClient) -> None:
    body = client.get("/products", params={"q": "Taliouine"}).json()

    assert body["items"] == [
        {
            "id": SAFFRON_ID,
            "sku": "SPC-SAFFRON-2G",
            "name": "Taliouine saffron threads, 2 g",
            "description": body["items"][0]["description"],
            "category": "spices",
            "price": {"amount": 1490, "currency": "EUR"},
            "version": 1,
        }
    ]


def test_a_listing_can_keep_to_one_category(client: TestClient) -> None:
    body = client.get("/products", params={"category": "rugs", "page_size": 100}).json()

    assert body["total"] == len(body["items"]) > 0
    assert {item["category"] for item in body["items"]} == {"rugs"}


def test_an_unknown_category_lists_nothing(client: TestClient) -> None:
    body = client.get("/products", params={"category": "weapons"}).json()

    assert (body["items"], body["total"], body["pages"]) == ([], 0, 0)


def test_a_search_finds_words_in_names_and_descriptions_in_any_case(client: TestClient) -> None:
    in_names = client.get("/products", params={"q": "LANTERN", "page_size": 100}).json()
    in_descriptions = client.get("/products", params={"q": "hammam", "page_size": 100}).json()

    assert in_names["total"] >= 3
    assert all("lantern" in item["name"].lower() for item in in_names["items"][:3])
    assert any("hammam" not in item["name"].lower() for item in in_descriptions["items"])
    assert all(
        "hammam" in (item["name"] + item["description"]).lower()
        for item in in_descriptions["items"]
    )


def test_a_search_for_a_wildcard_matches_it_literally(client: TestClient) -> None:
    assert client.get("/products", params={"q": "%"}).json()["total"] == 0


def test_the_last_page_holds_the_rest_and_pages_past_it_are_empty(client: TestClient) -> None:
    last = -(-DEMO_SIZE // 20)
    last_page = client.get("/products", params={"page": last}).json()
    past = client.get("/products", params={"page": last + 1}).json()

    assert len(last_page["items"]) == DEMO_SIZE - 20 * (last - 1)
    assert (past["items"], past["total"]) == ([], DEMO_SIZE)


def test_pages_do_not_overlap_and_together_cover_the_catalog(client: TestClient) -> None:
    ids = [
        item["id"]
        for page in (1, 2)
        for item in client.get("/products", params={"page": page, "page_size": 50}).json()["items"]
    ]

    assert len(ids) == len(set(ids)) == DEMO_SIZE


def test_a_listing_can_be_sorted_by_price_either_way(client: TestClient) -> None:
    cheapest = client.get("/products", params={"sort": "price", "page_size": 100}).json()
    dearest = client.get("/products", params={"sort": "-price", "page_size": 100}).json()

    prices = [item["price"]["amount"] for item in cheapest["items"]]
    assert prices == sorted(prices)
    assert [item["price"]["amount"] for item in dearest["items"]] == sorted(prices, reverse=True)


def test_a_search_ranks_by_relevance_unless_asked_otherwise_and_filters_by_price(
    client: TestClient,
) -> None:
    ranked = client.get("/products", params={"q": "saffron", "page_size": 100}).json()
    by_price = client.get(
        "/products", params={"q": "lamp", "sort": "price", "min_price": 5000, "max_price": 9000}
    ).json()

    assert ranked["items"][0]["name"] == "Taliouine saffron threads, 2 g"
    prices = [item["price"]["amount"] for item in by_price["items"]]
    assert prices
    assert prices == sorted(prices)
    assert all(5000 <= price <= 9000 for price in prices)


@pytest.mark.parametrize(
    "params",
    [
        {"page": "0"},
        {"page": "abc"},
        {"page": "-1"},
        {"page": "1" + "0" * 30},
        {"page_size": "0"},
        {"page_size": "1000"},
        {"page_size": "2.5"},
        {"sort": "cheapest"},
        {"category": "Not A Slug"},
        {"q": "x" * 101},
        {"min_price": "-1"},
        {"max_price": "cheap"},
        {"max_price": str(2**63)},
        {"sort": "best"},
    ],
)
def test_a_bad_listing_parameter_is_a_422_problem_never_a_crash(
    client: TestClient, params: dict[str, str]
) -> None:
    body = problem_of(client.get("/products", params=params), 422, "validation-error")

    assert body["errors"][0]["location"] == ["query", next(iter(params))]


def test_a_product_is_served_with_an_etag_and_a_304_when_it_has_not_changed(
    client: TestClient,
) -> None:
    first = client.get(f"/products/{SAFFRON_ID}")
    again = client.get(f"/products/{SAFFRON_ID}", headers={"If-None-Match": first.headers["etag"]})

    assert first.status_code == 200
    assert first.json()["sku"] == "SPC-SAFFRON-2G"
    assert first.headers["etag"].startswith('"')
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == first.headers["etag"]


@pytest.mark.parametrize("product_id", [product_id_for("NO-SUCH-SKU"), "not-a-uuid"])
def test_an_unknown_product_is_a_404_problem(client: TestClient, product_id: str) -> None:
    body = problem_of(client.get(f"/products/{product_id}"), 404, "product-not-found")

    assert body["product_id"] == product_id
    assert body["instance"] == f"/products/{product_id}"
    assert body["request_id"]


def test_categories_are_listed_with_how_many_products_each_holds(client: TestClient) -> None:
    categories = client.get("/categories").json()

    assert len(categories) >= 6
    assert {"slug": "tea-coffee", "name": "Tea & coffee"}.items() <= next(
        c for c in categories if c["slug"] == "tea-coffee"
    ).items()
    assert sum(c["product_count"] for c in categories) == DEMO_SIZE
    assert all(c["product_count"] > 0 for c in categories)


def test_behind_the_gateway_the_location_carries_the_public_prefix(client: TestClient) -> None:
    created = client.post(
        "/products", json=NEW_LANTERN, headers={"x-forwarded-prefix": "/api/catalog"}
    )
    assert created.headers["location"] == f"/api/catalog/products/{created.json()['id']}"


def test_a_created_product_is_answered_with_201_its_location_and_then_served_there(
    client: TestClient,
) -> None:
    created = client.post("/products", json=NEW_LANTERN)

    assert created.status_code == 201, created.text
    body = created.json()
    assert body == {**NEW_LANTERN, "id": product_id_for(NEW_LANTERN["sku"]), "version": 1}
    assert created.headers["location"] == f"/products/{body['id']}"
    fetched = client.get(created.headers["location"])
    assert fetched.json() == body
    assert fetched.headers["etag"] == created.headers["etag"]
    assert client.get("/products").json()["total"] == DEMO_SIZE + 1


def test_creating_a_product_with_a_sku_in_use_is_a_409_problem(client: TestClient) -> None:
    body = problem_of(
        client.post("/products", json={**NEW_LANTERN, "sku": "SPC-SAFFRON-2G"}),
        409,
        "duplicate-sku",
    )

    assert body["sku"] == "SPC-SAFFRON-2G"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"price": {"amount": 12.5, "currency": "EUR"}}, ["body", "price", "amount"]),
        ({"price": {"amount": "12", "currency": "EUR"}}, ["body", "price", "amount"]),
        ({"price": {"amount": True, "currency": "EUR"}}, ["body", "price", "amount"]),
        ({"price": {"amount": -1, "currency": "EUR"}}, ["body", "price", "amount"]),
        # Beyond the bound every API keeps (chassis.schemas.MAX_MINOR_UNITS); 2**63 and more
        # were a 500 (OverflowError into the 64-bit column).
        ({"price": {"amount": 10**12 + 1, "currency": "EUR"}}, ["body", "price", "amount"]),
        ({"price": {"amount": 2**63, "currency": "EUR"}}, ["body", "price", "amount"]),
        ({"price": {"amount": 10**30, "currency": "EUR"}}, ["body", "price", "amount"]),
        ({"price": {"amount": 100, "currency": "XYZ"}}, ["body", "price", "currency"]),
        ({"price": {"amount": 100, "currency": "eur"}}, ["body", "price", "currency"]),
        ({"price": 1299}, ["body", "price"]),
        ({"sku": "lower-case"}, ["body", "sku"]),
        ({"name": ""}, ["body", "name"]),
        ({"name": "x" * 201}, ["body", "name"]),
        ({"category": "Tea & Coffee"}, ["body", "category"]),
        ({"colour": "red"}, ["body", "colour"]),
    ],
)
def test_an_invalid_new_product_is_a_422_problem_naming_the_field(
    client: TestClient, change: dict[str, Any], where: list[str]
) -> None:
    body = problem_of(
        client.post("/products", json={**NEW_LANTERN, **change}), 422, "validation-error"
    )

    assert [error["location"] for error in body["errors"]] == [where]


def test_a_new_product_without_a_name_is_a_422_problem(client: TestClient) -> None:
    without_name = {k: v for k, v in NEW_LANTERN.items() if k != "name"}

    body = problem_of(client.post("/products", json=without_name), 422, "validation-error")

    assert body["errors"][0]["location"] == ["body", "name"]


def test_a_blank_name_is_refused_by_the_catalog_rules(client: TestClient) -> None:
    body = problem_of(
        client.post("/products", json={**NEW_LANTERN, "name": "   "}), 422, "invalid-product"
    )

    assert body["field"] == "name"


def test_a_new_product_in_a_category_the_shop_lacks_is_a_422_problem(client: TestClient) -> None:
    body = problem_of(
        client.post("/products", json={**NEW_LANTERN, "category": "weapons"}),
        422,
        "unknown-category",
    )

    assert body["category"] == "weapons"


@pytest.mark.parametrize("payload", [b"{not json", b"", b"[]", b'"a string"'])
def test_a_body_that_is_not_a_product_object_is_a_422_problem(
    client: TestClient, payload: bytes
) -> None:
    response = client.post(
        "/products", content=payload, headers={"Content-Type": "application/json"}
    )

    problem_of(response, 422, "validation-error")


def test_a_patch_changes_only_the_given_fields_and_bumps_the_version(client: TestClient) -> None:
    before = client.get(f"/products/{SAFFRON_ID}")

    patched = client.patch(
        f"/products/{SAFFRON_ID}", json={"price": {"amount": 1290, "currency": "EUR"}}
    )

    assert patched.status_code == 200, patched.text
    assert patched.json() == {
        **before.json(),
        "price": {"amount": 1290, "currency": "EUR"},
        "version": 2,
    }
    assert patched.headers["etag"] != before.headers["etag"]
    assert client.get(f"/products/{SAFFRON_ID}").json() == patched.json()


@pytest.mark.parametrize("amount", [2**63, 10**30])
def test_a_patch_to_a_price_beyond_the_bound_is_a_422_problem(
    client: TestClient, amount: int
) -> None:
    patched = client.patch(
        f"/products/{SAFFRON_ID}", json={"price": {"amount": amount, "currency": "EUR"}}
    )

    problem_of(patched, 422, "validation-error")
    assert client.get(f"/products/{SAFFRON_ID}").json()["price"]["amount"] == 1490


def test_a_patch_that_changes_nothing_keeps_the_version(client: TestClient) -> None:
    patched = client.patch(f"/products/{SAFFRON_ID}", json={})

    assert (patched.status_code, patched.json()["version"]) == (200, 1)


@pytest.mark.parametrize("if_match", ["etag", '"1"', "1", "*"])
def test_a_patch_applies_when_if_match_names_the_current_etag_or_version(
    client: TestClient, if_match: str
) -> None:
    etag = client.get(f"/products/{SAFFRON_ID}").headers["etag"]

    patched = client.patch(
        f"/products/{SAFFRON_ID}",
        json={"name": "Saffron, 2 g"},
        headers={"If-Match": etag if if_match == "etag" else if_match},
    )

    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["version"]) == ("Saffron, 2 g", 2)


@pytest.mark.parametrize("stale", ["old-etag", '"1"', "1"])
def test_a_patch_with_an_outdated_if_match_is_a_412_problem_and_changes_nothing(
    client: TestClient, stale: str
) -> None:
    old_etag = client.get(f"/products/{SAFFRON_ID}").headers["etag"]
    client.patch(f"/products/{SAFFRON_ID}", json={"name": "Someone else's edit"})

    response = client.patch(
        f"/products/{SAFFRON_ID}",
        json={"name": "My edit"},
        headers={"If-Match": old_etag if stale == "old-etag" else stale},
    )

    body = problem_of(response, 412, "stale-product")
    assert body["current_version"] == 2
    assert client.get(f"/products/{SAFFRON_ID}").json()["name"] == "Someone else's edit"


def test_patching_an_unknown_product_is_a_404_problem(client: TestClient) -> None:
    response = client.patch(f"/products/{product_id_for('NO-SUCH-SKU')}", json={"name": "Ghost"})

    problem_of(response, 404, "product-not-found")


@pytest.mark.parametrize(
    "change",
    [{"price": {"amount": 9.99, "currency": "EUR"}}, {"sku": "NEW-SKU"}, {"name": None, "x": 1}],
)
def test_an_invalid_patch_is_a_422_problem(client: TestClient, change: dict[str, Any]) -> None:
    problem_of(client.patch(f"/products/{SAFFRON_ID}", json=change), 422, "validation-error")


def test_the_openapi_document_describes_the_catalog_api(client: TestClient) -> None:
    document = client.get("/openapi.json").json()

    assert {"/products", "/products/{product_id}", "/categories"} <= document["paths"].keys()
    assert {"ProductPublic", "ProductCreate", "ProductUpdate", "ProductPage"} <= document[
        "components"
    ]["schemas"].keys()
    not_found = document["paths"]["/products/{product_id}"]["get"]["responses"]["404"]
    assert "application/problem+json" in not_found["content"]


def test_anyone_may_browse_the_catalog_without_a_token(client: TestClient) -> None:
    del client.headers["Authorization"]

    assert client.get("/products").status_code == 200
    assert client.get(f"/products/{SAFFRON_ID}").status_code == 200
    assert client.get("/categories").status_code == 200


def test_changing_the_catalog_without_a_token_is_answered_401_with_a_bearer_challenge(
    client: TestClient,
) -> None:
    del client.headers["Authorization"]

    created = client.post("/products", json=NEW_LANTERN)
    patched = client.patch(f"/products/{SAFFRON_ID}", json={"name": "Anonymous edit"})

    problem_of(created, 401, "unauthorized")
    problem_of(patched, 401, "unauthorized")
    assert created.headers["www-authenticate"] == "Bearer"
    assert client.get(f"/products/{SAFFRON_ID}").json()["name"] != "Anonymous edit"


def test_a_customers_token_without_catalog_write_cannot_change_the_catalog(
    client: TestClient,
) -> None:
    customer = bearer("c-1", "orders:read", "orders:write")

    created = client.post("/products", json=NEW_LANTERN, headers=customer)
    patched = client.patch(f"/products/{SAFFRON_ID}", json={"name": "Edit"}, headers=customer)

    assert problem_of(created, 403, "insufficient-scope")["required_scopes"] == ["catalog:write"]
    problem_of(patched, 403, "insufficient-scope")
