"""Merge translations from a Python dict file into the Spanish catalog: ``python -m server.i18n_fill FILE``."""

from __future__ import annotations

import runpy
import sys

from babel.messages.pofile import write_po

from server.i18n_catalog import PO, extract, load


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    translations = runpy.run_path(argv[0])["ES"]
    catalog = load()
    for msgid in extract():
        message = catalog.get(msgid) or catalog.add(msgid, "")
        if msgid in translations and not message.string:
            message.string = translations[msgid]
    with PO.open("wb") as fh:
        write_po(fh, catalog, width=0, sort_output=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
