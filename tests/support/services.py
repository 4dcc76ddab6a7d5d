"""How a test reacts to a missing external service (PostgreSQL, Redis, a browser).

Under ``CI=true`` nothing may be silently skipped: a missing service fails the run. Locally the test skips
and pytest's ``-ra`` summary prints the reason.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    """Skip (locally) or fail (in CI) the current test because a service it needs is missing."""
    if in_ci():
        pytest.fail(f"required service unavailable under CI=true: {reason}", pytrace=False)
    pytest.skip(reason)
