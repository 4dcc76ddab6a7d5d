"""Rate limiting (GCRA): in Redis when `REDIS_URL` is set, shared by every instance; in process otherwise."""

from integrations.ratelimit.base import Decision, Quota, RateLimiter, rate_limiter_from_url

__all__ = ["Decision", "Quota", "RateLimiter", "rate_limiter_from_url"]
