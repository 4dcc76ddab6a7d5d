"""Strip "Did you mean …?" suggestions, which reveal the schema to clients that may not introspect it.

Validation leaves them out itself (graphql-core's `hide_suggestions`, passed by `gateway.documents`); this
strips the ones graphql-core adds while coercing variables (`… Did you mean the enum value 'PAID'?`), which
Strawberry gives no option to hide.
"""

from __future__ import annotations

from collections.abc import Iterable

from graphql import GraphQLError

SUGGESTION = " Did you mean "


def strip_suggestions(errors: Iterable[GraphQLError]) -> None:
    """Cut the suggestion off the request errors (no `path`) among `errors`, in place."""
    for error in errors:
        if error.path is None and SUGGESTION in error.message:
            error.message = error.message.split(SUGGESTION, 1)[0]
