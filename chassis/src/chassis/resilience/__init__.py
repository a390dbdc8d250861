"""Resilience of every outgoing call and of the process itself.

``Resilience`` makes one ``Pipeline`` per dependency (timeout → retry → breaker → bulkhead);
``deadline`` carries the request's deadline across hops; ``LoadShedding`` sheds what the
process cannot work on now. See ADR 0017.
"""

from chassis.resilience.breaker import BreakerState, CircuitBreaker, CircuitOpen
from chassis.resilience.bulkhead import Bulkhead, BulkheadFull
from chassis.resilience.deadline import DeadlineExceeded
from chassis.resilience.policy import DependencyPolicy, Pipeline, Resilience
from chassis.resilience.retry import Backoff, RetryBudget

__all__ = [
    "Backoff",
    "BreakerState",
    "Bulkhead",
    "BulkheadFull",
    "CircuitBreaker",
    "CircuitOpen",
    "DeadlineExceeded",
    "DependencyPolicy",
    "Pipeline",
    "Resilience",
    "RetryBudget",
]
