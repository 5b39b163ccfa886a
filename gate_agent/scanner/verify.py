"""What counts as a read from a camera: the checks the frame pipeline is given (no image code here, so
the agent's application can build them without loading OpenCV)."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from gate_core.codes import VerifyKey, normalize_code, normalize_short_code, parse_code

Verify = Callable[[str], bool]

#: How long (s) a code shaped like a ticket's that does not verify waits for a verified one before the
#: agent's pipeline reports it anyway: long enough for a few frames' second passes to find the ticket
#: beside a foreign or misread code, short enough that a forged ticket's refusal is not felt as a wait.
UNVERIFIED_AFTER_S = 0.5


def well_formed_code(text: str) -> bool:
    """Text shaped like a ticket code (full or short); the check when no keys are at hand."""
    return normalize_code(text) is not None or normalize_short_code(text) is not None


def signed_code_verifier(
    keys: Callable[[], Mapping[int, VerifyKey]], known_short_code: Callable[[str], bool] | None = None
) -> Verify:
    """The gate's check: a full code whose signature verifies with the kiosk's current keys, or
    (when `known_short_code` is given) a short code the kiosk's cache knows.

    `keys` is called on every check, so keys the kiosk syncs later count at once.
    """

    def verify(text: str) -> bool:
        if parse_code(text, keys()).valid:
            return True
        short = normalize_short_code(text)
        return short is not None and known_short_code is not None and known_short_code(short)

    return verify


def accept_any(text: str) -> bool:
    """Every text counts (the decode tool's --all-formats): nothing to verify against."""
    return True
