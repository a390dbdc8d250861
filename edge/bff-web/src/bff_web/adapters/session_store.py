"""Sessions in bff-web's own database (SQLite or PostgreSQL), shared by its replicas."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, select, update

from bff_web.adapters.orm import sessions
from bff_web.domain.cart import Cart
from bff_web.domain.session import CustomerTokens, HeldCart, PendingSignIn, Session

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class SqlSessionStore:
    """Implements the SessionStore port; rows are keyed by a digest of the session id."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def load(self, session_id: str, now: datetime) -> Session | None:
        async with self._sessionmaker() as db:
            row = (
                await db.execute(
                    select(sessions.c.data, sessions.c.expires_at).where(
                        sessions.c.id_digest == _digest(session_id)
                    )
                )
            ).one_or_none()
        if row is None or _aware(row.expires_at) <= now:
            return None
        return decode(session_id, json.loads(row.data))

    async def save(self, session: Session) -> None:
        values = {"data": json.dumps(encode(session)), "expires_at": session.expires_at}
        digest = _digest(session.id)
        async with self._sessionmaker() as db, db.begin():
            changed = await db.execute(
                update(sessions).where(sessions.c.id_digest == digest).values(**values)
            )
            if changed.rowcount == 0:  # type: ignore[attr-defined]
                # A new session: a good moment to sweep the expired ones.
                await db.execute(delete(sessions).where(sessions.c.expires_at <= _now()))
                await db.execute(insert(sessions).values(id_digest=digest, **values))

    async def delete(self, session_id: str) -> None:
        async with self._sessionmaker() as db, db.begin():
            await db.execute(delete(sessions).where(sessions.c.id_digest == _digest(session_id)))


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes; they were written in UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def encode(session: Session) -> dict[str, Any]:
    """The session as JSON, without its id (which is stored only as a digest)."""
    tokens, pending = session.tokens, session.pending_sign_in
    return {
        "csrf_token": session.csrf_token,
        "expires_at": session.expires_at.isoformat(),
        "cart": session.cart.quantities,
        "tokens": None
        if tokens is None
        else {
            "access_token": tokens.access_token,
            "refresh_token": tokens.refresh_token,
            "expires_at": tokens.expires_at.isoformat(),
        },
        "pending_sign_in": None
        if pending is None
        else {
            "state": pending.state,
            "code_verifier": pending.code_verifier,
            "return_to": pending.return_to,
        },
        "checkout_key": session.checkout_key,
        "flashes": session.flashes,
        "held_cart": None
        if session.held_cart is None
        else {"order_id": session.held_cart.order_id, "cart": session.held_cart.quantities},
    }


def decode(session_id: str, data: dict[str, Any]) -> Session:
    tokens, pending, held = data["tokens"], data["pending_sign_in"], data.get("held_cart")
    return Session(
        id=session_id,
        csrf_token=data["csrf_token"],
        expires_at=datetime.fromisoformat(data["expires_at"]),
        cart=Cart(dict(data["cart"])),
        tokens=None
        if tokens is None
        else CustomerTokens(
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            expires_at=datetime.fromisoformat(tokens["expires_at"]),
        ),
        pending_sign_in=None if pending is None else PendingSignIn(**pending),
        checkout_key=data["checkout_key"],
        flashes=list(data["flashes"]),
        # Sessions stored before carts were held have none.
        held_cart=None if held is None else HeldCart(held["order_id"], dict(held["cart"])),
    )
