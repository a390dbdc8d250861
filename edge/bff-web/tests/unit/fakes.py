"""Hand-written fakes of the ports, for the tests beside this file (imported, not fixtures)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bff_web.domain.errors import ProductNotFound, SignInFailed, SignInRequired
from bff_web.domain.session import CustomerTokens, Session
from bff_web.domain.shop import Category, Product, ProductPage, StockLevel
from chassis.upstream import UpstreamFailure

if TYPE_CHECKING:
    from bff_web.service_layer.ports import Authorization


@dataclass
class FakeCatalog:
    products_by_id: dict[str, Product] = field(default_factory=dict)
    categories_fail: bool = False
    listing_fails: bool = False

    async def categories(self) -> list[Category]:
        if self.categories_fail:
            raise UpstreamFailure("catalog", "down", transient=True)
        return [Category("spices", "Spices", len(self.products_by_id))]

    async def products(
        self,
        *,
        category: str | None,
        query: str | None,
        page: int,
        page_size: int,
        sort: str | None = None,
        min_price: int | None = None,
        max_price: int | None = None,
    ) -> ProductPage:
        if self.listing_fails:
            raise UpstreamFailure("catalog", "down", transient=True)
        items = [
            p
            for p in self.products_by_id.values()
            if category in (None, p.category)
            and (query or "") in p.name
            and (min_price is None or p.price.amount >= min_price)
            and (max_price is None or p.price.amount <= max_price)
        ]
        if sort in {"price", "-price"}:
            items.sort(key=lambda p: p.price.amount, reverse=sort == "-price")
        return ProductPage(items[:page_size], page, 1, len(items))

    async def product(self, product_id: str) -> Product:
        if product_id not in self.products_by_id:
            raise ProductNotFound(product_id)
        return self.products_by_id[product_id]


@dataclass
class FakeStock:
    levels: dict[str, int] = field(default_factory=dict)
    down: bool = False

    async def level(self, sku: str) -> StockLevel | None:
        if self.down:
            raise UpstreamFailure("inventory", "UNAVAILABLE", transient=True)
        return StockLevel(sku, self.levels[sku]) if sku in self.levels else None


@dataclass
class FakeIdentity:
    exchanged: list[Authorization] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)
    revoked: list[str] = field(default_factory=list)
    refuse: bool = False
    unreachable: bool = False
    lifetime: timedelta = timedelta(minutes=10)

    def _tokens(self, now: datetime) -> CustomerTokens:
        number = len(self.exchanged) + len(self.refreshed)
        return CustomerTokens(f"access-{number}", f"refresh-{number}", now + self.lifetime)

    async def exchange(self, authorization: Authorization, now: datetime) -> CustomerTokens:
        if self.refuse:
            raise SignInFailed("invalid_grant")
        self.exchanged.append(authorization)
        return self._tokens(now)

    async def refresh(self, refresh_token: str, now: datetime) -> CustomerTokens:
        if self.refuse:
            raise SignInRequired("invalid_grant")
        self.refreshed.append(refresh_token)
        return self._tokens(now)

    async def revoke(self, refresh_token: str) -> None:
        if self.unreachable:
            raise UpstreamFailure("identity", "refused", transient=True)
        self.revoked.append(refresh_token)

    async def register(self, email: str, password: str) -> None:
        raise NotImplementedError


@dataclass
class FakeSessionStore:
    sessions: dict[str, Session] = field(default_factory=dict)

    async def load(self, session_id: str, now: datetime) -> Session | None:
        session = self.sessions.get(session_id)
        return session if session is not None and session.expires_at > now else None

    async def save(self, session: Session) -> None:
        self.sessions[session.id] = session

    async def delete(self, session_id: str) -> None:
        self.sessions.pop(session_id, None)
