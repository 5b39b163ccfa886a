"""Kiosk protocol and gate supervisor pages (being built)."""

from __future__ import annotations

from aiohttp import web


def setup(app: web.Application) -> None:
    """Register the kiosk protocol routes, supervisor pages, menu entries and live channel."""
