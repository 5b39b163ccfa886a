"""Migrations 45–49: registration with a texted code (issue 16)."""

from __future__ import annotations

from server.migrations import migration, script
from server.sql import Connection


@migration(45)
def phone_codes_by_address(db: Connection) -> None:
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


@migration(46)
def phone_codes_by_digits(db: Connection) -> None:
    """Texted registration codes are counted by the phone's digits and by company.

    The phone is kept as typed (less spaces and dashes), so ``+593 4 000 0000`` and ``593 4 000 0000``
    were counted apart and doubled the hourly limit; ``phone_digits`` holds the one form they share.
    The company's index serves the daily cap of wrong codes per company (its phones, all together).
    Requests already made keep counting: their digits are the stored phone without its ``+``.
    """
    script(
        db,
        """
        ALTER TABLE one_time_tokens ADD COLUMN phone_digits TEXT NOT NULL DEFAULT '';
        UPDATE one_time_tokens SET phone_digits = replace(phone, '+', '') WHERE purpose = 'phone_registration';
        DROP INDEX one_time_tokens_phone;
        CREATE INDEX one_time_tokens_phone_digits ON one_time_tokens(purpose, phone_digits, expires_at);
        CREATE INDEX one_time_tokens_company ON one_time_tokens(purpose, company_id, expires_at)
        """,
    )
