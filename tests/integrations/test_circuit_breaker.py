"""CircuitBreaker state transitions, driven by a fake clock."""

from __future__ import annotations

import pytest

from integrations.circuit_breaker import CircuitBreaker, Permit


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def state(breaker: CircuitBreaker) -> str:
    """The state as a plain str, so the type checker does not narrow it across transitions."""
    return breaker.state


def admit(breaker: CircuitBreaker) -> Permit:
    permit = breaker.allow()
    assert permit is not None, f"refused while {breaker.state}"
    return permit


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.record_failure(admit(breaker))


def open_breaker(clock: FakeClock, threshold: int = 3, cooldown: float = 30.0) -> CircuitBreaker:
    breaker = CircuitBreaker(threshold, cooldown, clock=clock)
    fail(breaker, threshold)
    assert state(breaker) == "open"
    return breaker


def test_starts_closed_and_lets_calls_through(clock: FakeClock) -> None:
    breaker = CircuitBreaker(3, 30.0, clock=clock)
    assert state(breaker) == "closed"
    assert breaker.allow() == Permit()
    assert breaker.consecutive_failures == 0


def test_opens_after_threshold_consecutive_failures_and_refuses(clock: FakeClock) -> None:
    breaker = CircuitBreaker(3, 30.0, clock=clock)
    fail(breaker, 2)
    assert state(breaker) == "closed"
    assert breaker.consecutive_failures == 2
    fail(breaker, 1)
    assert state(breaker) == "open"
    assert breaker.allow() is None


def test_a_success_resets_the_count(clock: FakeClock) -> None:
    breaker = CircuitBreaker(3, 30.0, clock=clock)
    fail(breaker, 2)
    breaker.record_success(admit(breaker))
    assert breaker.consecutive_failures == 0
    fail(breaker, 2)
    assert state(breaker) == "closed"


def test_a_released_call_changes_nothing_while_closed(clock: FakeClock) -> None:
    breaker = CircuitBreaker(2, 30.0, clock=clock)
    fail(breaker, 1)
    breaker.release(admit(breaker))
    assert breaker.consecutive_failures == 1
    assert state(breaker) == "closed"


def test_stays_open_until_the_cooldown_has_passed(clock: FakeClock) -> None:
    breaker = open_breaker(clock, cooldown=30.0)
    clock.advance(29.9)
    assert state(breaker) == "open"
    assert breaker.allow() is None
    clock.advance(0.1)
    assert state(breaker) == "half_open"


def test_half_open_lets_exactly_one_probe_through(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30)
    probe = admit(breaker)
    assert probe.probe != 0
    assert breaker.allow() is None  # a concurrent call while the probe is in flight
    assert breaker.allow() is None
    assert state(breaker) == "half_open"


def test_probe_success_closes_the_circuit(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30)
    breaker.record_success(admit(breaker))
    assert state(breaker) == "closed"
    assert breaker.consecutive_failures == 0
    assert breaker.allow() is not None
    fail(breaker, 2)  # counting starts again from zero
    assert state(breaker) == "closed"


def test_probe_failure_reopens_with_a_fresh_cooldown(clock: FakeClock) -> None:
    breaker = open_breaker(clock, cooldown=30.0)
    clock.advance(45)
    breaker.record_failure(admit(breaker))
    assert state(breaker) == "open"
    clock.advance(29)
    assert breaker.allow() is None
    clock.advance(1)
    assert state(breaker) == "half_open"
    assert breaker.allow() is not None


def test_a_released_probe_lets_the_next_call_probe(clock: FakeClock) -> None:
    breaker = open_breaker(clock)
    clock.advance(30)
    first = admit(breaker)
    breaker.release(first)  # e.g. the probe was cancelled: no verdict
    assert state(breaker) == "half_open"
    second = admit(breaker)
    assert second.probe not in (0, first.probe)
    assert breaker.allow() is None


def test_stale_failures_do_not_extend_the_cooldown(clock: FakeClock) -> None:
    breaker = CircuitBreaker(2, 30.0, clock=clock)
    in_flight = [admit(breaker) for _ in range(4)]  # admitted while closed
    breaker.record_failure(in_flight[0])
    breaker.record_failure(in_flight[1])
    assert state(breaker) == "open"
    clock.advance(20)
    breaker.record_failure(in_flight[2])  # arrives while open
    clock.advance(10)
    assert state(breaker) == "half_open"
    probe = admit(breaker)
    breaker.record_failure(in_flight[3])  # arrives while the probe is in flight: not the probe's verdict
    assert state(breaker) == "half_open"
    assert breaker.allow() is None
    breaker.record_success(probe)
    assert state(breaker) == "closed"


def test_a_stale_probe_verdict_does_not_reopen_a_closed_circuit(clock: FakeClock) -> None:
    breaker = open_breaker(clock, threshold=2)
    clock.advance(30)
    probe = admit(breaker)
    breaker.record_success(probe)
    assert state(breaker) == "closed"
    breaker.record_failure(probe)  # no longer the probe in flight: an ordinary failure while closed
    assert state(breaker) == "closed"
    assert breaker.consecutive_failures == 1


def test_any_success_closes_the_circuit(clock: FakeClock) -> None:
    breaker = CircuitBreaker(1, 30.0, clock=clock)
    early = admit(breaker)
    fail(breaker, 1)
    assert state(breaker) == "open"
    breaker.record_success(early)  # a call admitted before opening got an answer: the upstream is back
    assert state(breaker) == "closed"


@pytest.mark.parametrize(("threshold", "cooldown"), [(0, 1.0), (1, -1.0)])
def test_rejects_nonsense_settings(threshold: int, cooldown: float) -> None:
    with pytest.raises(ValueError, match="must"):
        CircuitBreaker(threshold, cooldown)
