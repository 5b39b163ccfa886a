"""All-or-nothing CSV import: every row is validated before anything is written."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable
from typing import Any

from server.forms import ValidationFailed
from server.i18n import Msg

MAX_ROWS = 50_000


def validated_rows(
    text: str, required: Iterable[str], validate_row: Callable[[dict[str, Any]], dict[str, Any]], missing_columns: Msg
) -> list[dict[str, Any]]:
    """Each row passed through ``validate_row`` (which raises ValidationFailed); the first few bad lines
    are reported together and nothing is returned unless every row is valid."""
    reader = csv.DictReader(io.StringIO(text))
    rows, problems = [], []
    try:
        if not reader.fieldnames or not set(required) <= {h.strip() for h in reader.fieldnames}:
            raise ValidationFailed({"file": missing_columns})
        for line_no, row in enumerate(reader, start=2):
            if len(rows) >= MAX_ROWS:
                raise ValidationFailed({"file": Msg("At most 50000 rows per file.")})
            try:
                rows.append(validate_row({(k or "").strip(): v for k, v in row.items()}))
            except ValidationFailed as exc:
                field, msg = next(iter(exc.errors.items()))
                problems.append(f"{line_no}: {field}: {msg}")
    except csv.Error as exc:  # an unterminated quote, a field over the csv module's size limit
        raise ValidationFailed(
            {"file": Msg("The file is not valid CSV near line %(line)s.", {"line": reader.line_num})}
        ) from exc
    if problems:
        raise ValidationFailed({"file": Msg("Line %(lines)s", {"lines": "; ".join(problems[:5])})})
    if not rows:
        raise ValidationFailed({"file": Msg("The file has no rows.")})
    return rows
