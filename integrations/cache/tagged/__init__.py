"""The response cache's store: entries indexed by tags, invalidated by tag, safe against racing fills."""

from integrations.cache.tagged.base import TaggedStore, tagged_store_from_url

__all__ = ["TaggedStore", "tagged_store_from_url"]
