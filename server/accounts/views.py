"""The page helpers other areas import from here; the account pages live in one module per resource.

``session_views`` (login, logout, language, profiles, home), ``password_views``,
``registration_views``, ``approval_views``, ``registry_views`` and ``audit_views``; what they
share is in ``common``. These names stay until the areas below stop importing them from here.
"""

from __future__ import annotations

# server.tickets.views and server.helpdesk.common render with ``page``; server.helpdesk.user_views mails.
from server.accounts.common import page, send_mail

__all__ = ["page", "send_mail"]
