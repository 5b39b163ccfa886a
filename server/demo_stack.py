"""The README's first command: the whole system on embedded defaults, in one terminal.

Starts the server with demo data in ``./data`` on http://127.0.0.1:8080, waits until it answers
``/healthz``, prints where to go and the demo users, and stops everything on Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from server.demo import DEMO_PASSWORD, USERS


def wait_healthy(url: str, timeout: float = 30.0, path: str = "/healthz") -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}{path}", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data", help="folder for all demo state (default ./data)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--ui-port", type=int, default=8081, help="kiosk screen port (default 8081)")
    args = parser.parse_args(argv)
    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{args.port}"
    # Stopped by a service manager, `timeout` or a closed terminal as by Ctrl-C: the server and
    # the agent stop with it instead of running on orphaned.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)
    procs: list[subprocess.Popen] = []
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "--demo", "--data-dir", str(data / "server"), "--port", str(args.port)]
    )
    procs.append(server)
    try:
        if not wait_healthy(url):
            print("portgate: the server did not start; see the messages above", file=sys.stderr)
            return 1
        agent_dir = data / "agent"
        prepare_demo_kiosk(data / "server" / "portgate.db", agent_dir, url, args.ui_port)
        agent = subprocess.Popen(
            [sys.executable, "-m", "gate_agent.cli", "run", "--config", str(agent_dir / "agent.toml")]
        )
        procs.append(agent)
        wait_healthy(f"http://127.0.0.1:{args.ui_port}", path="/")
        print("\n" + "=" * 72)
        print(f" Portgate portal:  {url}/login")
        print(f" Demo users (password for all: {DEMO_PASSWORD}):")
        for username, full_name, _email, profiles in USERS:
            print(f"   {username:<12} {full_name:<20} {', '.join(role for _tax, role in profiles)}")
        print(f" Mail the server sends is written to {data / 'server' / 'mail'}")
        print(f" Kiosk screen (gate agent 'Garita Demo'): http://127.0.0.1:{args.ui_port}/")
        print(f"   fed by a replay of printed demo tickets in {agent_dir / 'replay'} (accepted, then refused)")
        print(" Stop with Ctrl-C")
        print("=" * 72 + "\n", flush=True)
        _wait(procs)
    except KeyboardInterrupt:
        pass
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
    return 0


def prepare_demo_kiosk(server_db: Path, agent_dir: Path, server_url: str, ui_port: int) -> None:
    """Enrol the demo kiosk (once) and write images of demo ticket codes for it to replay."""
    from server.db import Database

    agent_dir.mkdir(parents=True, exist_ok=True)
    (agent_dir / "agent.toml").write_text(
        f'server_url = "{server_url}"\ndata_dir = "{agent_dir}"\nui_port = {ui_port}\nlanguage = "es"\n'
        f'dedupe_seconds = 2\n\n[[scanner]]\ntype = "replay"\nsource = "{agent_dir / "replay"}"\n'
        "interval_s = 4\nloop = true\n"
    )
    db = Database(server_db, readers=1)
    try:
        codes = db.write_sync(_demo_codes)
        enrolled = agent_dir / "enrolled"  # written once the agent's own enrolment succeeded
        if not enrolled.exists():
            _enrol_demo_kiosk(db, agent_dir / "agent.toml")
            enrolled.touch()
    finally:
        db.close()
    _write_replay(agent_dir / "replay", codes)


def _demo_codes(db: Any) -> list[tuple[str, bool]]:
    """(code, printed?) of the first demo tickets."""
    from server.tickets import service as svc

    keys = svc.load_keys(db)
    rows = db.query(
        "SELECT id, itinerary_id, key_id, printed_at FROM tickets WHERE deleted_at IS NULL ORDER BY id LIMIT 6"
    )
    return [(svc.code_for(keys, r), r["printed_at"] is not None) for r in rows]


def _enrol_demo_kiosk(db: Any, agent_config: Path) -> None:
    """Create the demo kiosk on the server and enrol the agent with its code, as a supervisor would."""
    from datetime import UTC, datetime

    from server.gate import kiosks

    values = {"name": "Garita Demo", "gate": "Garita 1", "allowed_itineraries": None}
    _kiosk_id, enrol_code = db.write_sync(kiosks.create_kiosk, values, None, datetime.now(UTC))
    command = [sys.executable, "-m", "gate_agent.cli", "enrol", "--config", str(agent_config), "--code", enrol_code]
    if subprocess.run(command).returncode:
        raise SystemExit("portgate: the demo kiosk could not enrol")


def _write_replay(replay: Path, codes: list[tuple[str, bool]]) -> None:
    """The QR codes, as printed, that the demo kiosk's replay scanner reads in turn like camera frames."""
    from server.tickets.pdf import qr_symbol

    replay.mkdir(exist_ok=True)
    printed = [code for code, was_printed in codes if was_printed]
    not_printed = [code for code, was_printed in codes if not was_printed]
    forged = printed[0][:-6] + ("AAAAAA" if not printed[0].endswith("AAAAAA") else "BBBBBB")
    plan = [
        ("1-printed", printed[0]),
        ("2-printed", printed[1]),
        ("3-not-printed", not_printed[0]),
        ("4-forged", forged),
        ("5-printed-again", printed[0]),
    ]
    for name, code in plan:
        path = replay / f"{name}.png"
        if not path.exists():
            qr_symbol(code).save(str(path), scale=6, border=4)


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def _wait(procs: list[subprocess.Popen]) -> None:
    """Return when any part of the stack exits (or on Ctrl-C)."""
    while all(p.poll() is None for p in procs):
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
