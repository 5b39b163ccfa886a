"""A throwaway PostgreSQL cluster for tests: Debian's binaries, a temp dir, a free loopback port.

``initdb`` and ``postgres`` refuse to run as root, so when the tests run as root (CI containers,
this box) the cluster runs as Debian's ``postgres`` system user through ``runuser``; otherwise as
whoever runs the tests. Everything lives in one temp dir that user owns (data, the Unix socket,
the log), so nothing touches the machine's own clusters. Durability is switched off
(``fsync=off``): the cluster is thrown away at the end, and it makes each test's
``CREATE DATABASE … TEMPLATE`` a matter of milliseconds.

Outside pytest (the multi-node and failover tests, benchmarks)::

    cluster = PgCluster.start(Path(tempfile.mkdtemp()))
    url = cluster.create_database("bench")
    ...
    cluster.stop()
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.mailbox import free_port

SUPERUSER = "portgate"
#: Settings for a cluster nobody keeps: nothing forced to disk (a test's "crash" kills the server,
#: not the machine, so what it wrote is still in the kernel's cache); a COMMIT is in the log when it
#: returns (``synchronous_commit`` stays on: the crash tests count on that).
TEST_SETTINGS = {
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "shared_buffers": "64MB",
    "listen_addresses": "127.0.0.1",
}


def bin_dir() -> Path:
    """The newest PostgreSQL installed the Debian way (``/usr/lib/postgresql/<major>/bin``)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parent.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (Debian package 'postgresql'); ./portgate.sh test installs it")
    return Path(found[-1]).parent


def available() -> bool:
    try:
        bin_dir()
    except RuntimeError:
        return False
    return True


def _run_as() -> list[str]:
    """The prefix that runs a command as a user PostgreSQL accepts (not root)."""
    if os.getuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


def _give_to_runner(path: Path) -> None:
    if os.getuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(path, pw.pw_uid, pw.pw_gid)


@dataclass
class PgCluster:
    """One running cluster; :meth:`url` gives a psycopg/Portgate URL for one of its databases."""

    base: Path
    port: int
    proc: subprocess.Popen

    @property
    def data(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "run"

    @property
    def log(self) -> Path:
        return self.base / "postgres.log"

    @classmethod
    def start(
        cls, base: Path | None = None, port: int | None = None, settings: dict[str, str] | None = None
    ) -> PgCluster:
        """Create a cluster in ``base`` (a new temp dir by default) and start it."""
        base = Path(base or tempfile.mkdtemp(prefix="portgate-pg-"))
        base.mkdir(parents=True, exist_ok=True)
        base.chmod(0o755)
        _give_to_runner(base)
        for sub in ("run",):
            (base / sub).mkdir(exist_ok=True)
            _give_to_runner(base / sub)
        binaries = bin_dir()
        subprocess.run(
            [*_run_as(), str(binaries / "initdb"), "-D", str(base / "data"), "-U", SUPERUSER, "-A", "trust"]
            + ["-E", "UTF8", "--locale=C.UTF-8", "--no-sync"],
            check=True,
            capture_output=True,
        )
        cluster = cls(base, port or free_port(), None)  # type: ignore[arg-type]
        cluster.proc = cluster._launch(binaries, {**TEST_SETTINGS, **(settings or {})})
        cluster.wait_ready()
        return cluster

    def _launch(self, binaries: Path, settings: dict[str, str]) -> subprocess.Popen:
        options = [f"-c{name}={value}" for name, value in settings.items()]
        log = os.open(self.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            return subprocess.Popen(
                [*_run_as(), str(binaries / "postgres"), "-D", str(self.data), "-p", str(self.port)]
                + [f"-cunix_socket_directories={self.socket_dir}", *options],
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        finally:
            os.close(log)

    def start_standby(self) -> PgCluster:
        """A streaming standby of this cluster: ``pg_basebackup -R`` into a new temp dir, started on a
        free port (read-only until :meth:`promote`). Make commits wait for it with :meth:`wait_for_standby`."""
        base = Path(tempfile.mkdtemp(prefix="portgate-pg-standby-"))
        base.chmod(0o755)
        _give_to_runner(base)
        (base / "run").mkdir()
        _give_to_runner(base / "run")
        binaries = bin_dir()
        subprocess.run(
            [
                *_run_as(),
                str(binaries / "pg_basebackup"),
                "-D",
                str(base / "data"),
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
            ]
            + ["-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "--no-sync"],
            check=True,
            capture_output=True,
        )
        standby = type(self)(base, free_port(), None)  # type: ignore[arg-type]
        standby.proc = standby._launch(binaries, TEST_SETTINGS)
        standby.wait_ready()
        return standby

    def wait_for_standby(self, timeout: float = 30.0) -> None:
        """Once a standby streams: every later COMMIT returns only when the standby has it on disk
        (synchronous replication), so a failover loses no acknowledged commit."""
        deadline = time.monotonic() + timeout
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            while not conn.execute("SELECT 1 FROM pg_stat_replication WHERE state = 'streaming'").fetchone():
                if time.monotonic() > deadline:
                    raise RuntimeError("no standby streams from this cluster")
                time.sleep(0.1)
            conn.execute("ALTER SYSTEM SET synchronous_standby_names = '*'")
            conn.execute("SELECT pg_reload_conf()")

    def promote(self) -> None:
        """Make this standby the primary (``pg_promote``): it accepts writes once this returns."""
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute("SELECT pg_promote(wait => true)")

    def restart(self) -> None:
        """Start the server again on the same data and port (after :meth:`kill` or :meth:`stop`)."""
        self.proc = self._launch(bin_dir(), TEST_SETTINGS)
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start; see {self.log}:\n{self._log_tail()}") from None
                time.sleep(0.1)

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def url(self, dbname: str) -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` (empty, or a copy of ``template``) and return its URL."""
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql)
        return self.url(name)

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def kill(self) -> None:
        """Stop the server at once, as a crash would (SIGKILL to the postmaster's session)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._wait_group_gone()

    def _wait_group_gone(self, timeout: float = 10.0) -> None:
        """Until every process of the server is gone: a backend still exiting holds the shared
        memory, and a new postmaster would refuse the data directory."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(self.proc.pid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.05)

    def stop(self, remove: bool = True) -> None:
        """Fast shutdown (every client disconnected), then remove the temp dir."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()
        if remove:
            shutil.rmtree(self.base, ignore_errors=True)
