"""Codes typed on the lane screen (or by a keyboard-wedge scanner into its input field): what is accepted."""

from __future__ import annotations

MAX_CODE_LENGTH = 512


class InvalidManualCode(ValueError):
    """A typed code that is refused before any decision; ``reason`` is a stable code the screen translates."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def clean_manual_code(text: str) -> str:
    """The code as typed, stripped; raises InvalidManualCode (empty, too_long, not_printable)."""
    code = text.strip()
    if not code:
        raise InvalidManualCode("empty", "no code was entered")
    if len(code) > MAX_CODE_LENGTH:
        raise InvalidManualCode("too_long", f"a code has at most {MAX_CODE_LENGTH} characters, got {len(code)}")
    if not code.isprintable():
        raise InvalidManualCode("not_printable", "the code contains control characters")
    return code
