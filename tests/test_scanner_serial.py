"""Line-oriented sources: serial scanners (through real pseudo-terminals) and typed entry."""

from __future__ import annotations

import os
import threading
import time

import pytest

from gate_agent.scanner import CodeSource, ScannedCode
from gate_agent.scanner.manual import InvalidManualCode, ManualSource
from gate_agent.scanner.serial_reader import SerialSource
from tests.scanner_fixtures import wait_until


class Collector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.scans: list[ScannedCode] = []
        self.threads: set[str] = set()

    def __call__(self, scanned: ScannedCode) -> None:
        with self._lock:
            self.scans.append(scanned)
            self.threads.add(threading.current_thread().name)

    @property
    def codes(self) -> list[str]:
        with self._lock:
            return [scan.code for scan in self.scans]


class PtyScanner:
    """A scanner on a pseudo-terminal, reachable through a symlink like /dev/serial/by-id/…."""

    def __init__(self, link: str) -> None:
        self.link = link
        self.master: int | None = None
        self.slave: int | None = None

    def plug_in(self) -> None:
        self.master, self.slave = os.openpty()
        os.symlink(os.ttyname(self.slave), self.link)

    def unplug(self) -> None:
        os.unlink(self.link)
        os.close(self.master)
        os.close(self.slave)
        self.master = self.slave = None

    def type(self, data: bytes) -> None:
        os.write(self.master, data)


@pytest.fixture
def scanner(tmp_path):
    pty_scanner = PtyScanner(str(tmp_path / "ttyScanner"))
    pty_scanner.plug_in()
    yield pty_scanner
    if pty_scanner.master is not None:
        pty_scanner.unplug()


@pytest.fixture
def serial_source():
    sources = []

    def make(*args, **kwargs) -> SerialSource:
        source = SerialSource(*args, **kwargs)
        sources.append(source)
        return source

    yield make
    for source in sources:
        source.stop()


@pytest.mark.timeout(20)
@pytest.mark.parametrize("suffix, terminator", [("CR", b"\r"), ("LF", b"\n"), ("CRLF", b"\r\n")])
def test_each_suffix_ends_a_code(scanner, serial_source, suffix, terminator):
    collected = Collector()
    source = serial_source(scanner.link, suffix=suffix)
    source.start(collected)
    assert source.wait_connected(5)

    # Bytes arrive in arbitrary chunks; a code may be split across reads.
    scanner.type(b"PG1FIRST" + terminator + b"PG1SEC")
    time.sleep(0.05)
    scanner.type(b"OND" + terminator + terminator + b"  PG1THIRD \t" + terminator)

    assert wait_until(lambda: len(collected.codes) == 3)
    assert collected.codes == ["PG1FIRST", "PG1SECOND", "PG1THIRD"]
    assert {scan.source for scan in collected.scans} == {"serial"}
    assert source.codes_read == 3


@pytest.mark.timeout(20)
def test_framing_control_characters_are_not_part_of_the_code(scanner, serial_source):
    collected = Collector()
    source = serial_source(scanner.link, suffix="CRLF", baudrate=115200)
    source.start(collected)
    assert source.wait_connected(5)

    scanner.type(b"\x02PG1FRAMED\x03\r\n")

    assert wait_until(lambda: collected.codes == ["PG1FRAMED"])


@pytest.mark.timeout(30)
def test_unplugged_scanner_is_reopened_when_it_comes_back(scanner, serial_source):
    collected = Collector()
    source = serial_source(scanner.link, reconnect_delay_s=0.05)
    source.start(collected)
    assert source.wait_connected(5)
    scanner.type(b"PG1BEFORE\r")
    assert wait_until(lambda: collected.codes == ["PG1BEFORE"])

    scanner.unplug()
    assert wait_until(lambda: not source.connected)
    assert wait_until(lambda: source.reconnects >= 3), "should keep trying while unplugged"
    assert "No such file" in (source.last_error or "")

    scanner.plug_in()  # a new device node, same by-id path, same running source
    assert source.wait_connected(5)
    scanner.type(b"PG1AFTER\r")

    assert wait_until(lambda: collected.codes == ["PG1BEFORE", "PG1AFTER"])


@pytest.mark.timeout(20)
def test_scanner_missing_at_start_is_picked_up_when_plugged_in(tmp_path, serial_source):
    late = PtyScanner(str(tmp_path / "ttyLate"))
    collected = Collector()
    source = serial_source(late.link, reconnect_delay_s=0.05)
    source.start(collected)
    try:
        assert wait_until(lambda: source.reconnects >= 1)
        late.plug_in()
        assert source.wait_connected(5)
        late.type(b"PG1LATE\r")
        assert wait_until(lambda: collected.codes == ["PG1LATE"])
    finally:
        source.stop()
        late.unplug()


@pytest.mark.timeout(20)
def test_loop_url_echoes_what_is_sent(serial_source):
    collected = Collector()
    source = serial_source("loop://", suffix="LF")
    source.start(collected)
    assert source.wait_connected(5)

    source.send(b"PG1LOOPED\n")

    assert wait_until(lambda: collected.codes == ["PG1LOOPED"])


@pytest.mark.timeout(20)
def test_stop_returns_promptly_and_on_code_runs_on_the_source_thread(scanner, serial_source):
    collected = Collector()
    source = serial_source(scanner.link, name="hand-scanner")
    source.start(collected)
    assert source.wait_connected(5)
    scanner.type(b"PG1THREAD\r")
    assert wait_until(lambda: collected.codes == ["PG1THREAD"])

    stop_started = time.monotonic()
    source.stop()

    assert time.monotonic() - stop_started < 2
    assert not source.connected
    assert collected.threads == {"scanner-hand-scanner"}
    assert collected.scans[0].source == "hand-scanner"


def test_send_without_a_connection_says_so():
    with pytest.raises(ConnectionError, match="not connected"):
        SerialSource("loop://").send(b"beep")


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"suffix": "TAB"}, "suffix must be one of CR, LF, CRLF"),
        ({"suffix": "cr"}, "suffix"),
        ({"baudrate": 12345}, "baudrate"),
        ({"baudrate": True}, "baudrate"),
        ({"reconnect_delay_s": 0}, "reconnect_delay_s"),
    ],
)
def test_bad_settings_are_rejected_with_a_reason(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SerialSource("/dev/ttyACM0", **kwargs)


def test_unknown_url_scheme_is_rejected_at_once():
    with pytest.raises(ValueError):
        SerialSource("carrier-pigeon://loft/1")


def test_serial_and_manual_sources_are_code_sources():
    assert isinstance(SerialSource("loop://"), CodeSource)
    assert isinstance(ManualSource(), CodeSource)


# -- keyboard wedge / manual entry on the kiosk screen -------------------------------------


@pytest.mark.timeout(10)
def test_typed_code_is_cleaned_and_delivered_from_the_source_thread():
    collected = Collector()
    source = ManualSource()
    source.start(collected)
    try:
        returned = source.submit("  PG1TYPED  \n")
        assert wait_until(lambda: collected.codes == ["PG1TYPED"])
    finally:
        source.stop()
    assert returned == collected.scans[0]
    assert returned.source == "manual"
    assert collected.threads == {"scanner-manual"}
    assert threading.current_thread().name not in collected.threads


@pytest.mark.timeout(10)
@pytest.mark.parametrize(
    "typed, reason",
    [("", "empty"), ("   \t", "empty"), ("X" * 513, "too_long"), ("PG1\x1bOOPS", "not_printable")],
)
def test_bad_typed_codes_are_refused_with_a_reason(typed, reason):
    collected = Collector()
    source = ManualSource()
    source.start(collected)
    try:
        with pytest.raises(InvalidManualCode) as refused:
            source.submit(typed)
        source.submit("X" * 512)  # the longest accepted
        assert wait_until(lambda: collected.codes == ["X" * 512])
    finally:
        source.stop()
    assert refused.value.reason == reason


def test_submit_before_start_is_a_programming_error():
    with pytest.raises(RuntimeError, match="before start"):
        ManualSource().submit("PG1EARLY")
