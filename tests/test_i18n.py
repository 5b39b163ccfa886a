"""The Spanish catalog: every message the code and templates use is translated, placeholders intact."""

from __future__ import annotations

import re

import pytest

from server.i18n import Msg, accept_language, pick_language, render, translate
from server.i18n_catalog import extract, load, untranslated

PLACEHOLDER = re.compile(r"%\((\w+)\)[sdif]")


@pytest.fixture(scope="module")
def catalog():
    return load()


@pytest.fixture(scope="module")
def message_ids() -> set[str]:
    return extract()


def test_extraction_finds_python_and_template_messages(message_ids):
    assert "Wrong user name or password." in message_ids  # Msg(...) in Python
    assert "Sign in" in message_ids  # _() in a template
    assert "Portgate: registration received" in message_ids  # N_() in Python


def test_spanish_catalog_covers_every_message_id(message_ids, catalog):
    missing = untranslated(message_ids, catalog)
    assert not missing, (
        f"{len(missing)} untranslated; run `python -m server.i18n_catalog` and fill messages.po: {missing[:20]}"
    )


def _entries(catalog):
    return [m for m in catalog if m.id and m.string and isinstance(m.id, str)]


def test_placeholders_in_translations_match_the_message_id(catalog):
    wrong = [
        (m.id, m.string)
        for m in _entries(catalog)
        if sorted(PLACEHOLDER.findall(m.id)) != sorted(PLACEHOLDER.findall(m.string))
    ]
    assert not wrong, wrong


def test_every_translation_formats_with_the_ids_parameters(catalog):
    for m in _entries(catalog):
        params = {name: "x" for name in PLACEHOLDER.findall(m.id)}
        if params:
            assert isinstance(m.string % params, str), m.id
        else:
            # A lone "%" would break formatting the day a parameter is added; "%%" is the escape.
            assert "%" not in m.string.replace("%%", "") or "%" in m.id, (m.id, m.string)


def test_no_translation_is_left_fuzzy(catalog):
    assert not [m.id for m in _entries(catalog) if m.fuzzy]


def test_rendering_in_both_languages():
    msg = Msg("The password must have at least %(n)s characters.", {"n": 10})
    assert render("en", msg) == "The password must have at least 10 characters."
    assert render("es", msg) == "La contraseña debe tener al menos 10 caracteres."
    assert translate("xx", "Sign in") == translate("es", "Sign in")  # unknown language → Spanish


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("en", "en"),
        ("en-US,en;q=0.9", "en"),
        ("fr-CH, fr;q=0.9, en;q=0.8, es;q=0.7", "en"),
        ("es;q=0.5, en;q=0.9", "en"),
        ("de, *;q=0.5", None),
        ("en;q=0, es", "es"),
        ("en;q=abc, es;q=0.1", "es"),
        ("ES-ec", "es"),
    ],
)
def test_accept_language_picks_the_most_preferred_supported_language(header, expected):
    assert accept_language(header) == expected


def test_pick_language_takes_the_first_supported_candidate():
    assert pick_language(None, "fr", "en-GB", "es") == "en"
    assert pick_language(None, "", default="es") == "es"
