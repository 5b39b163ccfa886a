"""Decoders read photos of printed tickets, and nothing from frames without a code."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import segno
import zxingcpp
from pyzbar import pyzbar

from bench.photos import make_empty_photo, make_ticket_photo
from gate_agent.scanner.decoders import (
    Decoder,
    PyzbarDecoder,
    ZxingDecoder,
    default_decoder,
    get_decoder,
)
from tests.scanner_fixtures import SIZES, plain_qr, ticket_photos

BACKENDS = ["zxing", "pyzbar"]


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_zxing_reads_every_ticket_photo(size):
    decoder = get_decoder("zxing")
    for code, photo in ticket_photos(size):
        assert decoder.decode(photo) == [code]


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_pyzbar_reads_ticket_photos(size):
    # zbar is the weaker reader (about 97% of 640x480 photos in the benchmark).
    decoder = get_decoder("pyzbar")
    photos = ticket_photos(size)
    read = [decoder.decode(photo) == [code] for code, photo in photos]
    assert sum(read) >= len(photos) - 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_frame_without_a_code_gives_nothing(backend):
    decoder = get_decoder(backend)
    assert decoder.decode(np.full((480, 640, 3), 200, np.uint8)) == []
    assert decoder.decode(make_empty_photo((640, 480), seed=3)) == []
    assert decoder.decode(make_empty_photo((1280, 720), seed=4)) == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_grayscale_and_bgra_frames_are_read(backend):
    decoder = get_decoder(backend)
    code, photo = next((c, p) for c, p in ticket_photos() if decoder.decode(p) == [c])
    assert decoder.decode(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)) == [code]
    assert decoder.decode(cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)) == [code]


def test_pyzbar_reads_colour_frames_whose_first_channel_is_blank():
    # Blue ink on white: the blue channel (OpenCV's first) is 255 everywhere, so a decoder
    # that looks only at the first channel sees a blank page.
    frame = plain_qr("PG1BLUEINK")
    frame[:, :, 1:][frame[:, :, 1:] == 0] = 0
    frame[:, :, 0] = 255
    assert pyzbar.decode(frame) == []  # the trap this decoder avoids
    assert PyzbarDecoder().decode(frame) == ["PG1BLUEINK"]


def test_pyzbar_halves_wide_frames_yet_reads_small_codes_at_full_size():
    decoder = PyzbarDecoder()
    small_code = plain_qr("PG1SMALLMODULES", module_px=3, canvas=(720, 1280))
    assert decoder.decode(small_code) == ["PG1SMALLMODULES"]


def test_zxing_reads_an_inverted_code_when_asked_to_try_harder():
    code, photo = ticket_photos()[1]
    inverted = cv2.bitwise_not(photo)
    assert ZxingDecoder(harder=True).decode(inverted) == [code]


def test_zxing_cheap_pass_alone_does_not_read_inverted_codes():
    """The cheap pass skips the inverted search: that is where its speed comes from."""
    inverted = cv2.bitwise_not(plain_qr("PG1INVERTED"))
    cheap = zxingcpp.read_barcodes(
        cv2.cvtColor(inverted, cv2.COLOR_BGR2GRAY),
        formats=(zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.Code128),
        try_invert=False,
    )
    assert cheap == []
    # ...but the harder pass runs on every miss and reads it.
    assert ZxingDecoder().decode(inverted) == ["PG1INVERTED"]


@pytest.mark.parametrize("dark, light", [(20, 50), (30, 70), (60, 95)])
def test_a_dim_dark_mode_screen_gets_the_harder_pass(dark, light):
    """A dim phone in dark mode: light modules barely above the black screen. Its edges are too
    faint for any "looks like a code" guess, which skipped the harder pass that reads it."""
    qr = cv2.cvtColor(plain_qr("PG1DARKMODE", module_px=5), cv2.COLOR_BGR2GRAY)
    screen = cv2.GaussianBlur(np.where(qr > 128, dark, light).astype(np.uint8), (0, 0), 0.8)
    assert ZxingDecoder().decode(screen) == ["PG1DARKMODE"]


def test_zxing_harder_pass_rescues_hard_photos_the_cheap_pass_misses():
    photos = [(f"PG1HARD{seed}", make_ticket_photo(f"PG1HARD{seed}", (640, 480), seed, "hard")) for seed in range(12)]
    ticket_formats = (zxingcpp.BarcodeFormat.QRCode, zxingcpp.BarcodeFormat.Code128)
    cheap_reads = sum(
        zxingcpp.read_barcodes(
            cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY),
            formats=ticket_formats,
            try_invert=False,
            try_rotate=False,
        )
        != []
        for _code, photo in photos
    )
    decoder = ZxingDecoder()
    reads = sum(decoder.decode(photo) == [code] for code, photo in photos)
    assert reads > cheap_reads
    # Each photo the cheap pass missed shows a ticket, so each got the harder pass.
    assert decoder.harder_passes == len(photos) - cheap_reads


@pytest.mark.parametrize("backend", BACKENDS)
def test_code128_tickets_are_read(backend):
    barcode = zxingcpp.create_barcode("PG1ABC123", zxingcpp.BarcodeFormat.Code128)
    image = np.asarray(barcode.to_image(scale=3, add_quiet_zones=True))
    frame = cv2.copyMakeBorder(image, 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=255)
    assert get_decoder(backend).decode(frame) == ["PG1ABC123"]


def test_other_symbologies_are_ignored_unless_all_formats_are_asked_for():
    barcode = zxingcpp.create_barcode("NOTATICKET", zxingcpp.BarcodeFormat.DataMatrix)
    image = np.asarray(barcode.to_image(scale=6, add_quiet_zones=True))
    frame = cv2.copyMakeBorder(image, 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=255)
    assert ZxingDecoder().decode(frame) == []
    assert ZxingDecoder(formats=None).decode(frame) == ["NOTATICKET"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_text_is_returned_stripped_as_unicode(backend):
    assert get_decoder(backend).decode(plain_qr("  Peña-Ñandú 42  ")) == ["Peña-Ñandú 42"]


@pytest.mark.parametrize("backend", BACKENDS)
def test_region_of_interest_limits_where_codes_are_found(backend):
    frame = np.full((480, 1280, 3), 255, np.uint8)
    frame[:, 640:] = plain_qr("PG1RIGHTHALF")
    assert get_decoder(backend, roi=(0, 0, 640, 480)).decode(frame) == []
    assert get_decoder(backend, roi=(640, 0, 640, 480)).decode(frame) == ["PG1RIGHTHALF"]
    with pytest.raises(ValueError, match="outside"):
        get_decoder(backend, roi=(2000, 0, 10, 10)).decode(frame)


@pytest.mark.parametrize("backend", BACKENDS)
def test_downscale_setting_still_reads_large_codes(backend):
    code, photo = ticket_photos((1280, 720))[0]
    assert get_decoder(backend, downscale=0.75).decode(photo) == [code]


def test_backend_selection():
    assert default_decoder().name == "pipeline"  # zxing-cpp is installed here
    assert get_decoder("auto").name == "pipeline"
    assert get_decoder("zxing").name == "zxing"
    assert get_decoder("pyzbar").name == "pyzbar"
    for decoder in (get_decoder("auto"), get_decoder("zxing"), get_decoder("pyzbar")):
        assert isinstance(decoder, Decoder)
    with pytest.raises(ValueError, match="auto, zxing, pyzbar"):
        get_decoder("opencv")


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"roi": (0, 0, 0, 10)}, "positive"),
        ({"roi": (0, 0, 10)}, "four integers"),
        ({"downscale": 2}, r"\(0, 1\]"),
        ({"formats": ["qrcode", "hologram"]}, "hologram"),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_bad_settings_are_rejected_with_a_reason(backend, settings, message):
    with pytest.raises(ValueError, match=message):
        get_decoder(backend, **settings)


def test_ticket_held_close_gives_both_its_qr_code_and_its_short_code():
    code, short_code = "PG1" + "CLOSEUP" * 17 + "A", "12345678901234567890"
    photo = make_ticket_photo(code, (1280, 720), seed=2, difficulty="easy", short_code=short_code)
    assert sorted(ZxingDecoder().decode(photo)) == sorted([code, short_code])


def test_micro_qr_symbols_are_not_mistaken_for_tickets():
    # zxing's "QR" family includes Micro QR, whose tiny symbols also appear by chance in
    # photographed print and noise; a ticket is always a full (model 2) QR code.
    micro = segno.make("03816", micro=True)
    assert micro.is_micro
    matrix = np.array(list(micro.matrix_iter(border=2)))
    image = np.where(matrix.astype(bool), 0, 255).astype(np.uint8).repeat(8, 0).repeat(8, 1)
    frame = cv2.copyMakeBorder(image, 60, 60, 60, 60, cv2.BORDER_CONSTANT, value=255)
    assert ZxingDecoder(formats=None).decode(frame) == ["03816"]
    assert ZxingDecoder().decode(frame) == []
    assert ZxingDecoder(harder=True).decode(frame) == []
