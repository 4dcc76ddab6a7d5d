"""Abuse limits: documents and operations refused before they run, each with its own `extensions.code`.

Static limits are validation rules, run once per document text (the documents cache keeps the result):
depth, aliases and directives (counted through fragment spreads), introspection. The token limit stops the
parser. The cost depends on variables, so it is checked per request before execution (`cost.py` describes
the model). A refusal is a request error: HTTP 400 without `data`.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import ASTValidationRule

from gateway.limits.aliases import MAX_ALIASES_EXCEEDED, max_aliases_rule
from gateway.limits.cost import COST_LIMIT_EXCEEDED, operation_cost
from gateway.limits.depth import MAX_DEPTH_EXCEEDED, max_depth_rule
from gateway.limits.directives import MAX_DIRECTIVES_EXCEEDED, max_directives_rule
from gateway.limits.introspection import INTROSPECTION_DISABLED, NoIntrospectionRule
from gateway.limits.tokens import MAX_TOKENS_EXCEEDED
from gateway.settings import Settings

__all__ = [
    "COST_LIMIT_EXCEEDED",
    "INTROSPECTION_DISABLED",
    "MAX_ALIASES_EXCEEDED",
    "MAX_DEPTH_EXCEEDED",
    "MAX_DIRECTIVES_EXCEEDED",
    "MAX_TOKENS_EXCEEDED",
    "Limits",
    "operation_cost",
]


@dataclass(frozen=True)
class Limits:
    """The limits one gateway enforces; the defaults are production's."""

    max_depth: int = 10
    max_aliases: int = 15
    max_tokens: int = 2_000
    max_directives: int = 50
    max_cost: int = 10_000
    introspection: bool = False
    field_suggestions: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            max_depth=settings.max_depth,
            max_aliases=settings.max_aliases,
            max_tokens=settings.max_tokens,
            max_directives=settings.max_directives,
            max_cost=settings.max_cost,
            introspection=settings.introspection_enabled,
            field_suggestions=settings.field_suggestions_enabled,
        )

    def rules(self) -> tuple[type[ASTValidationRule], ...]:
        """The validation rules for the static limits (added to the spec's rules)."""
        rules = [
            max_depth_rule(self.max_depth),
            max_aliases_rule(self.max_aliases),
            max_directives_rule(self.max_directives),
        ]
        if not self.introspection:
            rules.append(NoIntrospectionRule)
        return tuple(rules)
