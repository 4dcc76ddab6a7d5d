"""A consecutive-failure circuit breaker for one upstream service.

``closed``: calls go through; `failure_threshold` consecutive failed calls open the circuit.
``open``: calls are refused without touching the network, for `cooldown` seconds.
``half_open``: the cooldown has passed; exactly one call (the probe) is let through, concurrent others are still
refused. The probe's success closes the circuit; its failure re-opens it with a fresh cooldown.

Every admitted call gets a `Permit` and must hand it back exactly once: `record_success`, `record_failure`, or
`release` (the call ended without saying anything about the upstream's health, e.g. it was cancelled). Any success
closes the circuit, since it proves the upstream answers. A failure of a call admitted before the circuit opened,
arriving while it is open or half-open, is stale and changes nothing. Single event loop, no locks: every method is
synchronous.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


@dataclass(frozen=True, slots=True)
class Permit:
    """Handed to an admitted call; `probe` is the serial number of the half-open probe it is, 0 for a normal call."""

    probe: int = 0


class CircuitBreaker:
    def __init__(
        self, failure_threshold: int = 5, cooldown: float = 30.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if cooldown < 0:
            raise ValueError("cooldown must not be negative")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probe = 0  # serial of the probe in flight, 0 when none
        self._probes_granted = 0

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return "closed"
        if self._probe or self._clock() - self._opened_at >= self.cooldown:
            return "half_open"
        return "open"

    @property
    def consecutive_failures(self) -> int:
        """Failed calls in a row while closed (reset by any success)."""
        return self._failures

    def allow(self) -> Permit | None:
        """A permit if a call may go ahead now, None if it must fail fast."""
        state = self.state
        if state == "closed":
            return Permit()
        if state == "open" or self._probe:
            return None
        self._probes_granted += 1
        self._probe = self._probes_granted
        return Permit(probe=self._probe)

    def record_success(self, permit: Permit) -> None:
        self._failures = 0
        self._opened_at = None
        self._probe = 0

    def record_failure(self, permit: Permit) -> None:
        if self._is_current_probe(permit):
            self._open()
        elif self._opened_at is None:
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open()

    def release(self, permit: Permit) -> None:
        if self._is_current_probe(permit):
            self._probe = 0

    def _is_current_probe(self, permit: Permit) -> bool:
        return bool(permit.probe) and permit.probe == self._probe

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probe = 0
