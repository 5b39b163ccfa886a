"""A terminal's first day, from an empty data folder to an accepted scan at a real kiosk, with only
the documented commands and the portal as its people use it (issue 14, item 1):

init → the administrator creates the staff users, who choose their passwords through the mailed
link → billing registers a customer company, records a purchase and confirms its payment →
operations adds an itinerary open now and its services → a customer registers in Chromium, is
approved, signs in, generates tickets and prints one → the gate supervisor creates a kiosk, a real
agent enrols with the code and its camera reads the print: accepted, then already used.
"""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import cv2
import numpy as np
import pytest
from playwright.async_api import async_playwright, expect
from pypdf import PdfReader

from tests.browser import CHROMIUM, CHROMIUM_ARGS
from tests.first_day import Person, Terminal, link_in
from tests.stack import AgentProcess, KioskScreen

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

ZONE = "America/Guayaquil"
OPERATOR_TAX_ID = "0990001234001"
ADMIN = {"login": "jefe", "email": "jefe@tps.example", "password": "Muelle2026seguro"}
INIT = (
    *("--operator-name", "Terminal Portuaria del Sur S.A.", "--operator-tax-id", OPERATOR_TAX_ID),
    *("--admin-login", ADMIN["login"], "--admin-email", ADMIN["email"], "--admin-name", "Mario Jefe"),
    *("--password-stdin", "--gate-machines", "4"),
)
CUSTOMER_COMPANY = {"tax_id": "0992345678001", "name": "Exportadora Bananera del Litoral S.A."}
SERVICES = (("CNT-EXP", "Contenedor de exportación", "Export container"), ("PES", "Pesaje", "Weighing"))
PURCHASED = 3
KIOSK = "Garita Sur 1"


@dataclass(frozen=True)
class Staff:
    full_name: str
    username: str
    role: str
    password: str

    @property
    def email(self) -> str:
        return f"{self.username}@tps.example"


BILLING = Staff("Carmen Vera", "cvera", "billing_clerk", "Factura2026segura")
OPERATIONS = Staff("Jorge León", "jleon", "operations", "Buques2026seguro")
SUPERVISOR = Staff("Rosa Mite", "rmite", "gate_supervisor", "Garita2026segura")
CUSTOMER = {
    "full_name": "Lucía Torres",
    "username": "ltorres",
    "email": "lucia@bananera.example",
    "tax_id": CUSTOMER_COMPANY["tax_id"],
    "phone": "+593 99 123 4567",
    "password": "Banano2026seguro",
}


@pytest.fixture
async def terminal(tmp_path):
    """A fresh installation: ``portgate-server init`` on an empty folder, then the service started."""
    installation = Terminal(tmp_path, ZONE)
    assert not installation.data_dir.exists()
    result = await asyncio.to_thread(installation.init, ADMIN["password"], *INIT)
    assert result.returncode == 0, result.stderr
    try:
        await asyncio.to_thread(installation.start)
        yield installation
    finally:
        installation.stop()


@pytest.fixture
async def browser():
    """Debian's Chromium with the suite's flags, through Playwright's async API (the kiosk screen is async)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is not installed; run the tests with ./portgate.sh test")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


async def test_a_terminals_first_day_from_an_empty_folder_to_an_accepted_scan(terminal, browser, tmp_path):
    admin = await Person.at(browser, terminal.url)
    await admin.sign_in(ADMIN["login"], ADMIN["password"])
    staff = {}
    for member in (BILLING, OPERATIONS, SUPERVISOR):
        await create_staff_user(admin, member)
        staff[member.role] = await Person.at(browser, terminal.url)
        mail = await terminal.mail_to(member.email, "/password/set")
        await staff[member.role].choose_password(link_in(mail, "/password/set"), member.password)
        await staff[member.role].sign_in(member.username, member.password)

    await register_company_and_sell(staff["billing_clerk"], quantity=PURCHASED)
    itinerary = await add_itinerary_and_services(staff["operations"])

    customer = await Person.at(browser, terminal.url)
    await register(customer)
    await approve(admin, CUSTOMER["username"])
    await terminal.mail_to(CUSTOMER["email"], CUSTOMER["username"])  # the approval says the user name
    await customer.sign_in(CUSTOMER["username"], CUSTOMER["password"])
    ticket_id = await generate(customer, itinerary, quantity=2)
    pdf = await print_ticket(customer, ticket_id, tmp_path)

    enrol_code = await create_kiosk(staff["gate_supervisor"], KIOSK)
    agent = await enrol_kiosk_with_camera(terminal.url, enrol_code, pdf, tmp_path)
    try:
        await asyncio.to_thread(agent.start)
        await truck_at_the_gate(agent, pdf, ticket_id)
    finally:
        agent.stop()

    # Afterwards the supervisor finds the three scans in the log, and the customer sees the ticket used.
    await staff["gate_supervisor"].open_from_menu("/gate/scans")
    accepted = staff["gate_supervisor"].page.locator("#scans tr[data-reason='accepted']")
    await expect(accepted).to_have_count(1)
    await expect(accepted).to_contain_text(KIOSK)
    await expect(accepted).to_contain_text(CUSTOMER_COMPANY["name"])
    await expect(staff["gate_supervisor"].page.locator("#scans tr[data-reason='already_used']")).to_have_count(2)
    await customer.page.reload()
    used = customer.page.locator(f"tr[data-ticket='{ticket_id}']")
    await expect(used.locator("button.print")).to_have_count(0)
    await expect(used.locator("a.delete")).to_have_count(0)


async def enrol_kiosk_with_camera(url: str, enrol_code: str, pdf: Path, tmp_path: Path) -> AgentProcess:
    """A kiosk box enrolled with the supervisor's code (not started yet); its camera will see the print twice."""
    camera = tmp_path / "camera"
    camera.mkdir()
    # The camera sees the empty lane first (a frame with no code): the lane screen is up before the truck.
    cv2.imwrite(str(camera / "0-empty-lane.png"), np.full((900, 700), 255, np.uint8))
    photo = rasterise(pdf, camera / "1-truck")
    shutil.copy(photo, camera / "2-truck.png")  # the driver shows the same print again
    agent = AgentProcess(
        url, tmp_path / "kiosk", [{"type": "replay", "source": str(camera), "interval_s": 2.0}], dedupe_seconds=1.0
    )
    enrolled = await asyncio.to_thread(agent.enrol, enrol_code)
    assert enrolled.returncode == 0, enrolled.stdout + enrolled.stderr
    return agent


async def truck_at_the_gate(agent: AgentProcess, pdf: Path, ticket_id: int) -> None:
    """What the lane screen shows: the print accepted, shown again refused, its typed code refused too."""
    async with KioskScreen(agent) as screen:
        first = await screen.next_verdict(timeout=30)
        assert (first["reason"], first["accepted"], first["ticket_id"]) == ("accepted", True, ticket_id)
        assert first["company"] == CUSTOMER_COMPANY["name"] and first["mode"] == "online"
        again = await screen.next_verdict(timeout=30)
        assert (again["reason"], again["accepted"], again["used_where"]) == ("already_used", False, KIOSK)
        # The gate staff types the 20-digit code printed under the QR: the same ticket, already used.
        await screen.type_code(typed_code(pdf))
        typed = await screen.next_verdict()
        assert (typed["reason"], typed["accepted"], typed["ticket_id"]) == ("already_used", False, ticket_id)


async def create_staff_user(admin: Person, member: Staff) -> None:
    """As the administrator: a user at the operator's company with one staff profile."""
    await admin.open_from_menu("/admin/users")
    await admin.page.click("#new-user")
    await admin.fill(
        {
            "full_name": member.full_name,
            "username": member.username,
            "email": member.email,
            "email_confirm": member.email,
            "company_tax_id": OPERATOR_TAX_ID,
        }
    )
    await admin.page.check(f"input[name=roles][value={member.role}]")
    await admin.page.click("#create-user")
    await expect(admin.page).to_have_url(re.compile(r"/admin/users/\d+\?done=created"))
    await expect(admin.page.locator(".alert-success")).to_contain_text("Usuario creado")


async def register_company_and_sell(billing: Person, quantity: int) -> None:
    """As the billing clerk: the customer in the billing registry, a purchase recorded, its payment confirmed."""
    await billing.open_from_menu("/billing/companies")
    await billing.fill({**CUSTOMER_COMPANY, "emails": "compras@bananera.example", "phone": "+593 4 259 0000"})
    await billing.page.click("#save-company")
    await expect(billing.page.locator(".alert-success")).to_have_text("Empresa guardada.")

    await billing.open_from_menu("/billing/purchases")
    # The company picker: type the start of the name, take the company it offers.
    await expect(billing.page.locator("#f-company")).to_have_attribute("list", "company-choices")
    await billing.page.fill("#f-company", "Exportadora Banan")
    offered = billing.page.locator("#company-choices option")
    await expect(offered).to_have_count(1)
    await billing.fill(
        {"company": await offered.get_attribute("value"), "quantity": str(quantity), "reference": "VENT-0001"}
    )
    await billing.page.click("#record-purchase")
    await expect(billing.page.locator(".alert-success")).to_contain_text("Compra registrada")

    await billing.page.locator("tr[data-reference='VENT-0001'] a.confirm").click()
    await billing.fill({"bank_reference": "BP-778812"})
    await billing.page.click("#action-submit")
    await expect(billing.page.locator(".alert-success")).to_contain_text("Pago confirmado")
    await expect(billing.page.locator("tr[data-reference='VENT-0001'] .payment")).to_contain_text("BP-778812")


async def add_itinerary_and_services(operations: Person) -> str:
    """As operations: a vessel call whose gate window is open now, and two services; returns its label."""
    now = datetime.now(ZoneInfo(ZONE)).replace(second=0, microsecond=0)

    def local(delta: timedelta) -> str:
        return (now + delta).strftime("%Y-%m-%dT%H:%M")

    await operations.open_from_menu("/ops/itineraries")
    await operations.fill(
        {
            "vessel": "MSC Manta",
            "voyage": "MM101S",
            "eta": local(timedelta(hours=-3)),
            "etd": local(timedelta(days=1)),
            "valid_from": local(timedelta(hours=-2)),
            "valid_until": local(timedelta(days=1, hours=2)),
            "berth": "Muelle 3",
        }
    )
    await operations.page.click("#save-itinerary")
    await expect(operations.page.locator("#itineraries tbody tr")).to_have_count(1)
    await expect(operations.page.locator("#itineraries .status")).to_contain_text("Abierto")

    await operations.open_from_menu("/ops/services")
    for code, name_es, name_en in SERVICES:
        await operations.fill({"code": code, "name_es": name_es, "name_en": name_en})
        await operations.page.click("#save-service")
        await expect(operations.page.locator("#services tbody tr", has_text=code)).to_have_count(1)
    return "MSC Manta / MM101S"


async def register(customer: Person) -> None:
    """A person of the customer company creates an account from the login page."""
    await customer.page.goto("/login")
    await customer.page.click("#create-account")
    await customer.fill(
        {
            **{k: CUSTOMER[k] for k in ("full_name", "username", "email", "tax_id", "phone", "password")},
            "email_confirm": CUSTOMER["email"],
            "password_confirm": CUSTOMER["password"],
        }
    )
    await customer.answer_human_check()
    await customer.page.click("#submit")
    await expect(customer.page).to_have_url(re.compile(r"/register/done$"))


async def approve(admin: Person, username: str) -> None:
    await admin.open_from_menu("/admin/registrations")
    row = admin.page.locator(f"tr[data-username='{username}']")
    await expect(row).to_contain_text(CUSTOMER_COMPANY["name"])
    await row.locator("button.approve").click()
    await expect(admin.page.locator(f"tr[data-username='{username}']")).to_have_count(0)


async def generate(customer: Person, itinerary: str, quantity: int) -> int:
    """Generate ``quantity`` tickets against the itinerary with every service; the first ticket's id."""
    await customer.open_from_menu("/tickets")
    await expect(customer.page.locator("#balance-available")).to_have_text(str(PURCHASED))
    await customer.page.fill("#f-quantity", str(quantity))
    await customer.page.click("#generate")
    option = customer.page.locator("#f-itinerary_id option", has_text=itinerary)
    await customer.page.select_option("#f-itinerary_id", await option.get_attribute("value"))
    for box in await customer.page.locator("input[name=services]").all():
        await box.check()
    await customer.page.click("#process")
    await expect(customer.page.locator("#transaction-no")).to_have_text(re.compile(r"\S+"))
    await customer.page.click("#view-tickets")
    rows = customer.page.locator("#tickets tr[data-printed='0']")
    await expect(rows).to_have_count(quantity)
    return int(await rows.first.get_attribute("data-ticket"))


async def print_ticket(customer: Person, ticket_id: int, folder: Path) -> Path:
    """Print one ticket: the PDF the browser downloads."""
    async with customer.page.expect_download() as download:
        await customer.page.locator(f"tr[data-ticket='{ticket_id}'] button.print").click()
    pdf = folder / "ticket.pdf"
    await (await download.value).save_as(pdf)
    return pdf


async def create_kiosk(supervisor: Person, name: str) -> str:
    """As the gate supervisor: a new kiosk, and the one-time enrolment code the page shows."""
    await supervisor.open_from_menu("/gate/kiosks")
    await supervisor.fill({"name": name, "gate": "Sur"})
    await supervisor.page.click("#new-kiosk button[type=submit]")
    return (await supervisor.page.locator("#enrol-code").inner_text()).strip()


def rasterise(pdf: Path, stem: Path) -> Path:
    """The print as a camera sees it: the PDF's page as a greyscale picture."""
    subprocess.run(["pdftoppm", "-r", "110", "-gray", "-png", "-singlefile", str(pdf), str(stem)], check=True)
    return stem.with_suffix(".png")


def typed_code(pdf: Path) -> str:
    """The 20-digit code printed on the ticket (in blocks of five), as the gate staff would type it."""
    text = PdfReader(io.BytesIO(pdf.read_bytes())).pages[0].extract_text()
    found = re.search(r"\b(\d{5}) (\d{5}) (\d{5}) (\d{5})\b", text)
    assert found, text
    return "".join(found.groups())
