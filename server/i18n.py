"""Spanish/English text through gettext catalogs kept as ``locale/<lang>/LC_MESSAGES/messages.po``.

Message ids are English; the Spanish catalog is compiled in memory at start with Babel, so there is
no build step. Code marks text with :func:`N_` (lazy, no language yet) and renders it with a
request's translator; ``Msg`` carries a message id plus its parameters through service layers.
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

LANGUAGES = ("es", "en")
LOCALE_DIR = Path(__file__).parent / "locale"


def N_(msgid: str) -> str:
    """Mark a string for extraction without translating it yet."""
    return msgid


@dataclass(frozen=True)
class Msg:
    """A translatable message with ``%(name)s`` parameters, rendered later in the reader's language."""

    msgid: str
    params: dict[str, Any] = field(default_factory=dict)

    def render(self, lang: str) -> str:
        """The message in ``lang``; parameters that are messages themselves are rendered in it too."""
        text = translate(lang, self.msgid)
        if not self.params:
            return text
        return text % {k: v.render(lang) if isinstance(v, Msg | Joined) else v for k, v in self.params.items()}

    def __str__(self) -> str:
        return self.render("en")


@dataclass(frozen=True)
class Joined:
    """Several messages as one parameter of another, each rendered in the reader's language."""

    parts: tuple[Msg, ...]
    separator: str = "; "

    def render(self, lang: str) -> str:
        return self.separator.join(part.render(lang) for part in self.parts)


@cache
def translations(lang: str) -> gettext.NullTranslations:
    po_path = LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"
    if lang == "en" or not po_path.exists():
        return gettext.NullTranslations()
    with po_path.open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def translate(lang: str, msgid: str) -> str:
    return translations(lang if lang in LANGUAGES else "es").gettext(msgid)


def render(lang: str, text: str | Msg) -> str:
    """Render a plain message id or a :class:`Msg` in ``lang``."""
    if isinstance(text, Msg):
        return text.render(lang)
    return translate(lang, text)


def pick_language(*candidates: str | None, default: str = "es") -> str:
    for candidate in candidates:
        if candidate and candidate[:2].lower() in LANGUAGES:
            return candidate[:2].lower()
    return default


def accept_language(header: str | None) -> str | None:
    """The supported language an ``Accept-Language`` header prefers most (``fr, en;q=0.8`` → ``en``)."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        code = tag.strip()[:2].lower()
        if code in LANGUAGES and quality > 0:
            ranked.append((-quality, position, code))
    return min(ranked)[2] if ranked else None
