"""The grid reader: Portgate's own reading of a located QR code's modules, unsure ones as Reed-Solomon
erasures, found from two finder patterns when the third is covered, and read across the frames of one
sighting. Each scene here is one that zxing-cpp and every other pass of the pipeline fail on."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
import segno
import zxingcpp

from gate_agent.scanner.passes import SECOND_PASSES
from gate_agent.scanner.pipeline import FramePipeline, signed_code_verifier
from gate_agent.scanner.qrgrid import TICKET_VERSIONS
from gate_agent.scanner.qrsymbol import decode_modules, layout
from gate_core.codes import SigningKey, decimal_form, issue_code, keyring
from server.tickets.pdf import QR_STYLE, QrStyle, qr_symbol
from tests.scanner_fixtures import BASE32_PRINT as BEFORE
from tests.scanner_fixtures import glare, on_paper

GATE_KEY = SigningKey.from_private_bytes(7, bytes(range(32)))
CODE = issue_code(GATE_KEY, 1234, 42)
#: What the ticket's QR carries since the decimal form (gate_core.codes), and how tickets printed before drew it
#: (the base 32 form), which `on_paper` draws unless told otherwise: the gate reads both.
PRINTED = decimal_form(CODE)


def verify(text: str) -> bool:
    return signed_code_verifier(lambda: keyring([GATE_KEY.public_key()]))(text)


def thumb(frame: np.ndarray, centre: tuple[int, int], axes: tuple[int, int]) -> np.ndarray:
    covered = frame.copy()
    cv2.ellipse(covered, centre, axes, 30, 0, 360, 150, -1)
    return cv2.GaussianBlur(covered, (0, 0), 2)


def read_alone(frame: np.ndarray, *, grid: bool = True) -> str | None:
    """What the pipeline reads in the frame with every pass (all of them, or all but the grid reader)."""
    passes = SECOND_PASSES if grid else [name for name in SECOND_PASSES if name != "grid"]
    return FramePipeline(verify=verify, budget_ms=None, second_passes=passes).feed(frame, now=0.0)


def zxing_reads(frame: np.ndarray) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(frame)]


def test_every_qr_portgate_prints_or_shows_is_a_version_the_grid_reader_knows():
    printed = qr_symbol(CODE)  # on paper, and on the phone's ticket screen (server.tickets.phone_views)
    before = qr_symbol(CODE, QrStyle(decimal=False))  # tickets printed before the decimal form
    assert (printed.version, before.version) == (5, 6)
    assert {printed.version, before.version} <= set(TICKET_VERSIONS)


@pytest.mark.parametrize("mask", range(8))
def test_the_modules_of_a_ticket_qr_read_back_to_its_code(mask):
    symbol = segno.make(CODE, error="m", mode="alphanumeric", mask=mask, boost_error=False)
    assert decode_modules(np.array(symbol.matrix, float)) == CODE


def test_modules_nobody_can_read_are_corrected_as_erasures():
    darkness = np.array(qr_symbol(CODE).matrix, float)
    darkness[12:28, 14:30] = 0.5  # a 16 x 16 patch of 256 modules, each undecided
    assert decode_modules(darkness) == PRINTED
    # As plain errors (each guessed one way), Reed-Solomon cannot correct as many.
    guessed = darkness.copy()
    guessed[12:28, 14:30] = 0
    assert decode_modules(guessed) is None


def test_a_block_with_more_unsure_codewords_than_it_can_erase_and_one_surely_wrong_is_corrected():
    """What a glare leaves: of a block's 24 check codewords, 22 may be erased (two are kept to catch a wrong
    correction). Here 24 codewords read unsure, the 20 least sure of them wrong, and one more reads surely wrong.
    Erasing 22 leaves no room for that one; erasing 16 or 18 leaves wrong unsure ones unerased, too many to
    correct; erasing 20, two fewer than it may, leaves room for it, and the block corrects."""
    symbol = qr_symbol(CODE)
    # Version 5 at level M: two blocks of 67 codewords (43 data), interleaved, so block 0 is every even one.
    assert (symbol.version, symbol.error) == (5, "M")
    truth = np.array(symbol.matrix, float)
    shape = layout(symbol.version)
    darkness = truth.copy()

    def codeword(index: int) -> tuple[np.ndarray, np.ndarray]:
        bits = slice(8 * 2 * index, 8 * 2 * index + 8)  # block 0's codeword `index` in the placed stream
        return shape.data_rows[bits], shape.data_cols[bits]

    for index in range(5, 25):  # wrong, and the least sure: just past undecided
        rows, cols = codeword(index)
        darkness[rows, cols] = np.where(truth[rows, cols] > 0.5, 0.48, 0.52)
    for index in range(25, 29):  # right, but unsure
        rows, cols = codeword(index)
        darkness[rows, cols] = np.where(truth[rows, cols] > 0.5, 0.6, 0.4)
    rows, cols = codeword(29)  # surely wrong
    darkness[rows, cols] = 1 - truth[rows, cols]
    assert decode_modules(darkness) == PRINTED


def test_random_modules_never_decode_to_a_text():
    """No false reads: noise whose format bits are a ticket's goes all the way to Reed-Solomon, and fails."""
    ticket = np.array(qr_symbol(CODE).matrix, float)
    shape = layout(qr_symbol(CODE).version)
    rng = np.random.default_rng(5)
    decoded = 0
    for _ in range(500):
        noise = rng.uniform(0, 1, ticket.shape)
        for rows, cols in zip(shape.format_rows, shape.format_cols, strict=True):
            noise[rows, cols] = ticket[rows, cols]
        decoded += decode_modules(noise) is not None
    assert decoded == 0


@pytest.mark.parametrize(
    ("style", "radius", "text"),
    # The smaller version-5 symbol is more of it under the same lamp: radius 100 burns out too much of it. zxing
    # locates it without reading it, and the grid reader picks the version whose fixed patterns fit there.
    [(BEFORE, 100, CODE), (QR_STYLE, 90, PRINTED)],
    ids=["base32", "decimal"],
)
def test_a_ticket_under_glare_is_read_where_zxing_and_every_other_pass_read_nothing(style, radius, text):
    frame = glare(on_paper(CODE, style=style), (330, 230), radius=radius)
    assert zxing_reads(frame) == []
    assert read_alone(frame, grid=False) is None
    assert read_alone(frame) == text


@pytest.mark.parametrize(("style", "text"), [(BEFORE, CODE), (QR_STYLE, PRINTED)], ids=["base32", "decimal"])
def test_a_thumb_over_a_finder_pattern_is_read_from_the_other_two(style, text):
    frame = thumb(on_paper(CODE, style=style), (410, 160), (50, 35))  # over the top-right finder pattern
    assert zxing_reads(frame) == []
    assert read_alone(frame, grid=False) is None
    assert read_alone(frame) == text


def test_frames_of_one_sighting_are_read_together_when_none_reads_alone():
    """Glare that moves as the ticket is held up hides a different part of the code in each frame."""
    frames = [glare(on_paper(CODE), centre, radius=120) for centre in ((290, 210), (350, 250), (310, 290))]
    assert [read_alone(frame) for frame in frames] == [None] * 3
    pipeline = FramePipeline(verify=verify, budget_ms=None)
    assert [pipeline.feed(frame, now=index / 15) for index, frame in enumerate(frames[:2])] == [None, CODE]
    # Frames more than a sighting apart are not read together.
    apart = FramePipeline(verify=verify, budget_ms=None)
    assert [apart.feed(frame, now=index * 5.0) for index, frame in enumerate(frames)] == [None] * 3


def test_a_scene_full_of_finder_like_squares_does_not_stall_the_camera():
    """A tiled floor or a sheet of codes: hundreds of nested squares are not all tried as finder patterns."""
    frame = np.full((480, 640), 255, np.uint8)
    for top in range(0, 480, 40):
        for left in range(0, 640, 40):
            frame[top + 5 : top + 33, left + 5 : left + 33] = 0
            frame[top + 9 : top + 29, left + 9 : left + 29] = 255
            frame[top + 13 : top + 25, left + 13 : left + 25] = 0
    pipeline = FramePipeline(verify=verify, budget_ms=None, second_passes=["grid"], clock=time.thread_time)
    started = time.thread_time()
    assert pipeline.read(frame, now=0.0) == []
    assert time.thread_time() - started < 0.5  # it took over 3 s of CPU when every square was a finder


def test_a_ticket_under_a_thumb_is_read_within_a_second_at_the_live_budget():
    """The live camera (a 40 ms budget of CPU a frame, the passes taking turns): a second of frames."""
    frame = thumb(on_paper(CODE), (410, 160), (50, 35))
    pipeline = FramePipeline(verify=verify, clock=time.thread_time)
    assert CODE in [pipeline.feed(frame, now=index / 15) for index in range(15)]


def test_readings_of_two_tickets_in_one_sighting_are_not_read_together():
    """One ticket shown after another within a second: the second's readings are combined with each
    other, not with the first's (which would read neither)."""
    other = issue_code(GATE_KEY, 5678, 42)
    first = glare(on_paper(CODE), (290, 210), radius=120)
    second = [glare(on_paper(other), centre, radius=120) for centre in ((290, 210), (350, 250))]
    pipeline = FramePipeline(verify=verify, budget_ms=None)
    assert [pipeline.feed(frame, now=index / 15) for index, frame in enumerate([first, *second])] == [None, None, other]


def test_a_ticket_with_damage_beyond_repair_never_reads_as_another_text():
    """Patches of modules read wrongly, surely or not: a decode gives the ticket's code or nothing."""
    ticket = np.array(qr_symbol(CODE).matrix, float)
    rng = np.random.default_rng(11)
    results = set()
    for _ in range(400):
        damaged = ticket.copy()
        side = int(rng.integers(8, 20))
        top, left = rng.integers(9, ticket.shape[0] - side, 2)
        damaged[top : top + side, left : left + side] = rng.uniform(0, 1, (side, side))
        results.add(decode_modules(damaged))
    assert results <= {PRINTED, None}
    assert results == {PRINTED, None}  # both happen: the damage spans what can and cannot be corrected


def test_a_symbol_the_grid_reader_keeps_failing_on_does_not_starve_the_other_passes():
    """A code the grid reader finds and keeps readings of, but cannot decode (here its data is scrambled):
    it goes first only every other frame, so the passes that run only first in a frame (WeChat's) still
    get their turns."""
    symbol = np.array(qr_symbol(CODE).matrix, np.uint8)
    data = layout(qr_symbol(CODE).version).fixed < 0
    symbol[data] = np.random.default_rng(3).integers(0, 2, int(data.sum()))
    qr = np.kron(np.pad(1 - symbol, 4, constant_values=1) * 255, np.ones((6, 6), np.uint8)).astype(np.uint8)
    frame = np.full((480, 640), 235, np.uint8)
    frame[60 : 60 + qr.shape[0], 150 : 150 + qr.shape[1]] = qr
    pipeline = FramePipeline(verify=verify, clock=time.thread_time)
    assert [pipeline.feed(frame, now=index / 15) for index in range(40)] == [None] * 40
    assert pipeline.reads_by_pass == {}
    assert "crop_wechat_small" in pipeline.cost_estimates_ms()


@pytest.mark.parametrize(
    ("damage", "style", "text"),
    [("thumb", BEFORE, CODE), ("glare", BEFORE, CODE), ("thumb", QR_STYLE, PRINTED)],
    ids=["thumb-base32", "glare-base32", "thumb-decimal"],
)
def test_a_phone_in_dark_mode_is_read_under_a_thumb_or_glare(damage, style, text):
    """Light modules on a black screen: the grid reader reads the symbol inverted, as zxing's try_invert
    does, and keeps what it does for printed tickets."""
    screen = 255 - on_paper(CODE, style=style)
    frame = thumb(screen, (410, 160), (50, 35)) if damage == "thumb" else glare(screen, (330, 230), radius=100)
    assert zxing_reads(frame) == []
    assert read_alone(frame, grid=False) is None
    assert read_alone(frame) == text


def test_frames_that_all_saw_the_same_glare_do_not_outvote_the_frame_where_it_moved():
    """A ticket held still under a lamp for half a second, then tilted: the eight alike frames' evidence
    would outweigh the one that shows the hidden part, so the newest two are also read on their own."""
    still, moved = glare(on_paper(CODE), (290, 220), radius=140), glare(on_paper(CODE), (350, 250), radius=140)
    assert read_alone(still) is None and read_alone(moved) is None
    pipeline = FramePipeline(verify=verify, budget_ms=None)
    frames = [still] * 8 + [moved]
    assert [pipeline.feed(frame, now=index / 15) for index, frame in enumerate(frames)] == [None] * 8 + [CODE]
