"""Keep the Spanish catalog in step with the code: ``python -m server.i18n_catalog [--check]``.

Extracts every message id (``_``, ``N_``, ``Msg`` in Python; ``_`` in templates), adds new ones
to ``locale/es/LC_MESSAGES/messages.po`` keeping existing translations, and lists the untranslated.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PO = Path(__file__).parent / "locale" / "es" / "LC_MESSAGES" / "messages.po"
KEYWORDS = {"_": None, "N_": None, "Msg": (1,)}
METHOD_MAP = [
    ("server/**.py", "python"),
    ("gate_agent/**.py", "python"),
    ("server/templates/**.html", "jinja2"),
    ("kiosk_ui/**.html", "jinja2"),
]


def extract() -> set[str]:
    ids: set[str] = set()
    for _file, _line, message, _comments, _ctx in extract_from_dir(
        str(ROOT),
        METHOD_MAP,
        keywords=KEYWORDS,
        options_map={"**.html": {"extensions": ""}},
    ):
        if isinstance(message, tuple):
            message = message[0]
        if message:
            ids.add(message)
    return ids


def load() -> Catalog:
    if PO.exists():
        with PO.open("rb") as fh:
            return read_po(fh, locale="es")
    return Catalog(locale="es", project="Portgate")


def untranslated(ids: set[str], catalog: Catalog) -> list[str]:
    return sorted(i for i in ids if not ((message := catalog.get(i)) and message.string))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report; exit 1 if anything is untranslated")
    args = parser.parse_args(argv)
    ids = extract()
    catalog = load()
    missing = untranslated(ids, catalog)
    if not args.check:
        for msgid in missing:
            if catalog.get(msgid) is None:
                catalog.add(msgid, "")
        PO.parent.mkdir(parents=True, exist_ok=True)
        with PO.open("wb") as fh:
            write_po(fh, catalog, width=0, sort_output=True)
    for msgid in missing:
        print(f"untranslated: {msgid!r}")
    return 1 if (args.check and missing) else 0


if __name__ == "__main__":
    sys.exit(main())
