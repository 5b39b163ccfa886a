"""The printed gate ticket: a PDF with the QR code (full signed code), the code in readable groups,
a Code 128-C barcode of the 20-digit short code for 1-D handheld readers, and the ticket's details."""

from __future__ import annotations

import io
from dataclasses import dataclass

import segno
from reportlab.graphics.barcode.code128 import Code128Auto
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from gate_core.codes import human_readable
from server.i18n import translate


@dataclass(frozen=True)
class PrintableTicket:
    ticket_id: int
    code: str
    short_code: str
    company: str
    tax_id: str
    vessel: str
    voyage: str
    eta: str  # times as printed: in the terminal's time zone, e.g. "2026-11-24 08:00 -05"
    valid_from: str
    valid_until: str
    services: list[str]
    transaction_no: str


def _draw_qr(pdf: canvas.Canvas, text: str, x: float, y: float, size: float) -> None:
    """Draw the QR as vector squares: sharp at any printer resolution."""
    qr = segno.make(text, error="m", mode="alphanumeric" if text.isupper() else None)
    matrix = list(qr.matrix)
    modules = len(matrix)
    cell = size / modules
    pdf.setFillColorRGB(0, 0, 0)
    for row_index, row in enumerate(matrix):
        for col_index, dark in enumerate(row):
            if dark:
                pdf.rect(x + col_index * cell, y + size - (row_index + 1) * cell, cell, cell, stroke=0, fill=1)


def render_ticket_pdf(ticket: PrintableTicket, lang: str) -> bytes:
    def _(text: str) -> str:
        return translate(lang, text)

    buf = io.BytesIO()
    pdf = canvas.Canvas(buf, pagesize=A4, pageCompression=1)
    pdf.setTitle(f"Portgate ticket {ticket.ticket_id}")
    width, height = A4
    left, top = 20 * mm, height - 20 * mm
    box_height = 120 * mm
    pdf.setStrokeColorRGB(0.2, 0.2, 0.2)
    pdf.roundRect(left - 5 * mm, top - box_height, width - 2 * left + 10 * mm, box_height + 5 * mm, 4 * mm)

    pdf.setFont("Helvetica-Bold", 16)
    pdf.drawString(left, top - 8 * mm, _("Gate ticket") + f"  #{ticket.ticket_id}")
    pdf.setFont("Helvetica", 9)
    pdf.drawString(left, top - 13 * mm, _("Valid for one single entry at the port gate."))

    qr_size = 62 * mm
    qr_x = width - left - qr_size
    qr_y = top - 10 * mm - qr_size
    _draw_qr(pdf, ticket.code, qr_x, qr_y, qr_size)

    lines = [
        (_("Company"), f"{ticket.company} ({ticket.tax_id})"),
        (_("Vessel / voyage"), f"{ticket.vessel} / {ticket.voyage}"),
        (_("Arrival (ETA)"), ticket.eta),
        (_("Valid at the gate"), f"{ticket.valid_from} → {ticket.valid_until}"),
        (_("Services"), ", ".join(ticket.services)),
        (_("Transaction"), ticket.transaction_no),
    ]
    y = top - 24 * mm
    for label, value in lines:
        pdf.setFont("Helvetica-Bold", 9)
        pdf.drawString(left, y, label)
        pdf.setFont("Helvetica", 10)
        pdf.drawString(left, y - 4.5 * mm, value[:70])
        y -= 11 * mm

    # The readable code, in groups of five, for typing by hand when a print is damaged.
    pdf.setFont("Courier", 8)
    groups = human_readable(ticket.code).split(" ")
    per_line = 9
    code_y = top - box_height + 34 * mm
    for i in range(0, len(groups), per_line):
        pdf.drawString(left, code_y, " ".join(groups[i : i + per_line]))
        code_y -= 4 * mm

    barcode = Code128Auto(ticket.short_code, barHeight=14 * mm, barWidth=0.42 * mm, humanReadable=False)
    barcode.drawOn(pdf, left, top - box_height + 4 * mm)
    pdf.setFont("Courier-Bold", 10)
    pdf.drawString(left + barcode.width + 6 * mm, top - box_height + 9 * mm, human_readable(ticket.short_code))
    pdf.showPage()
    pdf.save()
    return buf.getvalue()
