"""One set of facts for the rules: the server's database and a kiosk's cache, fed the same
tickets through the real sync page, give decide() identical facts and identical verdicts for
every reason a scan can have."""

from __future__ import annotations

from datetime import timedelta

from gate_agent.cache import AgentStore
from gate_core.decision import GateConfig, decide
from gate_core.reasons import Reason
from server.gate.redeem import facts_for_code
from server.tickets import KEYS
from server.tickets.service import delete_ticket
from server.web import DB
from tests.gate_support import company_id, enrol_kiosk, make_itinerary, make_tickets, now, redeem


def _tampered(code: str) -> str:
    """The code with one character of its signature changed (still well formed)."""
    swap = "A" if code[-3] != "A" else "B"
    return code[:-3] + swap + code[-2:]


async def test_server_and_kiosk_build_the_same_facts_and_verdicts_for_every_reason(client, tmp_path):
    app = client.server.app
    kiosk = await enrol_kiosk(client, "Puerta Paridad")
    good, used, deleted = await make_tickets(app, 3)
    (unprinted,) = await make_tickets(app, 1, printed=False)
    closed = await make_itinerary(app)
    (expired,) = await make_tickets(app, 1, itinerary_id=closed)
    # Its vessel has sailed: the window is in the past now.
    past = (now() - timedelta(days=9)).isoformat(), (now() - timedelta(days=5)).isoformat()
    await app[DB].write(
        lambda db: db.execute("UPDATE itineraries SET valid_from = ?, valid_until = ? WHERE id = ?", (*past, closed))
    )
    assert (await redeem(client, kiosk, used["code"]))["accepted"]
    await app[DB].write(delete_ticket, await company_id(app), deleted["id"], now=now())

    store = AgentStore(tmp_path / "kiosk.db")
    try:
        # The page a kiosk's first sync gets, over the wire.
        resp = await client.get("/api/v1/gate/sync", params={"cursor": "0"}, headers=kiosk["headers"])
        assert resp.status == 200
        page = await resp.json()
        assert not page["has_more"]
        store.apply_changes(page, advance_cursor=True)
        texts = [t[form] for t in (good, used, deleted, unprinted, expired) for form in ("code", "short_code")]
        texts += [_tampered(good["code"]), "PG1-NOT-A-CODE", "9" * 20]
        gates = [
            GateConfig(),
            GateConfig(allowed_itineraries=frozenset({closed})),
            GateConfig(kiosk_revoked=True),
        ]
        moment = now()
        reasons = set()
        for lang in ("es", "en"):
            for text in texts:
                parsed, server = await app[DB].read(facts_for_code, text, app[KEYS], lang)
                local = store.facts_for(text, lang)
                assert (local.parsed.status, local.parsed.ticket_id, local.parsed.itinerary_id) == (
                    parsed.status,
                    parsed.ticket_id,
                    parsed.itinerary_id,
                ), text
                assert (local.ticket, local.prior_use, local.window) == (server.ticket, server.prior_use, server.window)
                for gate in gates:
                    on_server = decide(parsed, server.ticket, server.prior_use, server.window, moment, gate)
                    on_kiosk = decide(local.parsed, local.ticket, local.prior_use, local.window, moment, gate)
                    assert on_kiosk == on_server, (text, gate)
                    reasons.add(on_server.reason)
        assert reasons == {r for r in Reason if r is not Reason.STORAGE_FAULT}
        # The facts carry what the gate shows: services by name, a use with its kiosk and scan.
        _parsed, facts = await app[DB].read(facts_for_code, used["short_code"], app[KEYS], "en")
        assert facts.ticket.services == ("Container",)
        assert facts.prior_use.kiosk_name == "Puerta Paridad" and facts.prior_use.scan_id
    finally:
        store.close()
