"""Hand-held or fixed scanners on a serial line (RS-232, USB CDC-ACM, or any pyserial URL)."""

from __future__ import annotations

import logging
import string
import threading
import time

import serial

from gate_agent.scanner import OnCode, ScannedCode
from gate_agent.scanner._threads import deliver, join_thread

log = logging.getLogger(__name__)

SUFFIXES = {"CR": b"\r", "LF": b"\n", "CRLF": b"\r\n"}
BAUDRATES = tuple(rate for rate in serial.Serial.BAUDRATES if rate > 0)

# A scanner configured with another suffix than ours never ends a line; drop the bytes
# rather than grow without bound (the longest real code is far shorter).
MAX_LINE_BYTES = 4096
# Short, so that stop() is noticed promptly while the line is idle.
_READ_TIMEOUT_S = 0.2
# Scanners may frame codes with STX/ETX or pad them; none of that is part of a code.
_CONTROL_CHARACTERS = "".join(map(chr, range(32))) + "\x7f" + string.whitespace


class SerialSource:
    """Reads one code per line from a serial scanner and survives unplugging.

    `url` is anything `serial.serial_for_url` opens: a device path (`/dev/ttyACM0`,
    `/dev/serial/by-id/...`), `loop://`, `socket://host:port`, `rfc2217://...`. When the
    device disappears the port is closed and reopened every `reconnect_delay_s` until it
    is back; the agent does not need restarting.
    """

    def __init__(
        self,
        url: str,
        baudrate: int = 9600,
        suffix: str = "CR",
        reconnect_delay_s: float = 1.0,
        name: str = "serial",
    ) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError("url must be a device path or a pyserial URL such as loop://")
        if suffix not in SUFFIXES:
            raise ValueError(f"suffix must be one of {', '.join(SUFFIXES)}, not {suffix!r}")
        if isinstance(baudrate, bool) or baudrate not in BAUDRATES:
            raise ValueError(f"baudrate must be a standard rate such as 9600 or 115200, not {baudrate!r}")
        if not reconnect_delay_s > 0:
            raise ValueError(f"reconnect_delay_s must be positive, not {reconnect_delay_s!r}")
        # Rejects unknown URL schemes now, as a settings error, not later in the thread.
        serial.serial_for_url(url, do_not_open=True)
        self.url = url
        self.baudrate = baudrate
        self.suffix = suffix
        self.reconnect_delay_s = reconnect_delay_s
        self.name = name
        # Diagnostics, readable from any thread.
        self.codes_read = 0
        self.reconnects = 0
        self.last_error: str | None = None

        self._terminator = SUFFIXES[suffix]
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._port: serial.SerialBase | None = None
        self._port_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    def wait_connected(self, timeout: float) -> bool:
        """Block until the port is open (True) or `timeout` seconds pass (False)."""
        return self._connected.wait(timeout)

    def start(self, on_code: OnCode) -> None:
        if self._thread is not None:
            raise RuntimeError("SerialSource is already started")
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, args=(on_code,), name=f"scanner-{self.name}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        thread, self._thread = self._thread, None
        self._stopping.set()
        join_thread(thread, log)

    def send(self, data: bytes) -> None:
        """Write to the scanner (e.g. a trigger or beep command); fails when not connected."""
        with self._port_lock:
            if self._port is None:
                raise ConnectionError(f"serial scanner {self.url} is not connected")
            self._port.write(data)

    def _run(self, on_code: OnCode) -> None:
        while not self._stopping.is_set():
            try:
                port = serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=_READ_TIMEOUT_S)
            except (serial.SerialException, OSError) as error:
                self._note_failure("cannot open", error)
                continue
            log.info("serial scanner %s connected", self.url)
            self.last_error = None
            with self._port_lock:
                self._port = port
            self._connected.set()
            lost: Exception | None = None
            try:
                self._read_lines(port, on_code)
            except (serial.SerialException, OSError) as error:
                lost = error
            finally:
                self._connected.clear()
                with self._port_lock:
                    self._port = None
                try:
                    port.close()
                except (serial.SerialException, OSError):
                    pass  # the device is already gone
            if lost is not None:
                self._note_failure("lost", lost)

    def _note_failure(self, what: str, error: Exception) -> None:
        if self.last_error != str(error):  # log a new problem once, not every retry
            log.warning("serial scanner %s: %s: %s", self.url, what, error)
        self.last_error = str(error)
        if self._stopping.wait(self.reconnect_delay_s):
            return
        self.reconnects += 1

    def _read_lines(self, port: serial.SerialBase, on_code: OnCode) -> None:
        pending = bytearray()
        while not self._stopping.is_set():
            chunk = port.read(max(1, port.in_waiting))
            if not chunk:
                continue
            read_at = time.monotonic()
            pending += chunk
            *lines, rest = bytes(pending).split(self._terminator)
            pending = bytearray(rest)
            if len(pending) > MAX_LINE_BYTES:
                log.warning(
                    "serial scanner %s sent %d bytes without a %s suffix; discarding them",
                    self.url,
                    len(pending),
                    self.suffix,
                )
                pending.clear()
            for line in lines:
                code = line.decode("utf-8", errors="replace").strip(_CONTROL_CHARACTERS)
                if code:
                    self.codes_read += 1
                    deliver(on_code, ScannedCode(code, self.name, read_at), log)
