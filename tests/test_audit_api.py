"""The audit log through the real app: the administrator's API and page, filtered by event, user, company
and days of the terminal's calendar, paged by keyset so new events never shift a page, bad filters a 400."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from server.accounts.audit import audit
from tests.dbaccess import open_db
from tests.helpers import api_error, api_token, bearer, db_rows, login

AUDIT = "/api/v1/admin/audit"
COMPANIES = "/api/v1/billing/companies"


@pytest.fixture
def config(config):
    """A terminal five hours behind UTC, so a day of its calendar is not a UTC day."""
    return replace(config, timezone="America/Guayaquil")


def record(config, event: str, at: datetime, **who: int) -> None:
    """An event written by the areas' own ``audit`` at a chosen time, as a past day would have left it."""
    with open_db(config) as db:
        db.execute(db.dialect.begin)
        audit(db, event, now=at, detail="test", **who)
        db.execute("COMMIT")


async def add_company(client, auth, n: int) -> int:
    body = {"tax_id": f"AU{n:08d}", "name": f"Auditada {n}", "emails": [f"a{n}@au.example"]}
    resp = await client.post(COMPANIES, json=body, headers=auth)
    assert resp.status == 201, await resp.text()
    return (await resp.json())["id"]


async def test_the_administrator_filters_and_pages_the_log_and_new_events_never_shift_a_page(client, config):
    billing = bearer(await api_token(client, "facturacion"))
    ids = [await add_company(client, billing, n) for n in range(5)]
    admin = bearer(await api_token(client, "admin"))
    clerk = db_rows(config, "SELECT id FROM users WHERE username = 'facturacion'")[0][0]

    first = await (await client.get(AUDIT, params={"event": "company.added", "limit": "2"}, headers=admin)).json()
    assert [e["company_id"] for e in first["events"]] == [ids[4], ids[3]]
    assert first["events"][0] | {"id": 0, "at": ""} == {
        "id": 0,
        "at": "",
        "event": "company.added",
        "user_id": clerk,
        "username": "facturacion",
        "company_id": ids[4],
        "company_name": "Auditada 4",
        "detail": "AU00000004",
        "address": "",
    }
    await add_company(client, billing, 5)  # newer than page 1: it must not push page 2 along
    query = {"event": "company.added", "limit": "2", "after": str(first["next_after"])}
    second = await (await client.get(AUDIT, params=query, headers=admin)).json()
    assert [e["company_id"] for e in second["events"]] == [ids[2], ids[1]]

    by_user = await (await client.get(AUDIT, params={"user_id": clerk, "limit": "200"}, headers=admin)).json()
    assert {e["username"] for e in by_user["events"]} == {"facturacion"} and len(by_user["events"]) >= 6
    by_company = await (await client.get(AUDIT, params={"company_id": ids[0]}, headers=admin)).json()
    assert [e["event"] for e in by_company["events"]] == ["company.added"] and by_company["next_after"] is None


async def test_days_are_the_terminals_days(client, config):
    # 22:30 on 1 March in Guayaquil is already 2 March in UTC; 00:30 on 2 March there is 05:30 UTC.
    record(config, "test.late", datetime(2026, 3, 2, 3, 30, tzinfo=UTC))
    record(config, "test.early", datetime(2026, 3, 2, 5, 30, tzinfo=UTC))
    admin = bearer(await api_token(client, "admin"))
    for day, expected in (("2026-03-01", ["test.late"]), ("2026-03-02", ["test.early"])):
        body = await (await client.get(AUDIT, params={"from": day, "to": day}, headers=admin)).json()
        assert [e["event"] for e in body["events"]] == expected, day
    body = await (await client.get(AUDIT, params={"from": "2026-03-01", "event": "test.early"}, headers=admin)).json()
    assert [e["event"] for e in body["events"]] == ["test.early"]


async def test_bad_filters_are_named_and_only_administrators_read_the_log(client):
    admin = bearer(await api_token(client, "admin"))
    bad = {"from": "2026-02-30", "user_id": "abc", "limit": "500", "after": "-1"}
    resp = await client.get(AUDIT, params=bad, headers=admin)
    assert resp.status == 400 and set((await api_error(resp))["fields"]) == {"from", "user_id", "limit", "after"}
    resp = await client.get(AUDIT, params={"from": "2026-03-02", "to": "2026-03-01"}, headers=admin)
    assert (await api_error(resp))["fields"] == {"to": "La fecha final es anterior a la inicial."}
    for login_name in ("facturacion", "andina"):
        resp = await client.get(AUDIT, headers=bearer(await api_token(client, login_name)))
        assert resp.status == 403, login_name
    assert (await client.get(AUDIT)).status == 401


async def test_the_audit_page_pages_past_two_hundred_events_and_filters_by_user_name(client, config):
    for n in range(230):
        record(config, "test.bulk", datetime(2026, 1, 1, 12, tzinfo=UTC).replace(minute=n % 60))
    await login(client, "admin")
    page = await (await client.get("/admin/audit", params={"event": "test.bulk"})).text()
    assert len(re.findall(r"<td[^>]*>test.bulk</td>", page)) == 50
    pages = 1
    while next_url := re.search(r'<a href="([^"]+)" id="next-page">', page):
        page = await (await client.get(next_url[1].replace("&amp;", "&"))).text()
        pages += 1
        assert len(re.findall(r"<td[^>]*>test.bulk</td>", page)) == (30 if pages == 5 else 50)
    assert pages == 5, "the page stops at 200 events"

    page = await (await client.get("/admin/audit", params={"username": "admin"})).text()
    users = re.findall(r'<tr data-event="\d+"><td[^>]*>[^<]*</td><td[^>]*>[^<]*</td><td[^>]*>([^<]*)</td>', page)
    assert users and set(users) == {"admin"} and re.search(r"<td[^>]*>login.ok</td>", page)
    resp = await client.get("/admin/audit", params={"username": "nadie", "from": "ayer"})
    text = await resp.text()
    assert resp.status == 400 and 'data-field="username"' in text and 'data-field="from"' in text
