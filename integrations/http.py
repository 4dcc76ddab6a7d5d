"""The one way the gateway calls a third-party HTTP API: `Upstream`, one per service (Stripe first).

Policy of `Upstream.request`, in order:

1. Circuit breaker (`integrations.circuit_breaker`): while open, fail fast without touching the network.
2. Bulkhead: at most `max_concurrency` calls in flight; a call that cannot get a slot within `connect_timeout`
   seconds is rejected. A rejection says nothing about the upstream's health and does not count as a failure.
3. Attempts through one pooled, keep-alive HTTP/1.1 client that ignores proxy settings in the environment, retried
   by tenacity with exponential backoff and jitter (a numeric ``Retry-After`` wins, capped at `backoff_max`) on
   transport errors (refused, reset, timeouts…), 409, 5xx and ``Stripe-Should-Retry: true``; never on
   ``Stripe-Should-Retry: false`` nor on any other 4xx. POST and PATCH are retried only with an `idempotency_key`,
   sent as the same ``Idempotency-Key`` header on every attempt; without one they get exactly one attempt.
4. Outcome: 2xx/3xx and non-retryable 4xx responses are returned (the caller reads the body, e.g. Stripe's 402
   ``card_declined``) and count as healthy for the breaker. Transport errors, 5xx and retryable statuses left after
   the last attempt raise `UpstreamUnavailableError` and count as one breaker failure per call.

Logs (``integrations.http``) carry the upstream, method, path without query, status or exception class and the
attempt number: never headers, bodies or query strings. Every error message and log line is redacted of
`UpstreamConfig.secrets` and of the configured header values, including httpx's own ``HTTP Request: …`` line.

Observers (`observe_calls`) hear of every finished call: the upstream, its outcome (the `stats` key) and seconds.
Client hooks (`instrument_clients`) are handed each new `Upstream`'s httpx client once, before its first call: the
gateway's tracing instruments it there (a span per attempt, and ``traceparent`` sent upstream).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from integrations.circuit_breaker import CircuitBreaker, Permit
from integrations.errors import UpstreamUnavailableError

logger = logging.getLogger("integrations.http")

RETRY_ALWAYS_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
"""Idempotent by HTTP semantics; every other method (POST, PATCH…) is retried only with an idempotency key."""

REDACTED = "[redacted]"
_MIN_HEADER_FRAGMENT = 6  # shorter pieces of header values are not worth redacting (and would mangle messages)


@dataclass(frozen=True)
class UpstreamConfig:
    name: str  # e.g. "payments"; used in errors, logs, stats
    base_url: str
    connect_timeout: float = 2.0
    read_timeout: float = 10.0
    max_connections: int = 20  # httpx pool limit (keep-alive on, HTTP/1.1)
    max_concurrency: int = 20  # bulkhead: calls in flight at once
    retries: int = 2  # extra attempts after the first
    backoff_initial: float = 0.1  # exponential backoff with jitter between attempts
    backoff_max: float = 2.0
    breaker_failures: int = 5  # consecutive failed calls that open the circuit
    breaker_cooldown: float = 30.0  # seconds open before one half-open probe is let through
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. Authorization; never logged
    secrets: tuple[str, ...] = ()  # strings that must be redacted from any log line or error message

    def __post_init__(self) -> None:
        if self.retries < 0 or self.max_concurrency < 1 or self.max_connections < 1:
            raise ValueError(f"{self.name}: retries must be >= 0, max_concurrency and max_connections >= 1")


CallObserver = Callable[["Upstream", str, float], None]
"""Called with the upstream, the call's outcome (success, client_error, failure, short_circuit, rejected) and its
duration in seconds; must be cheap and must not raise."""
_observers: list[CallObserver] = []


def observe_calls(observer: CallObserver) -> Callable[[], None]:
    """Tell `observer` about every call any `Upstream` makes; returns the function that stops it."""
    _observers.append(observer)
    return lambda: _observers.remove(observer)


ClientHook = Callable[[httpx.AsyncClient], None]
"""Called with a new `Upstream`'s httpx client; may wrap its transport, must not send anything."""
_client_hooks: list[ClientHook] = []


def instrument_clients(hook: ClientHook) -> Callable[[], None]:
    """Hand every `Upstream` created from now on its httpx client to `hook`; returns the function that stops it
    (clients already handed over keep what it did to them)."""
    _client_hooks.append(hook)
    return lambda: _client_hooks.remove(hook)


class _RetryableStatus(Exception):
    """Raised inside an attempt so tenacity retries a response; never leaves this module."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(response.status_code)
        self.response = response


class _Redactor(logging.Filter):
    """Redacts secrets from records of one logger; also installed on httpx's, whose request line shows URLs."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self._redact = redact

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class Upstream:
    """A third-party HTTP API behind a breaker, a bulkhead and retries. Create one per service and share it."""

    def __init__(
        self,
        config: UpstreamConfig,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`transport` replaces httpx's connection pool (then `max_connections` does not apply); `clock` drives
        the breaker's cooldown."""
        self.config = config
        self.stats: collections.Counter[str] = collections.Counter()
        self._secrets = _secrets_of(config)
        self._breaker = CircuitBreaker(config.breaker_failures, config.breaker_cooldown, clock=clock)
        self._slots = asyncio.Semaphore(config.max_concurrency)
        self._backoff = wait_exponential_jitter(
            multiplier=config.backoff_initial, max=config.backoff_max, jitter=config.backoff_initial
        )
        self._client = httpx.AsyncClient(
            base_url=config.base_url,
            headers=dict(config.headers),
            timeout=httpx.Timeout(
                connect=config.connect_timeout,
                read=config.read_timeout,
                write=config.read_timeout,
                pool=config.connect_timeout,
            ),
            limits=httpx.Limits(
                max_connections=config.max_connections, max_keepalive_connections=config.max_connections
            ),
            http1=True,
            http2=False,
            trust_env=False,
            follow_redirects=False,
            transport=transport,
        )
        for hook in _client_hooks:
            hook(self._client)
        self._httpx_filter: _Redactor | None = None
        if self._secrets:
            self._httpx_filter = _Redactor(self.redact)
            logging.getLogger("httpx").addFilter(self._httpx_filter)

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def breaker(self) -> CircuitBreaker:
        return self._breaker

    @property
    def is_closed(self) -> bool:
        return self._client.is_closed

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> httpx.Response:
        """Send one logical call (possibly several attempts) and return the response, or raise
        `UpstreamUnavailableError`. `path` is relative to `base_url`; `data` is sent form-encoded."""
        method = method.upper()
        target = httpx.URL(path)
        if target.scheme or target.host:
            raise ValueError(f"{self.name}: path must be relative to the base URL")
        log_path = self.redact(path.split("?", 1)[0].split("#", 1)[0])

        started = time.monotonic()
        permit = self._breaker.allow()
        if permit is None:
            self._count("short_circuit", started)
            logger.debug("%s: %s %s refused, circuit open", self.name, method, log_path)
            raise UpstreamUnavailableError(self.name, self.redact(f"{self.name}: circuit open"))
        try:
            await self._enter_bulkhead(method, log_path)
        except UpstreamUnavailableError:
            self._breaker.release(permit)
            self._count("rejected", started)
            raise
        except BaseException:
            self._breaker.release(permit)
            raise
        try:
            response = await self._send(
                method, path, log_path, params=params, data=data, headers=headers, idempotency_key=idempotency_key
            )
        except UpstreamUnavailableError:
            self._record_failure(permit)
            self._count("failure", started)
            raise
        except BaseException:
            self._breaker.release(permit)  # cancelled, or a programming error: says nothing about the upstream
            raise
        else:
            self._record_success(permit)
            self._count("success" if response.status_code < 400 else "client_error", started)
            return response
        finally:
            self._slots.release()

    def _count(self, outcome: str, started: float) -> None:
        self.stats[outcome] += 1
        if _observers:
            seconds = time.monotonic() - started
            for observer in _observers:
                observer(self, outcome, seconds)

    async def aclose(self) -> None:
        await self._client.aclose()
        if self._httpx_filter is not None:
            logging.getLogger("httpx").removeFilter(self._httpx_filter)
            self._httpx_filter = None

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def _enter_bulkhead(self, method: str, log_path: str) -> None:
        try:
            async with asyncio.timeout(self.config.connect_timeout):
                await self._slots.acquire()
        except TimeoutError:
            logger.warning(
                "%s: %s %s rejected, %d calls already in flight",
                self.name,
                method,
                log_path,
                self.config.max_concurrency,
                extra={"upstream": self.name, "http_method": method, "http_path": log_path},
            )
            raise UpstreamUnavailableError(self.name, self.redact(f"{self.name}: too many concurrent calls")) from None

    async def _send(
        self,
        method: str,
        path: str,
        log_path: str,
        *,
        params: Mapping[str, str] | None,
        data: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
        idempotency_key: str | None,
    ) -> httpx.Response:
        request_headers = dict(headers or {})
        if idempotency_key is not None:
            request_headers["Idempotency-Key"] = idempotency_key
        retryable = method in RETRY_ALWAYS_METHODS or idempotency_key is not None
        attempts = self.config.retries + 1 if retryable else 1
        made = 0

        async def attempt() -> httpx.Response:
            nonlocal made
            made += 1
            response = await self._client.request(method, path, params=params, data=data, headers=request_headers)
            if _should_retry(response):
                raise _RetryableStatus(response)
            return response

        def before_sleep(state: RetryCallState) -> None:
            self.stats["retry"] += 1
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            cause = _cause(state.outcome.exception() if state.outcome is not None else None)
            logger.warning(
                "%s: %s %s attempt %d/%d failed (%s), retrying in %.3f s",
                self.name,
                method,
                log_path,
                made,
                attempts,
                cause,
                wait,
                extra=self._log_extra(method, log_path, made, cause),
            )

        retrying = AsyncRetrying(
            stop=stop_after_attempt(attempts),
            wait=self._wait,
            retry=retry_if_exception_type((httpx.TransportError, _RetryableStatus)),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            response: httpx.Response = await retrying(attempt)
        except _RetryableStatus as exc:
            raise self._failed(method, log_path, exc, made, attempts, f"HTTP {exc.response.status_code}") from None
        except httpx.TransportError as exc:
            what = "timed out" if isinstance(exc, httpx.TimeoutException) else "connection failed"
            raise self._failed(method, log_path, exc, made, attempts, what) from exc
        except httpx.RequestError as exc:  # e.g. a body that cannot be decoded: the upstream misbehaved
            raise self._failed(method, log_path, exc, made, attempts, "invalid response") from exc
        if response.status_code >= 500:  # reached only when the upstream said not to retry it
            raise self._failed(
                method, log_path, _RetryableStatus(response), made, attempts, f"HTTP {response.status_code}"
            )
        return response

    def _failed(
        self, method: str, log_path: str, error: Exception, made: int, attempts: int, what: str
    ) -> UpstreamUnavailableError:
        """Log a call's final failure; the error to raise ("payments: HTTP 503 after 3 attempts")."""
        cause = _cause(error)
        logger.warning(
            "%s: %s %s attempt %d/%d failed (%s), giving up",
            self.name,
            method,
            log_path,
            made,
            attempts,
            cause,
            extra=self._log_extra(method, log_path, made, cause),
        )
        if what.startswith("HTTP "):
            what = f"{what} after {made} attempt{'' if made == 1 else 's'}"
        return UpstreamUnavailableError(self.name, self.redact(f"{self.name}: {what}"))

    def _wait(self, state: RetryCallState) -> float:
        """Seconds before the next attempt: the upstream's numeric Retry-After if any, else backoff with jitter."""
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _RetryableStatus):
            retry_after = _seconds(error.response.headers.get("Retry-After"))
            if retry_after is not None:
                return min(retry_after, self.config.backoff_max)
        return self._backoff(state)

    def _log_extra(self, method: str, log_path: str, attempt: int, cause: str) -> dict[str, Any]:
        return {"upstream": self.name, "http_method": method, "http_path": log_path, "attempt": attempt, "cause": cause}

    def _record_success(self, permit: Permit) -> None:
        was = self._breaker.state
        self._breaker.record_success(permit)
        if was != "closed":
            logger.info("%s: circuit closed", self.name, extra={"upstream": self.name})

    def _record_failure(self, permit: Permit) -> None:
        was = self._breaker.state
        self._breaker.record_failure(permit)
        if self._breaker.state == "open" and was != "open":
            logger.warning(
                "%s: circuit opened for %.1f s after %d consecutive failed calls",
                self.name,
                self.config.breaker_cooldown,
                self._breaker.consecutive_failures,
                extra={"upstream": self.name},
            )


def _should_retry(response: httpx.Response) -> bool:
    """Stripe's explicit hint wins; otherwise 409 (conflict, e.g. a concurrent idempotent request) and 5xx."""
    if response.status_code < 400:
        return False
    hint = str(response.headers.get("Stripe-Should-Retry", "")).strip().lower()
    if hint in {"true", "false"}:
        return hint == "true"
    return response.status_code == 409 or response.status_code >= 500


def _cause(error: BaseException | None) -> str:
    """What went wrong, for a log line: the status, or the exception class (its message may contain the URL)."""
    if isinstance(error, _RetryableStatus):
        return f"HTTP {error.response.status_code}"
    return type(error).__name__


def _seconds(value: str | None) -> float | None:
    """A numeric Retry-After (delta-seconds); HTTP dates and garbage are ignored."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return max(seconds, 0.0) if seconds == seconds else None  # NaN is not a number of seconds


def _secrets_of(config: UpstreamConfig) -> tuple[str, ...]:
    """Strings to redact: the configured secrets, each header value and its credential part ("Bearer <token>")."""
    found = {secret for secret in config.secrets if secret}
    for value in config.headers.values():
        found.update(part for part in (value, *value.split()[1:]) if len(part) >= _MIN_HEADER_FRAGMENT)
    return tuple(sorted(found, key=len, reverse=True))  # longest first, so no secret is half-replaced
