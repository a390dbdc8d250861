"""Souk's microservice chassis: what every process gets from one ``create_app`` call.

The names below are loaded on first use, so that ``import chassis.settings`` (the `souk`
command reads the broker settings) does not load FastAPI, SQLAlchemy and the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chassis.app import create_app
    from chassis.db import Database
    from chassis.logs import get_logger
    from chassis.problems import ProblemError, problem_response
    from chassis.serve import run
    from chassis.settings import ServiceSettings

_HOMES = {
    "Database": "chassis.db",
    "ProblemError": "chassis.problems",
    "ServiceSettings": "chassis.settings",
    "create_app": "chassis.app",
    "get_logger": "chassis.logs",
    "problem_response": "chassis.problems",
    "run": "chassis.serve",
}

__all__ = [
    "Database",
    "ProblemError",
    "ServiceSettings",
    "create_app",
    "get_logger",
    "problem_response",
    "run",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'chassis' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
