"""The README's first command: the whole system on embedded defaults, in one terminal.

Starts the server with demo data in ``./data`` on http://127.0.0.1:8080, waits until it answers
``/healthz``, prints where to go and the demo users, and stops everything on Ctrl-C.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from server.demo import DEMO_PASSWORD, USERS


def wait_healthy(url: str, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="data", help="folder for all demo state (default ./data)")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    data = Path(args.data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{args.port}"
    procs: list[subprocess.Popen] = []
    server = subprocess.Popen(
        [sys.executable, "-m", "server.cli", "--demo", "--data-dir", str(data / "server"), "--port", str(args.port)]
    )
    procs.append(server)
    try:
        if not wait_healthy(url):
            print("portgate: the server did not start; see the messages above", file=sys.stderr)
            return 1
        print("\n" + "=" * 72)
        print(f" Portgate portal:  {url}/login")
        print(f" Demo users (password for all: {DEMO_PASSWORD}):")
        for username, full_name, _email, profiles in USERS:
            print(f"   {username:<12} {full_name:<20} {', '.join(role for _tax, role in profiles)}")
        print(f" Mail the server sends is written to {data / 'server' / 'mail'}")
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


def _wait(procs: list[subprocess.Popen]) -> None:
    """Return when any part of the stack exits (or on Ctrl-C)."""
    while all(p.poll() is None for p in procs):
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
