"""Event-source the orders: each order becomes the stream ``order-<id>`` in the chassis's
event store; ``orders`` stays as the index the listings read.

Existing orders are kept: each becomes a stream of one ``OrderImported`` event holding its
whole state as it was (lines, checkout log, status), with no step in progress: the step the
in-process checkout had begun is in doubt and has no command on the bus, so orders begins
it again at start-up (``restart_stalled``), to the same effect; in an order cancelled while
it was out, the step is logged timed out instead, so that what it may have done is undone.
Card tokens of unsettled orders move to ``order_card_tokens``. Then ``order_lines``,
``checkout_steps`` and the state columns of ``orders`` are dropped.

Downgrading drops the streams and recreates the old tables empty: the orders' state is in
the streams only, so a downgrade loses every order (the index rows stay, with no lines).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from alembic import op

from chassis.eventstore.tables import (
    create_event_store_tables_v1,
    drop_event_store_tables_v1,
)
from chassis.eventstore.tables import events as events_table
from chassis.eventstore.tables import streams as streams_table

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_orders = sa.table(
    "orders",
    sa.column("id", sa.String),
    sa.column("customer_id", sa.String),
    sa.column("status", sa.String),
    sa.column("card_token", sa.String),
    sa.column("reason", sa.Text),
    sa.column("last_error", sa.Text),
    sa.column("payment_id", sa.String),
    sa.column("step_in_progress", sa.String),
    sa.column("step_deadline", sa.DateTime(timezone=True)),
    sa.column("settled", sa.Boolean),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("updated_at", sa.DateTime(timezone=True)),
    sa.column("version", sa.Integer),
)
_lines = sa.table(
    "order_lines",
    sa.column("order_id", sa.String),
    sa.column("position", sa.Integer),
    sa.column("product_id", sa.String),
    sa.column("quantity", sa.Integer),
    sa.column("sku", sa.String),
    sa.column("name", sa.String),
    sa.column("unit_price_amount", sa.BigInteger),
    sa.column("unit_price_currency", sa.String),
)
_steps = sa.table(
    "checkout_steps",
    sa.column("order_id", sa.String),
    sa.column("position", sa.Integer),
    sa.column("step", sa.String),
    sa.column("outcome", sa.String),
    sa.column("at", sa.DateTime(timezone=True)),
    sa.column("detail", sa.Text),
)
_keys = sa.table(
    "idempotency_keys",
    sa.column("key", sa.String),
    sa.column("request_fingerprint", sa.String),
    sa.column("order_id", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
)
_card_tokens = sa.table(
    "order_card_tokens", sa.column("order_id", sa.String), sa.column("card_token", sa.String)
)
_STATE_COLUMNS = (
    "card_token",
    "reason",
    "last_error",
    "payment_id",
    "step_in_progress",
    "step_deadline",
)


def upgrade() -> None:
    create_event_store_tables_v1(op)
    tokens = _import_orders()
    op.drop_table("checkout_steps")
    op.drop_table("order_lines")
    # SQLite alters a table by copying it, which the keys referring to orders would forbid:
    # they are set aside and put back.
    connection = op.get_bind()
    keys = [dict(row._mapping) for row in connection.execute(sa.select(_keys))]
    op.drop_table("idempotency_keys")
    with op.batch_alter_table("orders") as batch:
        for column in _STATE_COLUMNS:
            batch.drop_column(column)
    op.create_table(
        "idempotency_keys",
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("request_fingerprint", sa.CHAR(64), nullable=False),
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_idempotency_keys"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_idempotency_keys_order_id_orders"
        ),
    )
    op.create_table(
        "order_card_tokens",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("card_token", sa.String(200), nullable=False),
        sa.PrimaryKeyConstraint("order_id", name="pk_order_card_tokens"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_order_card_tokens_order_id_orders"
        ),
    )
    if keys:
        connection.execute(sa.insert(_keys), keys)
    if tokens:
        connection.execute(sa.insert(_card_tokens), tokens)


def _import_orders() -> list[dict[str, str]]:
    """Write each order's stream; the card tokens still to be used, to keep."""
    connection = op.get_bind()
    lines: dict[str, list[dict[str, Any]]] = {}
    for line in connection.execute(sa.select(_lines).order_by(_lines.c.position)):
        price = (
            None
            if line.unit_price_amount is None
            else {"amount": line.unit_price_amount, "currency": line.unit_price_currency}
        )
        lines.setdefault(line.order_id, []).append(
            {
                "product_id": line.product_id,
                "quantity": line.quantity,
                "sku": line.sku,
                "name": line.name,
                "unit_price": price,
            }
        )
    steps: dict[str, list[dict[str, Any]]] = {}
    for step in connection.execute(sa.select(_steps).order_by(_steps.c.position)):
        steps.setdefault(step.order_id, []).append(
            {"step": step.step, "outcome": step.outcome, "detail": step.detail, "at": _iso(step.at)}
        )
    now = dt.datetime.now(dt.UTC)
    tokens = []
    for order in connection.execute(sa.select(_orders)).all():
        logged = steps.get(order.id, [])
        if order.step_in_progress is not None and order.status != "PENDING":
            # Cancelled while the step was out: its effect is in doubt, and a settled order
            # is not driven forward again, so the step counts as timed out and is undone.
            logged.append(
                {
                    "step": order.step_in_progress,
                    "outcome": "timed-out",
                    "detail": "in doubt: the order was no longer pending when it was imported",
                    "at": _iso(order.updated_at),
                }
            )
        state = {
            "order_id": order.id,
            "customer_id": order.customer_id,
            "lines": lines.get(order.id, []),
            "status": order.status,
            "reason": order.reason,
            "last_error": order.last_error,
            "payment_id": order.payment_id,
            "step_in_progress": None,
            "step_deadline": None,
            "steps": logged,
            "created_at": _iso(order.created_at),
            "updated_at": _iso(order.updated_at),
        }
        stream_id = f"order-{order.id}"
        connection.execute(sa.insert(streams_table).values(stream_id=stream_id, version=1))
        connection.execute(
            sa.insert(events_table).values(
                stream_id=stream_id,
                version=1,
                event_id=uuid.uuid4().hex,
                event_type="OrderImported",
                schema_version=1,
                data=state,
                recorded_at=now,
            )
        )
        connection.execute(sa.update(_orders).where(_orders.c.id == order.id).values(version=1))
        if order.card_token and not order.settled:  # a settled order asks for no payment
            tokens.append({"order_id": order.id, "card_token": order.card_token})
    return tokens


def _iso(moment: dt.datetime) -> str:
    # SQLite keeps no time zone: what was written is UTC.
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).isoformat()


def downgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.add_column(sa.Column("card_token", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("payment_id", sa.String(100), nullable=True))
        batch.add_column(sa.Column("step_in_progress", sa.String(32), nullable=True))
        batch.add_column(sa.Column("step_deadline", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "order_lines",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("product_id", sa.String(100), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(40), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("unit_price_amount", sa.BigInteger(), nullable=True),
        sa.Column("unit_price_currency", sa.CHAR(3), nullable=True),
        sa.PrimaryKeyConstraint("order_id", "position", name="pk_order_lines"),
        sa.ForeignKeyConstraint(["order_id"], ["orders.id"], name="fk_order_lines_order_id_orders"),
        sa.CheckConstraint("quantity BETWEEN 1 AND 100", name="ck_order_lines_quantity_in_range"),
    )
    op.create_table(
        "checkout_steps",
        sa.Column("order_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("step", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("order_id", "position", name="pk_checkout_steps"),
        sa.ForeignKeyConstraint(
            ["order_id"], ["orders.id"], name="fk_checkout_steps_order_id_orders"
        ),
    )
    op.drop_table("order_card_tokens")
    drop_event_store_tables_v1(op)
