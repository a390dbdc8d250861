"""An upstream's answer of the wrong shape is the upstream's failure, never retried."""

from __future__ import annotations

import pytest

from chassis.answers import read_answer
from chassis.upstream import UpstreamFailure
from contracts import Money


def test_what_the_reader_makes_of_a_good_answer_is_returned() -> None:
    body = {"items": [{"name": "Saffron"}]}

    assert read_answer("catalog", "GET", "/products", lambda: body["items"][0]["name"]) == "Saffron"


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({}, "KeyError"),
        ({"items": []}, "IndexError"),
        ({"items": None}, "TypeError"),
        ({"items": [{"price": "12.99"}]}, "MoneyError"),
    ],
)
def test_an_answer_of_the_wrong_shape_is_a_failure_of_the_upstream_not_worth_a_retry(
    body: dict[str, object], error: str
) -> None:
    def read() -> Money:
        items = body["items"]
        return Money(items[0]["price"], "EUR")  # type: ignore[index]

    with pytest.raises(UpstreamFailure) as caught:
        read_answer("catalog", "GET", "/products", read)

    assert caught.value.transient is False
    assert caught.value.upstream == "catalog"
    assert str(caught.value).endswith(error)
