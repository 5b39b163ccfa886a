"""The decoding passes the frame pipeline chooses from: one image treatment and one library each.

Each pass takes the grayscale frame (and what earlier passes learnt about it, a `FrameContext`)
and returns the texts its library read, verified or not: the pipeline alone decides what counts
as a read. Every pass is aimed at a condition the plain zxing-cpp pass loses, and each earns its
place in `pipeline.SECOND_PASSES` by what it adds on the photo benchmark (`bench.camera_decode`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from gate_agent.scanner import finders, qrgrid
from gate_agent.scanner.qrsymbol import decode_modules

Box = tuple[int, int, int, int]
"""x, y, width, height in pixels of the frame."""

# The texture locator works on a copy this wide: enough to see a 40-px code's texture.
_LOCATOR_WIDTH = 320
#: The locator's edges count in full where the grey around them spans this much (of 255), less in proportion
#: below: a code's modules span more under every condition of bench.camera_decode but the worst fading (about 28),
#: the grain of a dark screen or of a camera's gain in a dim hall much less.
_FULL_EDGE_RANGE = 48.0
#: ...and their density is taken over this many px of its copy, about a small code's width there: a code's even
#: texture then outweighs a few lines of printed text beside it.
_DENSITY_WINDOW = 15
#: The locator's box is around what has at least this share of the peak density (a code's texture is denser in
#: some places than others: a higher share boxes only part of it).
_LOCATE_SHARE = 0.6
# Crops are brought to about this many px on their long side before a crop pass reads them.
_CROP_SIDE = 400
# unskewed(): the patch is what has at least half the peak density of edges, and the code spans half the output.
_UNSKEW_SHARE = 0.5
_UNSKEW_MARGIN = 2.0


@dataclass
class FrameContext:
    """One frame as the passes see it, and what the passes found out about it so far."""

    gray: np.ndarray
    # Boxes of symbols zxing located but could not decode: where a targeted pass should look first.
    hints: list[Box] = field(default_factory=list)
    # ...and their corners (4 x 2, in order around the symbol), for the grid reader.
    quads: list[np.ndarray] = field(default_factory=list)
    # Corners of ticket symbols the grid reader found (their fixed patterns fit) but could not decode: the
    # evidence that a ticket's code is in view though unread (gate_agent.scanner.advice).
    symbols: list[np.ndarray] = field(default_factory=list)
    # Whether any pass read any text in the frame, verified or not: the code in view is readable (a foreign
    # one, a forged ticket), so there is no advice to give.
    read_text: bool = False
    # The grid reader's readings in this sighting's earlier frames (the pipeline keeps them; a sighting may
    # show more than one symbol), and those of this frame, which it adds to them.
    sighting: list[np.ndarray] = field(default_factory=list)
    grids: list[np.ndarray] = field(default_factory=list)
    # What is left of the frame's time budget, ms (the pipeline's clock): a pass that tries several
    # places in turn stops when the next would not fit.
    time_left: Callable[[], float] = lambda: float("inf")
    # The pipeline's check of a read (a signature, a known short code): a pass that tries several places
    # goes on past a code that fails it.
    verify: Callable[[str], bool] = lambda _text: True
    # Texts read so far that are shaped like a ticket code but did not verify (forged, or an unknown key).
    unverified: list[str] = field(default_factory=list)
    _region: Box | None = None

    @property
    def region(self) -> Box:
        """Where the code most likely is: a zxing hint, else the densest fine texture in the frame."""
        if self._region is None:
            self._region = self.hints[0] if self.hints else locate_texture(self.gray)
        return self._region

    def crop(self) -> np.ndarray:
        x, y, width, height = self.region
        return self.gray[y : y + height, x : x + width]


def locate_texture(gray: np.ndarray) -> Box:
    """The box around the densest patch of sharp, local edges (a code's modules), with a margin.

    Edges are measured against the local range of brightness, so a smooth background or a single line does
    not count, and weighed by that range up to `_FULL_EDGE_RANGE`: an underexposed code whose modules still span
    that much counts as much as a crisp one, the grain of a dark phone screen or of a dim hall much less. This
    only says where targeted passes look first; it never decides that a frame holds no code.
    """
    height, width = gray.shape
    patch, factor = _dense_patch(gray, _LOCATE_SHARE)
    x, y, box_w, box_h = cv2.boundingRect(patch)
    centre_x, centre_y = (x + box_w / 2) / factor, (y + box_h / 2) / factor
    side = max(box_w, box_h) / factor * 1.3 + 24
    return _clip_box(centre_x, centre_y, side, width, height)


def _dense_patch(gray: np.ndarray, share: float) -> tuple[np.ndarray, float]:
    """The patch of the frame where sharp, local edges are densest (at least `share` of the peak density), as
    a mask on a copy of the frame `_LOCATOR_WIDTH` px wide at most, and that copy's scale."""
    factor = min(1.0, _LOCATOR_WIDTH / gray.shape[1])
    small = scale(gray, factor)
    kernel = np.ones((3, 3), np.uint8)
    gradient = cv2.morphologyEx(small, cv2.MORPH_GRADIENT, kernel).astype(np.float32)
    window = np.ones((9, 9), np.uint8)
    local_range = cv2.dilate(small, window).astype(np.float32) - cv2.erode(small, window)
    edges = (gradient > 0.5 * np.maximum(local_range, 8)) * np.minimum(1.0, local_range / _FULL_EDGE_RANGE)
    density = cv2.blur(edges, (_DENSITY_WINDOW, _DENSITY_WINDOW))
    _low, peak, _at_low, (peak_x, peak_y) = cv2.minMaxLoc(density)
    mask = (density > share * peak).astype(np.uint8)
    _count, labels = cv2.connectedComponents(mask)
    return (labels == labels[peak_y, peak_x]).astype(np.uint8), factor


def unskewed(gray: np.ndarray, side: int = _CROP_SIDE) -> np.ndarray | None:
    """The densest patch of fine texture (most likely the code) mapped onto a square `side` px a side, squeezed
    back to its shape seen from the front: a code held at a steep angle is foreshortened along the tilt, and
    its patch's spread (second moments: an ellipse for a square seen at an angle) says by how much and which
    way. Mapping that ellipse to a circle undoes the tilt's squeeze, up to a turn, which zxing does not mind;
    what perspective leaves is slight. None for a patch without two dimensions."""
    patch, factor = _dense_patch(gray, _UNSKEW_SHARE)
    moments = cv2.moments(patch, True)
    if moments["m00"] == 0:
        return None
    centre = np.array([moments["m10"], moments["m01"]]) / moments["m00"] / factor
    spread = np.array([[moments["mu20"], moments["mu11"]], [moments["mu11"], moments["mu02"]]])
    values, vectors = np.linalg.eigh(spread / moments["m00"] / factor**2)
    if not values.min() > 0:
        return None
    # A square of half-side h spreads h^2 / 3 along each of its axes: to a square of half-side 1, then to the
    # output with the code in the middle half of it (the quiet zone and a margin around it).
    to_unit = vectors @ np.diag(1 / np.sqrt(3 * values)) @ vectors.T
    linear = to_unit * side / (2 * _UNSKEW_MARGIN)
    shift = np.array([side / 2, side / 2]) - linear @ centre
    matrix = np.hstack([linear, shift[:, None]]).astype(np.float32)
    return cv2.warpAffine(gray, matrix, (side, side), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


def _clip_box(centre_x: float, centre_y: float, side: float, width: int, height: int) -> Box:
    x0, y0 = int(max(0, centre_x - side / 2)), int(max(0, centre_y - side / 2))
    x1, y1 = int(min(width, centre_x + side / 2)), int(min(height, centre_y + side / 2))
    return (x0, y0, max(1, x1 - x0), max(1, y1 - y0))


def fit_crop(crop: np.ndarray, side: int = _CROP_SIDE) -> np.ndarray:
    """The crop scaled to about `side` px on its long side (up to 4x; small codes need the pixels)."""
    factor = min(4.0, side / max(crop.shape))
    return scale(crop, factor) if abs(factor - 1) > 0.15 else crop


def unique_texts(texts: Sequence[str]) -> list[str]:
    """Stripped, non-empty texts without repeats, in the order found."""
    seen: dict[str, None] = {}
    for text in texts:
        text = text.strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)


def scale(gray: np.ndarray, factor: float) -> np.ndarray:
    if factor == 1.0:
        return gray
    # Area averaging when shrinking keeps thin modules from aliasing away.
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return cv2.resize(gray, None, fx=factor, fy=factor, interpolation=interpolation)


def sharpen(gray: np.ndarray, amount: float = 0.8, sigma: float = 2.0) -> np.ndarray:
    blurred = cv2.GaussianBlur(gray, (0, 0), sigma)
    return cv2.addWeighted(gray, 1 + amount, blurred, -amount, 0)


def deblur(gray: np.ndarray, sigma: float = 3.0, noise: float = 0.01) -> np.ndarray:
    """The image with a Gaussian blur of `sigma` px undone as far as its noise allows (a Wiener filter, with
    `noise` the noise-to-signal power it assumes): modules that defocus, a slow shutter or distance smeared
    into their neighbours come apart again."""
    height, width = gray.shape
    rows, cols = cv2.getOptimalDFTSize(height), cv2.getOptimalDFTSize(width)
    padded = cv2.copyMakeBorder(gray.astype(np.float32), 0, rows - height, 0, cols - width, cv2.BORDER_REFLECT)
    spectrum = cv2.dft(padded, flags=cv2.DFT_COMPLEX_OUTPUT)
    # A Gaussian's transfer function, real and even: exp(-2 pi^2 sigma^2 f^2) at each frequency f (cycles/px).
    fy = np.fft.fftfreq(rows).astype(np.float32)[:, None]
    fx = np.fft.fftfreq(cols).astype(np.float32)[None, :]
    transfer = np.exp(-2 * np.pi**2 * sigma**2 * (fx**2 + fy**2))
    spectrum *= (transfer / (transfer**2 + noise))[:, :, None]
    restored = cv2.idft(spectrum, flags=cv2.DFT_SCALE | cv2.DFT_REAL_OUTPUT)[:height, :width]
    return cv2.normalize(restored, None, 0, 255, cv2.NORM_MINMAX, cv2.CV_8U)


def flatten_light(gray: np.ndarray) -> np.ndarray:
    """The frame divided by its own low-frequency light, stretched to the full range.

    Faded ink on white paper becomes dark-on-white again, and a shadow or a lighting gradient
    across the code stops deciding which modules a binariser calls dark.
    """
    background = cv2.blur(gray, (31, 31))
    ratio = cv2.divide(gray, background, scale=200)
    return cv2.normalize(ratio, None, 0, 255, cv2.NORM_MINMAX)


class Zxing:
    """zxing-cpp with the options every pass shares."""

    def __init__(self, formats: Sequence[str] | None) -> None:
        import zxingcpp

        self.lib = zxingcpp
        if formats is None:
            self.formats = zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.AllReadable)
        else:
            self.formats = zxingcpp.BarcodeFormats(zxing_formats(zxingcpp, formats))

    def read(self, image: np.ndarray) -> list[str]:
        """A treated image as it is, light-on-dark codes too (a dark-mode screen stays one after any treatment)."""
        results = self.lib.read_barcodes(
            image,
            formats=self.formats,
            try_rotate=False,
            try_invert=True,
            try_downscale=False,
            text_mode=self.lib.TextMode.Plain,
        )
        return unique_texts([result.text for result in results])

    def read_with_hints(self, context: FrameContext) -> list[str]:
        """The first pass: the frame as it is, light-on-dark too; failed symbols left as hints."""
        zxing = self.lib
        results = zxing.read_barcodes(
            context.gray,
            formats=self.formats,
            try_rotate=False,
            try_invert=True,
            try_downscale=True,
            text_mode=zxing.TextMode.Plain,
            return_errors=True,
        )
        height, width = context.gray.shape
        for result in results:
            if not result.valid:
                corners = result.position
                points = (corners.top_left, corners.top_right, corners.bottom_right, corners.bottom_left)
                xs, ys = [p.x for p in points], [p.y for p in points]
                side = max(max(xs) - min(xs), max(ys) - min(ys)) * 1.4 + 24
                context.hints.append(_clip_box(sum(xs) / 4, sum(ys) / 4, side, width, height))
                context.quads.append(np.array([xs, ys], np.float32).T)
        return unique_texts([result.text for result in results if result.valid])


def zxing_formats(zxingcpp, formats: Sequence[str]) -> list:
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


Pass = Callable[[FrameContext], list[str]]


def _pad(gray: np.ndarray) -> np.ndarray:
    """The frame inside a border of paper white: a code cut by the frame's edge gets back the
    quiet zone zxing's detector needs around its finder patterns."""
    border = max(16, gray.shape[0] // 12)
    white = int(np.percentile(gray[:: max(1, gray.shape[0] // 64), :: max(1, gray.shape[1] // 64)], 95))
    return cv2.copyMakeBorder(gray, border, border, border, border, cv2.BORDER_CONSTANT, value=white)


def _pass_table(zxing: Zxing) -> dict[str, Pass]:
    """Every pass by name; what each reads that the first pass misses is from bench.camera_decode."""
    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(8, 8))
    # Darkens all but the brightest greys: toner that glare or fading left pale turns dark again.
    gamma = (255 * (np.arange(256) / 255.0) ** 2.5).astype(np.uint8)
    crop_clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))
    wechat = _wechat_reader()

    def adaptive(gray: np.ndarray, block: int = 31) -> np.ndarray:
        return cv2.adaptiveThreshold(gray, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block, 5)

    def otsu(gray: np.ndarray) -> np.ndarray:
        return cv2.threshold(cv2.GaussianBlur(gray, (0, 0), 1.0), 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)[1]

    def unskew(context: FrameContext) -> list[str]:
        square = unskewed(context.gray)
        return [] if square is None else zxing.read(square) or zxing.read(adaptive(square))

    def crop_deblur(context: FrameContext) -> list[str]:
        restored = deblur(fit_crop(context.crop()))
        return zxing.read(restored) or zxing.read(adaptive(restored))

    return {
        # The code's region brought to ~400 px, as it is: a small or far code that the whole frame's
        # search does not find, with modules too few pixels wide.
        "crop_plain": lambda c: zxing.read(fit_crop(c.crop())),
        # ...brought to ~600 px: the farthest codes.
        "crop_up": lambda c: zxing.read(fit_crop(c.crop(), 600)),
        # ...darkened, then thresholded against its neighbourhood: glare, faded toner, bright screens.
        "crop_gamma": lambda c: zxing.read(adaptive(cv2.LUT(fit_crop(c.crop()), gamma))),
        # The code's region, brought to ~400 px and thresholded once for all: creases, faded
        # toner, moire on phone screens, tilt, motion, far codes.
        "crop_otsu": lambda c: zxing.read(otsu(fit_crop(c.crop()))),
        # ...thresholded against its neighbourhood: glare, dark-mode screens, defocus, far codes.
        "crop_adaptive": lambda c: zxing.read(adaptive(fit_crop(c.crop()))),
        # The frame in a paper-white border: a code cut by the frame's edge (diagonal, corner out).
        "pad": lambda c: zxing.read(_pad(c.gray)),
        # Half size with the light flattened: large codes under glare or on a bright screen.
        "half": lambda c: zxing.read(flatten_light(scale(c.gray, 0.5))),
        "crop_clahe": lambda c: zxing.read(crop_clahe.apply(fit_crop(c.crop()))),
        "crop_sharp_adaptive": lambda c: zxing.read(adaptive(fit_crop(sharpen(c.crop())))),
        "clahe": lambda c: zxing.read(clahe.apply(c.gray)),
        # The code's region brought to ~400 px and its blur undone: defocus, motion, far codes, night.
        "crop_deblur": crop_deblur,
        # The code's patch squeezed back to a square (`unskewed`): a ticket held at a steep angle.
        "unskew": unskew,
        "upscale": lambda c: zxing.read(scale(sharpen(c.gray), 2.0)),
        # Measured and left out of SECOND_PASSES (see there): kept to be measured again.
        "wechat": lambda c: wechat(c.gray),
        "crop_wechat": lambda c: wechat(fit_crop(c.crop())),
        # WeChat's reader on the region at most 160 px wide: its cost bounded (under ~55 ms of one core).
        "crop_wechat_small": lambda c: wechat(_at_most(c.crop(), 160)),
        # Our own reading of the symbol's modules, unsure ones as erasures (qrgrid): where zxing found the
        # symbol but could not decode it, then where finder patterns put it (two are enough).
        "grid": grid_reader(),
    }


def grid_reader() -> Pass:
    def read(context: FrameContext) -> list[str]:
        unverified: list[str] = []
        for tried, (quad, version) in enumerate(itertools.islice(_grid_places(context), _GRID_QUADS)):
            if tried and context.time_left() < _GRID_QUAD_MS:
                break
            reading = qrgrid.read_quad(context.gray, quad, version)
            text = None if reading is None else _decode_in_sighting(reading, context.sighting)
            if text is not None and context.verify(text):
                return [text]
            if text is not None:
                unverified.append(text)  # another code in view: the ticket may be at the next place
            elif reading is not None and reading.fits >= _GRID_KEPT:
                context.grids.append(reading.darkness)
            if text is None and reading is not None and reading.fits >= _TICKET_IN_VIEW:
                context.symbols.append(quad)
        return unverified

    return read


def _decode_in_sighting(reading: qrgrid.Reading, sighting: list[np.ndarray]) -> str | None:
    """The text of this frame's reading alone, else read together with the sighting's earlier readings of
    the same symbol (all of them, then the newest alone: frames that all saw the same can outvote a clear
    one). A reading that fits the fixed patterns badly is likely misplaced: it is read alone."""
    text = decode_modules(reading.darkness)
    if text is not None or reading.fits < _GRID_KEPT:
        return text
    earlier = [seen for seen in sighting if qrgrid.same_symbol(seen, reading.darkness)]
    candidates = [earlier, earlier[-1:]] if len(earlier) > 1 else [earlier] if earlier else []
    for together in candidates:
        text = decode_modules(qrgrid.combine([*together, reading.darkness]))
        if text is not None:
            return text
    return None


def _grid_places(context: FrameContext) -> Iterator[tuple[np.ndarray, int]]:
    """Where the grid reader looks, with the version it reads there: where zxing located a symbol (the version
    whose fixed patterns show best there), then, if the frame has the time for the search, where finder
    patterns put one."""
    for quad in context.quads:
        yield quad, max(qrgrid.TICKET_VERSIONS, key=lambda version: qrgrid.placement_fit(context.gray, quad, version))
    if context.time_left() >= LEAST_MS["grid"]:
        yield from _finder_quads(context)


#: The grid reader reads at most this many places in a frame (each costs a few ms): first where zxing
#: located a symbol, then the places the finder patterns suggest that fit best.
_GRID_QUADS = 2
_GRID_QUAD_MS = 8.0  # about what reading one place costs on one core of a 2020s x86 box
#: A frame's reading joins the sighting's only if it read this share of the fixed modules right (else it
#: is likely of something else, or misplaced).
_GRID_KEPT = 0.85
#: A place whose reading fits a ticket symbol's fixed patterns this well has a ticket's code in it, read or not
#: (the advice to the driver, gate_agent.scanner.advice): a glare brings real codes down to 0.7-0.8; a place
#: without a code fits about half its fixed modules, as a coin toss does (and on 360 empty scenes of
#: bench.photos no place was read at all).
_TICKET_IN_VIEW = 0.65
_FINDER_QUADS = 2
_SETTLED = 3  # the best-fitting placements whose guessed corners are settled (two finders suggest eight)
_FINDER_WIDTH = 640  # px: finder patterns are looked for on a copy at most this wide


def _finder_quads(context: FrameContext) -> list[tuple[np.ndarray, int]]:
    """The symbols' corners (and versions) that finder patterns in the frame suggest, best fitting first."""
    gray = context.gray
    factor = min(1.0, _FINDER_WIDTH / max(gray.shape))
    small = scale(gray, factor)
    seen = finders.find_finders(small)
    found = [(q, v) for v in qrgrid.TICKET_VERSIONS for q in finders.candidate_quads(seen, v, small.shape)]
    if context.time_left() < _GRID_QUAD_MS:
        return []  # no time left to settle the corners and read one
    # The placements that fit best as guessed (two finders give eight to choose from: the third on either
    # side of either, square or foreshortened; and each version puts them apart by its own size) get their
    # guessed corners settled, then are ranked again.
    found.sort(key=lambda place: -qrgrid.placement_fit(gray, place[0].corners / factor, place[1]))
    settled = [(qrgrid.settle_corners(gray, q.corners / factor, v, q.guessed), v) for q, v in found[:_SETTLED]]
    settled.sort(key=lambda place: -qrgrid.placement_fit(gray, *place))
    return settled[:_FINDER_QUADS]


def _at_most(gray: np.ndarray, side: int) -> np.ndarray:
    """The image shrunk to at most `side` px on its long side."""
    return scale(gray, side / max(gray.shape)) if max(gray.shape) > side else gray


#: Passes that only do their work with this much of a frame's budget left (ms): the grid reader searches for
#: finder patterns only then. The pipeline starts them only then too (else its turn comes first in the next
#: frame), so a pass that would have done nothing does not pass its turn on.
LEAST_MS = {"grid": 2 * _GRID_QUAD_MS}

#: Passes whose cost varies tenfold from frame to frame (how many candidate patterns WeChat's reader
#: finds): each runs only as a frame's first second pass, so one slow run never adds to others'.
RUN_ALONE = frozenset({"wechat", "crop_wechat", "crop_wechat_small"})


def _wechat_reader() -> Callable[[np.ndarray], list[str]]:
    factory = getattr(cv2, "wechat_qrcode_WeChatQRCode", None)
    if factory is None:  # OpenCV without its contrib modules
        return lambda gray: []
    # Without its CNN model files: the classic finder-pattern search and several binarisers,
    # which read faded print and a partly covered finder pattern better than zxing does.
    detector = factory()

    def read(gray: np.ndarray) -> list[str]:
        texts, _points = detector.detectAndDecode(gray)
        return unique_texts(list(texts))

    return read


def build(formats: Sequence[str] | None, second_passes: Sequence[str] | None) -> tuple[Pass, list[tuple[str, Pass]]]:
    """The first pass and the named second passes, in order (default: `SECOND_PASSES`)."""
    zxing = Zxing(formats)
    table = _pass_table(zxing)
    names = SECOND_PASSES if second_passes is None else second_passes
    unknown = [name for name in names if name not in table]
    if unknown:
        raise ValueError(f"unknown decoding passes {unknown}; choose from {sorted(table)}")
    return zxing.read_with_hints, [(name, table[name]) for name in names]


#: What each pass costs before it is first timed, in ms per megapixel on one core of a 2020s x86 box
#: (the pipeline then follows its measured cost): enough to keep a slow pass out of a full frame.
PRIOR_MS_PER_MEGAPIXEL = {
    "zxing": 2.0,
    "crop_plain": 1.0,
    "crop_up": 1.5,
    "crop_gamma": 3.0,
    "crop_otsu": 2.5,
    "crop_adaptive": 3.5,
    "pad": 2.0,
    "half": 1.0,
    "crop_clahe": 3.5,
    "crop_sharp_adaptive": 4.0,
    "clahe": 5.0,
    "crop_deblur": 6.0,
    "unskew": 4.0,
    "upscale": 10.0,
    "wechat": 300.0,
    "crop_wechat": 40.0,
    "crop_wechat_small": 20.0,
    "grid": 20.0,
}

#: The second passes in the order they run. Measured on bench.camera_decode's development frames (seeds 2 and 3,
#: 980 frames, every condition and severity at 640x480 and 1280x720; CPU ms of one thread): the first pass reads
#: 715, and each pass alone reads these of the 265 it misses (median ms): crop_plain 32 (0.3), crop_up 41 (0.5),
#: pad 22 (0.9), crop_gamma 52 (1.0), half 13 (0.4), crop_otsu 35 (1.3), crop_adaptive 45 (0.9), crop_clahe 47
#: (0.9), crop_sharp_adaptive 43 (1.1), clahe 32 (1.7), upscale 41 (3.0), crop_wechat_small 48 (11.5, p99 44).
#: The order is by frames that none before read, per ms; the whole pipeline then reads 84.3 % and 82.9 % of the
#: two seeds (the order before crop_plain, crop_up and crop_gamma came: 83.5 % and 82.2 %; without WeChat's pass
#: 83.9 % and 82.4 %), at a p99 of 40 ms a frame (27 before; slowest 54). Every pass of every library together
#: reads 85.7 % and 84.7 %: what is left (far codes of 1.5 px modules, a thumb over a finder pattern, the worst
#: glare, motion, defocus and creases) no treatment here reads.
#: Left out, measured: OpenCV's QRCodeDetector on the region at ~400 px (of the libraries it reads glare best on
#: some seeds: 6 of the 137 frames zxing's first pass misses on seed 2, 6.7 ms each; in the pipeline 83.9 % and
#: 83.1 % against 84.5 % and 83.5 % without it, its time coming out of other passes'); WeChat's reader on the
#: whole frame (60-260 ms on a frame it cannot read), on the region at 200-400 px (+1-2 frames, up to 120 ms);
#: the Code 128 short code (neither zxing-cpp nor pyzbar read it in any of the 265 frames); pyzbar on the region
#: (+1); a second candidate region and a finer texture locator (+0-1); median, erosion or dilation before
#: thresholding, stretching the region for tilt, blurring moire (nothing).
#: The grid reader (qrgrid: modules read against their neighbourhood, unsure codewords erased, finders found
#: two out of three, the sighting's frames read together) goes past that union: on seeds 2 and 3 it reads 3-8
#: frames of each that nobody else did (thumbs over a finder, glare, creases, tilt; median 2-5 ms, up to ~35),
#: and the pipeline goes from 84.1 % and 83.1 % to 84.5-85.5 % and 83.1-83.5 %, at a p99 of 41-43 ms a frame
#: (runs differ by a few frames). Placed earlier (after pad) it reads more frames, most of which later passes
#: read anyway: 85.5 % and 82.9 %.
#: crop_deblur (the region's blur undone by a Wiener filter, a Gaussian of 3 px at ~400 px) reads 8 of the 153
#: frames the whole pipeline missed on seeds 2 and 3, and none of the libraries' passes reads (defocus 2 and 3,
#: night, low light, far codes; median 3.9 ms, p99 7.1); with it the pipeline reads 423 and 417 of 490 (417 and
#: 415 without, at the 50 ms budget). Wiener filters for a defocus disc (2-5 px) and a stronger unsharp mask read
#: a subset of those.
#: The grid reader moved up after pad (2026-12-07): since a frame fills its budget past a pass that does not fit
#: and the grid reader waits for the time its finder search needs, most of what the pipeline missed within the
#: budget but read without one was the grid reader's (15 of 19 frames on development seeds 2, 3, 4 and 11, 1,960
#: frames). After pad the pipeline reads 1,709 of them (twice), after crop_adaptive or crop_deblur 1,708-1,709,
#: first 1,707, at the end 1,698; every pass on every frame 1,719. The p99 stays 49-52 ms a frame.
#: unskew (the code's patch squeezed back to a square by its second moments, then zxing) reads 12 of the 255
#: frames those seeds' pipeline missed, 10 of them tilted 50-62 degrees (3.4 ms median); every pass on every
#: frame then reads 1,731. Within the budget, right after the grid reader or after crop_adaptive: 1,718 against
#: 1,703-1,705 without it in the same hour (after crop_up 1,715).
SECOND_PASSES = (
    "crop_plain",
    "crop_up",
    "pad",
    "grid",
    "unskew",
    "crop_gamma",
    "half",
    "crop_otsu",
    "crop_adaptive",
    "crop_clahe",
    "crop_sharp_adaptive",
    "crop_deblur",
    "clahe",
    "upscale",
    "crop_wechat_small",
)
