"""At most a few argon2id hashes at once (64 MiB each), a bounded queue, the rest turned away."""

from __future__ import annotations

import asyncio
import threading

import pytest

from identity.adapters.passwords import Argon2Passwords
from identity.domain.errors import PasswordChecksBusy


async def test_beyond_the_slots_and_the_queue_a_password_check_is_turned_away_at_once() -> None:
    passwords = Argon2Passwords(time_cost=1, memory_cost_kib=32, max_concurrent=2, max_waiting=3)
    running = 0
    most = 0
    lock = threading.Lock()
    gate = threading.Event()

    def slow_verify(password_hash: str, password: str) -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
        gate.wait(5)  # the slots stay taken while the others arrive
        with lock:
            running -= 1
        return False

    passwords._verify = slow_verify  # type: ignore[method-assign]
    calls = [asyncio.create_task(passwords.verify(None, "guess")) for _ in range(10)]
    await asyncio.sleep(0.2)
    gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)

    busy = [r for r in results if isinstance(r, PasswordChecksBusy)]
    assert len(busy) == 5  # 2 running + 3 waiting were let in
    assert [r for r in results if not isinstance(r, BaseException)] == [False] * 5
    assert most <= 2


async def test_a_real_hash_still_verifies_through_the_bulkhead() -> None:
    passwords = Argon2Passwords(time_cost=1, memory_cost_kib=32, max_concurrent=1, max_waiting=0)

    stored = await passwords.hash("sesame-opens-the-souk")

    assert await passwords.verify(stored, "sesame-opens-the-souk")
    with pytest.raises(PasswordChecksBusy):
        await asyncio.gather(passwords.verify(stored, "a"), passwords.verify(stored, "b"))
