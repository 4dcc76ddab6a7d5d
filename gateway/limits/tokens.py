"""Parse at most so many tokens (`MAX_TOKENS_EXCEEDED`): the parser stops there, before spending more.

graphql-core counts lexical tokens (`max_lexical_tokens`) and comments (`max_comments`) separately; both get
the same limit, so comments neither use up a client's budget nor escape it. (Its older `max_tokens`, one
budget for both, is deprecated.)
"""

from __future__ import annotations

from graphql import DocumentNode, GraphQLError, GraphQLSyntaxError, parse

MAX_TOKENS_EXCEEDED = "MAX_TOKENS_EXCEEDED"
_ABORTED = "Document contains more than "  # graphql-core's description when a parser limit is reached


def parse_within(text: str, max_tokens: int) -> DocumentNode:
    """Parse `text`; a GraphQLError coded MAX_TOKENS_EXCEEDED past the limit, GraphQLSyntaxError otherwise."""
    try:
        return parse(text, max_lexical_tokens=max_tokens, max_comments=max_tokens)
    except GraphQLSyntaxError as error:
        if not error.description.startswith(_ABORTED):
            raise
        what = "comments" if "comments" in error.description else "tokens"
        message = f"The document has more than {max_tokens} {what}; the limit is {max_tokens}"
        raise GraphQLError(message, extensions={"code": MAX_TOKENS_EXCEEDED}) from None
