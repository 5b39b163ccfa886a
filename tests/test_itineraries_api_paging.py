"""The customer API's open itineraries page and search without a cap (it used to stop at 200)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from server.tickets import service as svc
from server.web import DB
from tests.helpers import api_error, api_token, bearer

MANY = 230


def _add_itineraries(db, count: int) -> None:
    """``count`` open itineraries, all arriving after the demo's, vessels "Nave 0000" … in order of arrival."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    for n in range(count):
        eta = now + timedelta(days=10, hours=n)
        values = {
            "vessel": f"Nave {n:04d}",
            "voyage": f"V{n:04d}",
            "berth": "M2",
            "eta": eta,
            "etd": eta + timedelta(days=1),
            "valid_from": now,
            "valid_until": eta + timedelta(days=2),
        }
        svc.save_itinerary(db, values, now=now)


async def _get(client, headers, query: str = ""):
    return await client.get(f"/api/v1/itineraries{query}", headers=headers)


async def test_every_open_itinerary_is_reached_page_by_page_once(client):
    await client.server.app[DB].write(_add_itineraries, MANY)
    headers = bearer(await api_token(client, "pacifico"))
    seen, after, pages = [], None, 0
    while True:
        resp = await _get(client, headers, f"?limit=100&after={after}" if after else "?limit=100")
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        seen += [i["vessel"] for i in body["itineraries"]]
        pages, after = pages + 1, body["next_after"]
        if after is None:
            break
    nave = [v for v in seen if v.startswith("Nave ")]
    assert nave == [f"Nave {n:04d}" for n in range(MANY)]  # all, soonest first, none twice
    assert len(seen) == len(set(seen)) and "MSC Guayaquil" in seen
    assert pages == 3
    # Without paging, a client gets the first 200 as before, told where the rest start.
    first = await (await _get(client, headers)).json()
    assert len(first["itineraries"]) == 200 and first["next_after"] == first["itineraries"][-1]["id"]
    fields = {"id", "vessel", "voyage", "eta", "etd", "valid_from", "valid_until", "berth"}
    assert set(first["itineraries"][0]) == fields


async def test_a_search_finds_an_itinerary_past_the_old_cap(client):
    await client.server.app[DB].write(_add_itineraries, MANY)
    headers = bearer(await api_token(client, "pacifico"))
    by_vessel = await (await _get(client, headers, "?q=nave%200225")).json()
    assert [i["vessel"] for i in by_vessel["itineraries"]] == ["Nave 0225"] and by_vessel["next_after"] is None
    by_voyage = await (await _get(client, headers, "?q=v022")).json()
    assert [i["voyage"] for i in by_voyage["itineraries"]] == [f"V022{n}" for n in range(10)]


async def test_a_bad_limit_or_after_is_a_400_naming_it(client):
    headers = bearer(await api_token(client, "pacifico"))
    for query, field in (
        ("?limit=0", "limit"),
        ("?limit=201", "limit"),
        ("?limit=ten", "limit"),
        ("?after=-3", "after"),
        ("?after=abc", "after"),
        ("?after=999999", "after"),
    ):
        resp = await _get(client, headers, query)
        assert resp.status == 400, query
        error = await api_error(resp)
        assert error["code"] == "invalid" and set(error["fields"]) == {field}, query
