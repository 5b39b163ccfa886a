"""Codes from a camera, a network stream, a video file or a still image.

Two threads: one captures and keeps only the newest frame in a single slot, the other
decodes whatever is newest. A slow decode therefore skips frames instead of falling
behind: the code on screen is always the ticket in front of the camera now, never one
from a queue of stale frames.
"""

from __future__ import annotations

import enum
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from gate_agent.scanner import OnCode, ScannedCode
from gate_agent.scanner._threads import deliver, join_thread
from gate_agent.scanner.decoders import Decoder, crop_to_roi, default_decoder, validate_roi
from gate_agent.scanner.pipeline import FramePipeline

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"})
# Pace of files that do not say their frame rate, and of a looping still image.
DEFAULT_FILE_FPS = 25.0
_NETWORK_TIMEOUT_MS = 5000
_SLOT_WAIT_S = 0.2
_DEVICE_PATH = re.compile(r"^/dev/video\d+$")
#: Advice that lasts is passed on again this often (s), and no more often: a screen shows it a few seconds.
ADVICE_REPEAT_S = 2.0
#: Called with the pipeline's advice (gate_agent.scanner.advice) and the camera's name.
OnAdvice = Callable[[str, str], None]


class SourceKind(enum.Enum):
    DEVICE = "device"  # camera by index or /dev/videoN
    STREAM = "stream"  # rtsp://, http://… network camera
    VIDEO_FILE = "video_file"
    IMAGE_FILE = "image_file"


def classify_source(source: int | str) -> SourceKind:
    """What kind of capture `source` names; raises ValueError for nonsense."""
    if isinstance(source, bool):
        raise ValueError(f"camera source must be an index, a path or a URL, not {source!r}")
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        if int(source) < 0:
            raise ValueError(f"camera index must not be negative, got {source!r}")
        return SourceKind.DEVICE
    if not isinstance(source, str) or not source.strip():
        raise ValueError(f"camera source must be an index, a path or a URL, not {source!r}")
    if _DEVICE_PATH.match(source) or source.startswith("/dev/v4l/"):
        return SourceKind.DEVICE
    if "://" in source:
        return SourceKind.STREAM
    if Path(source).suffix.lower() in IMAGE_EXTENSIONS:
        return SourceKind.IMAGE_FILE
    return SourceKind.VIDEO_FILE


def _device_index(source: int | str) -> int | str:
    """Camera index for a device; OpenCV's V4L2 backend opens by index, not by path."""
    if isinstance(source, int) or source.isdigit():
        return int(source)
    # /dev/v4l/by-id/… and by-path/… are symlinks to /dev/videoN.
    match = re.fullmatch(r"/dev/video(\d+)", os.path.realpath(source))
    return int(match.group(1)) if match else source


class LatestFrameSlot:
    """Holds at most one frame: a new frame replaces an undecoded one, which counts as dropped."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._frame: np.ndarray | None = None
        self._captured_at = 0.0
        self._closed = False
        self.dropped = 0

    def put(self, frame: np.ndarray, captured_at: float) -> None:
        with self._condition:
            if self._frame is not None:
                self.dropped += 1
            self._frame, self._captured_at = frame, captured_at
            self._condition.notify()

    def take(self, timeout: float) -> tuple[np.ndarray, float] | None:
        """The newest frame not yet taken, waiting up to `timeout`; None if there is none."""
        with self._condition:
            if self._frame is None and not self._closed:
                self._condition.wait(timeout)
            frame, self._frame = self._frame, None
            return None if frame is None else (frame, self._captured_at)

    def close(self) -> None:
        """No more frames will come; the last one can still be taken."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    @property
    def exhausted(self) -> bool:
        with self._condition:
            return self._closed and self._frame is None


class CameraSource:
    """A CodeSource reading codes from frames.

    `source` is a camera index (`0`), a device path (`/dev/video0`), a stream URL
    (`rtsp://…`, `http://…`), a video file or an image file. Live sources that fail to open
    or stop delivering frames are released and reopened every `reconnect_delay_s`. A video
    file is played at its own frame rate and ends at its end (or starts over with
    `loop_file`); an image is decoded once (or at 25 fps with `loop_file`).
    `frame_interval_s` > 0 caps the decode rate to spare the CPU of a small gate box. `frame_size`
    (width, height) is asked of a camera on this box (an index or a device path; MJPEG, so a USB 2 camera
    can deliver it at full rate); the camera may give another size, which is logged.

    With the frame pipeline (the default decoder), consecutive frames work together: each frame
    goes to it with its capture time, and its second passes pick up where the last frame's budget
    ran out. Each frame is decoded once. The same ticket held under the camera is reported on
    every frame that reads it; put a `Deduplicator` in front of the decision.

    `on_advice`, when set before `start`, is called from the decode thread with the pipeline's advice while
    a code in view goes unread: when it starts, then every `ADVICE_REPEAT_S` while it lasts (the advice of
    that moment, so it changes at most that often).
    """

    def __init__(
        self,
        source: int | str,
        decoder: Decoder | None = None,
        roi: Sequence[int] | None = None,
        reconnect_delay_s: float = 2.0,
        frame_interval_s: float = 0.0,
        loop_file: bool = False,
        name: str = "camera",
        frame_size: tuple[int, int] | None = None,
    ) -> None:
        self.kind = classify_source(source)
        if frame_size is not None and not (len(frame_size) == 2 and all(side > 0 for side in frame_size)):
            raise ValueError(f"frame_size must be (width, height) in pixels, not {frame_size!r}")
        self.frame_size = frame_size
        if not reconnect_delay_s > 0:
            raise ValueError(f"reconnect_delay_s must be positive, not {reconnect_delay_s!r}")
        if not frame_interval_s >= 0:
            raise ValueError(f"frame_interval_s must not be negative, not {frame_interval_s!r}")
        self.source = source
        self.decoder = decoder if decoder is not None else default_decoder()
        self.roi = validate_roi(roi)
        self.reconnect_delay_s = reconnect_delay_s
        self.frame_interval_s = frame_interval_s
        self.loop_file = loop_file
        self.name = name
        # Diagnostics, readable from any thread.
        self.frames_captured = 0
        self.frames_decoded = 0
        self.reconnects = 0
        self.codes_found = 0
        self.decode_errors = 0
        self._problem = ""  # the capture problem last logged ("" while it works)
        self.on_advice: OnAdvice | None = None
        self._advised_at: float | None = None  # when advice was last passed on (None: none since it ended)

        self._slot = LatestFrameSlot()
        self._stopping = threading.Event()
        self._finished = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def frames_dropped(self) -> int:
        """Frames replaced by a newer one before the decoder got to them."""
        return self._slot.dropped

    def stats(self) -> dict[str, int]:
        return {
            "frames_captured": self.frames_captured,
            "frames_decoded": self.frames_decoded,
            "frames_dropped": self.frames_dropped,
            "reconnects": self.reconnects,
            "codes_found": self.codes_found,
            "decode_errors": self.decode_errors,
        }

    def start(self, on_code: OnCode) -> None:
        if self._threads:
            raise RuntimeError("CameraSource is already started; create a new one to restart")
        self._threads = [
            threading.Thread(target=self._capture_loop, name=f"scanner-{self.name}-capture", daemon=True),
            threading.Thread(
                target=self._decode_loop, args=(on_code,), name=f"scanner-{self.name}-decode", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._slot.close()
        for thread in self._threads:
            join_thread(thread, log)

    def wait_finished(self, timeout: float) -> bool:
        """For files: wait until every frame was read and the last one decoded."""
        return self._finished.wait(timeout)

    # -- capture thread --------------------------------------------------------------

    def _capture_loop(self) -> None:
        try:
            if self.kind is SourceKind.IMAGE_FILE:
                self._capture_image()
            else:
                self._capture_video()
        except Exception:
            log.exception("camera %s: capture thread failed", self.name)
        finally:
            self._slot.close()

    def _wait_before_retry(self, why: str) -> bool:
        """Sleep the reconnect delay; False when stopping instead. A problem is logged when it starts, not
        at every retry (a camera unplugged overnight would fill the journal), and its end once frames come."""
        if not self._problem:
            log.warning("camera %s: %s; retrying every %.1f s", self.name, why, self.reconnect_delay_s)
            self._problem = why
        if self._stopping.wait(self.reconnect_delay_s):
            return False
        self.reconnects += 1
        return True

    def _capture_image(self) -> None:
        path = str(self.source)
        while (frame := cv2.imread(path, cv2.IMREAD_COLOR)) is None:
            if not self._wait_before_retry(f"cannot read image {path}"):
                return
        period = 1 / DEFAULT_FILE_FPS
        while not self._stopping.is_set():
            self.frames_captured += 1
            self._slot.put(frame, time.monotonic())
            if not self.loop_file or self._stopping.wait(period):
                return

    def _open_capture(self) -> cv2.VideoCapture:
        source = self.source
        if self.kind is SourceKind.DEVICE:
            # V4L2 directly on Linux: the default backend choice can land on GStreamer.
            device = _device_index(source)
            if sys.platform.startswith("linux"):
                node = f"/dev/video{device}" if isinstance(device, int) else device
                if not os.path.exists(node):
                    return cv2.VideoCapture()  # unplugged; spare the log OpenCV's warnings
                backend = cv2.CAP_V4L2
            else:
                backend = cv2.CAP_ANY
            capture = cv2.VideoCapture(device, backend)
            # Ask the driver to keep one buffer, so read() returns a fresh frame.
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            if self.frame_size is not None and capture.isOpened():
                self._ask_frame_size(capture, *self.frame_size)
            return capture
        if self.kind is SourceKind.STREAM:
            # Bounded waits, so an unreachable camera cannot wedge the thread for minutes.
            params = [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
                _NETWORK_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC,
                _NETWORK_TIMEOUT_MS,
            ]
            return cv2.VideoCapture(str(source), cv2.CAP_FFMPEG, params)
        if not os.path.isfile(source):
            return cv2.VideoCapture()  # not opened; OpenCV would only log a warning
        return cv2.VideoCapture(str(source))

    def _ask_frame_size(self, capture: cv2.VideoCapture, width: int, height: int) -> None:
        """Ask the camera for `width` x `height` (MJPEG where it has it) and log what it gives."""
        capture.set(cv2.CAP_PROP_FOURCC, cv2.VideoWriter.fourcc(*"MJPG"))
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        got = (int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        if got == (width, height):
            log.info("camera %s: %dx%d frames", self.name, width, height)
        else:
            log.warning("camera %s: asked for %dx%d frames, the camera gives %dx%d", self.name, width, height, *got)

    def _capture_video(self) -> None:
        is_file = self.kind is SourceKind.VIDEO_FILE
        while not self._stopping.is_set():
            capture = self._open_capture()
            if not capture.isOpened():
                capture.release()
                if not self._wait_before_retry(f"cannot open {self._printable_source()}"):
                    return
                continue
            try:
                frames = self._read_frames(capture, paced=is_file)
            finally:
                capture.release()
            if self._stopping.is_set():
                return
            if is_file:
                if self.loop_file and frames:
                    continue
                return
            if not self._wait_before_retry(f"{self._printable_source()} stopped delivering frames"):
                return

    def _read_frames(self, capture: cv2.VideoCapture, paced: bool) -> int:
        """Read until the capture fails or we stop; returns the number of frames read."""
        period = 0.0
        if paced:
            fps = capture.get(cv2.CAP_PROP_FPS)
            period = 1 / (fps if 0 < fps <= 240 else DEFAULT_FILE_FPS)
        started = time.monotonic()
        count = 0
        while not self._stopping.is_set():
            ok, frame = capture.read()
            if not ok or frame is None:
                break
            count += 1
            if count == 1 and self._problem:  # opening is not enough: a stream may open and send nothing
                log.info("camera %s: %s delivers frames again", self.name, self._printable_source())
                self._problem = ""
            self.frames_captured += 1
            self._slot.put(frame, time.monotonic())
            if paced:
                # Play at the file's own rate, as a camera would deliver it.
                delay = started + count * period - time.monotonic()
                if delay > 0 and self._stopping.wait(delay):
                    break
        return count

    def _printable_source(self) -> str:
        """The source without any user:password@ part of a URL, for logs."""
        return re.sub(r"//[^/@]*@", "//", str(self.source))

    # -- decode thread ---------------------------------------------------------------

    def _decode_loop(self, on_code: OnCode) -> None:
        try:
            while not self._stopping.is_set():
                taken = self._slot.take(_SLOT_WAIT_S)
                if taken is None:
                    if self._slot.exhausted:
                        break
                    continue
                decode_started = time.monotonic()
                frame, captured_at = taken
                self._decode_frame(frame, captured_at, on_code)
                if self.frame_interval_s:
                    remaining = decode_started + self.frame_interval_s - time.monotonic()
                    if remaining > 0 and self._stopping.wait(remaining):
                        break
        finally:
            self._finished.set()

    def _decode_frame(self, frame: np.ndarray, captured_at: float, on_code: OnCode) -> None:
        try:
            cropped = crop_to_roi(frame, self.roi)
            if isinstance(self.decoder, FramePipeline):
                codes = self.decoder.read(cropped, captured_at)
            else:
                codes = self.decoder.decode(cropped)
        except Exception:
            self.decode_errors += 1
            if self.decode_errors == 1:  # a broken setting would repeat on every frame
                log.exception("camera %s: decoding a frame failed", self.name)
            return
        self.frames_decoded += 1
        for code in codes:
            self.codes_found += 1
            deliver(on_code, ScannedCode(code, self.name, captured_at), log)
        if self.on_advice is not None and isinstance(self.decoder, FramePipeline):
            self._pass_advice(self.on_advice, self.decoder.advice, captured_at)

    def _pass_advice(self, on_advice: OnAdvice, advice: str | None, now: float) -> None:
        if advice is None:
            self._advised_at = None
        elif self._advised_at is None or now - self._advised_at >= ADVICE_REPEAT_S:  # a change waits its turn too
            self._advised_at = now
            try:
                on_advice(advice, self.name)
            except Exception:
                log.exception("on_advice failed for camera %s", self.name)
