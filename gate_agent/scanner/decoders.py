"""Turn camera frames into code strings with zxing-cpp or pyzbar.

Both decoders make a cheap pass tuned for the gate's own tickets (QR or Code 128,
dark on light) and only pay for a harder pass when the frame seems to hold a code
the cheap pass could not read. Most kiosk frames show no ticket at all, so the cost
of an empty frame is what bounds the CPU load of a gate.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

Roi = tuple[int, int, int, int]
"""Region of interest (x, y, width, height) in pixels of the full frame."""

DEFAULT_FORMATS = ("qrcode", "code128")
BACKENDS = ("auto", "zxing", "pyzbar")

# Frames wider than this are halved before pyzbar sees them (see PyzbarDecoder).
PYZBAR_MAX_WIDTH = 960

# Edge-density heuristic used to decide whether a harder pass is worth its cost:
# QR modules give a dense patch of edges; plain surfaces, lines and card borders do not.
_HEURISTIC_WIDTH = 320
_HEURISTIC_EDGE_CONTRAST = 40
_HEURISTIC_WINDOW = 15
_HEURISTIC_MIN_DENSITY = 0.85
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


def _scale(gray: np.ndarray, factor: float) -> np.ndarray:
    if factor == 1.0:
        return gray
    # Area averaging when shrinking keeps thin modules from aliasing away.
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(gray, None, fx=factor, fy=factor, interpolation=interpolation)


def _validate_downscale(downscale: float) -> float:
    if isinstance(downscale, bool) or not isinstance(downscale, int | float):
        raise ValueError(f"downscale must be a number in (0, 1], not {downscale!r}")
    if not 0 < downscale <= 1:
        raise ValueError(f"downscale must be in (0, 1] (1 = full size), not {downscale!r}")
    return float(downscale)


def looks_code_like(gray: np.ndarray) -> bool:
    """Cheap check (~0.2 ms) for a patch dense with edges, as a QR code or barcode makes."""
    height, width = gray.shape[:2]
    if width > _HEURISTIC_WIDTH:
        gray = _scale(gray, _HEURISTIC_WIDTH / width)
    gradient = cv2.morphologyEx(gray, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    edges = (gradient > _HEURISTIC_EDGE_CONTRAST).astype(np.float32)
    density = cv2.blur(edges, (_HEURISTIC_WINDOW, _HEURISTIC_WINDOW))
    return float(density.max()) >= _HEURISTIC_MIN_DENSITY


def _unique_texts(texts: list[str]) -> list[str]:
    """Stripped, non-empty texts without repeats, in the order found."""
    seen: dict[str, None] = {}
    for text in texts:
        text = text.strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)


def _sharpen(gray: np.ndarray) -> np.ndarray:
    blurred = cv2.GaussianBlur(gray, (0, 0), 2.0)
    return cv2.addWeighted(gray, 1.8, blurred, -0.8, 0)


class ZxingDecoder:
    """zxing-cpp: fast, and the better reader of blurred, tilted or small codes.

    The cheap pass looks only for the configured formats at full size, without the
    inverted search, the downscaled copies or the 90-degree search for linear codes (QR
    is found at any angle anyway). The harder pass (all of those, then for frames up to
    960 px wide a sharpened 2x copy, for QR modules too small to detect) runs only when the cheap pass found nothing and
    zxing saw a symbol it could not decode, or the frame has a code-like patch, or
    `harder=True`. "qrcode" means the standard (model 2) QR only, not Micro QR or rMQR.
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
            parsed_formats = _zxing_formats(zxingcpp, formats)
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
            return_errors=True,
        )
        texts = _unique_texts([result.text for result in results if result.valid])
        if texts:
            return texts
        unreadable_symbol = bool(results)  # only invalid results were returned
        if not (self.harder or unreadable_symbol or looks_code_like(gray)):
            return []
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


def _zxing_formats(zxingcpp, formats: Sequence[str]) -> list:
    """The zxing formats for a list of format names."""
    if isinstance(formats, str) or not formats:
        raise ValueError(f"formats must be a non-empty list of format names, not {formats!r}")
    parsed = []
    for name in formats:
        if name.replace(" ", "").lower() == "qrcode":
            # zxing's "QRCode" is the whole family, Micro QR and rMQR included; those tiny
            # symbols turn up in print and noise (a hard photo read "03816" from its text).
            # Printed tickets carry a standard (model 2) QR code.
            parsed.append(zxingcpp.BarcodeFormat.QRCodeModel2)
            continue
        try:
            parsed.append(zxingcpp.barcode_format_from_str(name))
        except ValueError:
            raise ValueError(f"unknown barcode format {name!r} for zxing") from None
    return parsed


class PyzbarDecoder:
    """pyzbar (zbar): the fallback when zxing-cpp is not installed.

    Frames are converted to grayscale first because pyzbar reads only the first channel
    of a colour image (the blue one for OpenCV frames). Frames wider than 960 px are
    halved by default (`downscale=None`), which makes zbar about 3x faster on them. When
    that finds nothing but the frame looks code-like (or `harder=True`), the full-size
    frame is tried too, since halving loses codes whose modules are already small; a frame
    that was not reduced is tried again sharpened instead. `harder=True` also tries the
    inverted image (light-on-dark codes).
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
        if not (self.harder or looks_code_like(scaled)):
            return []
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
    """zxing-cpp when it is installed, otherwise pyzbar; settings go to the decoder."""
    if zxing_available():
        return ZxingDecoder(**settings)
    return PyzbarDecoder(**settings)


def get_decoder(name: str, **settings) -> Decoder:
    """The decoder for a backend name: "zxing", "pyzbar" or "auto" (the best installed)."""
    if name == "auto":
        return default_decoder(**settings)
    if name == "zxing":
        return ZxingDecoder(**settings)
    if name == "pyzbar":
        return PyzbarDecoder(**settings)
    raise ValueError(f"unknown decoder backend {name!r}; choose one of: {', '.join(BACKENDS)}")
