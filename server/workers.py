"""Several server processes on one port: ``portgate-server --workers N`` (``workers`` setting).

One Python process uses at most one core, so on a multi-core box the server runs as N worker
processes. The parent does what must happen once — the secret key, migrations, the first
signing key, demo data — by starting the app once without serving, then forks the workers.
Each runs the whole app on its own event loop. The parent binds the port once and the workers
accept from that one socket, each leaving a new connection to a worker that holds fewer
(:class:`BalancedSite`). They share state only through the SQLite file (writes take turns,
caches follow the database: see ``server.db``, ``server.gate.kiosks`` and ``server.gate.live``).

The parent starts the workers, restarts one that dies or stops sending heartbeats, forwards
SIGTERM and SIGINT to them, and is the one process that speaks to systemd: ``READY=1`` once
every worker listens, ``WATCHDOG=1`` while its own loop runs, ``STOPPING=1`` at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import mmap
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from yarl import URL

from gate_core.systemd import forget_notify_socket, notify, watchdog_interval
from server.app import create_app
from server.config import Config

log = logging.getLogger("portgate.workers")

STARTUP_SECONDS = 120.0
HEARTBEAT_SECONDS = 1.0
#: A worker that sends no heartbeat for this long has a stuck event loop: it is killed and replaced.
HUNG_SECONDS = 30.0
#: Time a worker gets to finish its requests at shutdown (aiohttp's own limit is 10 s) before SIGKILL.
STOP_SECONDS = 15.0
#: A worker that dies is replaced after this long, doubling while replacements keep dying young.
RESTART_DELAY = (1.0, 30.0)
YOUNG_SECONDS = 10.0

_READY = b"R"
_BEAT = b"."


# --- what runs once, in the parent -----------------------------------------------------------


def bind(host: str, port: int) -> list[socket.socket]:
    """Bind every address ``host`` stands for (as aiohttp's own site would); not listening yet.

    The parent does it once, before forking: every worker (and a replacement for one that died)
    accepts from these sockets, so a connection waiting to be accepted is never lost with a
    worker. A port already in use fails here, before any other work, with the server's "cannot
    start" message. Until :func:`listen`, a client is refused rather than kept waiting.
    """
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        ):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def listen(sockets: list[socket.socket], backlog: int = 128) -> None:
    for sock in sockets:
        sock.listen(backlog)


class ConnectionCounts:
    """Each worker's open connections, in memory the parent maps before forking (all see it).

    A worker writes only its own slot: its count and when it wrote it (``time.monotonic``, the
    same clock in every process). A slot whose worker is not running holds ``ABSENT``; one not
    written for ``FRESH`` seconds belongs to a worker whose loop is stuck or stopped, and counts
    as absent too. A count is a quarter of a second late at worst (see :class:`BalancedSite`),
    which only makes the spread a connection or two less even for that long. Each value is one
    aligned 8-byte store, so a reader never sees one half-written.
    """

    ABSENT = 0xFFFF_FFFF_FFFF_FFFF
    FRESH = 1.0

    def __init__(self, workers: int) -> None:
        self._map = mmap.mmap(-1, 16 * workers)  # anonymous and shared: fork() keeps it shared
        self._slots = memoryview(self._map).cast("Q")  # [count, written at (ms)] per worker
        self.workers = workers
        for index in range(workers):
            self.set(index, self.ABSENT)

    def set(self, index: int, count: int) -> None:
        self._slots[2 * index + 1] = int(time.monotonic() * 1000)
        self._slots[2 * index] = count

    def fewest_elsewhere(self, index: int) -> int:
        """The smallest count among the other running workers (``ABSENT`` when there is none)."""
        oldest = int((time.monotonic() - self.FRESH) * 1000)
        slots = self._slots
        return min(
            (slots[2 * other] for other in range(self.workers) if other != index and slots[2 * other + 1] >= oldest),
            default=self.ABSENT,
        )


class BalancedSite(web.BaseSite):
    """The worker's side of the shared listening sockets: "least connections" among workers.

    With ``SO_REUSEPORT`` the kernel hashes each connection to a worker, so 50 kiosks' keep-alive
    connections split 30/20 as often as 25/25; both workers get the same CPU, so under load the
    kiosks on the fuller one wait half as long again for every answer. Here a worker that holds
    more connections than another leaves a new one waiting in the shared queue for the other to
    accept, checking again every ``DEFER_STEP`` seconds, and takes it (and all that queued
    behind it) itself after ``DEFER_LIMIT``: the other may be slow; one whose loop is stuck stops
    writing its count and is not waited for at all. Connections are never moved once accepted.

    At shutdown the worker closes its copy of the sockets (the parent closes its own), so once
    all have, a client is refused at once rather than left waiting for an answer.
    """

    DEFER_STEP = 0.002
    DEFER_LIMIT = 0.2
    #: How often a worker writes its count even when it accepts nothing (connections close).
    REFRESH = 0.25

    def __init__(self, runner: web.BaseRunner, sockets: list[socket.socket], counts: ConnectionCounts, index: int):
        super().__init__(runner)
        self._sockets = sockets
        self._counts = counts
        self._index = index
        self._attaching = 0  # accepted, not yet handed to aiohttp
        self._deferred_since: dict[int, float] = {}  # fd → when this worker first left a connection there
        self._timers: set[asyncio.TimerHandle] = set()
        self._attaching_tasks: set[asyncio.Task] = set()
        self._running = False
        self._paused = False  # cannot accept (out of file descriptors): others must not wait for it
        self._loop = asyncio.get_running_loop()
        host, port = sockets[0].getsockname()[:2]
        self._name = str(URL.build(scheme="http", host=host, port=port))  # brackets an IPv6 address

    @property
    def name(self) -> str:
        return self._name

    async def start(self) -> None:
        await super().start()
        self._running = True
        for sock in self._sockets:
            self._loop.add_reader(sock.fileno(), self._acceptable, sock)
        self._refresh()

    async def stop(self) -> None:
        if not self._running:  # never started: nothing to undo
            await super().stop()
            return
        self._running = False
        for sock in self._sockets:
            self._loop.remove_reader(sock.fileno())
            sock.close()
        for timer in self._timers:
            timer.cancel()
        self._counts.set(self._index, ConnectionCounts.ABSENT)  # a stopping worker takes no more
        if self._attaching_tasks:
            await asyncio.wait(self._attaching_tasks)  # handed to aiohttp: its shutdown closes them
        await super().stop()

    def _open(self) -> int:
        server = self._runner.server
        assert server is not None
        return len(server.connections) + self._attaching

    def _later(self, delay: float, callback: Callable[..., None], *args: object) -> None:
        def run() -> None:
            self._timers.discard(timer)
            if self._running:
                callback(*args)

        timer = self._loop.call_later(delay, run)
        self._timers.add(timer)

    def _refresh(self) -> None:
        if not self._paused:
            self._counts.set(self._index, self._open())
        self._later(self.REFRESH, self._refresh)

    def _acceptable(self, sock: socket.socket) -> None:
        """A connection waits on ``sock``: accept it unless another worker holds fewer."""
        fd = sock.fileno()
        for _ in range(self._backlog):
            mine = self._open()
            self._counts.set(self._index, mine)
            if mine > self._counts.fewest_elsewhere(self._index):
                since = self._deferred_since.setdefault(fd, self._loop.time())
                if self._loop.time() - since < self.DEFER_LIMIT:
                    self._loop.remove_reader(fd)
                    self._later(self.DEFER_STEP, self._look_again, sock)
                    return
            try:
                conn, _address = sock.accept()
            except (BlockingIOError, InterruptedError):
                self._deferred_since.pop(fd, None)  # taken by another worker, or nothing left
                return
            except OSError as exc:
                if exc.errno == errno.ECONNABORTED:
                    continue
                # Out of file descriptors or memory: leave the queue alone for a second (as asyncio does).
                log.error("cannot accept connections: %s", exc)
                self._paused = True
                self._counts.set(self._index, ConnectionCounts.ABSENT)
                self._loop.remove_reader(fd)
                self._later(1.0, self._look_again, sock)
                return
            self._attaching += 1
            self._counts.set(self._index, mine + 1)
            task = self._loop.create_task(self._attach(conn))
            self._attaching_tasks.add(task)
            task.add_done_callback(self._attaching_tasks.discard)

    def _look_again(self, sock: socket.socket) -> None:
        self._paused = False
        # Nothing waits any more (another worker took it): a later connection starts a new wait.
        if not select.select([sock], [], [], 0)[0]:
            self._deferred_since.pop(sock.fileno(), None)
        self._loop.add_reader(sock.fileno(), self._acceptable, sock)

    async def _attach(self, conn: socket.socket) -> None:
        try:
            conn.setblocking(False)
            server = self._runner.server
            assert server is not None  # attached only between start() and stop()
            await self._loop.connect_accepted_socket(server, conn)
        except OSError as exc:  # the client went away at once
            log.debug("an accepted connection failed: %s", exc)
            conn.close()
        except Exception:
            log.exception("an accepted connection could not be served")
            conn.close()
        except BaseException:
            conn.close()
            raise
        finally:
            self._attaching -= 1


async def prepare(config: Config) -> None:
    """Start the app once without serving (secret, migrations, signing key), add demo data, stop."""
    app = create_app(config)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        if config.demo:
            from server.demo import install_demo

            await install_demo(app)
    finally:
        await runner.cleanup()


# --- the worker's side -----------------------------------------------------------------------


class WorkerLink:
    """A worker's line to its parent: "listening" once, then a heartbeat while its loop runs.

    It also hands the worker the parent's listening sockets (:meth:`site`).
    """

    def __init__(self, index: int, fd: int, sockets: list[socket.socket], counts: ConnectionCounts) -> None:
        self.index = index
        self._fd = fd
        self._sockets = sockets
        self._counts = counts
        self._task: asyncio.Task | None = None

    def site(self, runner: web.BaseRunner) -> BalancedSite:
        """The site that serves the parent's port from this worker."""
        return BalancedSite(runner, self._sockets, self._counts, self.index)

    def listening(self) -> None:
        """Tell the parent this worker accepts connections; start the heartbeat."""
        self._send(_READY)
        self._task = asyncio.get_running_loop().create_task(self._beat())

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_SECONDS)
            self._send(_BEAT)

    def _send(self, message: bytes) -> None:
        try:
            os.write(self._fd, message)
        except BlockingIOError:
            pass  # the parent is slow to read; the next beat will do
        except BrokenPipeError:
            # The parent is gone: nobody supervises this worker any more, so it stops cleanly.
            log.error("the parent process is gone; stopping")
            os.kill(os.getpid(), signal.SIGTERM)


class _WorkerLogFilter(logging.Filter):
    def __init__(self, index: int) -> None:
        super().__init__()
        self.index = index

    def filter(self, record: logging.LogRecord) -> bool:
        record.worker = self.index
        return True


# --- the parent's side -----------------------------------------------------------------------


@dataclass
class _Worker:
    index: int
    pid: int
    fd: int  # the parent's (reading) end of the worker's pipe
    started: float
    last_beat: float
    ready: bool = False
    alive: bool = True


class Supervisor:
    """Starts N workers, keeps N running, and stops them all on SIGTERM/SIGINT."""

    def __init__(self, config: Config, serve_worker: Callable[[WorkerLink], int], sockets: list[socket.socket]) -> None:
        self.config = config
        self._serve_worker = serve_worker
        self._sockets = sockets
        self._counts = ConnectionCounts(config.workers)
        self._workers: dict[int, _Worker] = {}  # by index
        self._restart_at: dict[int, float] = {}  # index → when to start its replacement
        self._delay: dict[int, float] = {}
        self._stop_signal: int | None = None
        self._running = False  # all workers started once: from now on a dead one is replaced
        self._stopping = False
        self._wake_r, self._wake_w = os.pipe()
        self._watchdog = watchdog_interval()
        self._next_ping = 0.0

    # -- public --
    def run(self) -> int:
        """Run until SIGTERM/SIGINT; 0 after a clean stop, 1 when the workers could not start."""
        self._install_signals()
        try:
            for index in range(self.config.workers):
                self._spawn(index)
            if not self._wait_until_ready():
                return 0 if self._stop_signal is not None else 1
            self._running = True
            notify("READY=1")
            notify(f"STATUS={self.config.workers} workers listening")
            log.info("%d workers listening on %s", self.config.workers, self.config.public_url)
            self._supervise()
            return 0
        finally:
            notify("STOPPING=1")
            self._stop_all()
            signal.set_wakeup_fd(-1)
            os.close(self._wake_r)
            os.close(self._wake_w)

    # -- signals --
    def _install_signals(self) -> None:
        os.set_blocking(self._wake_w, False)
        os.set_blocking(self._wake_r, False)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        signal.signal(signal.SIGCHLD, lambda *_: None)  # only to wake select() through the wakeup fd

    def _on_stop(self, signum: int, _frame: object) -> None:
        if self._stop_signal is None:
            self._stop_signal = signum

    # -- starting a worker --
    def _spawn(self, index: int) -> None:
        read_fd, write_fd = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read_fd)
            self._become_worker(index, write_fd)
        os.close(write_fd)
        os.set_blocking(read_fd, False)
        now = time.monotonic()
        self._workers[index] = _Worker(index, pid, read_fd, now, now)
        log.info("worker %d started (pid %d)", index, pid)

    def _become_worker(self, index: int, fd: int) -> None:
        """The child's whole life after fork(): run the app, then leave without returning."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD):
                signal.signal(signum, signal.SIG_DFL)
            for other in self._workers.values():
                with contextlib.suppress(OSError):
                    os.close(other.fd)
            os.close(self._wake_r)
            os.close(self._wake_w)
            forget_notify_socket()
            for handler in logging.getLogger().handlers:
                handler.addFilter(_WorkerLogFilter(index))
            os.set_blocking(fd, False)
            code = self._serve_worker(WorkerLink(index, fd, self._sockets, self._counts))
        except BaseException:  # noqa: BLE001 - a worker must never return into the parent's code
            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    # -- the loop --
    def _wait_until_ready(self) -> bool:
        deadline = time.monotonic() + STARTUP_SECONDS
        while self._stop_signal is None:
            self._poll(min(0.5, max(0.0, deadline - time.monotonic())))
            failed = [w for w in self._workers.values() if not w.alive]
            if failed:
                log.error("worker %d exited before it was listening; stopping", failed[0].index)
                return False
            if all(w.ready for w in self._workers.values()):
                return True
            if time.monotonic() > deadline:
                log.error("the workers did not start listening within %d s", STARTUP_SECONDS)
                return False
            self._ping_watchdog()
        return False

    def _supervise(self) -> None:
        while self._stop_signal is None:
            self._poll(0.5)
            now = time.monotonic()
            for worker in list(self._workers.values()):
                hung = worker.ready and now - worker.last_beat > HUNG_SECONDS
                stuck = not worker.ready and now - worker.started > STARTUP_SECONDS
                if worker.alive and (hung or stuck):
                    log.error("worker %d (pid %d) stopped answering; killing it", worker.index, worker.pid)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(worker.pid, signal.SIGKILL)
                    worker.last_beat = worker.started = now  # reaped (and replaced) on a following turn
            for index, when in list(self._restart_at.items()):
                if now >= when and self._stop_signal is None:
                    del self._restart_at[index]
                    self._spawn(index)
            self._ping_watchdog()

    def _poll(self, timeout: float) -> None:
        """Wait for a signal or worker message; read messages; reap workers that exited."""
        fds = [w.fd for w in self._workers.values() if w.fd >= 0]
        try:
            readable, _, _ = select.select([self._wake_r, *fds], [], [], timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for clarity
            readable = []
        if self._wake_r in readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(self._wake_r, 512):
                    pass
        now = time.monotonic()
        for worker in list(self._workers.values()):
            if worker.fd in readable:
                self._read_messages(worker, now)
        self._reap()

    def _read_messages(self, worker: _Worker, now: float) -> None:
        try:
            data = os.read(worker.fd, 4096)
        except BlockingIOError:
            return
        if not data:  # the worker closed its end: it is exiting
            os.close(worker.fd)
            worker.fd = -1
            return
        worker.last_beat = now
        if _READY in data and not worker.ready:
            worker.ready = True
            log.info("worker %d (pid %d) listening", worker.index, worker.pid)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = next((w for w in self._workers.values() if w.pid == pid and w.alive), None)
            if worker is None:
                continue
            worker.alive = False
            self._counts.set(worker.index, ConnectionCounts.ABSENT)  # the others stop leaving it connections
            if worker.fd >= 0:
                os.close(worker.fd)
                worker.fd = -1
            if self._running and not self._stopping and self._stop_signal is None:
                self._schedule_restart(worker, os.waitstatus_to_exitcode(status))

    def _schedule_restart(self, worker: _Worker, code: int) -> None:
        now = time.monotonic()
        young = now - worker.started < YOUNG_SECONDS
        delay = (
            min(RESTART_DELAY[1], self._delay.get(worker.index, RESTART_DELAY[0]) * 2) if young else RESTART_DELAY[0]
        )
        self._delay[worker.index] = delay
        self._restart_at[worker.index] = now + delay
        log.error(
            "worker %d (pid %d) exited with %s; starting another in %.0f s", worker.index, worker.pid, code, delay
        )

    def _ping_watchdog(self) -> None:
        if self._watchdog is None:
            return
        now = time.monotonic()
        if now >= self._next_ping:
            notify("WATCHDOG=1")
            self._next_ping = now + self._watchdog

    # -- stopping --
    def _stop_all(self) -> None:
        """SIGTERM every worker, wait for them to finish their requests, SIGKILL the stragglers."""
        self._stopping = True
        log.info("stopping the workers")
        for worker in self._workers.values():
            if worker.alive:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)
        for sock in self._sockets:
            sock.close()  # the workers close theirs as they stop: then new clients are refused at once
        deadline = time.monotonic() + STOP_SECONDS
        while any(w.alive for w in self._workers.values()) and time.monotonic() < deadline:
            self._poll(0.2)
        for worker in self._workers.values():
            if worker.alive:
                log.error("worker %d (pid %d) did not stop in time; killing it", worker.index, worker.pid)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(worker.pid, 0)
                worker.alive = False
        for worker in self._workers.values():
            if worker.fd >= 0:
                os.close(worker.fd)
                worker.fd = -1


def run_workers(config: Config, serve_worker: Callable[[WorkerLink], int]) -> int:
    """Prepare once, then run ``config.workers`` worker processes until SIGTERM/SIGINT."""
    sockets = bind(config.host, config.port)
    try:
        asyncio.run(prepare(config))
        listen(sockets)  # after migrations and demo data: clients are refused until then, not kept waiting
        extra = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
        if extra:  # fork() copies only this thread; a lock held by another one would stay held
            log.warning("threads still running before fork: %s", ", ".join(extra))
        gc.freeze()  # the app's modules stay shared between the workers' memory pages
        return Supervisor(config, serve_worker, sockets).run()
    finally:
        for sock in sockets:
            sock.close()
