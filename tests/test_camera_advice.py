"""The lane screen's advice when the camera sees a ticket it cannot read: after a second with a code in view and
no read, the pipeline says what the driver should do (tilt a glare away, else hold the ticket flat and still);
never for a scene without a ticket's code, a foreign code, or the ticket just read; no more once the ticket is
taken away or after longer than anyone holds one up. The camera source passes it on while it lasts. Frames of the
bench's camera model too: a glare over a printed ticket, as a person would hold it."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from bench.camera_model import photograph
from bench.photos import write_video
from bench.presentation import presentation
from bench.ticket_prints import ticket_pool
from gate_agent.scanner.advice import ADVICE_AFTER_S, ADVICE_AT_MOST_S, QUIET_AFTER_READ_S
from gate_agent.scanner.camera import ADVICE_REPEAT_S, CameraSource
from gate_agent.scanner.decoders import default_decoder
from gate_agent.scanner.pipeline import FramePipeline, signed_code_verifier
from gate_core.codes import SigningKey, issue_code, keyring, parse_code
from gate_core.reasons import Advice, advice_text
from server.tickets.pdf import QR_STYLE
from tests.scanner_fixtures import PAPER, glare, on_paper, plain_qr

KEY = SigningKey.from_private_bytes(3, bytes(range(2, 34)))
CODE = issue_code(KEY, 77, 5)
FPS = 15


def verify(text: str) -> bool:
    return signed_code_verifier(lambda: keyring([KEY.public_key()]))(text)


def burnt_out() -> np.ndarray:
    """Today's print under a lamp whose reflection burns out too much of the code for any repair."""
    return glare(on_paper(CODE, style=QR_STYLE), (330, 230), radius=120)


def smeared() -> np.ndarray:
    """Today's print with its middle smeared past repair (a crease, a wet thumb): nothing burnt white."""
    frame = on_paper(CODE, style=QR_STYLE)
    frame[180:300, 270:390] = np.random.default_rng(1).integers(40, 200, (120, 120))
    return cv2.GaussianBlur(frame, (0, 0), 1.0)


def advice_over(frames: list[np.ndarray], fps: float = FPS, verify=verify) -> list[tuple[float, bool, str | None]]:
    """Each frame's time (at `fps`), whether it read a verified code, and the pipeline's advice after it. The
    budget is spent in this thread's CPU time, as on a core of its own (bench.presentation): on a box busy with
    other tests, wall-clock time would count the waits for a core and leave the grid reader no turn."""
    pipeline = FramePipeline(verify=verify, clock=time.thread_time)
    seen = []
    for index, frame in enumerate(frames):
        now = index / fps
        seen.append((now, pipeline.feed(frame, now) is not None, pipeline.advice))
    return seen


def test_a_glare_over_a_code_held_up_for_a_second_gets_tilt_advice():
    seen = advice_over([burnt_out()] * (2 * FPS))
    assert not any(read for _now, read, _advice in seen)
    assert {advice for now, _read, advice in seen if now < ADVICE_AFTER_S} == {None}
    assert {advice for now, _read, advice in seen if now >= ADVICE_AFTER_S + 0.2} == {Advice.GLARE}


def test_a_code_unread_for_another_reason_gets_advice_to_hold_it_flat_and_still():
    seen = advice_over([smeared()] * (2 * FPS))
    assert not any(read for _now, read, _advice in seen)
    assert {advice for now, _read, advice in seen if now >= ADVICE_AFTER_S + 0.2} == {Advice.UNCLEAR}


def test_a_scene_without_a_code_never_gets_advice():
    desk = np.full((480, 640), PAPER, np.uint8)
    lamp = glare(desk, (320, 240), radius=200)  # a lamp's reflection on the empty desk
    texture = np.random.default_rng(4).integers(0, 255, (480, 640)).astype(np.uint8)  # fine texture everywhere
    for frame in (desk, lamp, texture):
        assert {advice for _now, _read, advice in advice_over([frame] * (2 * FPS))} == {None}


def test_a_ticket_read_at_once_gets_no_advice_and_a_read_ends_it():
    clear = on_paper(CODE, style=QR_STYLE)
    assert advice_over([clear] * FPS)[-1] == ((FPS - 1) / FPS, True, None)
    seen = advice_over([burnt_out()] * (2 * FPS) + [clear])
    assert seen[-2][2] == Advice.GLARE
    assert seen[-1][1:] == (True, None)  # tilted: read, and the screen shows the verdict


def test_the_ticket_just_read_gets_no_advice_while_the_driver_moves_on():
    """Read, then glared over again as the driver lowers it: the verdict is what the screen shows."""
    clear = on_paper(CODE, style=QR_STYLE)
    quiet = int(QUIET_AFTER_READ_S * 2)  # at 2 frames a second
    seen = advice_over([clear] + [burnt_out()] * (quiet + 6), fps=2)
    assert seen[0][1]
    assert {advice for now, _read, advice in seen if now < QUIET_AFTER_READ_S} == {None}
    assert seen[-1][2] == Advice.GLARE  # a ticket held up after that is advised again


def test_a_foreign_code_or_a_forged_ticket_that_reads_gets_no_advice():
    """A poster's QR code behind the lane reads as its own text; a forged ticket reads and fails its signature
    (the lane gets its verdict, gate_agent.scanner.verify): neither is a code the driver cannot get read."""
    poster = cv2.cvtColor(plain_qr("https://example.com/port-rules"), cv2.COLOR_BGR2GRAY)
    forged = on_paper(issue_code(SigningKey.from_private_bytes(3, bytes(range(40, 72))), 77, 5), style=QR_STYLE)
    for frame in (poster, forged):
        assert {advice for _now, _read, advice in advice_over([frame] * (2 * FPS))} == {None}


def test_a_code_in_view_unread_longer_than_anyone_holds_a_ticket_gets_advice_no_more():
    """A damaged ticket stuck in the camera's view (a sticker, one left on the counter)."""
    seen = advice_over([smeared()] * int((ADVICE_AT_MOST_S + 4) * 2), fps=2)
    assert {advice for now, _read, advice in seen if ADVICE_AFTER_S + 0.5 <= now < ADVICE_AT_MOST_S} == {Advice.UNCLEAR}
    assert {advice for now, _read, advice in seen if now > ADVICE_AT_MOST_S} == {None}


@pytest.mark.parametrize(
    ("severity", "sequence_seed", "ticket_seed", "ticket_index"),
    # The lamp's reflection burns out a finder pattern and a third of the code; burns out the code's middle, and
    # the two finder patterns left place it on the wrong side of them first.
    [(2, 9_000_041, 9, 2), (3, 0, 0, 0)],
    ids=["glare-2", "glare-3"],
)
def test_a_glare_over_a_printed_ticket_held_up_to_the_bench_camera_gets_tilt_advice(
    severity, sequence_seed, ticket_seed, ticket_index
):
    """Development presentations of bench.presentation, today's print: nothing reads them in two seconds."""
    ticket = ticket_pool(ticket_seed, 4)[ticket_index]
    scene = presentation("glare", severity, (640, 480), sequence_seed)
    frames = [
        photograph(ticket, scene.shot_at(index / scene.fps), sequence_seed, frame_seed=sequence_seed * 1000 + index)
        for index in range(int(2 * scene.fps))
    ]
    keys = keyring([ticket.verify_key])
    seen = advice_over(frames, fps=scene.fps, verify=lambda text: parse_code(text, keys).valid)
    assert not any(read for _now, read, _advice in seen)
    assert seen[-1][2] == Advice.GLARE


def test_the_screen_text_of_each_advice_is_in_spanish_and_english():
    for advice in Advice:
        spanish, english = advice_text(advice, "es"), advice_text(advice, "en")
        assert spanish and english and spanish != english
    assert advice_text(Advice.GLARE, "en-GB") == advice_text(Advice.GLARE, "en")
    assert "reflejo" in advice_text(Advice.GLARE, "es") and "tilt" in advice_text(Advice.GLARE, "en")


def test_the_camera_passes_advice_on_when_it_comes_and_again_while_it_lasts(tmp_path):
    """A camera (a video file played at its own rate) on a ticket under a glare for 5 s."""
    video = write_video(tmp_path / "glare.avi", [cv2.cvtColor(burnt_out(), cv2.COLOR_GRAY2BGR)] * (5 * FPS), fps=FPS)
    # The camera's own decoder, its budget spent in thread CPU time as in advice_over: on a box busy with other
    # tests the wall clock would make the grid reader look too slow for any of the video's 75 frames.
    camera = CameraSource(str(video), decoder=default_decoder(clock=time.thread_time), name="camera0")
    advised: list[tuple[str, str]] = []
    camera.on_advice = lambda advice, source: advised.append((advice, source))
    codes: list = []
    camera.start(codes.append)
    try:
        assert camera.wait_finished(timeout=30)
    finally:
        camera.stop()
    assert codes == []
    # Once after the first second, then every ADVICE_REPEAT_S of the four seconds left.
    assert advised[0] == (Advice.GLARE, "camera0")
    assert set(advised) == {(Advice.GLARE, "camera0")}
    assert 4 / ADVICE_REPEAT_S - 1 <= len(advised) <= 4 / ADVICE_REPEAT_S + 1
