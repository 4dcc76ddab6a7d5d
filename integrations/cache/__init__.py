"""The cache store: Redis when `REDIS_URL` is set, a bounded in-memory LRU otherwise (`cache_from_url`)."""

from integrations.cache.base import Cache, cache_from_url

__all__ = ["Cache", "cache_from_url"]
