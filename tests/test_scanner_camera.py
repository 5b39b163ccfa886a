"""The camera pipeline: files and streams in, codes out, stale frames dropped, drops survived."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest

from bench.photos import write_video
from gate_agent.scanner import CodeSource, ScannedCode
from gate_agent.scanner.camera import CameraSource, SourceKind, classify_source
from gate_agent.scanner.decoders import ZxingDecoder
from tests.scanner_fixtures import plain_qr, ticket_photos, wait_until


class Collector:
    """An on_code consumer that remembers what it was given, thread-safely."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.scans: list[ScannedCode] = []

    def __call__(self, scanned: ScannedCode) -> None:
        with self._lock:
            self.scans.append(scanned)

    @property
    def codes(self) -> list[str]:
        with self._lock:
            return [scan.code for scan in self.scans]


class SlowDecoder:
    """A real zxing decoder on a slow machine: each decode takes at least `delay_s`."""

    name = "slow-zxing"

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self._decoder = ZxingDecoder()

    def decode(self, frame: np.ndarray) -> list[str]:
        time.sleep(self.delay_s)
        return self._decoder.decode(frame)


@pytest.fixture
def started():
    """Start sources and make sure each is stopped after the test."""
    sources = []

    def start(source: CameraSource, on_code) -> CameraSource:
        sources.append(source)
        source.start(on_code)
        return source

    yield start
    for source in sources:
        source.stop()


@pytest.mark.timeout(20)
def test_image_file_is_decoded_once(tmp_path, started):
    code, photo = ticket_photos()[0]
    path = tmp_path / "ticket.jpg"
    cv2.imwrite(str(path), photo)
    collected = Collector()
    before = time.monotonic()

    source = started(CameraSource(str(path), ZxingDecoder()), collected)

    assert source.wait_finished(5)
    assert collected.codes == [code]
    scan = collected.scans[0]
    assert scan.source == "camera"
    assert before <= scan.read_at_monotonic <= time.monotonic()
    assert source.stats()["frames_decoded"] == 1


@pytest.mark.timeout(20)
def test_looping_image_keeps_producing_frames_until_stopped(tmp_path):
    code, photo = ticket_photos()[1]
    path = tmp_path / "ticket.png"
    cv2.imwrite(str(path), photo)
    collected = Collector()
    source = CameraSource(str(path), ZxingDecoder(), loop_file=True)
    source.start(collected)
    try:
        assert wait_until(lambda: len(collected.codes) >= 3)
    finally:
        started_stopping = time.monotonic()
        source.stop()
    assert time.monotonic() - started_stopping < 2
    assert set(collected.codes) == {code}


@pytest.mark.timeout(30)
def test_video_of_tickets_yields_every_ticket_in_order(tmp_path, started):
    tickets = ticket_photos()[:4]
    # Each ticket held in view for 5 frames, as a passenger would.
    frames = [photo for _code, photo in tickets for _ in range(5)]
    path = write_video(tmp_path / "gate.avi", frames, fps=50)
    collected = Collector()

    source = started(CameraSource(str(path), ZxingDecoder()), collected)

    assert source.wait_finished(10)
    assert list(dict.fromkeys(collected.codes)) == [code for code, _photo in tickets]
    assert source.frames_captured == len(frames)


@pytest.mark.timeout(30)
def test_slow_decoder_skips_stale_frames_instead_of_queueing_them(tmp_path, started):
    # Frame i shows a QR code carrying i, so the decoded codes say which frames were seen.
    frames = [plain_qr(f"FRAME-{i:03d}", module_px=5) for i in range(40)]
    path = write_video(tmp_path / "numbered.avi", frames, fps=50)
    collected = Collector()

    source = started(CameraSource(str(path), SlowDecoder(delay_s=0.06)), collected)

    assert source.wait_finished(10)
    seen = [int(code.removeprefix("FRAME-")) for code in collected.codes]
    assert source.frames_captured == 40
    assert source.frames_dropped > 0
    assert source.frames_decoded + source.frames_dropped == source.frames_captured
    assert len(seen) == source.frames_decoded
    assert seen == sorted(set(seen)), "an older frame was decoded after a newer one"
    assert seen[-1] >= 35, "the newest frames should be decoded, not an old backlog"


@pytest.mark.timeout(20)
def test_frame_interval_caps_the_decode_rate(tmp_path, started):
    code, photo = ticket_photos()[2]
    path = tmp_path / "ticket.png"
    cv2.imwrite(str(path), photo)
    collected = Collector()

    source = started(CameraSource(str(path), ZxingDecoder(), loop_file=True, frame_interval_s=0.2), collected)
    time.sleep(0.7)

    # 25 fps of frames arrive; only about one in five is decoded.
    assert 2 <= source.frames_decoded <= 5
    assert source.frames_dropped >= source.frames_captured - source.frames_decoded - 1


@pytest.mark.timeout(20)
@pytest.mark.parametrize("missing", ["/dev/video97", "/nonexistent/gate-camera.avi", "7"])
def test_source_that_cannot_be_opened_keeps_retrying_and_stops_promptly(missing):
    source = CameraSource(missing, ZxingDecoder(), reconnect_delay_s=0.05)
    source.start(Collector())
    try:
        assert wait_until(lambda: source.reconnects >= 3, timeout=5)
    finally:
        stop_started = time.monotonic()
        source.stop()
    assert time.monotonic() - stop_started < 2
    assert source.frames_captured == 0


@pytest.mark.timeout(20)
def test_a_camera_that_stays_unplugged_is_logged_once_not_at_every_retry(caplog):
    """An unplugged camera retried all night says so once, not every 2 s (117 lines in 4 minutes before)."""
    source = CameraSource("/dev/video97", ZxingDecoder(), reconnect_delay_s=0.02)
    source.start(Collector())
    try:
        assert wait_until(lambda: source.reconnects >= 10, timeout=10)
    finally:
        source.stop()
    complaints = [r for r in caplog.records if "cannot open" in r.getMessage() and r.levelname == "WARNING"]
    assert len(complaints) == 1, [r.getMessage() for r in complaints]


class _MjpegCamera(BaseHTTPRequestHandler):
    """A network camera whose stream breaks off after a few frames, every time."""

    jpeg = b""

    def log_message(self, format, *args):  # keep test output clean
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        try:
            for _ in range(5):
                header = b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n"
                self.wfile.write(header % len(self.jpeg) + self.jpeg + b"\r\n")
                time.sleep(0.02)
        except OSError:
            pass


@pytest.mark.timeout(30)
def test_network_stream_that_drops_is_reconnected(started):
    code, photo = ticket_photos()[3]
    handler = type("Camera", (_MjpegCamera,), {"jpeg": cv2.imencode(".jpg", photo)[1].tobytes()})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/stream.mjpg"
        collected = Collector()
        source = started(CameraSource(url, ZxingDecoder(), reconnect_delay_s=0.05), collected)
        # Frames keep arriving across several broken connections.
        assert wait_until(lambda: source.reconnects >= 2 and source.frames_captured > 10, 15)
        assert set(collected.codes) == {code}
        source.stop()
    finally:
        server.shutdown()
        server.server_close()


def test_roi_crops_frames_before_decoding(tmp_path, started):
    frame = np.full((480, 1280, 3), 255, np.uint8)
    frame[:, 640:] = plain_qr("PG1RIGHTSIDE")
    path = tmp_path / "two-halves.png"
    cv2.imwrite(str(path), frame)
    left, right = Collector(), Collector()

    left_source = started(CameraSource(str(path), ZxingDecoder(), roi=(0, 0, 640, 480)), left)
    right_source = started(CameraSource(str(path), ZxingDecoder(), roi=(640, 0, 640, 480)), right)

    assert left_source.wait_finished(5) and right_source.wait_finished(5)
    assert left.codes == []
    assert right.codes == ["PG1RIGHTSIDE"]


def test_a_failing_consumer_does_not_stop_the_camera(tmp_path, started):
    frames = [plain_qr(f"PG1N{i}") for i in range(3) for _ in range(3)]
    path = write_video(tmp_path / "three.avi", frames, fps=50)
    delivered = []

    def flaky_consumer(scanned: ScannedCode) -> None:
        delivered.append(scanned.code)
        raise RuntimeError("the decision service is down")

    source = started(CameraSource(str(path), ZxingDecoder()), flaky_consumer)

    assert source.wait_finished(10)
    assert list(dict.fromkeys(delivered)) == ["PG1N0", "PG1N1", "PG1N2"]


def test_camera_is_a_code_source():
    assert isinstance(CameraSource(0, ZxingDecoder()), CodeSource)


@pytest.mark.parametrize(
    "source, kind",
    [
        (0, SourceKind.DEVICE),
        ("2", SourceKind.DEVICE),
        ("/dev/video1", SourceKind.DEVICE),
        ("rtsp://user:secret@10.0.0.5/stream1", SourceKind.STREAM),
        ("http://cam.local/video.mjpg", SourceKind.STREAM),
        ("clips/gate.avi", SourceKind.VIDEO_FILE),
        ("ticket.JPG", SourceKind.IMAGE_FILE),
    ],
)
def test_sources_are_recognised(source, kind):
    assert classify_source(source) is kind


@pytest.mark.parametrize("bad", [-1, "", True, None])
def test_nonsense_sources_are_rejected(bad):
    with pytest.raises(ValueError, match="camera"):
        CameraSource(bad, ZxingDecoder())


@pytest.mark.timeout(20)
def test_stream_credentials_stay_out_of_logs(caplog):
    source = CameraSource("rtsp://admin:hunter2@127.0.0.1:9/live", reconnect_delay_s=0.05)
    source.start(Collector())
    try:
        assert wait_until(lambda: source.reconnects >= 1, timeout=10)
    finally:
        source.stop()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "rtsp://127.0.0.1:9/live" in logged
    assert "hunter2" not in logged
