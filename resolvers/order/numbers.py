"""Human-readable order numbers: ``ORD-`` and ten Crockford base32 characters (no I, L, O or U to misread)."""

from __future__ import annotations

import random
import secrets

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_order_number(rng: random.Random | None = None) -> str:
    choice = rng.choice if rng is not None else secrets.choice
    return "ORD-" + "".join(choice(ALPHABET) for _ in range(10))
