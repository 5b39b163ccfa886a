"""Dates and times as people read them: in the terminal's time zone (``Config.zone``).

Times are stored and exchanged (API, sync, scan log) in UTC; pages, printed tickets and mail show
them in the terminal's zone in one style, written as the reader's language writes it ("5 dic 2026
23:42" / "5 Dec 2026 23:42"), and a time typed without an offset (a form, a CSV file) is read in
it. The helpdesk's relative times go through Babel ("hace 20 horas" / "20 hours ago").
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

import jinja2
from babel.dates import format_date, format_datetime, format_timedelta

#: The one style of a date, and of a date and time, on every page (CLDR patterns: "5 dic 2026").
DATE_PATTERN = "d MMM y"
DATE_TIME_PATTERN = "d MMM y HH:mm"


def _moment(value: str | datetime) -> datetime:
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def timestamp(value: str | None, zone: tzinfo = UTC, seconds: bool = False) -> str:
    """A stored time as ``2026-11-24 02:30 -05`` in ``zone``: the printed ticket's form until it passes the
    reader's language to :func:`date_time`, the one every page uses."""
    if not value:
        return ""
    try:
        moment = _moment(str(value)).astimezone(zone)
    except (ValueError, OverflowError):
        return str(value)
    return moment.strftime("%Y-%m-%d %H:%M:%S %Z" if seconds else "%Y-%m-%d %H:%M %Z")


def date_time(value: str | datetime | None, lang: str, zone: tzinfo = UTC, seconds: bool = False) -> str:
    """A stored time in ``zone`` as ``lang`` writes it: ``5 dic 2026 23:42`` (with seconds for logs); "" for none."""
    if not value:
        return ""
    try:
        return format_datetime(_moment(value), DATE_TIME_PATTERN + (":ss" if seconds else ""), tzinfo=zone, locale=lang)
    except (ValueError, OverflowError):
        return str(value)


def install_filters(env: jinja2.Environment, zone: tzinfo) -> None:
    """The ``dt`` and ``dts`` (with seconds) template filters, in the reader's language (``lang`` of the page)."""

    @jinja2.pass_context
    def dt(context: Any, value: str | None) -> str:
        return date_time(value, context.get("lang", "es"), zone)

    @jinja2.pass_context
    def dts(context: Any, value: str | None) -> str:
        return date_time(value, context.get("lang", "es"), zone, seconds=True)

    env.filters["dt"] = dt
    env.filters["dts"] = dts


class NoSuchLocalTime(ValueError):
    """A local time the clocks skip (the hour lost when daylight saving time starts)."""


def read_local(moment: datetime, zone: tzinfo) -> datetime:
    """A time as typed: one with an offset is exact, one without is the terminal's local time.

    Raises :class:`NoSuchLocalTime` for a local time that does not exist in ``zone``; of a time
    that happens twice (clocks going back) the first is meant.
    """
    if moment.tzinfo is not None:
        return moment
    local = moment.replace(tzinfo=zone)
    if local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != moment:
        raise NoSuchLocalTime(f"{moment.isoformat(' ', 'minutes')} does not exist in {zone}")
    return local


def relative(value: str | datetime, now: datetime, lang: str) -> str:
    """How long ago (or until) ``value`` is from ``now``, in words of ``lang``."""
    delta = _moment(value) - now
    if timedelta(0) <= delta < timedelta(minutes=1):
        # Stored times have whole seconds; "in 0 seconds" for what just happened would read oddly.
        delta = timedelta(seconds=-1)
    if timedelta(days=1) <= abs(delta) < timedelta(days=31):
        # As the seed counts: whole days for the first month ("hace 1 día" … "hace 14 días"), where
        # Babel alone would round 6 days up to "1 week".
        days = timedelta(days=abs(delta).days)
        return format_timedelta(
            -days if delta < timedelta(0) else days, threshold=31, granularity="day", add_direction=True, locale=lang
        )
    return format_timedelta(delta, add_direction=True, locale=lang)


def when(value: str | datetime | None, now: datetime, lang: str, zone: tzinfo = UTC) -> str:
    """As the seed's "oct. 25 (hace 1 día)": the date and time, then the relative time."""
    if not value:
        return ""
    moment = _moment(value)
    return f"{date_time(moment, lang, zone)} ({relative(moment, now, lang)})"


def day(value: str | date | None, lang: str, zone: tzinfo = UTC) -> str:
    """A calendar date, unambiguous in both languages (``10 nov 2022`` / ``10 Nov 2022``).

    A stored date is shown as it is; the date of a stored time is its date in ``zone``.
    """
    if not value:
        return ""
    if isinstance(value, str) and len(value) > 10:
        value = _moment(value).astimezone(zone).date()
    return format_date(value if isinstance(value, date) else date.fromisoformat(value[:10]), DATE_PATTERN, locale=lang)
