"""Times as both sides store and send them: UTC ISO-8601 text, which sorts as it compares.

The clock itself is read only at the edges (request handlers, the agent's scan loop, the CLI);
everything below them takes ``now`` as a parameter.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal


def utc_iso(moment: datetime, timespec: Literal["seconds", "milliseconds"] = "milliseconds") -> str:
    """``moment`` in UTC as ISO-8601 (``2026-11-24T07:30:00.000+00:00``): parseable by
    ``datetime.fromisoformat`` and, at one ``timespec``, sortable as text."""
    return moment.astimezone(UTC).isoformat(timespec=timespec)
