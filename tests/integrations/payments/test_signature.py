"""Stripe webhook signatures (`integrations.payments.signature`): what verifies and everything that must not."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from integrations.errors import ErrorCode
from integrations.payments.signature import DEFAULT_TOLERANCE, SignatureError, sign, verify

SECRET = "whsec_test_0123456789abcdef"
BODY = b'{"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"amount": 1000}}}'
NOW = 1_760_000_000


def hmac_hex(secret: str, timestamp: int, body: bytes) -> str:
    """Computed here, independently of the module: HMAC-SHA256 of "<t>.<raw body>" keyed with the secret."""
    return hmac.new(secret.encode("utf-8"), f"{timestamp}.{body.decode('utf-8')}".encode(), hashlib.sha256).hexdigest()


def test_sign_matches_an_independent_hmac_sha256() -> None:
    assert sign(BODY, SECRET, NOW) == f"t={NOW},v1={hmac_hex(SECRET, NOW, BODY)}"
    digest = sign(BODY, SECRET, NOW).split("v1=", 1)[1]
    assert len(digest) == 64
    assert int(digest, 16) >= 0  # lower-case hex


def test_a_signature_made_by_sign_verifies() -> None:
    verify(BODY, sign(BODY, SECRET, NOW), SECRET, now=NOW)
    verify(BODY, sign(BODY, SECRET, NOW), SECRET, now=NOW + DEFAULT_TOLERANCE)  # at the edge of the tolerance
    verify(b"", sign(b"", SECRET, NOW), SECRET, now=NOW)


def test_a_fresh_signature_verifies_against_the_real_clock() -> None:
    now = int(time.time())
    verify(BODY, sign(BODY, SECRET, now), SECRET)


def test_an_independently_built_header_verifies() -> None:
    header = f"t={NOW}, v1={hmac_hex(SECRET, NOW, BODY)}, v0=ignored_legacy_scheme"
    verify(BODY, header, SECRET, now=NOW)


def test_one_matching_v1_among_several_verifies() -> None:
    """During secret rotation Stripe sends one v1 per active secret."""
    old = hmac_hex("whsec_old_secret", NOW, BODY)
    new = hmac_hex(SECRET, NOW, BODY)
    verify(BODY, f"t={NOW},v1={old},v1={new}", SECRET, now=NOW)
    verify(BODY, f"t={NOW},v1={new},v1={old}", SECRET, now=NOW)
    verify(BODY, f"t={NOW},v1={old},v1={new}", "whsec_old_secret", now=NOW)


def rejects(body: bytes, header: str | None, *, secret: str = SECRET, now: float = NOW) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verify(body, header, secret, now=now)
    assert caught.value.code == ErrorCode.INVALID
    assert SECRET not in str(caught.value)
    return caught.value


def test_a_tampered_body_is_rejected() -> None:
    header = sign(BODY, SECRET, NOW)
    rejects(BODY.replace(b"1000", b"1001"), header)
    rejects(BODY + b" ", header)
    rejects(b"", header)


def test_a_wrong_secret_is_rejected() -> None:
    rejects(BODY, sign(BODY, SECRET, NOW), secret="whsec_another_secret")
    rejects(BODY, sign(BODY, "whsec_another_secret", NOW))


def test_a_missing_header_is_rejected() -> None:
    assert "missing" in rejects(BODY, None).message
    assert "missing" in rejects(BODY, "").message


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"v1={hmac_hex(SECRET, NOW, BODY)}",  # no timestamp
        f"t={NOW}",  # no signature
        f"t={NOW},v1=",  # empty signature
        f"t=,v1={hmac_hex(SECRET, NOW, BODY)}",
        f"t=-{NOW},v1={hmac_hex(SECRET, NOW, BODY)}",
        f"t={NOW}.5,v1={hmac_hex(SECRET, NOW, BODY)}",
        f"t={NOW},v0={hmac_hex(SECRET, NOW, BODY)}",  # only the legacy scheme
        f"t={NOW},v1=not-hex",
        f"t={NOW},v1={hmac_hex(SECRET, NOW, BODY)[:-1]}",  # truncated
        f"t={NOW},v1=é{hmac_hex(SECRET, NOW, BODY)[1:]}",  # not ASCII
        f"t=¹²³,v1={hmac_hex(SECRET, NOW, BODY)}",  # digits to str.isdigit, not to int()
        # full-width digits: int() reads them as NOW, but what was signed is "<t as sent>.<body>", in ASCII digits
        f"t={str(NOW).translate({ord('0') + d: 0xFF10 + d for d in range(10)})},v1={hmac_hex(SECRET, NOW, BODY)}",
        ",,,",
    ],
)
def test_a_malformed_header_is_rejected(header: str) -> None:
    rejects(BODY, header)


def test_a_timestamp_older_than_the_tolerance_is_rejected() -> None:
    header = sign(BODY, SECRET, NOW - DEFAULT_TOLERANCE - 1)
    assert "tolerance" in rejects(BODY, header).message
    verify(BODY, header, SECRET, now=NOW, tolerance=DEFAULT_TOLERANCE + 1)  # a wider tolerance accepts it


def test_a_timestamp_too_far_in_the_future_is_rejected() -> None:
    header = sign(BODY, SECRET, NOW + DEFAULT_TOLERANCE + 1)
    assert "tolerance" in rejects(BODY, header).message
    rejects(BODY, sign(BODY, SECRET, NOW + 86_400))


def test_an_old_replay_is_rejected_even_with_a_valid_signature_of_another_time() -> None:
    """The timestamp is signed: moving it forward to pass the tolerance breaks the signature."""
    old = NOW - 3600
    stale_digest = hmac_hex(SECRET, old, BODY)
    rejects(BODY, f"t={NOW},v1={stale_digest}")
