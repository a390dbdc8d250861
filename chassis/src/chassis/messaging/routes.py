"""Internal HTTP routes over a service's dead letters, for `souk dlq` (the gateway hides them)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Request

from chassis.messaging.lifecycle import Messaging, ReplayError
from chassis.problems import ProblemError

if TYPE_CHECKING:
    from chassis.messaging.dead_letters import DatabaseDeadLetters, StoredDeadLetter

router = APIRouter(prefix="/internal/dead-letters", tags=["internal"], include_in_schema=False)

# Each reason is a problem type of its own; see docs/problems.md.
_STATUS = {"not-found": 404, "already-replayed": 409, "no-handler": 409, "replay-failed": 422}


def _messaging(request: Request) -> Messaging:
    messaging: Messaging = request.app.state.messaging
    return messaging


def _store(request: Request) -> DatabaseDeadLetters:
    store = _messaging(request).dead_letters
    if store is None:
        raise ProblemError(503, "messaging-not-started", "Messaging has not started yet")
    return store


def _summary(letter: StoredDeadLetter) -> dict[str, Any]:
    message = letter.message
    return {
        "id": letter.id,
        "group": letter.group,
        "topic": message.topic,
        "key": message.key,
        "message_id": message.message_id,
        "event_type": message.event_type,
        "schema_version": message.schema_version,
        "attempts": letter.attempts,
        "error": letter.error,
        "buried_at": letter.buried_at.isoformat(),
        "replayed_at": letter.replayed_at.isoformat() if letter.replayed_at else None,
    }


def _detail(letter: StoredDeadLetter) -> dict[str, Any]:
    payload = letter.message.payload
    try:
        shown: dict[str, str] = {"payload": payload.decode()}
    except UnicodeDecodeError:
        shown = {"payload_base64": base64.b64encode(payload).decode()}
    return {**_summary(letter), "headers": letter.message.headers(), **shown}


@router.get("")
async def list_dead_letters(request: Request, include_replayed: bool = False) -> dict[str, Any]:
    """The dead letters of this service, oldest first."""
    letters = await _store(request).list(include_replayed=include_replayed)
    return {"items": [_summary(letter) for letter in letters]}


@router.get("/{dead_letter_id}")
async def show_dead_letter(request: Request, dead_letter_id: int) -> dict[str, Any]:
    """One dead letter with its headers and payload."""
    letter = await _store(request).get(dead_letter_id)
    if letter is None:
        raise ProblemError(
            404, "not-found", "No such dead letter", f"there is no dead letter {dead_letter_id}"
        )
    return _detail(letter)


@router.post("/{dead_letter_id}/replay")
async def replay_dead_letter(request: Request, dead_letter_id: int) -> dict[str, Any]:
    """Hand the dead letter to its handler again; 422 with the error if it fails again."""
    _store(request)
    try:
        letter = await _messaging(request).replay(dead_letter_id)
    except ReplayError as error:
        raise ProblemError(
            _STATUS[error.reason], error.reason, "The dead letter was not replayed", str(error)
        ) from error
    return _summary(letter)
