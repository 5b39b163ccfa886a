"""The billing registry through the real app: its API (list, search, add, edit, CSV import) with the page's
roles, keyset pages that new companies never shift, and the page paginating the same way past 50."""

from __future__ import annotations

import re

from tests.helpers import api_error, api_token, bearer, count, db_rows, login

COMPANIES = "/api/v1/billing/companies"
ANDINA = "0991234567001"
PACIFICO = "1790012345001"


def registry_csv(rows: list[tuple[str, str, str]]) -> str:
    return "tax_id,name,emails\n" + "".join(f"{tax},{name},{email}\n" for tax, name, email in rows)


async def import_csv(client, auth, rows: list[tuple[str, str, str]]):
    return await client.post(f"{COMPANIES}/import", json={"csv": registry_csv(rows)}, headers=auth)


async def all_pages(client, auth, **params: str) -> tuple[list[str], int]:
    """Every company's name, following next_after from the first page; and how many pages it took."""
    names: list[str] = []
    after, pages = None, 0
    while True:
        query = {**params, **({"after": str(after)} if after else {})}
        body = await (await client.get(COMPANIES, params=query, headers=auth)).json()
        names += [c["name"] for c in body["companies"]]
        pages += 1
        after = body["next_after"]
        if after is None:
            return names, pages


async def test_billing_pages_the_registry_by_name_and_new_companies_never_shift_a_page(client):
    auth = bearer(await api_token(client, "facturacion"))
    resp = await import_csv(client, auth, [(f"ZZ{n:08d}", f"Naviera {n:02d}", f"n{n}@nav.example") for n in range(7)])
    assert resp.status == 201, await resp.text()
    assert await resp.json() == {"added": 7, "updated": 0}

    first = await (await client.get(COMPANIES, params={"q": "navi", "limit": "3"}, headers=auth)).json()
    assert [c["name"] for c in first["companies"]] == ["Naviera 00", "Naviera 01", "Naviera 02"]
    assert first["companies"][0] == {
        "id": first["companies"][0]["id"],
        "tax_id": "ZZ00000000",
        "name": "Naviera 00",
        "emails": ["n0@nav.example"],
        "phone": "",
        "kind": "customer",
        "in_registry": True,
    }
    # Companies added while someone reads page 1: one before the cursor (it shows on page 1, not again
    # later) and one after it (it shows in its place on a later page).
    await import_csv(client, auth, [("ZZ10000000", "Naviera 00a", "a@nav.example")])
    await import_csv(client, auth, [("ZZ10000001", "Naviera 04a", "b@nav.example")])
    second = await (
        await client.get(COMPANIES, params={"q": "navi", "limit": "3", "after": first["next_after"]}, headers=auth)
    ).json()
    assert [c["name"] for c in second["companies"]] == ["Naviera 03", "Naviera 04", "Naviera 04a"]

    names, pages = await all_pages(client, auth, q="Naviera", limit="4")
    assert names == sorted(names, key=str.lower) and len(names) == len(set(names)) == 9 and pages == 3
    # The search matches the start of the tax id as well, whatever the case.
    found = await (await client.get(COMPANIES, params={"q": "zz1000"}, headers=auth)).json()
    assert [c["tax_id"] for c in found["companies"]] == ["ZZ10000000", "ZZ10000001"] and found["next_after"] is None


async def test_the_registry_page_pages_past_fifty_companies(client):
    auth = bearer(await api_token(client, "facturacion"))
    await import_csv(client, auth, [(f"PG{n:08d}", f"Agencia {n:03d}", f"a{n}@ag.example") for n in range(60)])
    await login(client, "facturacion")
    page = await (await client.get("/billing/companies", params={"q": "Agencia"})).text()
    shown = re.findall(r"<td[^>]*>(Agencia \d+)</td>", page)
    assert shown == [f"Agencia {n:03d}" for n in range(50)]
    next_url = re.search(r'<a href="([^"]+)" id="next-page">', page)
    assert next_url, "the page stops at 50 companies"
    page = await (await client.get(next_url[1].replace("&amp;", "&"))).text()
    assert re.findall(r"<td[^>]*>(Agencia \d+)</td>", page) == [f"Agencia {n:03d}" for n in range(50, 60)]
    assert 'id="next-page"' not in page and '<a href="/billing/companies?q=Agencia">' in page  # back to the first
    # A cursor that cannot be an id: the first page, with the reason beside the search.
    resp = await client.get("/billing/companies", params={"after": "x"})
    assert resp.status == 400 and 'data-field="after"' in await resp.text()


async def test_billing_adds_and_edits_a_company_and_bad_input_writes_nothing(client, config):
    auth = bearer(await api_token(client, "facturacion"))
    body = {"tax_id": "0912345678001", "name": "Naviera Nueva", "emails": ["a@nueva.example", "b@nueva.example"]}
    resp = await client.post(COMPANIES, json=body, headers=auth)
    assert resp.status == 201, await resp.text()
    company = await resp.json()
    assert (company["name"], company["emails"], company["kind"]) == ("Naviera Nueva", body["emails"], "customer")
    # The same tax id again updates it, as the page's form does.
    resp = await client.post(
        COMPANIES, json={**body, "name": "Naviera Nueva S.A.", "phone": "+593 4 222 3333"}, headers=auth
    )
    assert resp.status == 200 and (await resp.json())["id"] == company["id"]
    assert (await resp.json())["phone"] == "+59342223333"

    one = f"{COMPANIES}/{company['id']}"
    resp = await client.put(one, json={**body, "tax_id": "0912345678002", "emails": ["c@nueva.example"]}, headers=auth)
    assert resp.status == 200, await resp.text()
    assert (await resp.json())["tax_id"] == "0912345678002"
    assert (await (await client.get(one, headers=auth)).json())["emails"] == ["c@nueva.example"]

    before = db_rows(config, "SELECT * FROM companies ORDER BY id")
    audited = count(config, "audit_log")
    resp = await client.put(one, json={**body, "tax_id": ANDINA}, headers=auth)
    assert resp.status == 400
    assert (await api_error(resp))["fields"] == {"tax_id": "Otra empresa del registro tiene este RUC/RFC."}
    resp = await client.post(COMPANIES, json={"tax_id": "12", "name": "", "emails": ["no"]}, headers=auth)
    assert resp.status == 400 and set((await api_error(resp))["fields"]) == {"tax_id", "name", "emails"}
    resp = await client.post(COMPANIES, json={**body, "emails": "a@nueva.example"}, headers=auth)
    assert resp.status == 400 and set((await api_error(resp))["fields"]) == {"emails"}
    assert (await client.put(f"{COMPANIES}/999999", json=body, headers=auth)).status == 404
    assert (await client.get(f"{COMPANIES}/999999", headers=auth)).status == 404
    assert db_rows(config, "SELECT * FROM companies ORDER BY id") == before
    assert count(config, "audit_log") == audited
    events = db_rows(config, "SELECT event FROM audit_log WHERE company_id = ? ORDER BY id", (company["id"],))
    assert events == [("company.added",), ("company.updated",), ("company.updated",)]


async def test_the_csv_import_names_every_bad_line_and_field_and_saves_nothing(client, config):
    auth = bearer(await api_token(client, "facturacion"))
    before = count(config, "companies")
    bad = registry_csv(
        [
            ("0912345678001", "Buena S.A.", "ok@buena.example"),
            ("0912345678002", "Mala S.A.", "no-es-correo"),
            ("0912345678003", "Otra Buena", "ok@otra.example"),
            ("12", "Mala 2", "ok@mala.example"),
        ]
    )
    resp = await client.post(f"{COMPANIES}/import", json={"csv": bad}, headers=auth)
    assert resp.status == 400
    message = (await api_error(resp))["fields"]["csv"]
    assert message.startswith("Línea 3: emails:") and "; 5: tax_id:" in message and "4:" not in message
    resp = await client.post(f"{COMPANIES}/import", json={"csv": "nombre\nx\n"}, headers=auth)
    assert resp.status == 400 and "tax_id, name, emails" in (await api_error(resp))["fields"]["csv"]
    assert (await client.post(f"{COMPANIES}/import", json={"csv": 5}, headers=auth)).status == 400
    assert count(config, "companies") == before
    good = registry_csv([(ANDINA, "Exportadora Andina S.A.", "x@andina.example"), ("0912345678009", "Nueva", "n@n.ex")])
    resp = await client.post(f"{COMPANIES}/import", json={"csv": good}, headers=auth)
    assert resp.status == 201 and await resp.json() == {"added": 1, "updated": 1}


async def test_only_billing_and_administrators_reach_the_registry(client):
    for login_name in ("andina", "operaciones", "supervisor"):
        auth = bearer(await api_token(client, login_name))
        resp = await client.get(COMPANIES, headers=auth)
        assert resp.status == 403, login_name
        resp = await client.post(COMPANIES, json={"tax_id": "0912345678001"}, headers=auth)
        assert resp.status == 403, login_name
    assert (await client.get(COMPANIES)).status == 401
    admin = bearer(await api_token(client, "admin"))
    body = await (await client.get(COMPANIES, params={"q": PACIFICO}, headers=admin)).json()
    assert [c["name"] for c in body["companies"]] == ["Importadora del Pacífico Cía. Ltda."]
    resp = await client.get(COMPANIES, params={"limit": "0", "after": "abc"}, headers=admin)
    assert resp.status == 400 and set((await api_error(resp))["fields"]) == {"limit", "after"}
