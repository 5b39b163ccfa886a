"""A QR code symbol read from its modules: format, unmasking, Reed-Solomon with erasures, and the text.

The libraries decide each module dark or light and then correct what they got wrong. A photo a person
can still read often has a patch of modules that nobody can decide (glare, a crease, a thumb, a smear)
next to modules that are clear. Here each module comes with how sure its reading is, so the codewords
under an unsure patch go to Reed-Solomon as erasures, which it corrects twice as many of as errors.

    text = decode_modules(darkness)  # darkness: a square array, 0 light .. 1 dark, NaN unknown

A decode is accepted only with margin to spare: every block must correct within its capacity less
`_SPARE` check symbols, and the bit stream must end the way the standard says (terminator, padding).
A frame of noise therefore does not come out as text; at the gate the signature check comes on top.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import reedsolo
from segno import consts

#: Check symbols each block keeps unused when it corrects: what stands between a damaged code and a
#: wrong text that happens to decode. With 2 left, a block of noise passes about once in 65,536; the
#: bit stream's strict end, the ticket's shape and, at the gate, its signature come on top.
_SPARE = 2
#: A codeword with a bit read closer to undecided (0.5) than this is unsure: the first to be erased...
_UNSURE = 0.15
#: ...and with one closer than this, doubtful: erased too when erasing the unsure ones is not enough.
#: A codeword read surely is never erased, so a crisp but wrong reading is not guessed right.
_DOUBTFUL = 0.3
#: How many fewer than its unsure (or doubtful) codewords, as many of them as it may erase, a block is also tried
#: with erased: on development glare frames the blocks only this reads read with 16-20 erased, where a version-5
#: block may erase 22.
_FEWER_ERASED = (0, 2, 4, 6)
_ALPHANUMERIC = consts.ALPHANUMERIC_CHARS.decode("ascii")
#: Reed-Solomon blocks per version and error level: (count, codewords, data codewords) groups.
_BLOCKS: dict = consts.ECC
# The error level's two format bits, as the standard numbers them, to segno's error constant.
_ERROR_BITS = {1: consts.ERROR_LEVEL_L, 0: consts.ERROR_LEVEL_M, 3: consts.ERROR_LEVEL_Q, 2: consts.ERROR_LEVEL_H}

_MASKS: tuple[Callable[[np.ndarray, np.ndarray], np.ndarray], ...] = (
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i + j) % 2 + (i * j) % 3) % 2 == 0,
)


def version_of(size: int) -> int | None:
    """The QR version of a symbol `size` modules wide (21 is version 1), or None for no version."""
    version, rest = divmod(size - 17, 4)
    return version if rest == 0 and 1 <= version <= 40 else None


@dataclass(frozen=True)
class Layout:
    """Where everything sits in a symbol of one version."""

    size: int
    # Modules whose value the standard fixes (finders, separators, timing, alignment, the dark module),
    # with that value; -1 elsewhere.
    fixed: np.ndarray
    # Row and column of each data bit in reading order (codewords' bits, most significant first).
    data_rows: np.ndarray
    data_cols: np.ndarray
    # Format information: the 15 bits' modules, both copies, bit 0 first.
    format_rows: tuple[np.ndarray, np.ndarray]
    format_cols: tuple[np.ndarray, np.ndarray]


@functools.cache
def layout(version: int) -> Layout:
    size = 17 + 4 * version
    fixed = np.full((size, size), -1, np.int8)
    reserved = np.zeros((size, size), bool)
    _finders(fixed, size)
    fixed[6, 8 : size - 8] = (np.arange(8, size - 8) % 2 == 0).astype(np.int8)
    fixed[8 : size - 8, 6] = (np.arange(8, size - 8) % 2 == 0).astype(np.int8)
    _alignment(fixed, version)
    fixed[size - 8, 8] = 1  # the dark module
    format_rows, format_cols = _format_positions(size)
    for rows, cols in zip(format_rows, format_cols, strict=True):
        reserved[rows, cols] = True
    if version >= 7:  # version information, two 6 x 3 blocks
        reserved[:6, size - 11 : size - 8] = True
        reserved[size - 11 : size - 8, :6] = True
    data = (fixed < 0) & ~reserved
    rows, cols = _placement(data, size)
    return Layout(size, fixed, rows, cols, format_rows, format_cols)


def _finders(fixed: np.ndarray, size: int) -> None:
    ring = np.zeros((7, 7), np.int8)
    ring[[0, 6], :] = ring[:, [0, 6]] = 1
    ring[2:5, 2:5] = 1
    for top, left in ((0, 0), (0, size - 7), (size - 7, 0)):
        # The pattern and its white separator, clipped to the symbol.
        r0, c0 = max(0, top - 1), max(0, left - 1)
        fixed[r0 : top + 8, c0 : left + 8] = 0
        fixed[top : top + 7, left : left + 7] = ring


def _alignment(fixed: np.ndarray, version: int) -> None:
    if version < 2:
        return
    centres = consts.ALIGNMENT_POS[version - 2]
    pattern = np.ones((5, 5), np.int8)
    pattern[1:4, 1:4] = 0
    pattern[2, 2] = 1
    last = centres[-1]
    for row in centres:
        for col in centres:
            if (row, col) in ((6, 6), (6, last), (last, 6)):
                continue  # where the finders are
            fixed[row - 2 : row + 3, col - 2 : col + 3] = pattern


def _format_positions(size: int) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    # Copy 1, around the top-left finder: bits 0-7 down column 8 (skipping the timing row), 8-14 along row 8.
    rows1 = [0, 1, 2, 3, 4, 5, 7, 8, 8, 8, 8, 8, 8, 8, 8]
    cols1 = [8, 8, 8, 8, 8, 8, 8, 8, 7, 5, 4, 3, 2, 1, 0]
    # Copy 2: bits 0-7 along row 8 at the top right, 8-14 up column 8 at the bottom left.
    rows2 = [8] * 8 + [size - 7 + k for k in range(7)]
    cols2 = [size - 1 - k for k in range(8)] + [8] * 7
    return (np.array(rows1), np.array(rows2)), (np.array(cols1), np.array(cols2))


def _placement(data: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The data modules in the order the bit stream fills them: two-module columns from the right,
    alternately upwards and downwards, the vertical timing column skipped."""
    rows, cols = [], []
    upwards = True
    right = size - 1
    while right > 0:
        if right == 6:
            right -= 1
        order = range(size - 1, -1, -1) if upwards else range(size)
        for row in order:
            for col in (right, right - 1):
                if data[row, col]:
                    rows.append(row)
                    cols.append(col)
        upwards = not upwards
        right -= 2
    return np.array(rows), np.array(cols)


def read_format(dark: np.ndarray, shape: Layout) -> tuple[int, int] | None:
    """(error level constant, mask) of the valid format word closest to both copies, weighed by how sure
    each module is; None when two words are equally close (nothing to go on)."""
    sure = np.nan_to_num(dark - 0.5)
    copies = list(zip(shape.format_rows, shape.format_cols, strict=True))
    scores = []
    for word in consts.FORMAT_INFO:
        bits = np.array([(word >> k) & 1 for k in range(15)]) * 2 - 1  # +1 dark, -1 light
        scores.append(sum(float(np.dot(bits, sure[rows, cols])) for rows, cols in copies))
    order = np.argsort(scores)[::-1]
    if scores[order[0]] <= 0 or scores[order[0]] - scores[order[1]] < 1e-6:
        return None
    best = int(order[0])
    return _ERROR_BITS[best >> 3], best & 7


@functools.cache
def _codec(check_symbols: int) -> reedsolo.RSCodec:
    # QR codes' Reed-Solomon: GF(256) over x^8+x^4+x^3+x^2+1, generator 2, first consecutive root 0.
    return reedsolo.RSCodec(check_symbols, fcr=0, prim=0x11D, generator=2)


def decode_modules(dark: np.ndarray) -> str | None:
    """The text of the symbol whose modules are `dark` (0 light .. 1 dark, NaN unknown), or None."""
    version = version_of(dark.shape[0]) if dark.ndim == 2 and dark.shape[0] == dark.shape[1] else None
    if version is None:
        return None
    shape = layout(version)
    found = read_format(dark, shape)
    if found is None:
        return None
    error, mask = found
    values = dark[shape.data_rows, shape.data_cols]
    flip = _MASKS[mask](shape.data_rows, shape.data_cols)
    bits = np.where(flip, 1 - values, values)
    sure = np.abs(np.nan_to_num(bits - 0.5))
    groups: tuple = _BLOCKS[version][error]
    total = sum(group.num_blocks * group.num_total for group in groups)
    codewords = np.packbits(bits[: total * 8] > 0.5)
    certainty = sure[: total * 8].reshape(total, 8).min(axis=1)
    data = _correct_blocks(codewords, certainty, groups)
    return None if data is None else _parse(data, version)


def _correct_blocks(codewords: np.ndarray, certainty: np.ndarray, groups) -> bytes | None:
    """The data codewords once every block is corrected (interleaved as the standard places them)."""
    blocks = [(group.num_data, group.num_total) for group in groups for _ in range(group.num_blocks)]
    index_of: list[list[int]] = [[] for _ in blocks]  # each block's codeword positions in the placed stream
    position = 0
    for k in range(max(data for data, _total in blocks)):
        for block, (data, _total) in enumerate(blocks):
            if k < data:
                index_of[block].append(position)
                position += 1
    for _ in range(blocks[0][1] - blocks[0][0]):
        for block in range(len(blocks)):
            index_of[block].append(position)
            position += 1
    out = bytearray()
    for (data, total), indices in zip(blocks, index_of, strict=True):
        corrected = _correct(bytes(codewords[indices]), certainty[indices], total - data)
        if corrected is None:
            return None
        out += corrected[:data]
    return bytes(out)


def _correct(block: bytes, certainty: np.ndarray, check: int) -> bytes | None:
    """The block corrected, in the way of generalized minimum distance decoding (Forney): tried as read, with its
    unsure codewords erased (the least sure first, as many as leave `_SPARE` check symbols), with its doubtful
    ones erased too, and with two, four and six fewer erased than each of those; fewest erasures first. Each
    erasure costs half what an error does: a glare leaves more codewords unsure than a block may erase, and
    erasing as many as it may can leave no room for an error among the rest, where erasing a few fewer does."""
    codec = _codec(check)
    least_sure = np.argsort(certainty, kind="stable")
    most = check - _SPARE
    tops = [min(most, int((certainty < level).sum())) for level in (_UNSURE, _DOUBTFUL)]
    tries = {0, *(top - fewer for top in tops for fewer in _FEWER_ERASED if top >= fewer)}
    for erased in sorted(tries):
        erase = sorted(int(k) for k in least_sure[:erased])
        try:
            message, _full, errata = codec.decode(block, erase_pos=erase or None)
        except reedsolo.ReedSolomonError:
            continue
        errors = len(set(errata) - set(erase))
        if 2 * errors + len(erase) <= most:
            return bytes(message)
    return None


def _parse(data: bytes, version: int) -> str | None:
    """The text of a numeric, alphanumeric and byte-mode bit stream; None when it does not end as the
    standard says (a terminator of zeros and the padding codewords), the sign of a wrong decode."""
    bits = np.unpackbits(np.frombuffer(data, np.uint8))
    reader = _Bits(bits)
    text = []
    while reader.left >= 4:
        mode = reader.take(4)
        if mode == 0:
            break
        count_bits = None if mode is None else _count_bits(mode, version)
        count = None if count_bits is None else reader.take(count_bits)
        if mode is None or count is None:
            return None
        part = _read_segment(reader, mode, count)
        if part is None:
            return None
        text.append(part)
    if not text or not reader.rest_is_padding():
        return None
    return "".join(text)


def _count_bits(mode: int, version: int) -> int | None:
    table = {1: (10, 12, 14), 2: (9, 11, 13), 4: (8, 16, 16)}.get(mode)
    if table is None:
        return None
    return table[0 if version <= 9 else 1 if version <= 26 else 2]


def _read_segment(reader: _Bits, mode: int, count: int) -> str | None:
    if mode == 1:
        digits = []
        groups = [(10, 3)] * (count // 3) + {0: [], 1: [(4, 1)], 2: [(7, 2)]}[count % 3]  # (bits, digits)
        for width, size in groups:
            value = reader.take(width)
            if value is None or value >= 10**size:
                return None
            digits.append(str(value).zfill(size))
        return "".join(digits)
    if mode == 2:
        chars = []
        for _ in range(count // 2):
            value = reader.take(11)
            if value is None or value >= 45 * 45:
                return None
            chars += [_ALPHANUMERIC[value // 45], _ALPHANUMERIC[value % 45]]
        if count % 2:
            value = reader.take(6)
            if value is None or value >= 45:
                return None
            chars.append(_ALPHANUMERIC[value])
        return "".join(chars)
    raw = [reader.take(8) for _ in range(count)]
    if any(value is None for value in raw):
        return None
    try:
        return bytes(raw).decode("utf-8")  # type: ignore[arg-type]
    except UnicodeDecodeError:
        return bytes(raw).decode("iso-8859-1")  # type: ignore[arg-type]


class _Bits:
    def __init__(self, bits: np.ndarray) -> None:
        self.bits = bits
        self.at = 0

    @property
    def left(self) -> int:
        return len(self.bits) - self.at

    def take(self, width: int) -> int | None:
        if width > self.left:
            self.at = len(self.bits)
            return None
        value = 0
        for bit in self.bits[self.at : self.at + width]:
            value = value * 2 + int(bit)
        self.at += width
        return value

    def rest_is_padding(self) -> bool:
        """Zero bits to the byte, then 0xEC, 0x11, 0xEC... (the standard's pad codewords). Some encoders
        (segno among them) add a whole byte of zeros when the stream already ends on a byte."""
        start = -(-self.at // 8) * 8
        if self.bits[self.at : start].any():
            return False
        rest = np.packbits(self.bits[start:]).tolist()
        if rest[:1] == [0]:
            rest = rest[1:]
        return rest == [0xEC, 0x11] * (len(rest) // 2) + [0xEC] * (len(rest) % 2)
