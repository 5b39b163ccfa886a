"""Helpdesk and licences: service tickets, serials, machines, policies, company users (being built)."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the helpdesk/licence routes, menu entries, API docs and background tasks."""
