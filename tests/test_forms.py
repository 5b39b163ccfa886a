"""``forms.clean_text``: what every typed or scanned line of text goes through."""

from __future__ import annotations

import unicodedata

import pytest

from server.forms import clean_text


@pytest.mark.parametrize("code", range(128))
def test_every_ascii_character_is_kept_or_dropped_by_its_unicode_category(code):
    # Printable text takes a short way (the redeem of every scan): it must agree with the rule.
    ch = chr(code)
    expected = "a" + ch + "b" if unicodedata.category(ch)[0] != "C" else "ab"
    assert clean_text(f"  a{ch}b  ") == expected


@pytest.mark.parametrize(
    ("raw", "cleaned"),
    [
        ("  PG1-ABCD-EFGH \t", "PG1-ABCD-EFGH"),  # a scanner's trailing tab and spaces
        ("\x1b[0mPG1-ABCD\r\n", "[0mPG1-ABCD"),  # an escape code: the control character goes
        ("Cafe\u0301", "Caf\u00e9"),  # decomposed é from a pasted text becomes one character
        ("zero\u200bwidth", "zerowidth"),  # a format character (Cf) is invisible: dropped
        ("lone\ud800surrogate", "lonesurrogate"),  # cannot be stored: dropped
        ("\u00a0non-breaking\u00a0", "non-breaking"),  # non-ASCII spaces are trimmed too
        (None, ""),
        (42, "42"),
        (True, ""),
    ],
)
def test_text_is_trimmed_normalised_and_freed_of_invisible_characters(raw, cleaned):
    assert clean_text(raw) == cleaned
