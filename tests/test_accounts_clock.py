"""Accounts services take the time from their caller: what the admin pages show is when it happened.

Real SQLite file with every migration applied; the services are called as the handlers call them,
with a fixed ``now`` far from the machine's clock, so a service that read the clock itself shows.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from server.accounts import approvals, registration, registry, sessions
from server.accounts.audit import recent_audit
from server.db import connect, one
from server.migrations import apply_migrations
from server.security import hash_password

SAVED = datetime(2031, 3, 4, 5, 6, 7, tzinfo=UTC)
DECIDED = datetime(2031, 3, 5, 9, 0, 0, tzinfo=UTC)
LIMITS = sessions.LoginLimits(max_account=5, max_address=20, lock_minutes=15)
COMPANY = {"tax_id": "0991234567001", "name": "Exportadora Andina S.A.", "emails": "logistica@andina.example"}
REGISTRANT = {
    "full_name": "Lucía Torres",
    "username": "ltorres",
    "email": "lucia@andina.example",
    "tax_id": "0991234567001",
    "phone": "+593 99 123 4567",
    "password": "Puerto2026seguro",
}


@pytest.fixture
def db(tmp_path):
    database = connect(tmp_path / "portgate.db")
    apply_migrations(database)
    yield database
    database.conn.close()


def test_registry_queue_and_audit_show_the_times_the_handlers_passed(db):
    registry.save_company(db, COMPANY, actor_id=None, now=SAVED.timestamp())
    user = registration.register_user(
        db, REGISTRANT, hash_password(REGISTRANT["password"]), "es", SAVED.timestamp(), "192.0.2.7"
    )

    assert one(db, "SELECT created_at FROM companies WHERE tax_id = ?", (COMPANY["tax_id"],)) == {
        "created_at": "2031-03-04T05:06:07+00:00"
    }
    (pending,) = approvals.pending_registrations(db)
    assert pending["created_at"] == "2031-03-04T05:06:07+00:00"

    approvals.decide_registration(db, 1, user["id"], True, DECIDED.timestamp())
    decided = one(db, "SELECT status, decided_at FROM users WHERE id = ?", (user["id"],))
    assert decided == {"status": "active", "decided_at": "2031-03-05T09:00:00+00:00"}
    assert [(row["event"], row["at"]) for row in recent_audit(db)] == [
        ("user.active", "2031-03-05T09:00:00+00:00"),
        ("user.registered", "2031-03-04T05:06:07+00:00"),
        ("company.added", "2031-03-04T05:06:07+00:00"),
    ]


def test_a_sign_in_is_logged_at_the_time_of_the_request(db):
    registry.save_company(db, COMPANY, now=SAVED.timestamp())
    user = registration.register_user(db, REGISTRANT, hash_password(REGISTRANT["password"]), "es", SAVED.timestamp())
    approvals.decide_registration(db, 1, user["id"], True, SAVED.timestamp())

    when = DECIDED.timestamp()
    verified = sessions.check_passwords(
        sessions.hashes_to_check(db, "ltorres", "192.0.2.7", when, LIMITS), "Puerto2026seguro"
    )
    session = sessions.NewSession("web", 1)
    outcome = sessions.login_check(db, "ltorres", verified, "192.0.2.7", when, LIMITS, session)

    assert outcome.status == "ok"
    newest = recent_audit(db, 1)[0]
    assert (newest["event"], newest["at"], newest["address"]) == (
        "login.ok",
        "2031-03-05T09:00:00+00:00",
        "192.0.2.7",
    )
