"""Printing many tickets at once: one PDF, one ticket per page or 4 or 6 to an A4 sheet, each inside its cell
with a QR the agent's decoder reads at 110 dpi; all or nothing; a readable ticket whose 20-digit code is
labelled and whose texts never overlap; and a big PDF that never stalls the gate."""

from __future__ import annotations

import asyncio
import io
import re
import subprocess
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pypdf
import pytest
from reportlab.pdfbase.pdfmetrics import stringWidth

from gate_agent.scanner.decoders import default_decoder
from gate_core.codes import human_readable
from tests.dbaccess import db_execute
from tests.gate_support import PACIFICO_TAX_ID, enrol_kiosk, make_tickets, scan
from tests.helpers import api_error, as_codes, bearer, db_rows, field_errors, get_form, login
from tests.helpers import api_token as portal_token

DPI = 110
#: Pixels either side of a cell's edge that must stay blank: where the sheet is cut.
CUT_STRIP = 8


async def unprinted_for_pacifico(client, n: int) -> tuple[int, list[dict]]:
    """``n`` new tickets of Pacífico, not printed, on an itinerary of their own; signed in as Pedro."""
    tickets = await make_tickets(client.server.app, n, printed=False, tax_id=PACIFICO_TAX_ID)
    await login(client, "pacifico")
    return tickets[0]["itinerary_id"], tickets


async def print_from_page(client, itinerary_id: int, **fields) -> tuple[int, bytes | str, str]:
    """Post the itinerary page's print form; (status, PDF bytes or page text, content type)."""
    _page, hidden = await get_form(client, f"/tickets/itinerary/{itinerary_id}")
    data = [*hidden.items(), *((k, str(v)) for k, values in fields.items() for v in _listed(values))]
    resp = await client.post(f"/tickets/itinerary/{itinerary_id}/print", data=data)
    body = await resp.read() if resp.content_type == "application/pdf" else await resp.text()
    return resp.status, body, resp.content_type


def _listed(value) -> list:
    return value if isinstance(value, list) else [value]


def rasterise(pdf: bytes, folder: Path) -> list[np.ndarray]:
    """Every page of the PDF as a camera would see the paper: greyscale at 110 dpi (pdftoppm)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "print.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(DPI), "-gray", "-png", str(folder / "print.pdf"), str(folder / "page")])
    return [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in sorted(folder.glob("page*.png"))]


def cells(image: np.ndarray, per_sheet: int) -> list[tuple[int, int, int, int]]:
    """The cells of a sheet in pixels (top, bottom, left, right), in reading order."""
    height, width = image.shape
    columns, rows = (1, 1) if per_sheet == 1 else (2, per_sheet // 2)
    ys = [round(height * r / rows) for r in range(rows + 1)]
    xs = [round(width * c / columns) for c in range(columns + 1)]
    return [(ys[r], ys[r + 1], xs[c], xs[c + 1]) for r in range(rows) for c in range(columns)]


def assert_each_ticket_inside_its_cell(images: list[np.ndarray], per_sheet: int, codes: list[str]) -> None:
    """Cell by cell: nothing printed within ``CUT_STRIP`` px of its edges, and its QR is the next ticket's."""
    decoder = default_decoder(formats=("qrcode",))
    expected = iter(codes)
    for page_number, image in enumerate(images, 1):
        for top, bottom, left, right in cells(image, per_sheet):
            cell = image[top:bottom, left:right]
            inner = cell[CUT_STRIP:-CUT_STRIP, CUT_STRIP:-CUT_STRIP]
            edges = cell.copy()
            edges[CUT_STRIP:-CUT_STRIP, CUT_STRIP:-CUT_STRIP] = 255
            assert edges.min() > 200, f"page {page_number}: something crosses the edge of a cell"
            code = next(expected, None)
            found = as_codes(decoder.decode(inner))
            assert found == ([code] if code else []), f"page {page_number}, cell at ({top}, {left})"
    assert next(expected, None) is None, "some tickets are missing from the PDF"


@pytest.mark.parametrize(("per_sheet", "pages"), [(1, 7), (4, 2), (6, 2)])
async def test_print_all_not_printed_as_one_pdf_each_ticket_in_its_cell(client, config, tmp_path, per_sheet, pages):
    itinerary_id, tickets = await unprinted_for_pacifico(client, 7)
    status, pdf, kind = await print_from_page(client, itinerary_id, which="not_printed", per_sheet=per_sheet)
    assert status == 200 and kind == "application/pdf", pdf
    images = rasterise(pdf, tmp_path / "pages")
    assert len(images) == pages
    assert_each_ticket_inside_its_cell(images, per_sheet, [t["code"] for t in tickets])
    ids = tuple(t["id"] for t in tickets)
    marks = db_rows(config, f"SELECT print_count FROM tickets WHERE id IN ({','.join('?' * len(ids))})", ids)
    assert marks == [(1,)] * 7
    page = await (await client.get(f"/tickets/itinerary/{itinerary_id}")).text()
    assert page.count('data-printed="1"') == 7 and 'data-printed="0"' not in page
    # Nothing is left to print: the form says so instead of an empty PDF.
    status, page, _kind = await print_from_page(client, itinerary_id, which="not_printed", per_sheet=per_sheet)
    assert status == 400
    assert field_errors(page) == {"ticket_ids": "Todos los tickets de este itinerario ya están impresos."}


async def test_print_selected_tickets_reprints_included(client, config, tmp_path):
    itinerary_id, tickets = await unprinted_for_pacifico(client, 5)
    first, second, third = (t["id"] for t in tickets[:3])
    status, _pdf, _kind = await print_from_page(client, itinerary_id, which="selected", ticket=[first], per_sheet=1)
    assert status == 200
    status, pdf, _kind = await print_from_page(
        client, itinerary_id, which="selected", ticket=[third, first, second], per_sheet=4
    )
    assert status == 200
    images = rasterise(pdf, tmp_path / "sheet")
    assert len(images) == 1
    assert_each_ticket_inside_its_cell(images, 4, [t["code"] for t in tickets[:3]])  # in order of number
    counts = db_rows(
        config,
        "SELECT id, print_count, printed_at IS NOT NULL FROM tickets WHERE id IN (?, ?, ?, ?) ORDER BY id",
        (first, second, third, tickets[3]["id"]),
    )
    assert counts == [(first, 2, 1), (second, 1, 1), (third, 1, 1), (tickets[3]["id"], 0, 0)]


async def test_a_used_or_deleted_ticket_refuses_the_whole_print_and_is_named(client, config):
    itinerary_id, tickets = await unprinted_for_pacifico(client, 4)
    ids = [t["id"] for t in tickets]
    db_execute(
        config,
        "UPDATE tickets SET printed_at = '2026-11-20T09:00', used_at = '2026-11-20T10:00' WHERE id = ?",
        (ids[1],),
    )
    db_execute(config, "UPDATE tickets SET deleted_at = '2026-11-20T10:00' WHERE id = ?", (ids[3],))
    status, page, _kind = await print_from_page(client, itinerary_id, which="selected", ticket=ids[:3])
    assert status == 409
    assert f"ya fueron usados en la garita y no se pueden imprimir: #{ids[1]}. No se imprimió nada." in page
    status, page, _kind = await print_from_page(client, itinerary_id, which="selected", ticket=ids)
    assert status == 404 and f"no existen o fueron eliminados: #{ids[3]}." in page
    assert db_rows(config, "SELECT SUM(print_count) FROM tickets WHERE id IN (?, ?, ?, ?)", tuple(ids)) == [(0,)]


async def test_the_print_form_says_what_is_wrong_and_prints_nothing(client, config):
    itinerary_id, tickets = await unprinted_for_pacifico(client, 2)
    status, page, _kind = await print_from_page(client, itinerary_id, which="selected", per_sheet=4)
    assert status == 400 and field_errors(page) == {"ticket_ids": "Elija al menos un ticket para imprimir."}
    status, page, _kind = await print_from_page(
        client, itinerary_id, which="selected", ticket=[tickets[0]["id"]], per_sheet=5
    )
    assert status == 400 and field_errors(page) == {"per_sheet": "Elija 1, 4 o 6 tickets por hoja."}
    status, page, _kind = await print_from_page(client, itinerary_id, which="selected", ticket=["abc"])
    assert status == 400 and field_errors(page) == {"ticket_ids": "Elija tickets de la lista."}
    assert db_rows(
        config, "SELECT SUM(print_count) FROM tickets WHERE id IN (?, ?)", (tickets[0]["id"], tickets[1]["id"])
    ) == [(0,)]


async def test_the_api_prints_many_as_one_pdf_all_or_nothing(client, config, tmp_path):
    app = client.server.app
    tickets = await make_tickets(app, 5, printed=False, tax_id=PACIFICO_TAX_ID)
    andina_ticket = (await make_tickets(app, 1, printed=False))[0]
    headers = bearer(await portal_token(client, "pacifico"))
    ids = [t["id"] for t in tickets]
    resp = await client.post("/api/v1/tickets/print", json={"ticket_ids": ids, "per_sheet": 6}, headers=headers)
    assert resp.status == 200 and resp.content_type == "application/pdf"
    images = rasterise(await resp.read(), tmp_path / "api")
    assert_each_ticket_inside_its_cell(images, 6, [t["code"] for t in tickets])
    listing = await (
        await client.get(f"/api/v1/tickets?itinerary_id={tickets[0]['itinerary_id']}", headers=headers)
    ).json()
    assert all(t["printed"] for t in listing["tickets"])

    before = db_rows(config, "SELECT SUM(print_count) FROM tickets")
    for body, status, code, fields in (
        ({"ticket_ids": []}, 400, "invalid", {"ticket_ids": "Elija al menos un ticket para imprimir."}),
        ({"ticket_ids": "1,2"}, 400, "invalid", {"ticket_ids": "Elija tickets de la lista."}),
        ({"ticket_ids": ids, "per_sheet": 3}, 400, "invalid", {"per_sheet": "Elija 1, 4 o 6 tickets por hoja."}),
        ({"ticket_ids": [ids[0], andina_ticket["id"]]}, 404, "not_found", {}),
    ):
        resp = await client.post("/api/v1/tickets/print", json=body, headers=headers)
        error = await api_error(resp)
        assert (resp.status, error["code"], error.get("fields") or {}) == (status, code, fields), body
    assert f"#{andina_ticket['id']}" in error["message"] and f"#{ids[0]}" not in error["message"]
    assert db_rows(config, "SELECT SUM(print_count) FROM tickets") == before


# --- the ticket itself --------------------------------------------------------------------------


def text_boxes(pdf: bytes) -> list[list[tuple[str, float, float, float, float]]]:
    """Per page, every line of text with the box it covers in points: (text, left, bottom, right, top)."""
    pages = []
    for page in pypdf.PdfReader(io.BytesIO(pdf)).pages:
        boxes: list[list] = []

        def visit(text, cm, tm, font, size, boxes=boxes):
            if not text.strip() or font is None:
                return
            scale = cm[0]  # the page draws each ticket scaled, never rotated
            width = stringWidth(text, font["/BaseFont"].lstrip("/"), size) * tm[0] * scale
            if boxes and boxes[-1][-1] == (tuple(cm), tuple(tm)):
                # pypdf hands one line over in pieces where its font encoding changes ("→"), all at its start.
                boxes[-1][0] += text
                boxes[-1][3] += width
                return
            x, y = tm[4] * cm[0] + cm[4], tm[5] * cm[3] + cm[5]
            height = size * tm[3] * scale
            boxes.append([text, x, y - 0.2 * height, x + width, y + 0.75 * height, (tuple(cm), tuple(tm))])

        page.extract_text(visitor_text=visit)
        pages.append([(box[0].strip(), *box[1:5]) for box in boxes])
    return pages


def overlapping(boxes: list[tuple[str, float, float, float, float]]) -> list[tuple[str, str]]:
    found = []
    for i, (text, left, bottom, right, top) in enumerate(boxes):
        for other, left2, bottom2, right2, top2 in boxes[i + 1 :]:
            if left < right2 and left2 < right and bottom < top2 and bottom2 < top:
                found.append((text, other))
    return found


@pytest.mark.parametrize(
    ("language", "label"),
    [("es", "Código para digitar si el QR no se puede leer"), ("en", "Code to type if the QR cannot be read")],
)
@pytest.mark.parametrize("per_sheet", [1, 6])
async def test_the_ticket_labels_the_code_to_type_and_no_text_overlaps(client, config, language, label, per_sheet):
    app = client.server.app
    tickets = await make_tickets(app, 2, printed=False, tax_id=PACIFICO_TAX_ID)
    await login(client, "pacifico", language=language)
    status, pdf, _kind = await print_from_page(
        client, tickets[0]["itinerary_id"], which="not_printed", per_sheet=per_sheet
    )
    assert status == 200
    shorts = [
        human_readable(row[0])
        for row in db_rows(
            config,
            "SELECT short_code FROM tickets WHERE id IN (?, ?) ORDER BY id",
            (tickets[0]["id"], tickets[1]["id"]),
        )
    ]
    pages = text_boxes(pdf)
    for boxes in pages:
        assert boxes and not overlapping(boxes), overlapping(boxes)
        for code_box in (b for b in boxes if b[0] in shorts):
            # The label sits right above the code it names, aligned with it.
            above = [b for b in boxes if b[0] == label and abs(b[1] - code_box[1]) < 1 and 0 < b[2] - code_box[4] < 20]
            assert len(above) == 1, (code_box, above)
    boxes = [box for page in pages for box in page]
    assert sorted(b[0] for b in boxes if b[0] in shorts) == sorted(shorts)
    text = " ".join(box[0] for box in boxes)
    assert re.search(r"\d{1,2} \w{3}\.? 20\d\d \d\d:\d\d → \d{1,2} \w{3}\.? 20\d\d \d\d:\d\d", text), text


# --- rendering off the event loop ---------------------------------------------------------------


@pytest.mark.timeout(240)
async def test_a_500_ticket_pdf_does_not_stall_redeems(client, config):
    app = client.server.app
    to_print = await make_tickets(app, 500, printed=False, tax_id=PACIFICO_TAX_ID)
    at_the_gate = await make_tickets(app, 40)
    kiosk = await enrol_kiosk(client)
    headers = bearer(await portal_token(client, "pacifico"))
    started = time.monotonic()
    printing = asyncio.create_task(
        client.post("/api/v1/tickets/print", json={"ticket_ids": [t["id"] for t in to_print]}, headers=headers)
    )
    latencies = []
    for ticket in at_the_gate:
        if printing.done():
            break
        sent = time.monotonic()
        resp = await client.post("/api/v1/gate/redeem", json=scan(ticket["code"]), headers=kiosk["headers"])
        assert resp.status == 200 and (await resp.json())["accepted"]
        latencies.append(time.monotonic() - sent)
        await asyncio.sleep(0.05)
    resp = await printing
    took = time.monotonic() - started
    assert resp.status == 200 and len(pypdf.PdfReader(io.BytesIO(await resp.read())).pages) == 500
    # The print took seconds; a gate kept answering at once all along, not after it.
    assert max(latencies) < 0.75, (sorted(latencies)[-5:], took)
    assert len(latencies) >= 5, f"only {len(latencies)} redeems while the print took {took:.1f} s"


async def test_the_pdf_process_renders_the_print(config, tmp_path, aiohttp_client):
    """With the app's PDF process running, the PDF comes from it (a process of its own, not this one's loop)."""
    from server.app import create_app
    from server.demo import install_demo
    from server.tickets.printing import PDF_RENDERER, pdf_renderer_ctx

    app = create_app(config)
    app.on_startup.append(install_demo)
    if pdf_renderer_ctx not in app.cleanup_ctx:
        app.cleanup_ctx.append(pdf_renderer_ctx)
    client = await aiohttp_client(app)
    tickets = await make_tickets(app, 3, printed=False, tax_id=PACIFICO_TAX_ID)
    headers = bearer(await portal_token(client, "pacifico"))
    resp = await client.post("/api/v1/tickets/print", json={"ticket_ids": [t["id"] for t in tickets]}, headers=headers)
    assert resp.status == 200
    assert_each_ticket_inside_its_cell(rasterise(await resp.read(), tmp_path / "pool"), 1, [t["code"] for t in tickets])
    renderer = app[PDF_RENDERER]
    assert renderer.started and isinstance(renderer.pool, ProcessPoolExecutor)  # it started its process
