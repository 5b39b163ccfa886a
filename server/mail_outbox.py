"""The mail outbox: mail waits in the database until the mail server takes it.

A change that causes mail queues it here in its own transaction (:func:`write_with_mail`), so the
change and its mail are kept or dropped together, and returns: a mail server that is down, slow or
refusing never fails the request. Each server
node runs a delivery job (owned by a cleanup context); on PostgreSQL a pass runs on one node at
a time (``server.jobs``: an advisory lock), so the others do not poll for nothing. A pass claims
due messages in a write transaction — so two nodes never send the same one, even if a node that
lost its lock connection runs on — hands them to the mailer, and on failure retries with growing
pauses; after ``MAX_ATTEMPTS`` a message is marked failed. The administrator's page lists what
waits or failed, with the last error, and retries one now.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any, TypeVar

from aiohttp import web

from server.db import Database, scalar
from server.i18n import N_
from server.jobs import JobLocks
from server.mail import DELIVERY_ERRORS, Mail, Mailer
from server.menu import MENU, MenuEntry
from server.web import DB, MAILER, not_found, path_id, render_page, require

log = logging.getLogger(__name__)
T = TypeVar("T")

#: First pause after a failed attempt; each further failure doubles it, up to ``RETRY_MAX_SECONDS``.
RETRY_FIRST_SECONDS = 5.0
RETRY_MAX_SECONDS = 30 * 60.0
#: About six hours of retries; then the message waits for the administrator's "retry now".
MAX_ATTEMPTS = 20
#: A claim outlives any one attempt (aiosmtplib's timeout is 15 s per step); if the process dies
#: while sending, another takes the message over after this.
CLAIM_SECONDS = 120.0
#: How often each process looks for messages that became due (retries, or queued by another process).
POLL_SECONDS = 1.0
BATCH = 20
#: How long shutdown lets the attempt under way finish before it interrupts it.
STOP_SECONDS = 20.0
LISTED = 200


@dataclass(frozen=True)
class OutboxEntry:
    """A message not delivered yet, as the administrator's page shows it."""

    id: int
    recipient: str
    subject: str
    state: str  # waiting | sending | retrying | failed
    attempts: int
    last_error: str | None
    created_at: datetime
    next_attempt_at: datetime | None


def retry_delay(attempts: int) -> float:
    """The pause before the next attempt after ``attempts`` failed ones."""
    return min(RETRY_FIRST_SECONDS * 2 ** (attempts - 1), RETRY_MAX_SECONDS)


def queue_message(db: Any, message: EmailMessage, now: float) -> int:
    """Add ``message`` to the outbox, due at once; inside the caller's write transaction."""
    return db.execute(
        "INSERT INTO mail_outbox (recipient, subject, message, next_attempt_at, created_at) "
        "VALUES (?, ?, ?, ?, ?) RETURNING id",
        (str(message["To"]), str(message["Subject"]), bytes(message), now, now),
    ).fetchone()[0]


def has_due(db: Any, now: float) -> bool:
    """Whether a message waits for an attempt (a read: the write turn is only taken when one does)."""
    return bool(
        scalar(
            db,
            "SELECT EXISTS (SELECT 1 FROM mail_outbox WHERE status = 'queued' AND next_attempt_at <= ? "
            "AND (claimed_until IS NULL OR claimed_until <= ?))",
            (now, now),
        )
    )


def claim_due(db: Any, now: float, limit: int = BATCH) -> list[tuple[int, bytes]]:
    """Take up to ``limit`` due messages for this process: ``(id, message bytes)``; counts the attempt."""
    rows = db.execute(
        "UPDATE mail_outbox SET claimed_until = ?, attempts = attempts + 1 WHERE id IN ("
        " SELECT id FROM mail_outbox WHERE status = 'queued' AND next_attempt_at <= ?"
        " AND (claimed_until IS NULL OR claimed_until <= ?) ORDER BY next_attempt_at, id LIMIT ?"
        ") RETURNING id, message",
        (now + CLAIM_SECONDS, now, now, limit),
    ).fetchall()
    return sorted((row[0], row[1]) for row in rows)


def release_claims(db: Any, mail_ids: list[int]) -> None:
    """Give back messages claimed but not tried (the process is stopping): due again at once elsewhere."""
    for mail_id in mail_ids:
        db.execute("UPDATE mail_outbox SET claimed_until = NULL, attempts = attempts - 1 WHERE id = ?", (mail_id,))


def record_sent(db: Any, mail_id: int) -> None:
    db.execute("DELETE FROM mail_outbox WHERE id = ?", (mail_id,))


def record_failure(db: Any, mail_id: int, error: str, now: float) -> None:
    """Keep the error; schedule the next attempt, or give up after ``MAX_ATTEMPTS``."""
    attempts = scalar(db, "SELECT attempts FROM mail_outbox WHERE id = ?", (mail_id,))
    if attempts is None:
        return
    db.execute(
        "UPDATE mail_outbox SET status = ?, last_error = ?, next_attempt_at = ?, claimed_until = NULL WHERE id = ?",
        (
            "failed" if attempts >= MAX_ATTEMPTS else "queued",
            error[:500],
            now + retry_delay(attempts),
            mail_id,
        ),
    )


def retry_now(db: Any, mail_id: int, now: float) -> bool:
    """Make a waiting or failed message due at once; False if there is no such message."""
    cursor = db.execute(
        "UPDATE mail_outbox SET status = 'queued', next_attempt_at = ? WHERE id = ?",
        (now, mail_id),
    )
    return cursor.rowcount > 0


def _moment(epoch: float | None) -> datetime | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC)


def list_undelivered(db: Any, now: float, limit: int = LISTED) -> list[OutboxEntry]:
    """Messages not delivered yet, failed ones first, then the oldest."""
    entries = []
    for row in db.query(
        "SELECT * FROM mail_outbox ORDER BY status = 'failed' DESC, created_at, id LIMIT ?",
        (limit,),
    ):
        if row["status"] == "failed":
            state = "failed"
        elif row["claimed_until"] is not None and row["claimed_until"] > now:
            state = "sending"
        else:
            state = "retrying" if row["attempts"] else "waiting"
        entries.append(
            OutboxEntry(
                id=row["id"],
                recipient=row["recipient"],
                subject=row["subject"],
                state=state,
                attempts=row["attempts"],
                last_error=row["last_error"],
                created_at=datetime.fromtimestamp(row["created_at"], UTC),
                next_attempt_at=_moment(row["next_attempt_at"]) if state in ("waiting", "retrying") else None,
            )
        )
    return entries


def _error_text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class MailOutbox:
    """This process's side of the outbox: queues messages, and runs the job that delivers them.

    The job has a thread and an event loop of its own: a request handler that waits on something
    else (or a test that waits for a mail) never holds delivery up, and SMTP traffic never competes
    with requests. Both sides reach the database through its thread-safe executors.
    """

    def __init__(self, db: Database, mailer: Mailer) -> None:
        self._db = db
        self._mailer = mailer
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._job: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._stopping = False
        #: Whose turn it is to deliver, among nodes sharing a PostgreSQL database.
        self._jobs = JobLocks(db.url if db.dialect_name == "postgresql" else None)
        self._thread = threading.Thread(target=asyncio.run, args=(self._run(),), name="mail-outbox", daemon=True)

    def wake(self) -> None:
        """Look for due messages now instead of at the next poll (callable from any thread)."""
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait()

    async def stop(self) -> None:
        """Let the job finish the attempt under way and end; interrupt it only if that takes too long.

        Interrupting a send leaves the connection half-open and the message claimed (another
        process, or the next start, retries it after ``CLAIM_SECONDS``), so it is the last resort.
        """
        if self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._finish)
        await asyncio.to_thread(self._thread.join, STOP_SECONDS)
        if self._thread.is_alive() and self._job is not None:
            self._loop.call_soon_threadsafe(self._job.cancel)
            await asyncio.to_thread(self._thread.join, STOP_SECONDS)

    def _finish(self) -> None:
        self._stopping = True
        if self._wake is not None:
            self._wake.set()

    async def _run(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        self._job = asyncio.current_task()
        self._ready.set()
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await self._deliver_forever()
        finally:
            await self._jobs.close()

    async def _deliver_forever(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            try:
                await self._jobs.run("mail_outbox", lambda: self.deliver_due(time.time()))
            except Exception:  # noqa: BLE001 - the job must outlive a busy or failing database
                log.exception("mail outbox: delivery pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)

    async def deliver_due(self, now: float) -> int:
        """Claim the messages due at ``now`` and try each once; returns how many were tried."""
        if not await self._db.read(has_due, now):
            return 0
        claimed = await self._db.write(claim_due, now)
        for index, (mail_id, raw) in enumerate(claimed):
            if self._stopping:
                await self._db.write(release_claims, [m for m, _ in claimed[index:]])
                return index
            message = email.message_from_bytes(raw, policy=email.policy.default)
            try:
                await self._mailer.deliver(message)
            except Exception as exc:  # noqa: BLE001 - whatever failed, the administrator sees it and it is retried
                if isinstance(exc, DELIVERY_ERRORS):
                    log.warning("mail %s to %s not delivered: %s", mail_id, message["To"], exc)
                else:
                    log.exception("mail %s to %s not delivered", mail_id, message["To"])
                await self._db.write(record_failure, mail_id, _error_text(exc), time.time())
            else:
                await self._db.write(record_sent, mail_id)
        return len(claimed)


MAIL_OUTBOX = web.AppKey("mail_outbox", MailOutbox)


async def write_with_mail(
    app: web.Application, change: Callable[..., T], *args: Any, mail: Callable[[T], Iterable[Mail]], **kwargs: Any
) -> T:
    """Run ``change(db, *args, **kwargs)`` in one write transaction that also queues the messages ``mail(result)``
    composes.

    Queued in the change's own transaction: a change that rolls back sends nothing, and a message
    that cannot be queued undoes its change (queued apart, either could go without the other).
    ``mail`` runs inside the transaction, so it only composes. The delivery job is woken after COMMIT.
    """
    mailer = app[MAILER]

    def change_and_queue(db: Any, *args: Any, **kwargs: Any) -> T:
        result = change(db, *args, **kwargs)
        now = time.time()
        for item in mail(result):
            queue_message(db, mailer.build(item.to, item.subject, item.body, reply_to=item.reply_to), now)
        return result

    result = await app[DB].write(change_and_queue, *args, **kwargs)
    if (outbox := app.get(MAIL_OUTBOX)) is not None:
        outbox.wake()
    return result


async def outbox_ctx(app: web.Application) -> AsyncIterator[None]:
    """Queue the app's mail in the outbox and run its delivery job while the app runs."""
    outbox = MailOutbox(app[DB], app[MAILER])
    app[MAIL_OUTBOX] = outbox
    outbox.start()
    yield
    await outbox.stop()


routes = web.RouteTableDef()


@routes.get("/admin/mail")
async def outbox_page(request: web.Request) -> web.Response:
    require(request, "admin")
    entries = await request.app[DB].read(list_undelivered, time.time())
    return render_page(request, "mail_outbox.html", {"entries": entries})


@routes.post(r"/admin/mail/{mail_id:\d+}/retry")
async def retry(request: web.Request) -> web.Response:
    require(request, "admin")
    if not await request.app[DB].write(retry_now, path_id(request, "mail_id"), time.time()):
        raise not_found()
    request.app[MAIL_OUTBOX].wake()
    raise web.HTTPFound("/admin/mail")


def setup(app: web.Application) -> None:
    """Register the outbox's delivery job (after the database's context) and the administrator's page."""
    app.cleanup_ctx.append(outbox_ctx)
    app.router.add_routes(routes)
    app[MENU].add(MenuEntry(N_("Mail outbox"), "/admin/mail", ("admin",)))
