"""Souk's microservice chassis: what every process gets from one ``create_app`` call."""

from chassis.app import create_app
from chassis.db import Database
from chassis.logs import get_logger
from chassis.problems import ProblemError, problem_response
from chassis.serve import run
from chassis.settings import ServiceSettings

__all__ = [
    "Database",
    "ProblemError",
    "ServiceSettings",
    "create_app",
    "get_logger",
    "problem_response",
    "run",
]
