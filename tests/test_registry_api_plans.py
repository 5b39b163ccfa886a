"""Port scale: the staff lists of the accounts area read their pages through an index, never by sorting
every row. Each list's own query runs on the real, migrated database and SQLite's plan for it is asserted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from server.accounts import audit, registry, user_admin
from server.db import connect

# SQLite only: the plans asserted are SQLite's (EXPLAIN QUERY PLAN); PostgreSQL plans by its own statistics.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def query_plans(config, list_page: Callable[..., Any], *args: Any) -> list[str]:
    """SQLite's plan (EXPLAIN QUERY PLAN) for each SELECT that ``list_page(db, *args)`` runs."""
    db = connect(config.db_path)
    statements: list[str] = []
    db.conn.set_trace_callback(statements.append)  # each statement with its values bound
    try:
        list_page(db, *args)
        db.conn.set_trace_callback(None)
        selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        return [" / ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {s}").fetchall()) for s in selects]
    finally:
        db.close()


def page_plan(plans: list[str], table: str) -> str:
    """The plan of the statement that reads the page (the one over ``table`` that has an ORDER BY step)."""
    return next(p for p in plans if table in p and ("USING INDEX" in p or "TEMP B-TREE" in p))


async def test_the_user_list_reads_its_pages_through_the_name_index(client, config):
    first = page_plan(query_plans(config, user_admin.list_users, user_admin.UserQuery()), " u ")
    assert "USING INDEX users_name_order" in first and "TEMP B-TREE" not in first, first
    deep = page_plan(query_plans(config, user_admin.list_users, user_admin.UserQuery(after=3)), " u ")
    assert "SEARCH u USING INDEX users_name_order" in deep and "TEMP B-TREE" not in deep, deep


async def test_the_registry_reads_its_pages_through_the_name_index(client, config):
    first = page_plan(query_plans(config, registry.companies_page, registry.RegistryQuery()), "companies")
    assert "USING INDEX companies_name_search" in first and "TEMP B-TREE" not in first, first
    deep = page_plan(query_plans(config, registry.companies_page, registry.RegistryQuery(after=2)), "companies")
    assert "SEARCH companies USING INDEX companies_name_search" in deep and "TEMP B-TREE" not in deep, deep
    # A search reads the name and tax id indexes from the typed start, not the whole registry.
    search = page_plan(query_plans(config, registry.companies_page, registry.RegistryQuery(search="09")), "companies")
    assert "companies_name_search" in search and "companies_tax_id_search" in search, search
    assert "SCAN companies" not in search, search


async def test_each_audit_filter_reads_the_newest_events_through_its_own_index(client, config):
    zone = config.zone
    for query, index in (
        (audit.AuditQuery(event="login.ok"), "audit_log_event_id"),
        (audit.AuditQuery(user_id=1), "audit_log_user_id"),
        (audit.AuditQuery(company_id=1, after=1000), "audit_log_company_id"),
    ):
        plan = page_plan(query_plans(config, audit.audit_page, query, zone), " a ")
        assert f"SEARCH a USING INDEX {index}" in plan and "TEMP B-TREE" not in plan, (query, plan)
