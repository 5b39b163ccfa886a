"""The side menu: each area registers its entries with the profiles that may see them."""

from __future__ import annotations

from dataclasses import dataclass

from server.i18n import N_


@dataclass(frozen=True)
class MenuEntry:
    label: str
    href: str
    roles: tuple[str, ...]


MENU: list[MenuEntry] = [
    MenuEntry(N_("Home"), "/home", ()),
    MenuEntry(N_("Billing registry"), "/billing/companies", ("billing_clerk", "admin")),
    MenuEntry(N_("Registrations"), "/admin/registrations", ("admin",)),
    MenuEntry(N_("Audit log"), "/admin/audit", ("admin",)),
    MenuEntry(N_("Mail outbox"), "/admin/mail", ("admin",)),
]


def register(entry: MenuEntry) -> None:
    if entry in MENU:
        return
    MENU.append(entry)


def menu_for(role: str | None) -> list[MenuEntry]:
    if role is None:
        return []
    return [e for e in MENU if not e.roles or role in e.roles]
