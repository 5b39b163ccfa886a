"""All-or-nothing CSV import: every row is validated before anything is written.

An import is two steps: parsing and validating the file (:func:`validated_rows`, no database),
which the pages run on a thread of their own, then writing the rows in one transaction. The
parse never runs inside the write turn, so a big file does not hold up the gate's redeems.
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from server.forms import UNSTORABLE_TEXT, ValidationFailed, storable
from server.i18n import Joined, Msg

MAX_ROWS = 50_000
MAX_UPLOAD = 5 * 1024 * 1024


async def read_csv_upload(request: web.Request) -> str | Msg:
    """The text of the form's ``file`` upload, or the message saying why it cannot be read."""
    form = await request.post()
    upload = form.get("file")
    if not isinstance(upload, web.FileField):
        return Msg("Choose a CSV file.")
    data = upload.file.read(MAX_UPLOAD + 1)
    if len(data) > MAX_UPLOAD:
        return Msg("The file is larger than 5 MB.")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return Msg("The file must be UTF-8 text (CSV).")


async def import_upload(
    request: web.Request, db: Any, parse: Callable[[str], list[dict[str, Any]]], save: Callable[..., Any], actor_id: int
) -> Any:
    """Read the form's CSV, parse it on a thread, write its rows in one transaction (``db.write``).

    Returns what ``save(db, rows, actor_id)`` returns, or the :class:`Msg` saying what is wrong
    with the file (nothing written then).
    """
    text = await read_csv_upload(request)
    if isinstance(text, Msg):
        return text
    try:
        rows = await asyncio.to_thread(parse, text)
        return await db.write(save, rows, actor_id)
    except ValidationFailed as exc:
        return next(iter(exc.errors.values()))


def bad_lines(problems: list[tuple[int, str, Msg]]) -> ValidationFailed:
    """The refusal of a file: its first few bad lines, each with its field and what is wrong."""
    listed = Joined(
        tuple(
            Msg("%(line)s: %(field)s: %(problem)s", {"line": line_no, "field": field, "problem": msg})
            for line_no, field, msg in problems[:5]
        )
    )
    return ValidationFailed({"file": Msg("Line %(lines)s", {"lines": listed})})


def validated_rows(
    text: str,
    required: Iterable[str],
    validate_row: Callable[[dict[str, Any]], dict[str, Any]],
    missing_columns: Msg,
    *,
    line_field: str | None = None,
) -> list[dict[str, Any]]:
    """Each row passed through ``validate_row`` (which raises ValidationFailed); the first few bad lines
    are reported together and nothing is returned unless every row is valid.

    With ``line_field``, each row also carries its line number under that name.
    """
    rows, problems = checked_rows(text, required, validate_row, missing_columns, line_field=line_field)
    if problems:
        raise bad_lines(problems)
    return rows


def checked_rows(
    text: str,
    required: Iterable[str],
    validate_row: Callable[[dict[str, Any]], dict[str, Any]],
    missing_columns: Msg,
    *,
    line_field: str | None = None,
) -> tuple[list[dict[str, Any]], list[tuple[int, str, Msg]]]:
    """The valid rows and the (line, field, message) of each bad one, for an import that checks more
    later (a tax id the registry lacks, in the writing transaction) and reports every bad line at once."""
    reader = csv.DictReader(io.StringIO(text))
    rows: list[dict[str, Any]] = []
    problems: list[tuple[int, str, Msg]] = []
    try:
        if not reader.fieldnames or not set(required) <= {h.strip() for h in reader.fieldnames}:
            raise ValidationFailed({"file": missing_columns})
        for line_no, row in enumerate(reader, start=2):
            if len(rows) + len(problems) >= MAX_ROWS:
                raise ValidationFailed({"file": Msg("At most 50000 rows per file.")})
            cells = {(k or "").strip(): v for k, v in row.items()}
            # A NUL is named with its line and column, not dropped by the field's cleaning: the file is wrong there.
            if column := next((k for k, v in cells.items() if isinstance(v, str) and not storable(v)), None):
                problems.append((line_no, column, UNSTORABLE_TEXT))
                continue
            try:
                values = validate_row(cells)
            except ValidationFailed as exc:
                field, msg = next(iter(exc.errors.items()))
                problems.append((line_no, field, msg))
                continue
            rows.append({**values, line_field: line_no} if line_field else values)
    except csv.Error as exc:  # an unterminated quote, a field over the csv module's size limit
        raise ValidationFailed(
            {"file": Msg("The file is not valid CSV near line %(line)s.", {"line": reader.line_num})}
        ) from exc
    if not rows and not problems:
        raise ValidationFailed({"file": Msg("The file has no rows.")})
    return rows, problems
