"""Turn camera frames into code strings: one library each (zxing-cpp or pyzbar), or the pipeline.

The single-library decoders make a cheap pass tuned for the gate's own tickets (QR or Code 128,
dark on light) and a harder pass whenever the cheap one reads nothing. The gate itself uses
`auto`: the frame pipeline (`gate_agent.scanner.pipeline`), which runs zxing-cpp and then
targeted second passes within a time budget, and counts only verified codes as reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from gate_agent.scanner.passes import scale as _scale
from gate_agent.scanner.passes import sharpen as _sharpen
from gate_agent.scanner.passes import unique_texts as _unique_texts
from gate_agent.scanner.passes import zxing_formats

Roi = tuple[int, int, int, int]
"""Region of interest (x, y, width, height) in pixels of the full frame."""

DEFAULT_FORMATS = ("qrcode", "code128")
BACKENDS = ("auto", "zxing", "pyzbar")

# Frames wider than this are halved before pyzbar sees them (see PyzbarDecoder).
PYZBAR_MAX_WIDTH = 960

# The zxing harder pass upscales frames up to this width to find very small QR modules.
_UPSCALE_MAX_WIDTH = 960


@runtime_checkable
class Decoder(Protocol):
    """Finds the codes in one frame (BGR, BGRA or grayscale numpy image)."""

    name: str

    def decode(self, frame: np.ndarray) -> list[str]: ...


def validate_roi(roi: Sequence[int] | None) -> Roi | None:
    """Check a region of interest given in settings; None means the whole frame."""
    if roi is None:
        return None
    if len(roi) != 4 or not all(isinstance(v, int) and not isinstance(v, bool) for v in roi):
        raise ValueError(f"roi must be four integers (x, y, width, height), not {roi!r}")
    x, y, width, height = roi
    if x < 0 or y < 0:
        raise ValueError(f"roi x and y must not be negative, got {roi!r}")
    if width <= 0 or height <= 0:
        raise ValueError(f"roi width and height must be positive, got {roi!r}")
    return (x, y, width, height)


def crop_to_roi(frame: np.ndarray, roi: Roi | None) -> np.ndarray:
    """The part of the frame inside the region of interest (a view, not a copy)."""
    if roi is None:
        return frame
    x, y, width, height = roi
    cropped = frame[y : y + height, x : x + width]
    if cropped.size == 0:
        frame_height, frame_width = frame.shape[:2]
        raise ValueError(f"roi {roi} lies outside the {frame_width}x{frame_height} frame")
    return cropped


def to_grayscale(frame: np.ndarray) -> np.ndarray:
    """A single-channel uint8 image from a grayscale, BGR or BGRA frame."""
    if frame.dtype != np.uint8:
        raise ValueError(f"frames must be 8-bit images, got dtype {frame.dtype}")
    if frame.ndim == 2:
        return frame
    if frame.ndim == 3 and frame.shape[2] == 1:
        return frame[:, :, 0]
    if frame.ndim == 3 and frame.shape[2] == 3:
        return cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    if frame.ndim == 3 and frame.shape[2] == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2GRAY)
    raise ValueError(f"cannot decode a frame of shape {frame.shape}")


def _validate_downscale(downscale: float) -> float:
    if isinstance(downscale, bool) or not isinstance(downscale, int | float):
        raise ValueError(f"downscale must be a number in (0, 1], not {downscale!r}")
    if not 0 < downscale <= 1:
        raise ValueError(f"downscale must be in (0, 1] (1 = full size), not {downscale!r}")
    return float(downscale)


class ZxingDecoder:
    """zxing-cpp: fast, and the better reader of blurred, tilted or small codes.

    The cheap pass looks only for the configured formats at full size, without the
    inverted search, the downscaled copies or the 90-degree search for linear codes (QR
    is found at any angle anyway). The harder pass (all of those, then for frames up to
    960 px wide a sharpened 2x copy, for QR modules too small to detect) runs whenever the
    cheap pass reads nothing: no guess about the frame may skip a pass that would read it.
    "qrcode" means the standard (model 2) QR only, not Micro QR or rMQR.
    `formats=None` reads every symbology zxing knows; `formats=("qrcode",)` halves the
    cheap pass when a gate has no Code 128 to read.
    """

    name = "zxing"

    def __init__(
        self,
        *,
        roi: Sequence[int] | None = None,
        downscale: float | None = None,
        harder: bool = False,
        formats: Sequence[str] | None = DEFAULT_FORMATS,
    ) -> None:
        import zxingcpp

        self._zxing = zxingcpp
        self.roi = validate_roi(roi)
        # zxing already tries downscaled copies of large frames itself.
        self.downscale = 1.0 if downscale is None else _validate_downscale(downscale)
        self.harder = harder
        if formats is None:
            self._formats = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.AllReadable)
            self._reads_qr = True
        else:
            parsed_formats = zxing_formats(zxingcpp, formats)
            self._formats = zxingcpp.BarcodeFormats(parsed_formats)
            self._reads_qr = zxingcpp.BarcodeFormat.QRCodeModel2 in parsed_formats
        self.harder_passes = 0  # diagnostics: how often the expensive path ran

    def decode(self, frame: np.ndarray) -> list[str]:
        gray = _scale(to_grayscale(crop_to_roi(frame, self.roi)), self.downscale)
        zxing = self._zxing
        results = zxing.read_barcodes(
            gray,
            formats=self._formats,
            try_rotate=False,
            try_invert=False,
            try_downscale=False,
            text_mode=zxing.TextMode.Plain,
        )
        texts = _unique_texts([result.text for result in results])
        if texts:
            return texts
        self.harder_passes += 1
        return self._decode_harder(gray)

    def _decode_harder(self, gray: np.ndarray) -> list[str]:
        zxing = self._zxing
        options = {
            "formats": self._formats,
            "try_rotate": True,
            "try_invert": True,
            "try_downscale": True,
            "text_mode": zxing.TextMode.Plain,
        }
        texts = _unique_texts([result.text for result in zxing.read_barcodes(gray, **options)])
        if texts or not self._reads_qr or gray.shape[1] > _UPSCALE_MAX_WIDTH:
            return texts
        # QR modules under ~3 px defeat the detector; a sharpened 2x copy recovers a share of
        # them. Small frames only: that is where modules get that small, and upscaling a
        # large frame would cost tens of milliseconds.
        enlarged = _scale(_sharpen(gray), 2.0)
        results = zxing.read_barcodes(
            enlarged,
            formats=zxing.BarcodeFormat.QRCodeModel2,
            try_rotate=False,
            try_invert=False,
            try_downscale=False,
            text_mode=zxing.TextMode.Plain,
        )
        return _unique_texts([result.text for result in results])


class PyzbarDecoder:
    """pyzbar (zbar): the fallback when zxing-cpp is not installed.

    Frames are converted to grayscale first because pyzbar reads only the first channel
    of a colour image (the blue one for OpenCV frames). Frames wider than 960 px are
    halved by default (`downscale=None`), which makes zbar about 3x faster on them. When
    that finds nothing, the full-size frame is tried too, since halving loses codes whose
    modules are already small; a frame that was not reduced is tried again sharpened
    instead. `harder=True` also tries the inverted image (light-on-dark codes).
    """

    name = "pyzbar"

    def __init__(
        self,
        *,
        roi: Sequence[int] | None = None,
        downscale: float | None = None,
        harder: bool = False,
        formats: Sequence[str] | None = DEFAULT_FORMATS,
    ) -> None:
        from pyzbar import pyzbar

        self._pyzbar = pyzbar
        self.roi = validate_roi(roi)
        self.downscale = None if downscale is None else _validate_downscale(downscale)
        self.harder = harder
        self._symbols = _pyzbar_symbols(pyzbar, formats)
        self.harder_passes = 0

    def _read(self, gray: np.ndarray) -> list[str]:
        symbols = self._pyzbar.decode(gray, symbols=self._symbols)
        return _unique_texts([symbol.data.decode("utf-8", errors="replace") for symbol in symbols])

    def decode(self, frame: np.ndarray) -> list[str]:
        gray = to_grayscale(crop_to_roi(frame, self.roi))
        factor = self.downscale
        if factor is None:
            factor = 0.5 if gray.shape[1] > PYZBAR_MAX_WIDTH else 1.0
        scaled = _scale(gray, factor)
        texts = self._read(scaled)
        if texts:
            return texts
        self.harder_passes += 1
        if factor < 1:
            texts = self._read(gray)
        else:
            # zbar gives up on soft edges; sharpening rescues most small, blurred codes.
            texts = self._read(_sharpen(gray))
        if not texts and self.harder:
            # Light-on-dark print or phone screens; at the reduced size, to bound the cost.
            texts = self._read(cv2.bitwise_not(scaled))
        return texts


_PYZBAR_FORMAT_NAMES = {"qrcode": "QRCODE", "code128": "CODE128"}


def _pyzbar_symbols(pyzbar, formats: Sequence[str] | None):
    if formats is None:
        return None  # zbar's default: every symbology it knows
    if isinstance(formats, str) or not formats:
        raise ValueError(f"formats must be a non-empty list of format names, not {formats!r}")
    symbols = []
    for name in formats:
        key = name.replace("-", "").replace("_", "").replace(" ", "").lower()
        symbol_name = _PYZBAR_FORMAT_NAMES.get(key, key.upper())
        try:
            symbols.append(pyzbar.ZBarSymbol[symbol_name])
        except KeyError:
            raise ValueError(f"unknown barcode format {name!r} for pyzbar") from None
    return symbols


def zxing_available() -> bool:
    try:
        import zxingcpp  # noqa: F401
    except ImportError:
        return False
    return True


def default_decoder(**settings) -> Decoder:
    """The frame pipeline when zxing-cpp is installed, otherwise pyzbar; settings go to the decoder.

    The pipeline takes `roi`, `formats` and `harder` like the others, and `verify` and
    `budget_ms` of its own (see `FramePipeline`); it has no `downscale`.
    """
    if zxing_available():
        from gate_agent.scanner.pipeline import FramePipeline

        return FramePipeline(**settings)
    return PyzbarDecoder(**settings)


def get_decoder(name: str, **settings) -> Decoder:
    """The decoder for a backend name: "zxing", "pyzbar" or "auto" (the pipeline: the best installed)."""
    if name == "auto":
        return default_decoder(**settings)
    if name == "zxing":
        return ZxingDecoder(**settings)
    if name == "pyzbar":
        return PyzbarDecoder(**settings)
    raise ValueError(f"unknown decoder backend {name!r}; choose one of: {', '.join(BACKENDS)}")
