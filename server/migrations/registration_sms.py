"""Migrations 45–49: registration with a texted code (issue 16)."""

from __future__ import annotations

import sqlite_utils

from server.migrations import migration, script


@migration(45)
def phone_codes_by_address(db: sqlite_utils.Database) -> None:
    """Each texted registration code remembers the client address that asked for it.

    Counting an address's codes of the last hour stops a script from pumping paid texts to many
    numbers, which the limit per phone alone cannot; the indexes keep both counts off a table scan.
    """
    script(
        db,
        """
        ALTER TABLE one_time_tokens ADD COLUMN address TEXT NOT NULL DEFAULT '';
        CREATE INDEX one_time_tokens_phone ON one_time_tokens(purpose, phone, expires_at);
        CREATE INDEX one_time_tokens_address ON one_time_tokens(purpose, address, expires_at)
        """,
    )
