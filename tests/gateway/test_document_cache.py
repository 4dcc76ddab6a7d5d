"""Repeated operations skip parsing and validation (bounded LRU caches shared by all requests)."""

from __future__ import annotations

from typing import Any

from strawberry.extensions.parser_cache import _get_parse_cache
from strawberry.extensions.validation_cache import _get_validate_cache

from tests.conftest import GraphQLClient


async def test_repeated_operation_hits_the_parse_and_validation_caches(client: GraphQLClient) -> None:
    size = client.app.state.settings.document_cache_size
    # Strawberry keeps one functools.lru_cache per size, shared by every request.
    parse: Any = _get_parse_cache(size)
    validate: Any = _get_validate_cache(size)
    query = "query RepeatMe { customers(first: 3) { totalCount } }"

    await client.execute(query)
    parse_hits, validate_hits = parse.cache_info().hits, validate.cache_info().hits
    for _ in range(3):
        await client.execute(query)

    assert parse.cache_info().hits == parse_hits + 3
    assert validate.cache_info().hits == validate_hits + 3
    assert parse.cache_info().maxsize == size
