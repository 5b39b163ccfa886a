"""Gate-ticket codes: signed by the server with Ed25519, verified offline by kiosks.

A full code (printed as a QR) is ``"PG1" + base32(payload + signature)`` with no padding:

- payload, 11 bytes: key id (1 byte, 1..255) + ticket id (6 bytes, big-endian) + itinerary id
  (4 bytes, big-endian). The format version is carried by the ``PG1`` prefix and the signing
  domain ``portgate-ticket-v1``, so the whole first byte is free for the key id.
- signature, 64 bytes: Ed25519 over ``b"portgate-ticket-v1" + payload``.

75 bytes are exactly 120 base32 characters, so every character carries five signed bits and
changing any one of them changes the signed bytes. All characters (``A-Z``, ``2-7``) are in the
QR alphanumeric set, which keeps the symbol small. This base 32 form is the code's canonical text:
what the server stores a digest of, what scan logs show and what every parser returns.

The printed QR carries the same 75 bytes in the **decimal form**, ``"PGD"`` and the bytes as one
181-digit number (leading zeros kept; ``10**181 > 2**600``, and a number of 2**600 or more is
malformed, so the two forms map one to one). QR numeric mode packs three digits in 10 bits, so
the whole code fits version 5 at level M (37 modules a side) where the base 32 form needs version 6
(41): at the same printed size each module is 11 % bigger, which is what a far or blurred camera
frame lacks (docs/performance.md). ``normalize_code`` turns either form into the canonical one, so
tickets printed before keep verifying and nothing past the parser sees a difference.

A short code (printed as a Code 128-C barcode, or typed by hand) is 20 random decimal digits.
It proves nothing by itself: it is looked up in the kiosk cache or on the server.
"""

from __future__ import annotations

import base64
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PREFIX = "PG1"
SIGNING_DOMAIN = b"portgate-ticket-v1"
PAYLOAD_LEN = 11
SIGNATURE_LEN = 64
BODY_LEN = (PAYLOAD_LEN + SIGNATURE_LEN) * 8 // 5
CODE_LEN = len(PREFIX) + BODY_LEN
_CODE_BYTES = PAYLOAD_LEN + SIGNATURE_LEN
DECIMAL_PREFIX = "PGD"
DECIMAL_DIGITS = len(str(2 ** (_CODE_BYTES * 8) - 1))
DECIMAL_CODE_LEN = len(DECIMAL_PREFIX) + DECIMAL_DIGITS
MAX_KEY_ID = 255
MAX_TICKET_ID = 2**48 - 1
MAX_ITINERARY_ID = 2**32 - 1
SHORT_CODE_DIGITS = 20
QR_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")

_BODY_RE = re.compile(rf"[A-Z2-7]{{{BODY_LEN}}}")
_SHORT_RE = re.compile(rf"[0-9]{{{SHORT_CODE_DIGITS}}}")
_DECIMAL_RE = re.compile(rf"[0-9]{{{DECIMAL_DIGITS}}}")
# People and scanners add spaces, dashes and line ends; none of them is part of a code.
_SEPARATORS = str.maketrans("", "", " \t\r\n\f\v-")
# Anything longer is scanner garbage; refusing it early keeps parsing cheap.
_MAX_INPUT_LEN = 512
_MASK = "••••"


def _check_key_id(key_id: int) -> int:
    if isinstance(key_id, bool) or not isinstance(key_id, int) or not 1 <= key_id <= MAX_KEY_ID:
        raise ValueError(f"key_id must be an integer in 1..{MAX_KEY_ID}, got {key_id!r}")
    return key_id


def _check_raw_key(raw: bytes, what: str) -> bytes:
    if not isinstance(raw, bytes | bytearray) or len(raw) != 32:
        raise ValueError(f"{what} must be 32 raw bytes")
    return bytes(raw)


class VerifyKey:
    """A public key with its key id; the only key material a kiosk holds."""

    __slots__ = ("key_id", "_raw", "_key")

    def __init__(self, key_id: int, raw: bytes) -> None:
        self.key_id = _check_key_id(key_id)
        self._raw = _check_raw_key(raw, "public key")
        self._key = Ed25519PublicKey.from_public_bytes(self._raw)

    def public_bytes(self) -> bytes:
        return self._raw

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True when ``signature`` is this key's valid Ed25519 signature of ``message``."""
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, VerifyKey):
            return NotImplemented
        return (self.key_id, self._raw) == (other.key_id, other._raw)

    def __hash__(self) -> int:
        return hash((self.key_id, self._raw))

    def __repr__(self) -> str:
        return f"VerifyKey(key_id={self.key_id}, raw=bytes.fromhex({self._raw.hex()!r}))"


class SigningKey:
    """A private signing key with its key id; lives on the server only."""

    __slots__ = ("key_id", "_key")

    def __init__(self, key_id: int, private_key: Ed25519PrivateKey) -> None:
        self.key_id = _check_key_id(key_id)
        self._key = private_key

    @classmethod
    def generate(cls, key_id: int) -> SigningKey:
        return cls(key_id, Ed25519PrivateKey.generate())

    @classmethod
    def from_private_bytes(cls, key_id: int, raw: bytes) -> SigningKey:
        return cls(key_id, Ed25519PrivateKey.from_private_bytes(_check_raw_key(raw, "private key")))

    def private_bytes(self) -> bytes:
        return self._key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )

    def public_key(self) -> VerifyKey:
        raw = self._key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return VerifyKey(self.key_id, raw)

    def __repr__(self) -> str:
        # Never print the private key, not even by accident in a log line.
        return f"SigningKey(key_id={self.key_id})"


def keyring(keys: Iterable[VerifyKey]) -> dict[int, VerifyKey]:
    """Index verify keys by key id for ``parse_code``; two keys with one id is a setup error."""
    ring: dict[int, VerifyKey] = {}
    for key in keys:
        if key.key_id in ring and ring[key.key_id] != key:
            raise ValueError(f"two different keys share key_id {key.key_id}")
        ring[key.key_id] = key
    return ring


class CodeStatus(StrEnum):
    """What parsing (or a short-code lookup) found out about a scanned code."""

    VALID = "valid"
    MALFORMED = "malformed"
    UNKNOWN_KEY = "unknown_key"
    BAD_SIGNATURE = "bad_signature"
    NOT_FOUND = "not_found"  # a short code with no ticket behind it


@dataclass(frozen=True)
class ParsedCode:
    """A scanned code after parsing; ids are set only when they can be trusted."""

    status: CodeStatus
    ticket_id: int | None = None
    itinerary_id: int | None = None
    key_id: int | None = None
    text: str = ""
    short: bool = False

    def __post_init__(self) -> None:
        has_ids = self.ticket_id is not None and self.itinerary_id is not None
        no_ids = self.ticket_id is None and self.itinerary_id is None
        if self.status is CodeStatus.VALID and not has_ids:
            raise ValueError("a valid code needs ticket_id and itinerary_id")
        if self.status is not CodeStatus.VALID and not no_ids:
            raise ValueError("only a valid code carries ticket_id and itinerary_id")

    @property
    def valid(self) -> bool:
        return self.status is CodeStatus.VALID

    @classmethod
    def from_short(cls, ticket_id: int, itinerary_id: int, text: str = "") -> ParsedCode:
        """A short code that a cache or server lookup resolved to this ticket."""
        return cls(CodeStatus.VALID, ticket_id, itinerary_id, text=text, short=True)

    @classmethod
    def unknown_short(cls, text: str = "") -> ParsedCode:
        """A well-formed short code that no lookup knows."""
        return cls(CodeStatus.NOT_FOUND, text=text, short=True)


def _normalise(text: object) -> str | None:
    if not isinstance(text, str) or len(text) > _MAX_INPUT_LEN or not text.isascii():
        # Non-ASCII is refused before upper() so that no Unicode case mapping can turn
        # some other string into a valid code.
        return None
    return text.translate(_SEPARATORS).upper()


def normalize_code(text: str) -> str | None:
    """The canonical full code for ``text`` (spaces, dashes and case removed; the decimal form turned
    into the base 32 one), or None."""
    normalised = _normalise(text)
    if normalised is None:
        return None
    if len(normalised) == CODE_LEN and normalised.startswith(PREFIX):
        return normalised if _BODY_RE.fullmatch(normalised, len(PREFIX)) else None
    if len(normalised) == DECIMAL_CODE_LEN and normalised.startswith(DECIMAL_PREFIX):
        if not _DECIMAL_RE.fullmatch(normalised, len(DECIMAL_PREFIX)):
            return None
        value = int(normalised[len(DECIMAL_PREFIX) :])
        if value.bit_length() > _CODE_BYTES * 8:
            return None
        return PREFIX + base64.b32encode(value.to_bytes(_CODE_BYTES, "big")).decode("ascii")
    return None


def decimal_form(code: str) -> str:
    """The decimal form of a full code (either form), what its printed or shown QR carries."""
    full = normalize_code(code)
    if full is None:
        raise ValueError("not a full ticket code")
    value = int.from_bytes(base64.b32decode(full[len(PREFIX) :]), "big")
    return f"{DECIMAL_PREFIX}{value:0{DECIMAL_DIGITS}d}"


def _payload(key_id: int, ticket_id: int, itinerary_id: int) -> bytes:
    return key_id.to_bytes(1, "big") + ticket_id.to_bytes(6, "big") + itinerary_id.to_bytes(4, "big")


def issue_code(signing_key: SigningKey, ticket_id: int, itinerary_id: int) -> str:
    """Sign a full ticket code for ``ticket_id`` on ``itinerary_id``."""
    if isinstance(ticket_id, bool) or not isinstance(ticket_id, int):
        raise TypeError("ticket_id must be an int")
    if isinstance(itinerary_id, bool) or not isinstance(itinerary_id, int):
        raise TypeError("itinerary_id must be an int")
    if not 1 <= ticket_id <= MAX_TICKET_ID:
        raise ValueError(f"ticket_id must be in 1..{MAX_TICKET_ID}, got {ticket_id}")
    if not 1 <= itinerary_id <= MAX_ITINERARY_ID:
        raise ValueError(f"itinerary_id must be in 1..{MAX_ITINERARY_ID}, got {itinerary_id}")
    payload = _payload(signing_key.key_id, ticket_id, itinerary_id)
    signature = signing_key._key.sign(SIGNING_DOMAIN + payload)
    return PREFIX + base64.b32encode(payload + signature).decode("ascii")


def parse_code(text: str, keys: Mapping[int, VerifyKey]) -> ParsedCode:
    """Parse and verify a scanned full code; never raises for bad input."""
    normalised = normalize_code(text)
    if normalised is None:
        shown = _normalise(text)
        return ParsedCode(CodeStatus.MALFORMED, text=(shown or "")[:_MAX_INPUT_LEN])
    raw = base64.b32decode(normalised[len(PREFIX) :])
    payload, signature = raw[:PAYLOAD_LEN], raw[PAYLOAD_LEN:]
    key_id = payload[0]
    key = keys.get(key_id)
    if key is None:
        return ParsedCode(CodeStatus.UNKNOWN_KEY, key_id=key_id, text=normalised)
    if not key.verify(signature, SIGNING_DOMAIN + payload):
        return ParsedCode(CodeStatus.BAD_SIGNATURE, key_id=key_id, text=normalised)
    ticket_id = int.from_bytes(payload[1:7], "big")
    itinerary_id = int.from_bytes(payload[7:11], "big")
    if ticket_id == 0 or itinerary_id == 0:
        # issue_code never signs these; only a broken issuer could, so do not trust it.
        return ParsedCode(CodeStatus.MALFORMED, key_id=key_id, text=normalised)
    return ParsedCode(CodeStatus.VALID, ticket_id, itinerary_id, key_id=key_id, text=normalised)


def new_short_code() -> str:
    """Twenty random decimal digits (10**20 > 2**66), leading zeros kept."""
    return f"{secrets.randbelow(10**SHORT_CODE_DIGITS):0{SHORT_CODE_DIGITS}d}"


def normalize_short_code(text: str) -> str | None:
    """The 20 digits of a short code typed or scanned with spaces or dashes, or None."""
    normalised = _normalise(text)
    if normalised is None or not _SHORT_RE.fullmatch(normalised):
        return None
    return normalised


def looks_like_short_code(text: str) -> bool:
    """True for exactly 20 digits (spaces and dashes ignored); says nothing about validity."""
    return normalize_short_code(text) is not None


def mask_code(code: str) -> str:
    """Fixed-length display form for a not-yet-printed ticket: only the last 4 chars show."""
    full = normalize_code(code)
    if full is not None:
        return f"{PREFIX}-{_MASK}-{_MASK}-{full[-4:]}"
    short = normalize_short_code(code)
    if short is not None:
        return f"{_MASK}-{_MASK}-{_MASK}-{short[-4:]}"
    return f"{_MASK}-{_MASK}-{_MASK}-{_MASK}"


def _groups(text: str, size: int = 5) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)]


def human_readable(code: str) -> str:
    """The code in blocks of 5 for printing under the QR; ``parse_code`` accepts it back."""
    full = normalize_code(code)
    if full is not None:
        return " ".join([PREFIX, *_groups(full[len(PREFIX) :])])
    short = normalize_short_code(code)
    if short is not None:
        return " ".join(_groups(short))
    raise ValueError("not a ticket code")
