"""Real printed tickets for the camera benchmark: signed codes, PDFs drawn by server/tickets/pdf.py and
rasterised by poppler's pdftoppm, cut out of the sheet the way a customer cuts them.

Every ticket is a sheet of paper seen from the front: a reflectance map (0 = black toner, 1 = white paper)
at :data:`PX_PER_MM`, with the QR's square known in mm so the camera model can aim at it. Everything is
deterministic from a seed: the signing key, the ticket ids, the short codes and the printed details.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from reportlab.lib.units import mm

from gate_core.codes import SHORT_CODE_DIGITS, SigningKey, VerifyKey, decimal_form, issue_code
from server.tickets.pdf import QR_STYLE, PrintableTicket, QrStyle, qr_square, qr_symbol, render_tickets_pdf, sheet_cells

#: Resolution of the rasterised print (305 dpi, a laser printer's class); finer than any frame needs.
PX_PER_MM = 12.0

_COMPANIES = ("Exportadora Andina S.A.", "Importadora del Pacífico", "Agrícola Costa Verde Cía. Ltda.", "Frutas Sol")
_VESSELS = ("MSC Bettina", "Maersk Guayaquil", "CMA CGM Rio", "Hapag Santos Express", "ONE Orinoco")
_SERVICES = ("Retiro de contenedor", "Entrega de carga suelta", "Aforo físico", "Pesaje", "Consolidación")


@dataclass(frozen=True)
class PrintedTicket:
    """One cut ticket: what it encodes and how it looks on paper."""

    code: str
    short_code: str
    reflectance: np.ndarray  # uint8 grey, 255 = paper white, at PX_PER_MM
    qr_mm: tuple[float, float, float]  # the QR's left, top and side (quiet zone excluded) on the cut sheet
    modules: int  # QR modules per side, quiet zone excluded
    per_sheet: int
    verify_key: VerifyKey | None = None  # what a kiosk checks the code's signature with

    @property
    def module_mm(self) -> float:
        return self.qr_mm[2] / self.modules

    @property
    def readings(self) -> frozenset[str]:
        """Every text that is a right read of this ticket: its code in either form (the QR carries the decimal
        one, gate_core.codes) and its short code."""
        return frozenset((self.code, decimal_form(self.code), self.short_code))


def _ticket(rng: np.random.Generator, key: SigningKey) -> PrintableTicket:
    ticket_id = int(rng.integers(1, 2**40))
    itinerary_id = int(rng.integers(1, 2**31))
    short_code = "".join(str(d) for d in rng.integers(0, 10, SHORT_CODE_DIGITS))
    day = int(rng.integers(1, 28))
    return PrintableTicket(
        ticket_id=ticket_id,
        code=issue_code(key, ticket_id, itinerary_id),
        short_code=short_code,
        company=str(rng.choice(_COMPANIES)),
        tax_id="".join(str(d) for d in rng.integers(0, 10, 13)),
        vessel=str(rng.choice(_VESSELS)),
        voyage=f"{int(rng.integers(100, 999))}{'NSEW'[int(rng.integers(0, 4))]}",
        eta=f"{day} nov 2026 {int(rng.integers(0, 24)):02d}:00",
        valid_from=f"{day} nov 2026 06:00",
        valid_until=f"{day + 1} nov 2026 18:00",
        services=[str(s) for s in rng.choice(_SERVICES, int(rng.integers(1, 4)), replace=False)],
        transaction_no=f"TX-{int(rng.integers(10**7, 10**8))}",
    )


def _rasterise(pdf: bytes) -> list[np.ndarray]:
    """Every page of the PDF as a grey image at PX_PER_MM (pdftoppm, anti-aliased like a printer's dots)."""
    with tempfile.TemporaryDirectory(prefix="portgate-print-") as folder:
        path = Path(folder) / "tickets.pdf"
        path.write_bytes(pdf)
        dpi = PX_PER_MM * 25.4
        subprocess.run(
            ["pdftoppm", "-r", f"{dpi:.2f}", "-gray", "-png", str(path), str(path.with_suffix(""))], check=True
        )
        return [cv2.imread(str(page), cv2.IMREAD_GRAYSCALE) for page in sorted(Path(folder).glob("tickets*.png"))]


def print_tickets(
    n: int, seed: int, per_sheet: int = 6, style: QrStyle = QR_STYLE, lang: str = "es"
) -> list[PrintedTicket]:
    """``n`` tickets with fresh codes, printed ``per_sheet`` to an A4 sheet in ``style`` and cut apart."""
    rng = np.random.default_rng([seed, per_sheet, 0x9217])
    key = SigningKey.from_private_bytes(int(rng.integers(1, 256)), rng.bytes(32))
    tickets = [_ticket(rng, key) for _ in range(n)]
    pdf = render_tickets_pdf(tickets, lang, per_sheet, style)
    return cut_tickets(pdf, [(t.code, t.short_code) for t in tickets], per_sheet, style, key.public_key())


def cut_tickets(
    pdf: bytes,
    codes: list[tuple[str, str]],
    per_sheet: int,
    style: QrStyle = QR_STYLE,
    verify_key: VerifyKey | None = None,
) -> list[PrintedTicket]:
    """The tickets of a printed PDF (``per_sheet`` to a sheet, carrying these (code, short code) in order), each
    cut out of its sheet along its cell."""
    pages = _rasterise(pdf)
    cells = sheet_cells(per_sheet)
    page_w, page_h = (size / mm for size in (sheet_cells(1)[0].width, sheet_cells(1)[0].height))
    printed = []
    for index, (code, short_code) in enumerate(codes):
        page = pages[index // per_sheet]
        cell = cells[index % per_sheet]
        scale = page.shape[1] / page_w  # px per mm of this raster
        top = round((page_h - (cell.y + cell.height) / mm) * scale)
        left = round(cell.x / mm * scale)
        crop = page[top : top + round(cell.height / mm * scale), left : left + round(cell.width / mm * scale)]
        printed.append(
            PrintedTicket(
                code=code,
                short_code=short_code,
                reflectance=np.ascontiguousarray(crop),
                qr_mm=qr_square(cell, style),
                modules=qr_symbol(code, style).symbol_size(border=0)[0],
                per_sheet=per_sheet,
                verify_key=verify_key,
            )
        )
    return printed


def qr_matrix(code: str, style: QrStyle = QR_STYLE, border: int = 4) -> np.ndarray:
    """The ticket's QR as a boolean module matrix (True = dark), with ``border`` quiet-zone modules: what a phone
    shows when the ticket is presented on its screen."""
    return np.array(list(qr_symbol(code, style).matrix_iter(border=border)), dtype=bool)


def ticket_pool(seed: int, per_layout: int, style: QrStyle = QR_STYLE) -> list[PrintedTicket]:
    """Tickets to photograph: ``per_layout`` cut from six-to-a-sheet prints (the QR at its printed size) and as
    many printed one per page (enlarged 1.8 times), alternating."""
    small = print_tickets(per_layout, seed, per_sheet=6, style=style)
    large = print_tickets(per_layout, seed, per_sheet=1, style=style)
    return [ticket for pair in zip(small, large, strict=True) for ticket in pair]
