"""The terminal's time zone: staff type and read times as the port's clock shows them.

Guayaquil is UTC-5 all year: an operations clerk who types 08:00 means 13:00 UTC, the customer's
printed ticket and every page say 08:00 (pages as "1 Dec 2026 08:00"), and the supervisor's "from 23
Nov" is the port's 23 November. Stored and exchanged times (API, sync, scan log rows) stay UTC.
"""

from __future__ import annotations

import html
import io
import re
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pypdf
import pytest

from server.app import create_app
from server.config import ConfigError, load_config
from server.demo import install_demo
from tests.gate_support import PACIFICO_TAX_ID, enrol_kiosk, make_tickets, redeem
from tests.helpers import db_rows, field_errors, get_form, login

ZONE = "America/Guayaquil"


@pytest.fixture
def gye_config(config):
    return replace(config, timezone=ZONE)


@pytest.fixture
async def gye(gye_config, aiohttp_client):
    app = create_app(gye_config)
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


def test_an_unknown_time_zone_stops_the_server_with_a_clear_message(tmp_path):
    for bad in ("America/Guayakil", "../../etc/passwd", "America", ""):
        with pytest.raises(ConfigError, match="timezone: unknown time zone"):
            load_config(None, environ={"PORTGATE_TIMEZONE": bad, "PORTGATE_DATA_DIR": str(tmp_path)})
    assert load_config(None, environ={"PORTGATE_TIMEZONE": ZONE}).timezone == ZONE


async def test_itinerary_times_are_typed_and_shown_in_the_terminals_time(gye, gye_config):
    await login(gye, "operaciones", language="en")
    page, hidden = await get_form(gye, "/ops/itineraries")
    assert "the terminal's local time (America/Guayaquil)" in html.unescape(page)
    resp = await gye.post(
        "/ops/itineraries",
        data={
            **hidden,
            "vessel": "Nave Hora",
            "voyage": "77",
            "eta": "2026-12-01T08:00",
            "etd": "2026-12-02T18:30",
            "valid_from": "2026-11-30T06:00",
            "valid_until": "2026-12-02T20:00",
        },
    )
    assert resp.status == 200, await resp.text()
    stored = db_rows(gye_config, "SELECT eta, valid_from, valid_until FROM itineraries WHERE vessel = 'Nave Hora'")
    assert stored == [("2026-12-01T13:00+00:00", "2026-11-30T11:00+00:00", "2026-12-03T01:00+00:00")]
    page = await (await gye.get("/ops/itineraries")).text()
    row = next(line for line in page.splitlines() if "Nave Hora" in line)
    assert "1 Dec 2026 08:00" in row and "30 Nov 2026 06:00 → 2 Dec 2026 20:00" in row


async def test_csv_times_without_an_offset_are_local_and_with_one_are_exact(gye, gye_config):
    await login(gye, "operaciones", language="en")
    _page, hidden = await get_form(gye, "/ops/itineraries")
    upload = io.BytesIO(
        b"vessel,voyage,eta,etd,valid_from,valid_until\n"
        b"Nave Local,1,2026-12-01T08:00,2026-12-02T08:00,2026-11-30T00:00,2026-12-03T00:00\n"
        b"Nave UTC,2,2026-12-01T08:00+00:00,2026-12-02T08:00Z,2026-11-30T00:00+00:00,2026-12-03T00:00+00:00\n"
    )
    upload.name = "itineraries.csv"
    resp = await gye.post("/ops/itineraries/import", data={**hidden, "file": upload})
    assert resp.status == 200 and "Imported: 2 itineraries." in await resp.text()
    rows = dict(db_rows(gye_config, "SELECT vessel, eta FROM itineraries WHERE vessel LIKE 'Nave %'"))
    assert rows == {"Nave Local": "2026-12-01T13:00+00:00", "Nave UTC": "2026-12-01T08:00+00:00"}


async def test_the_printed_ticket_shows_its_gate_window_in_the_terminals_time(gye, gye_config, tmp_path):
    app = gye.server.app
    [ticket] = await make_tickets(app, 1, printed=False, tax_id=PACIFICO_TAX_ID)
    window = db_rows(
        gye_config,
        "SELECT i.valid_from, i.valid_until FROM itineraries i JOIN tickets t ON t.itinerary_id = i.id WHERE t.id = ?",
        (ticket["id"],),
    )[0]
    await login(gye, "pacifico", language="en")
    _page, hidden = await get_form(gye, f"/tickets/itinerary/{ticket['itinerary_id']}")
    resp = await gye.post(f"/tickets/{ticket['id']}/print", data=hidden)
    assert resp.status == 200 and resp.content_type == "application/pdf"
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(await resp.read())).pages)
    # In the one date style of every page, in the reader's language: "1 Dec 2026 08:00".
    local = [datetime.fromisoformat(v).astimezone(ZoneInfo(ZONE)).strftime("%-d %b %Y %H:%M") for v in window]
    assert f"{local[0]} → {local[1]}" in text
    assert "+00:00" not in text


async def test_scan_log_days_are_the_terminals_days(gye, gye_config):
    app = gye.server.app
    kiosk = await enrol_kiosk(gye)
    late, early = await make_tickets(app, 2)
    late_scan = await redeem(gye, kiosk, late["code"])
    early_scan = await redeem(gye, kiosk, early["code"])
    # 03:30 UTC on the 24th is still 22:30 on the 23rd in Guayaquil; 06:00 UTC is 01:00 on the 24th.
    for scan_id, received in (
        (late_scan["scan_id"], "2026-11-24T03:30:00.000+00:00"),
        (early_scan["scan_id"], "2026-11-24T06:00:00.000+00:00"),
    ):
        db_rows(gye_config, "UPDATE scans SET received_at = ? WHERE scan_id = ?", (received, scan_id))
    await login(gye, "supervisor", language="en")

    async def shown(query: str) -> set[str]:
        page = await (await gye.get(f"/gate/scans{query}")).text()
        return set(re.findall(r'<tr data-scan="([^"]+)"', page))

    assert await shown("?from=2026-11-23&to=2026-11-23") == {late_scan["scan_id"]}
    assert await shown("?from=2026-11-24&to=2026-11-24") == {early_scan["scan_id"]}
    page = await (await gye.get("/gate/scans?from=2026-11-23&to=2026-11-23")).text()
    assert "From (America/Guayaquil)" in page and "23 Nov 2026 22:30:00" in page


@pytest.fixture
async def nyc(config, aiohttp_client):
    app = create_app(replace(config, timezone="America/New_York"))
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


async def test_a_local_time_the_clocks_skip_is_refused_and_a_repeated_one_is_the_first(nyc, config):
    await login(nyc, "operaciones", language="en")
    _page, hidden = await get_form(nyc, "/ops/itineraries")
    form = {**hidden, "vessel": "Nave DST", "voyage": "1", "etd": "2026-11-02T08:00", "valid_until": "2026-11-03T08:00"}
    # 2026-03-08 02:30 never happens in New York: clocks go from 02:00 to 03:00.
    resp = await nyc.post(
        "/ops/itineraries", data={**form, "eta": "2026-03-08T02:30", "valid_from": "2026-03-01T00:00"}
    )
    assert resp.status == 400
    assert "the clocks skip it" in field_errors(await resp.text())["eta"]
    # 2026-11-01 01:30 happens twice (clocks go back at 02:00): the first one, still on daylight time.
    resp = await nyc.post(
        "/ops/itineraries", data={**form, "eta": "2026-11-01T01:30", "valid_from": "2026-11-01T00:00"}
    )
    assert resp.status == 200, await resp.text()
    assert db_rows(config, "SELECT eta FROM itineraries WHERE vessel = 'Nave DST'") == [("2026-11-01T05:30+00:00",)]


def test_the_date_of_a_stored_time_is_the_terminals_date():
    from server.timefmt import day

    assert day("2026-11-24T03:00:00+00:00", "en", ZoneInfo(ZONE)) == "23 Nov 2026"
    assert day("2026-11-24", "es", ZoneInfo(ZONE)) == "24 nov 2026"  # a date is a date


@dataclass
class OffUtcDay:
    """A server whose terminal's date differs from UTC's right now: ahead of it (Kiritimati, UTC+14)
    from 10:00 UTC, behind it (Pago Pago, UTC-11) before 11:00 UTC; ``last_day`` is a validity end
    date on which the terminal's day and UTC's day disagree."""

    client: Any
    ahead: bool
    local_today: date

    @property
    def last_day(self) -> date:
        """Ahead: the terminal's yesterday (UTC's today). Behind: the terminal's today (UTC's yesterday)."""
        return self.local_today - timedelta(days=1) if self.ahead else self.local_today


@pytest.fixture
async def off_utc_day(config, aiohttp_client) -> OffUtcDay:
    ahead = datetime.now(UTC).hour >= 10
    zone = "Pacific/Kiritimati" if ahead else "Pacific/Pago_Pago"
    app = create_app(replace(config, timezone=zone))
    app.on_startup.append(install_demo)
    return OffUtcDay(await aiohttp_client(app), ahead, datetime.now(ZoneInfo(zone)).date())


async def test_a_licence_valid_until_today_is_valid_all_the_terminals_day(off_utc_day, config):
    """Valid until and days left count in the terminal's days, not UTC's."""
    from tests.helpdesk_support import ANDINA, company_id, token_as

    client, local_today = off_utc_day.client, off_utc_day.local_today
    admin = await token_as(client, "admin")
    body = {
        "company_id": company_id(config, ANDINA),
        "system": "Sistema de hoy",
        "description": "Vence hoy",
        "valid_until": local_today.isoformat(),
        "max_machines": 1,
        "max_open_tickets": 1,
    }
    resp = await client.post("/api/v1/licences", json=body, headers=admin)
    assert resp.status == 201, await resp.text()
    serial = await resp.json()
    assert (serial["days_left"], serial["status"]) == (0, "valid")
    again = await (await client.get(f"/api/v1/licences/{serial['id']}", headers=admin)).json()
    assert (again["days_left"], again["status"]) == (0, "valid")


async def test_the_gate_licence_ends_with_the_terminals_day_not_utcs(off_utc_day, config):
    """Behind UTC's date, a licence ending "today" still enrols kiosks; ahead of it, one that ended
    "yesterday" no longer does (UTC would say the opposite both times)."""
    from tests.helpdesk_support import token_as
    from tests.test_licences_kiosks import set_gate_serial, try_enrol

    client, ahead = off_utc_day.client, off_utc_day.ahead
    last_day = off_utc_day.last_day.isoformat()
    await set_gate_serial(client, config, await token_as(client, "admin"), valid_until=last_day)
    _code, resp = await try_enrol(client, "Garita Último Día")
    assert resp.status == (403 if ahead else 201), await resp.text()


async def test_a_service_ticket_can_be_opened_on_a_policys_last_day_in_the_terminals_time(off_utc_day, config):
    """As for the gate licence: behind UTC's date, a policy ending today still takes tickets; ahead of
    it, one that ended yesterday no longer does."""
    from tests.helpdesk_support import ANDINA, company_id, open_ticket, token_as

    client, ahead, local_today = off_utc_day.client, off_utc_day.ahead, off_utc_day.local_today
    last_day = off_utc_day.last_day
    admin = await token_as(client, "admin")
    serial = await (
        await client.post(
            "/api/v1/licences",
            json={
                "company_id": company_id(config, ANDINA),
                "system": "Sistema del último día",
                "description": "Prueba",
                "valid_until": (local_today + timedelta(days=30)).isoformat(),
                "max_machines": 1,
                "max_open_tickets": 2,
            },
            headers=admin,
        )
    ).json()
    policy = {
        "number": "POL-ULTIMO-DIA",
        "serial_id": serial["id"],
        "description": "Póliza",
        "registered_on": (local_today - timedelta(days=300)).isoformat(),
        "valid_until": last_day.isoformat(),
    }
    resp = await client.post("/api/v1/policies", json=policy, headers=admin)
    assert resp.status == 201, await resp.text()
    andina = await token_as(client, "andina", "customer")
    resp = await open_ticket(client, andina, (await resp.json())["id"], "buzon@andina.example")
    assert resp.status == (409 if ahead else 201), await resp.text()  # 409: policy_expired


async def test_scan_log_dates_at_the_calendars_ends_are_a_field_error(config, aiohttp_client):
    """The first day's midnight in Tokyo is before year 1 in UTC; the day after the last one does not exist."""
    app = create_app(replace(config, timezone="Asia/Tokyo"))
    app.on_startup.append(install_demo)
    client = await aiohttp_client(app)
    await login(client, "supervisor", language="en")
    for query, field in (("?from=0001-01-01", "from"), ("?to=9999-12-31", "to")):
        resp = await client.get(f"/gate/scans{query}")
        assert resp.status == 200
        assert f'data-field="{field}"' in await resp.text()
