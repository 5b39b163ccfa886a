"""In Chromium: printing from the itinerary page downloads the PDF and the list shows the printed tickets at
once, with the code that is on the paper, without the person reloading the page."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pypdf
import pytest
from playwright.sync_api import expect

from tests.browser import answer_human_check

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


def sign_in_and_generate(page, quantity: int) -> None:
    """Pedro of Pacífico generates ``quantity`` tickets and opens their itinerary's list."""
    page.goto("/login")
    page.fill("#f-login", "pacifico")
    page.fill("#f-password", "demo2026pass")
    answer_human_check(page)
    page.click("#submit")
    page.goto("/tickets")
    page.fill("#f-quantity", str(quantity))
    page.click("#generate")
    option = page.locator("#f-itinerary_id option", has_text="MSC Guayaquil").get_attribute("value")
    page.select_option("#f-itinerary_id", option)
    page.locator("input[name=services]").first.check()
    page.click("#process")
    page.click("#view-tickets")


def downloaded_pdf(page, click) -> pypdf.PdfReader:
    with page.expect_download() as download:
        click()
    return pypdf.PdfReader(io.BytesIO(Path(download.value.path()).read_bytes()))


def printed_codes(pdf: pypdf.PdfReader) -> list[str]:
    text = " ".join(p.extract_text() for p in pdf.pages)
    return re.findall(r"\b\d{5} \d{5} \d{5} \d{5}\b", text)


def test_printing_shows_the_printed_tickets_without_a_reload(new_page):
    page = new_page()
    sign_in_and_generate(page, 5)
    rows = page.locator("#tickets tr[data-ticket]")
    expect(page.locator("#tickets tr[data-printed='0']")).to_have_count(5)
    page.evaluate("window.notReloaded = true")  # gone if the page is loaded again
    first = rows.nth(0)
    masked = first.locator("code.ticket").inner_text()
    assert re.fullmatch(r"••••• ••••• ••••• •\d{4}", masked)

    # One ticket, from its row.
    pdf = downloaded_pdf(page, lambda: first.locator("button.print").click())
    [code] = printed_codes(pdf)
    expect(first).to_have_attribute("data-printed", "1")
    expect(first.locator("code.ticket")).to_have_text(code)
    assert code[-4:] == masked[-4:]

    # Two ticked, four to a sheet: one page.
    rows.nth(1).locator("input[name=ticket]").check()
    rows.nth(2).locator("input[name=ticket]").check()
    page.select_option("#f-per_sheet", "4")
    pdf = downloaded_pdf(page, lambda: page.click("#print-selected"))
    assert len(pdf.pages) == 1 and len(printed_codes(pdf)) == 2
    for index, code in zip((1, 2), printed_codes(pdf), strict=True):
        expect(rows.nth(index)).to_have_attribute("data-printed", "1")
        expect(rows.nth(index).locator("code.ticket")).to_have_text(code)
    expect(rows.nth(3)).to_have_attribute("data-printed", "0")

    # The rest in one go.
    pdf = downloaded_pdf(page, lambda: page.click("#print-not-printed"))
    assert len(printed_codes(pdf)) == 2
    expect(page.locator("#tickets tr[data-printed='0']")).to_have_count(0)
    expect(page.locator("#print-status")).to_contain_text("la lista muestra los tickets como impresos")
    assert page.evaluate("window.notReloaded === true")


def test_a_refused_print_shows_why(new_page, live_server):
    page = new_page()
    sign_in_and_generate(page, 1)
    expect(page.locator("#tickets tr[data-printed='0']")).to_have_count(1)
    page.click("#print-selected")  # nothing ticked
    expect(page.locator("p.error[data-field=ticket_ids]")).to_have_text("⚠ Elija al menos un ticket para imprimir.")
