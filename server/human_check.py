"""The "are you human" check on login and registration.

The default is self-hosted (a port LAN reaches no outside service): a small sum whose answer is
bound to an HMAC-signed, expiring, single-use token; a wrong answer uses the token up too, so each
question gets one guess. ``HostedCaptcha`` speaks the common
``siteverify`` protocol (reCAPTCHA, hCaptcha, Turnstile) behind the same interface.

Single use must hold across the server's worker processes, so with a database the builtin check
claims each token's nonce in the ``used_nonces`` table (its primary key refuses a second claim,
whichever worker makes it); without one (unit use) it remembers nonces in memory.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Protocol

import aiohttp

from server.db import Database
from server.security import sign, signature_ok
from server.sql import Connection

CHALLENGE_SECONDS = 15 * 60


class HumanCheck(Protocol):
    def challenge(self) -> dict[str, Any]:
        """What the form shows: ``{"kind": "builtin", "question": ..., "token": ...}`` or hosted data."""

    async def verify(self, form: Mapping[str, str], remote_address: str) -> bool:
        """True when the submitted form proves a human; each builtin token works once."""


def claim_nonce(db: Connection, nonce: str, expires_at: float, now: float) -> bool:
    """Record a token's nonce as used; False when any process already did. Forgets expired ones."""
    db.execute("DELETE FROM used_nonces WHERE expires_at < ?", (now,))
    cursor = db.execute(
        "INSERT INTO used_nonces (nonce, expires_at) VALUES (?, ?) ON CONFLICT (nonce) DO NOTHING", (nonce, expires_at)
    )
    return cursor.rowcount == 1


class BuiltinHumanCheck:
    def __init__(self, secret: str, clock: Any = time.time, db: Database | None = None) -> None:
        self._secret = secret
        self._clock = clock
        self._db = db
        self._used: OrderedDict[str, float] = OrderedDict()

    def challenge(self) -> dict[str, Any]:
        a, b = secrets.randbelow(9) + 1, secrets.randbelow(9) + 1
        issued = f"{int(self._clock()) + CHALLENGE_SECONDS}.{secrets.token_hex(8)}"
        # Two signatures: one proves we issued the token (so only our tokens are recorded as used,
        # never a flood of made-up ones), the other binds it to the answer.
        issued_signature = sign(self._secret, f"human-issued:{issued}")
        token = f"{issued}.{issued_signature}.{sign(self._secret, f'human:{a + b}.{issued}')}"
        return {"kind": "builtin", "question": f"{a} + {b}", "token": token}

    async def verify(self, form: Mapping[str, str], remote_address: str) -> bool:
        """True for the right answer to a token we issued; any answer, right or wrong, uses the token up."""
        token = str(form.get("human_token", ""))
        answer = str(form.get("human_answer", "")).strip()
        parts = token.split(".")
        # ASCII only: HMAC compares only ASCII text.
        if not token.isascii() or len(parts) != 4:
            return False
        expires, nonce, issued_signature, answer_signature = parts
        if not expires.isdigit() or int(expires) < self._clock():
            return False
        if not signature_ok(self._secret, f"human-issued:{expires}.{nonce}", issued_signature):
            return False
        if not await self._claim(nonce, float(expires)):
            return False
        # "²".isdigit() is True but int("²") fails.
        if not (answer.isascii() and answer.isdigit()) or len(answer) > 3:
            return False
        return signature_ok(self._secret, f"human:{int(answer)}.{expires}.{nonce}", answer_signature)

    async def _claim(self, nonce: str, expires: float) -> bool:
        """Record the token as used; False when it already was (by any worker process)."""
        if self._db is not None:
            return await self._db.write(claim_nonce, nonce, expires, self._clock())
        if nonce in self._used:
            return False
        self._used[nonce] = expires
        while len(self._used) > 50_000:
            self._used.popitem(last=False)
        return True


#: Where the provider widgets put their response token in the form (reCAPTCHA, hCaptcha, Turnstile),
#: plus the neutral name API clients send.
RESPONSE_FIELDS = ("captcha_response", "g-recaptcha-response", "h-captcha-response", "cf-turnstile-response")


class HostedCaptcha:
    """Verifier for a hosted captcha; the form posts the widget's response token."""

    def __init__(
        self,
        verify_url: str,
        secret: str,
        site_key: str,
        session: aiohttp.ClientSession,
        *,
        script: str = "",
        timeout: float = 5.0,
    ) -> None:
        self._url = verify_url
        self._secret = secret
        self._site_key = site_key
        self._session = session
        self._script = script
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    def challenge(self) -> dict[str, Any]:
        return {"kind": "hosted", "site_key": self._site_key, "script": self._script}

    async def verify(self, form: Mapping[str, str], remote_address: str) -> bool:
        response = next((str(form[name]) for name in RESPONSE_FIELDS if form.get(name)), "")
        if not response or len(response) > 4096:
            return False
        try:
            async with self._session.post(
                self._url,
                data={"secret": self._secret, "response": response, "remoteip": remote_address},
                timeout=self._timeout,
            ) as resp:
                if resp.status != 200:
                    return False
                payload = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError, UnicodeError):
            # The provider down or answering garbage must not let anyone in, nor crash the login.
            return False
        return bool(isinstance(payload, dict) and payload.get("success") is True)
