"""Product pictures: well-formed SVG, the same for a product every time, another for another."""

from __future__ import annotations

from xml.etree import ElementTree

from bff_web.entrypoints.placeholders import product_svg


def test_a_picture_is_well_formed_svg() -> None:
    root = ElementTree.fromstring(product_svg("9400e52f-a224-50bf-96af-9db31b72c0e1"))  # noqa: S314
    assert root.tag == "{http://www.w3.org/2000/svg}svg"


def test_a_product_always_has_the_same_picture_and_others_another() -> None:
    assert product_svg("saffron") == product_svg("saffron")
    assert len({product_svg(name) for name in ("saffron", "cumin", "teapot", "rug")}) == 4
