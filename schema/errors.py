"""The one place domain errors become `userErrors` payload data."""

from __future__ import annotations

import strawberry

from integrations.errors import ErrorCode, InputErrors, UserInputError

UserErrorCode = strawberry.enum(
    ErrorCode,
    name="UserErrorCode",
    description="Stable machine-readable reason for a user error; clients may switch on it.",
)


@strawberry.type(description="A problem with the input of a mutation, reported as data.")
class UserError:
    field: str | None = strawberry.field(
        description="The input field at fault (camelCase), or null for the whole input."
    )
    message: str = strawberry.field(description="A human-readable explanation.")
    code: ErrorCode = strawberry.field(description="A stable code for programmatic handling.")


def user_errors(error: InputErrors | UserInputError) -> list[UserError]:
    errors = error.errors if isinstance(error, InputErrors) else [error]
    return [UserError(field=_camel(e.field), message=e.message, code=e.code) for e in errors]


def _camel(name: str | None) -> str | None:
    if name is None:
        return None
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


INPUT_ERRORS = (InputErrors, UserInputError)
"""What a mutation catches and returns as `userErrors`; anything else is a real failure."""
