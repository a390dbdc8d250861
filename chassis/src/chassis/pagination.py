"""Offset pagination: the page a listing query answers, and its JSON form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, Self, TypeVar

from pydantic import BaseModel

ItemT = TypeVar("ItemT")
PublicT = TypeVar("PublicT")


@dataclass(frozen=True, slots=True)
class Page(Generic[ItemT]):
    """One page of a listing; ``page`` counts from 1 and ``total`` is the whole listing's size."""

    items: list[ItemT]
    page: int
    page_size: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages the whole listing has."""
        return -(-self.total // self.page_size)


class PageModel(BaseModel, Generic[PublicT]):
    """The JSON of a Page; a service subclasses it as ``PageModel[ItsPublicModel]``."""

    items: list[PublicT]
    page: int
    page_size: int
    total: int
    pages: int

    @classmethod
    def of(cls, page: Page[ItemT], public: Callable[[ItemT], PublicT]) -> Self:
        """The JSON of ``page``, each item turned into its public model by ``public``."""
        return cls(
            items=[public(item) for item in page.items],
            page=page.page,
            page_size=page.page_size,
            total=page.total,
            pages=page.pages,
        )
