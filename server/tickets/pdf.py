"""The printed gate ticket: a PDF with the QR code (full signed code), the 20-digit short code labelled as
the code to type when the QR cannot be read, a Code 128-C barcode of it for 1-D handheld readers, and the
ticket's details.

One layout, drawn in a fixed box (:data:`TICKET_WIDTH` x :data:`TICKET_HEIGHT`) and scaled into the cell it
gets: the whole page for one ticket per sheet, a quarter or a sixth of an A4 sheet for four or six. Every
element has its own band of the box, so nothing overlaps and nothing leaves the cell whatever the sheet.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import segno
from reportlab.graphics.barcode.code128 import Code128Auto
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen import canvas
from segno import consts

from gate_core.codes import DECIMAL_PREFIX, decimal_form, human_readable, normalize_code
from server.i18n import translate

#: Tickets per A4 sheet a customer may choose: one per page, or a 2 x 2 or 2 x 3 grid to cut.
PER_SHEET = (1, 4, 6)
#: The ticket's own box, in mm: a sixth of an A4 sheet less a margin, so six fit at full size.
TICKET_WIDTH = 95.0
TICKET_HEIGHT = 88.0
#: Blank space around each ticket inside its cell (where the sheet is cut).
CELL_MARGIN = 5.0
#: A lone ticket is enlarged to fill the page, but no more than this (type stays a readable size).
MAX_SCALE = 1.8
PAD = 4.0


#: The top of the band under the QR ("Valid at the gate"), mm below the box's top edge. A QR whose quiet zone
#: reaches lower pushes that band and everything under it down, and the box grows by as much.
BAND_TOP = 53.4
#: Where the line under the title ends (its descenders), mm below the box's top edge.
_SUBTITLE_BOTTOM = 12.0
#: A full ticket code: "PG1" and 120 base32 characters; every code has this length, so one symbol size.
_CODE_SHAPE = "PG1" + "A" * 120


@dataclass(frozen=True)
class QrStyle:
    """How the QR is drawn: its side on the ticket box (mm, quiet zone excluded), where its top sits (mm below
    the box's top edge), the clear space kept around it (in modules), its error-correction level (L, M, Q, H),
    whether segno may raise that level when the higher one fits the same version, and whether a full code goes
    in its decimal form (``gate_core.codes.decimal_form``: numeric mode, version 5 at M) or its base 32 form
    (alphanumeric, version 6). Either form verifies as the same code; only how it is drawn changes."""

    size: float = 35.0
    top: float = 15.5
    quiet: float = 3.4
    error: str = "m"
    boost_error: bool = True
    decimal: bool = False


#: The printed design, chosen on the photo benchmark (python -m bench.ticket_design; docs/performance.md): a 44 mm
#: QR (39.1 mm six to a sheet, 79 mm alone on a page) at level M, four modules of clear space, the code in its
#: decimal form (version 5, 37 modules). Over the 35 mm code printed before, 44 mm read 9 points more of the
#: benchmark's frames; the decimal form's bigger modules then read 3.5 points more than the base 32 form
#: (version 6). Level L read as well as M with less to spare for thumbs, creases and toner gaps; Q or byte mode
#: make the modules smaller.
QR_STYLE = QrStyle(size=44.0, quiet=4.0, decimal=True)


@dataclass(frozen=True)
class PrintableTicket:
    ticket_id: int
    code: str
    short_code: str
    company: str
    tax_id: str
    vessel: str
    voyage: str
    eta: str  # times as printed: in the terminal's time zone and the reader's style, e.g. "24 nov 2026 08:00"
    valid_from: str
    valid_until: str
    services: list[str]
    transaction_no: str


@dataclass(frozen=True)
class Cell:
    """Where one ticket goes on a page, in points from the page's bottom-left corner."""

    x: float
    y: float
    width: float
    height: float


def sheet_cells(per_sheet: int) -> list[Cell]:
    """The cells of an A4 sheet holding ``per_sheet`` tickets, in reading order (left to right, top down)."""
    if per_sheet not in PER_SHEET:
        raise ValueError(f"per_sheet must be one of {PER_SHEET}")
    width, height = A4
    if per_sheet == 1:
        return [Cell(0, 0, width, height)]
    columns, rows = 2, per_sheet // 2
    cell_w, cell_h = width / columns, height / rows
    return [
        Cell(col * cell_w, height - (row + 1) * cell_h, cell_w, cell_h) for row in range(rows) for col in range(columns)
    ]


def qr_symbol(text: str, style: QrStyle = QR_STYLE) -> segno.QRCode:
    """The QR symbol a ticket carries for ``text``: a full code in the style's form, each part in the densest
    mode that holds it (segno keeps one mode for a whole text unless given the parts); anything else as is."""
    content: str | list[tuple[str, int]] = text
    full = normalize_code(text)
    if full is not None and style.decimal:
        digits = decimal_form(full)[len(DECIMAL_PREFIX) :]
        content = [(DECIMAL_PREFIX, consts.MODE_ALPHANUMERIC), (digits, consts.MODE_NUMERIC)]
    elif full is not None:
        content = [(full, consts.MODE_ALPHANUMERIC)]
    # segno encodes a list of (text, mode) parts as one segment each (segno.encoder.prepare_data); its type
    # hints name only a single text.
    return segno.make(content, error=style.error, micro=False, boost_error=style.boost_error)  # type: ignore[arg-type]


@functools.cache
def module_mm(style: QrStyle = QR_STYLE) -> float:
    """The side of one QR module on the ticket box, mm (once per style: every code has the same length, so
    one symbol size, and encoding a sample costs as much as a ticket's own QR)."""
    return style.size / qr_symbol(_CODE_SHAPE, style).symbol_size(border=0)[0]


def _quiet_mm(style: QrStyle) -> float:
    return style.quiet * module_mm(style)


def qr_box(style: QrStyle = QR_STYLE) -> tuple[float, float]:
    """The QR's left and top edges on the ticket box, mm: at the right, under the title and the line under it
    (its descenders end :data:`_SUBTITLE_BOTTOM` mm down), each with the quiet zone clear."""
    right_margin = max(PAD, _quiet_mm(style) + 0.2)  # the box's border line is ink too
    return TICKET_WIDTH - right_margin - style.size, max(style.top, _SUBTITLE_BOTTOM + _quiet_mm(style))


def _stretch(style: QrStyle) -> float:
    """How far the bands under the QR move down (and the box grows) to keep the QR's quiet zone clear."""
    return max(0.0, qr_box(style)[1] + style.size + _quiet_mm(style) - BAND_TOP)


def box_height(style: QrStyle = QR_STYLE) -> float:
    """The ticket box's height, mm: :data:`TICKET_HEIGHT`, taller when the QR needs it."""
    return TICKET_HEIGHT + _stretch(style)


def _draw_qr(pdf: canvas.Canvas, qr: segno.QRCode, x: float, y: float, size: float) -> None:
    """Draw the QR as one vector path (a rectangle per run of dark modules): sharp at any printer resolution,
    and cheap enough that a sheet of hundreds renders in seconds."""
    matrix = [list(row) for row in qr.matrix]
    cell = size / len(matrix)
    path = pdf.beginPath()
    for row_index, row in enumerate(matrix):
        top = y + size - (row_index + 1) * cell
        col = 0
        while col < len(row):
            if not row[col]:
                col += 1
                continue
            start = col
            while col < len(row) and row[col]:
                col += 1
            path.rect(x + start * cell, top, (col - start) * cell, cell)
    pdf.setFillColorRGB(0, 0, 0)
    pdf.drawPath(path, stroke=0, fill=1)


def _fitted(text: str, font: str, size: float, width: float, smallest: float) -> tuple[str, float]:
    """``text`` at the largest size down to ``smallest`` that fits ``width``, cut with "…" if even that is too wide."""
    while size > smallest and stringWidth(text, font, size) > width:
        size -= 0.25
    if stringWidth(text, font, size) <= width:
        return text, size
    while text and stringWidth(text + "…", font, size) > width:
        text = text[:-1]
    return text.rstrip() + "…", size


def _text(pdf: canvas.Canvas, text: str, x: float, top: float, font: str, size: float, width: float) -> None:
    """One line whose baseline is ``top`` mm below the box's top edge, fitted to ``width`` mm."""
    fitted, fitted_size = _fitted(text, font, size, width * mm, smallest=size * 0.8)
    pdf.setFont(font, fitted_size)
    pdf.drawString(x * mm, (TICKET_HEIGHT - top) * mm, fitted)


def _field(pdf: canvas.Canvas, label: str, value: str, x: float, top: float, width: float) -> None:
    _text(pdf, label, x, top, "Helvetica-Bold", 6, width)
    _text(pdf, value, x, top + 3.4, "Helvetica", 8, width)


def _draw_ticket(pdf: canvas.Canvas, ticket: PrintableTicket, lang: str, style: QrStyle) -> None:
    """The ticket in its box's own coordinates (origin at the box's bottom-left corner)."""

    def _(text: str) -> str:
        return translate(lang, text)

    inner = TICKET_WIDTH - 2 * PAD
    pdf.setStrokeColorRGB(0.6, 0.6, 0.6)  # the cut line: light, so it never reads as part of a code
    pdf.setLineWidth(0.5)
    pdf.roundRect(0, 0, TICKET_WIDTH * mm, box_height(style) * mm, 3 * mm)
    pdf.setFillColorRGB(0, 0, 0)
    pdf.saveState()
    pdf.translate(0, _stretch(style) * mm)  # the title, the QR and the text beside it sit at the box's top
    _text(pdf, _("Gate ticket") + f"  #{ticket.ticket_id}", PAD, 7.5, "Helvetica-Bold", 11, inner)
    _text(pdf, _("Valid for one single entry at the port gate."), PAD, 11.5, "Helvetica", 6.5, inner)
    qr_x, qr_top = qr_box(style)
    qr = qr_symbol(ticket.code, style)
    _draw_qr(pdf, qr, qr_x * mm, (TICKET_HEIGHT - qr_top - style.size) * mm, style.size * mm)
    beside_qr = qr_x - PAD - max(4.0, _quiet_mm(style))  # the QR's quiet zone, and at least 4 mm
    _draw_fields_beside_qr(pdf, ticket, _, beside_qr)
    pdf.restoreState()
    _field(pdf, _("Valid at the gate"), f"{ticket.valid_from} → {ticket.valid_until}", PAD, 55, inner)
    _field(pdf, _("Services"), ", ".join(ticket.services), PAD, 63.2, inner)
    _draw_short_code(pdf, ticket.short_code, _("Code to type if the QR cannot be read"), inner)


def _draw_fields_beside_qr(pdf: canvas.Canvas, ticket: PrintableTicket, _: Callable[[str], str], width: float) -> None:
    for index, (label, value) in enumerate(
        (
            (_("Company"), ticket.company),
            (_("Tax id"), ticket.tax_id),
            (_("Vessel / voyage"), f"{ticket.vessel} / {ticket.voyage}"),
            (_("Arrival (ETA)"), ticket.eta),
            (_("Transaction"), ticket.transaction_no),
        )
    ):
        _field(pdf, label, value, PAD, 18 + index * 7.2, width)


def _draw_short_code(pdf: canvas.Canvas, short_code: str, label: str, width: float) -> None:
    """The bottom band: the 20-digit code a person types at the gate, labelled so, and its 1-D barcode."""
    pdf.setStrokeColorRGB(0.6, 0.6, 0.6)
    pdf.line(PAD * mm, (TICKET_HEIGHT - 69) * mm, (TICKET_WIDTH - PAD) * mm, (TICKET_HEIGHT - 69) * mm)
    _text(pdf, label, PAD, 72.5, "Helvetica-Bold", 6.5, width)
    _text(pdf, human_readable(short_code), PAD, 77.5, "Courier-Bold", 12, width)
    barcode = Code128Auto(short_code, barHeight=6 * mm, barWidth=0.3 * mm, humanReadable=False, quiet=False)
    barcode.drawOn(pdf, PAD * mm, (TICKET_HEIGHT - 86) * mm)


def box_scale(cell: Cell, style: QrStyle = QR_STYLE) -> float:
    """How much the ticket's box is enlarged (or shrunk) to fit ``cell``."""
    room_w = cell.width - 2 * CELL_MARGIN * mm
    room_h = cell.height - 2 * CELL_MARGIN * mm
    return min(room_w / (TICKET_WIDTH * mm), room_h / (box_height(style) * mm), MAX_SCALE)


def _place(pdf: canvas.Canvas, cell: Cell, style: QrStyle) -> None:
    """Move the origin to where the ticket's box goes in ``cell`` (top-centred) and scale to fit it."""
    scale = box_scale(cell, style)
    box_w, box_h = TICKET_WIDTH * mm * scale, box_height(style) * mm * scale
    pdf.translate(cell.x + (cell.width - box_w) / 2, cell.y + cell.height - CELL_MARGIN * mm - box_h)
    pdf.scale(scale, scale)


def qr_square(cell: Cell, style: QrStyle = QR_STYLE) -> tuple[float, float, float]:
    """Where the printed QR lands in ``cell``: its left edge and top edge in mm from the cell's top-left corner,
    and its side in mm (quiet zone excluded), as a camera looking at the cut ticket would measure them."""
    scale = box_scale(cell, style)
    left = (cell.width / mm - TICKET_WIDTH * scale) / 2
    qr_x, qr_top = qr_box(style)
    return left + qr_x * scale, CELL_MARGIN + qr_top * scale, style.size * scale


def render_tickets_pdf(
    tickets: Sequence[PrintableTicket], lang: str, per_sheet: int = 1, style: QrStyle = QR_STYLE
) -> bytes:
    """One PDF of every ticket, ``per_sheet`` to an A4 sheet, in the order given (``style``: see :class:`QrStyle`;
    the benchmark draws other styles, the server always the shipped one)."""
    cells = sheet_cells(per_sheet)
    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, pageCompression=1)
    ids = [t.ticket_id for t in tickets]
    pdf.setTitle(f"Portgate ticket {ids[0]}" if len(ids) == 1 else f"Portgate tickets {ids[0]}…{ids[-1]}")
    for index, ticket in enumerate(tickets):
        if index and index % per_sheet == 0:
            pdf.showPage()
        pdf.saveState()
        _place(pdf, cells[index % per_sheet], style)
        _draw_ticket(pdf, ticket, lang, style)
        pdf.restoreState()
    pdf.showPage()
    pdf.save()
    return buf.getvalue()


def render_ticket_pdf(ticket: PrintableTicket, lang: str) -> bytes:
    """One ticket on its own page."""
    return render_tickets_pdf([ticket], lang)
