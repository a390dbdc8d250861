"""What a user sees with curl on :8080 right after `souk up`."""

from __future__ import annotations

import uuid

PROBLEM = "application/problem+json"


def test_the_demo_shop_has_a_realistic_catalog(gateway):
    response = gateway.get("/api/catalog/products", params={"page_size": 100})
    assert response.status_code == 200
    page = response.json()
    assert page["total"] >= 50
    categories = {p["category"] for p in page["items"]}
    assert len(categories) >= 5
    for product in page["items"]:
        assert isinstance(product["price"]["amount"], int)
        assert product["price"]["currency"] == "EUR"
        assert product["name"]


def test_products_can_be_filtered_searched_and_paged(gateway):
    spices = gateway.get("/api/catalog/products", params={"category": "spices"}).json()
    assert spices["total"] > 0
    assert {p["category"] for p in spices["items"]} == {"spices"}

    found = gateway.get("/api/catalog/products", params={"q": "SAFFRON"}).json()
    assert found["total"] >= 1
    assert all("saffron" in (p["name"] + p["description"]).lower() for p in found["items"])

    first = gateway.get("/api/catalog/products", params={"page": 1, "page_size": 5}).json()
    second = gateway.get("/api/catalog/products", params={"page": 2, "page_size": 5}).json()
    assert len(first["items"]) == len(second["items"]) == 5
    assert {p["id"] for p in first["items"]}.isdisjoint({p["id"] for p in second["items"]})
    assert first["pages"] == second["pages"] == -(-first["total"] // 5)


def test_a_product_carries_an_etag_and_an_unchanged_one_is_not_sent_again(gateway):
    product_id = gateway.get("/api/catalog/products").json()["items"][0]["id"]
    first = gateway.get(f"/api/catalog/products/{product_id}")
    assert first.status_code == 200
    etag = first.headers["etag"]

    again = gateway.get(f"/api/catalog/products/{product_id}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert again.headers["etag"] == etag

    stale = gateway.get(f"/api/catalog/products/{product_id}", headers={"If-None-Match": '"x"'})
    assert stale.status_code == 200


def test_bad_requests_get_problem_documents_never_a_500(gateway, admin):
    cases = [
        gateway.get("/api/catalog/products", params={"page": "abc"}),
        gateway.get("/api/catalog/products", params={"page_size": 100000}),
        gateway.get(f"/api/catalog/products/{uuid.uuid4()}"),
        admin.post(
            "/api/catalog/products",
            content=b'{"sku": "broken',
            headers={"content-type": "application/json"},
        ),
        admin.post("/api/catalog/products", json={"sku": "X-1", "name": "", "price": 1}),
        gateway.get("/api/nowhere/products"),
    ]
    assert [r.status_code for r in cases] == [422, 422, 404, 422, 422, 404]
    for response in cases:
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"].startswith("https://souk.dev/problems/")
        assert problem["status"] == response.status_code
        assert problem["request_id"] == response.headers["x-request-id"]


def test_a_product_created_by_an_admin_is_served_by_every_replica(gateway, admin):
    sku = f"TEA-E2E-{uuid.uuid4().hex[:8].upper()}"
    created = admin.post(
        "/api/catalog/products",
        json={
            "sku": sku,
            "name": "Gunpowder green tea, 250 g",
            "description": "Tightly rolled leaves for Moroccan mint tea.",
            "category": "tea-coffee",
            "price": {"amount": 890, "currency": "EUR"},
        },
    )
    assert created.status_code == 201, created.text
    product_id = created.json()["id"]
    assert created.headers["location"] == f"/api/catalog/products/{product_id}"
    assert gateway.get(created.headers["location"]).json()["sku"] == sku
    served_by = set()
    for _ in range(4):
        response = gateway.get(f"/api/catalog/products/{product_id}")
        assert response.status_code == 200
        assert response.json()["sku"] == sku
        served_by.add(response.headers["x-souk-upstream"])
    assert served_by == {"catalog-1", "catalog-2"}


def test_requests_are_balanced_across_both_catalog_replicas(gateway):
    served_by = [
        gateway.get("/api/catalog/categories").headers["x-souk-upstream"] for _ in range(20)
    ]
    # Round robin gives 10 each; a replica briefly ejected by an earlier test may take fewer.
    assert served_by.count("catalog-1") >= 5
    assert served_by.count("catalog-2") >= 5


def test_only_a_token_with_catalog_write_may_change_the_catalog(gateway, shopper):
    product = {
        "sku": f"TEA-E2E-{uuid.uuid4().hex[:8].upper()}",
        "name": "Mint tea, 100 g",
        "category": "tea-coffee",
        "price": {"amount": 450, "currency": "EUR"},
    }

    anonymous = gateway.post("/api/catalog/products", json=product)
    customer = shopper.post("/api/catalog/products", json=product)

    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert customer.status_code == 403, customer.text
    assert gateway.get("/api/catalog/products", params={"q": product["sku"]}).json()["total"] == 0
