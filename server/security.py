"""Passwords, random tokens, HMAC signing and the password policy."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import unicodedata

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from server.i18n import Msg

# argon2id with the library's RFC 9106 "low memory" profile: ~40 ms on a Pi 4, fine for logins.
_hasher = PasswordHasher()
# A real hash of a random password, checked when the user does not exist so timing does not
# reveal which user names are registered.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def _utf8(text: str) -> bytes:
    """Encode any Python string, even one with lone surrogates (JSON ``"\\ud800"``, odd header bytes)."""
    return text.encode("utf-8", "surrogatepass")


def hash_password(password: str) -> str:
    return _hasher.hash(_utf8(password))


async def hash_password_off_loop(password: str) -> str:
    """:func:`hash_password` on a thread: a hash is ~0.1-0.2 s of CPU, which on the event loop would hold
    up every request meanwhile, the gate's redeems among them."""
    return await asyncio.to_thread(hash_password, password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, _utf8(password)) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def new_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """Tokens are stored hashed so a stolen database copy cannot be replayed as sessions."""
    return hashlib.sha256(_utf8(token)).hexdigest()


def sign(secret: str, message: str) -> str:
    return hmac.new(_utf8(secret), _utf8(message), hashlib.sha256).hexdigest()


def same_secret(expected: str, given: str) -> bool:
    """Constant-time comparison that accepts any text (``compare_digest`` raises on non-ASCII ``str``)."""
    return hmac.compare_digest(_utf8(expected), _utf8(given or ""))


def signature_ok(secret: str, message: str, signature: str) -> bool:
    return same_secret(sign(secret, message), signature)


def password_problem(password: str, min_length: int, *, username: str = "", email: str = "") -> Msg | None:
    """Why ``password`` is not acceptable, or None. Length plus letters and digits; not the user name."""
    if len(password) < min_length:
        return Msg("The password must have at least %(n)s characters.", {"n": min_length})
    if len(password) > 256:
        return Msg("The password must have at most %(n)s characters.", {"n": 256})
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in password):
        return Msg("The password contains characters that are not allowed.")
    if not any(c.isalpha() for c in password) or not any(c.isdigit() for c in password):
        return Msg("The password must contain letters and digits.")
    lowered = password.lower()
    for word in (username, email.split("@")[0] if email else ""):
        if word and len(word) >= 3 and word.lower() in lowered:
            return Msg("The password must not contain your user name or e-mail.")
    return None
