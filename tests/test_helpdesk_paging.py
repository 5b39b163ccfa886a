"""Port scale: the helpdesk and licence lists page by keyset past their old caps (100 tickets, 500
serials and policies), keep their filters from page to page, and a row added between two page loads
neither shifts nor repeats a row of the next page."""

from __future__ import annotations

import re
import secrets
from datetime import date

import pytest

from server.helpdesk import licences
from server.tickets.paging import Keyset
from tests.dbaccess import db_execute, db_rows
from tests.helpdesk_support import ANDINA, ANDINA_PORTAL_SERIAL, company_id, open_ticket, policy_of, token_as
from tests.helpers import login
from tests.test_registry_api_plans import page_plan, query_plans


def _write(config, sql: str, params: tuple = ()) -> None:
    db_execute(config, sql, params)


def add_tickets(config, like_ticket: int, count: int) -> None:
    """``count`` closed copies of a ticket, straight into the database (as years of support leave them)."""
    _write(
        config,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO service_tickets (seq, number, company_id, policy_id, serial_id, system, area, subject, email, "
        "phone, contact_hours, description, status, language, reply_token, created_by, created_at, updated_at) "
        "SELECT (SELECT MAX(seq) FROM service_tickets) + i, 'S_OLD_' || ((SELECT MAX(seq) FROM service_tickets) + i), "
        "company_id, policy_id, serial_id, system, area, 'Copia ' || i, email, phone, contact_hours, description, "
        "'closed', language, ? || i, created_by, created_at, updated_at FROM service_tickets, n WHERE id = ?",
        (count, secrets.token_hex(8), like_ticket),
    )


def add_serials(config, like_serial: str, count: int) -> None:
    """``count`` copies of a serial, each with one copy of the serial's newest policy."""
    _write(
        config,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO serials (company_id, serial, system, description, valid_until, suspended, max_machines, "
        "max_open_tickets, created_at, updated_at) SELECT company_id, 'COPY-' || i || '-' || ?, "
        "system, description, valid_until, suspended, max_machines, max_open_tickets, created_at, updated_at "
        "FROM serials, n WHERE serial = ?",
        (count, secrets.token_hex(4), like_serial),
    )
    _write(
        config,
        "INSERT INTO policies (serial_id, number, description, registered_on, valid_until, created_at) "
        "SELECT s.id, 'POL-' || s.serial, p.description, p.registered_on, p.valid_until, p.created_at "
        "FROM serials s, policies p WHERE s.serial LIKE 'COPY-%' AND p.id = ?",
        (policy_of(config, like_serial),),
    )


async def page_ids(client, address: str, row: str) -> tuple[list[str], str | None]:
    """The row ids a list page shows (``data-<row>``) and its Older link, if any."""
    resp = await client.get(address)
    assert resp.status == 200, await resp.text()
    html = await resp.text()
    older = re.search(r'href="([^"]+)" rel="next" id="page-older"', html)
    return re.findall(rf'<tr data-{row}="(\d+)"', html), older[1].replace("&amp;", "&") if older else None


async def every_page(client, address: str, row: str) -> list[str]:
    """Every row of a list, following its Older links to the last page."""
    seen: list[str] = []
    next_address: str | None = address
    while next_address:
        ids, next_address = await page_ids(client, next_address, row)
        seen += ids
    return seen


async def every_api_page(client, address: str, key: str, headers: dict[str, str]) -> list[int]:
    """Every row of an API list, sending each page's ``next_after`` back as ``after``."""
    seen: list[int] = []
    after = None
    while True:
        glue = "&" if "?" in address else "?"
        resp = await client.get(address + (f"{glue}after={after}" if after else ""), headers=headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        seen += [r["id"] for r in body[key]]
        after = body["next_after"]
        if after is None:
            return seen


async def _andina_ticket(client, config) -> int:
    andina = await token_as(client, "andina", "customer_admin")
    resp = await open_ticket(client, andina, policy_of(config, ANDINA_PORTAL_SERIAL), "soporte@andina.example")
    assert resp.status == 201, await resp.text()
    return (await resp.json())["id"]


async def test_the_customers_tickets_and_the_console_show_every_ticket_past_the_old_cap(client, config):
    add_tickets(config, await _andina_ticket(client, config), 130)
    andina_count = len(_all_ticket_ids(config, company_id(config, ANDINA)))
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    mine = await every_page(client, "/helpdesk/tickets", "ticket")
    assert len(mine) == len(set(mine)) == andina_count > 100
    closed = await every_page(client, "/helpdesk/tickets?status=closed&q=Copia", "ticket")
    assert len(closed) == 130  # the filters hold on every page

    client.session.cookie_jar.clear()
    await login(client, "mesa", language="en")
    queue = await every_page(client, "/helpdesk/console?status=all", "ticket")
    assert len(queue) == len(set(queue)) and set(mine) <= set(queue)
    copies = await every_page(client, "/helpdesk/console?status=closed&area=technical_support&q=Copia", "ticket")
    assert len(copies) == 130
    agent = await token_as(client, "mesa")
    api = await every_api_page(client, "/api/v1/helpdesk/tickets?status=closed&q=Copia&limit=40", "tickets", agent)
    assert len(api) == len(set(api)) == 130


def _all_ticket_ids(config, company: int) -> list[int]:
    return [r[0] for r in db_rows(config, "SELECT id FROM service_tickets WHERE company_id = ?", (company,))]


async def test_a_ticket_opened_between_two_page_loads_does_not_shift_the_next_page(client, config):
    ticket = await _andina_ticket(client, config)
    add_tickets(config, ticket, 120)
    await login(client, "andina", language="en", profile="Exportadora Andina S.A.")
    first, older = await page_ids(client, "/helpdesk/tickets", "ticket")
    assert older
    expected, _ = await page_ids(client, older, "ticket")
    add_tickets(config, ticket, 3)  # three newer tickets arrive while the customer reads page 1
    second, _ = await page_ids(client, older, "ticket")
    assert second == expected and not set(second) & set(first)


@pytest.mark.parametrize(
    ("address", "row"),
    [("/licences?q=COPY", "serial"), ("/policies?q=COPY", "policy"), ("/admin/licences?q=COPY", "serial")],
)
async def test_licence_pages_show_every_serial_and_policy_past_the_old_cap(client, config, address, row):
    add_serials(config, ANDINA_PORTAL_SERIAL, 520)
    user = ("admin", None) if address.startswith("/admin") else ("andina", "Exportadora Andina S.A.")
    await login(client, user[0], language="en", profile=user[1])
    shown = await every_page(client, address, row)
    assert len(shown) == len(set(shown)) == 520


async def test_the_licence_api_pages_serials_and_policies_with_next_after(client, config):
    add_serials(config, ANDINA_PORTAL_SERIAL, 520)
    andina = await token_as(client, "andina", "customer_admin")
    serials = await every_api_page(client, "/api/v1/licences?q=COPY&limit=200", "serials", andina)
    policies = await every_api_page(client, "/api/v1/policies?q=COPY", "policies", andina)
    assert len(set(serials)) == len(serials) == 520 and len(set(policies)) == len(policies) == 520


# SQLite only: the plan asserted is SQLite's EXPLAIN QUERY PLAN.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_a_companys_serials_page_is_read_through_its_index(client, config):
    andina = company_id(config, ANDINA)
    for at in (Keyset(), Keyset(after=10_000)):
        plans = query_plans(config, lambda db, at=at: licences.serials_page(db, andina, date.today(), at=at))
        plan = page_plan(plans, " s ")
        assert "USING INDEX serials_company_newest" in plan and "TEMP B-TREE" not in plan, plan
