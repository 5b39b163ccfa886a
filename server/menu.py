"""The side menu: each area adds its entries, with the profiles that may see them, as it is set up."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from server.i18n import N_


@dataclass(frozen=True)
class MenuEntry:
    label: str
    href: str
    roles: tuple[str, ...]


class Menu:
    """The side menu of one app, in the order its entries were added."""

    def __init__(self, *entries: MenuEntry) -> None:
        self._entries: list[MenuEntry] = []
        self.add(*entries)

    def add(self, *entries: MenuEntry) -> None:
        self._entries += [e for e in entries if e not in self._entries]

    def for_role(self, role: str | None) -> list[MenuEntry]:
        """The entries a profile sees (none before a profile is chosen); an entry with no roles is for all."""
        if role is None:
            return []
        return [e for e in self._entries if not e.roles or role in e.roles]


#: The entries of the accounts and administration pages, which every app starts with.
BASE_ENTRIES = (
    MenuEntry(N_("Home"), "/home", ()),
    MenuEntry(N_("Billing registry"), "/billing/companies", ("billing_clerk", "admin")),
    MenuEntry(N_("Registrations"), "/admin/registrations", ("admin",)),
    MenuEntry(N_("Audit log"), "/admin/audit", ("admin",)),
)
MENU: web.AppKey[Menu] = web.AppKey("menu", Menu)
