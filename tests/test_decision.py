"""The gate decision: every reason, their precedence, windows, time zones and reason text."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gate_core.codes import CodeStatus, ParsedCode, SigningKey, issue_code, parse_code
from gate_core.decision import (
    GateConfig,
    ItineraryWindow,
    PriorUse,
    TicketFacts,
    Verdict,
    decide,
)
from gate_core.reasons import DECISION_REASONS, REASON_TEXT, Reason, reason_text

KEY = SigningKey.from_private_bytes(1, bytes(range(32)))
KEYS = {1: KEY.public_key()}
TICKET_ID, ITINERARY_ID, OTHER_ITINERARY = 4711, 30, 31
VALID_CODE = issue_code(KEY, TICKET_ID, ITINERARY_ID)

OPENS = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)
CLOSES = datetime(2025, 3, 3, 18, 0, tzinfo=UTC)
NOW = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

TICKET = TicketFacts(
    ticket_id=TICKET_ID,
    itinerary_id=ITINERARY_ID,
    printed=True,
    deleted=False,
    company_name="Naviera del Pacífico S.A.",
    itinerary_label="MSC AURORA 0325",
    services=("CONTENEDOR", "PESAJE"),
)
WINDOW = ItineraryWindow(ITINERARY_ID, OPENS, CLOSES)
PRIOR = PriorUse(used_at=datetime(2025, 3, 2, 8, 15, tzinfo=UTC), kiosk_name="Puerta 2", scan_id="scan-abc")


def _altered(code: str) -> str:
    flip = "B" if code[60] == "A" else "A"
    return code[:60] + flip + code[61:]


def _scenario(*failures: str) -> dict:
    """Arguments for decide() with a good ticket, spoiled by the named failures."""
    args = {
        "code": parse_code(VALID_CODE, KEYS),
        "ticket": TICKET,
        "prior_use": None,
        "window": WINDOW,
        "now": NOW,
        "gate": GateConfig(),
    }
    for failure in failures:
        match failure:
            case "revoked_kiosk":
                args["gate"] = replace(args["gate"], kiosk_revoked=True)
            case "malformed":
                args["code"] = parse_code(VALID_CODE[:-1], KEYS)
            case "bad_signature":
                args["code"] = parse_code(_altered(VALID_CODE), KEYS)
            case "unknown_key":
                args["code"] = parse_code(issue_code(SigningKey.generate(2), TICKET_ID, ITINERARY_ID), KEYS)
            case "foreign_itinerary":
                args["gate"] = replace(args["gate"], allowed_itineraries=frozenset({99}))
            case "ticket_missing":
                args["ticket"] = None
            case "itinerary_mismatch":
                args["ticket"] = replace(args["ticket"], itinerary_id=OTHER_ITINERARY)
            case "deleted":
                args["ticket"] = replace(args["ticket"], deleted=True)
            case "not_printed":
                args["ticket"] = replace(args["ticket"], printed=False)
            case "already_used":
                args["prior_use"] = PRIOR
            case "window_missing":
                args["window"] = None
            case "after_window":
                args["now"] = CLOSES + MICROSECOND
            case _:
                raise AssertionError(failure)
    return args


# In the order decide() must check them, with the reason each one gives on its own.
FAILURES: list[tuple[str, Reason]] = [
    ("revoked_kiosk", Reason.REVOKED_KIOSK),
    ("malformed", Reason.MALFORMED),
    ("bad_signature", Reason.FORGED),
    ("unknown_key", Reason.FORGED),
    ("foreign_itinerary", Reason.FOREIGN_ITINERARY),
    ("ticket_missing", Reason.UNKNOWN),
    ("itinerary_mismatch", Reason.FORGED),
    ("deleted", Reason.DELETED),
    ("not_printed", Reason.NOT_PRINTED),
    ("already_used", Reason.ALREADY_USED),
    ("window_missing", Reason.OUTSIDE_WINDOW),
    ("after_window", Reason.OUTSIDE_WINDOW),
]
# Failures that cannot hold at once: a code has one status, a missing ticket has no fields.
EXCLUSIVE = [
    {"malformed", "bad_signature", "unknown_key"},
    {"ticket_missing", "itinerary_mismatch"},
    {"ticket_missing", "deleted"},
    {"ticket_missing", "not_printed"},
    {"window_missing", "after_window"},
]
REASON_OF = dict(FAILURES)


def _compatible(names: tuple[str, ...]) -> bool:
    return not any(len(group & set(names)) > 1 for group in EXCLUSIVE)


PAIRS = [
    (first, later) for (first, _), (later, _) in itertools.combinations(FAILURES, 2) if _compatible((first, later))
]


def test_good_ticket_is_accepted():
    verdict = decide(**_scenario())
    assert verdict.accepted
    assert verdict.reason is Reason.ACCEPTED
    assert (verdict.ticket_id, verdict.itinerary_id) == (TICKET_ID, ITINERARY_ID)
    assert verdict.ticket == TICKET
    assert verdict.prior_use is None


@pytest.mark.parametrize(("failure", "reason"), FAILURES, ids=[f for f, _ in FAILURES])
def test_each_failure_alone_gives_its_reason(failure, reason):
    verdict = decide(**_scenario(failure))
    assert not verdict.accepted
    assert verdict.reason is reason


def test_every_reason_is_reachable():
    reached = {decide(**_scenario(f)).reason for f, _ in FAILURES}
    reached.add(decide(**_scenario()).reason)
    reached.add(decide(**{**_scenario(), "code": ParsedCode.unknown_short()}).reason)
    assert reached == set(DECISION_REASONS)  # storage_fault is the kiosk's own, never the rules'


@pytest.mark.parametrize(("first", "later"), PAIRS, ids=[f"{a}>{b}" for a, b in PAIRS])
def test_earlier_check_wins_over_later(first, later):
    assert decide(**_scenario(first, later)).reason is REASON_OF[first]


def test_peeling_failures_off_one_by_one_follows_the_order():
    # Start from every failure that can hold at once, remove the winning one each time.
    active = [
        "revoked_kiosk",
        "bad_signature",
        "foreign_itinerary",
        "itinerary_mismatch",
        "deleted",
        "not_printed",
        "already_used",
        "after_window",
    ]
    seen = []
    while active:
        seen.append(decide(**_scenario(*active)).reason)
        active.pop(0)
    seen.append(decide(**_scenario()).reason)
    assert seen == [
        Reason.REVOKED_KIOSK,
        Reason.FORGED,
        Reason.FOREIGN_ITINERARY,
        Reason.FORGED,
        Reason.DELETED,
        Reason.NOT_PRINTED,
        Reason.ALREADY_USED,
        Reason.OUTSIDE_WINDOW,
        Reason.ACCEPTED,
    ]


# --- what a verdict carries ---------------------------------------------------------------


def test_already_used_carries_the_prior_use():
    verdict = decide(**_scenario("already_used"))
    assert verdict.prior_use == PRIOR
    assert verdict.ticket == TICKET


@pytest.mark.parametrize("failure", ["revoked_kiosk", "malformed", "bad_signature", "unknown_key"])
def test_untrusted_codes_reveal_no_ticket(failure):
    verdict = decide(**_scenario(failure))
    assert (verdict.ticket_id, verdict.itinerary_id, verdict.ticket, verdict.prior_use) == (
        None,
        None,
        None,
        None,
    )


def test_itinerary_mismatch_is_forged_and_shows_no_ticket_facts():
    verdict = decide(**_scenario("itinerary_mismatch"))
    assert verdict.reason is Reason.FORGED
    assert verdict.ticket is None
    assert verdict.ticket_id == TICKET_ID


@pytest.mark.parametrize("failure", ["deleted", "not_printed", "after_window"])
def test_refusals_of_known_tickets_carry_the_ticket(failure):
    verdict = decide(**_scenario(failure))
    assert verdict.ticket == replace(
        TICKET,
        deleted=failure == "deleted",
        printed=failure != "not_printed",
    )


def test_verdict_to_dict_is_json_with_iso_datetimes():
    data = decide(**_scenario("already_used")).to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "accepted": False,
        "reason": "already_used",
        "ticket_id": TICKET_ID,
        "itinerary_id": ITINERARY_ID,
        "ticket": {
            "ticket_id": TICKET_ID,
            "itinerary_id": ITINERARY_ID,
            "printed": True,
            "deleted": False,
            "company_name": "Naviera del Pacífico S.A.",
            "itinerary_label": "MSC AURORA 0325",
            "services": ["CONTENEDOR", "PESAJE"],
        },
        "prior_use": {
            "used_at": "2025-03-02T08:15:00+00:00",
            "kiosk_name": "Puerta 2",
            "scan_id": "scan-abc",
        },
    }


@pytest.mark.parametrize("failures", [(), ("already_used",), ("malformed",), ("deleted",)])
def test_verdict_round_trips_through_dict(failures):
    verdict = decide(**_scenario(*failures))
    assert Verdict.from_dict(json.loads(json.dumps(verdict.to_dict()))) == verdict


def test_verdict_refuses_contradictions():
    with pytest.raises(ValueError):
        Verdict(accepted=True, reason=Reason.DELETED)
    with pytest.raises(ValueError):
        Verdict(accepted=False, reason=Reason.ACCEPTED)


# --- short codes --------------------------------------------------------------------------


def test_short_code_found_is_decided_like_a_full_code():
    code = ParsedCode.from_short(TICKET_ID, ITINERARY_ID, text="01234567890123456789")
    assert decide(**{**_scenario(), "code": code}).reason is Reason.ACCEPTED
    assert decide(**{**_scenario("already_used"), "code": code}).reason is Reason.ALREADY_USED
    assert decide(**{**_scenario("foreign_itinerary"), "code": code}).reason is (Reason.FOREIGN_ITINERARY)


def test_short_code_not_found_is_unknown():
    args = {**_scenario("ticket_missing"), "code": ParsedCode.unknown_short()}
    verdict = decide(**args)
    assert verdict.reason is Reason.UNKNOWN
    assert verdict.ticket_id is None


def test_short_code_not_found_has_no_itinerary_to_be_foreign_to():
    args = {**_scenario("foreign_itinerary", "ticket_missing"), "code": ParsedCode.unknown_short()}
    assert decide(**args).reason is Reason.UNKNOWN


def test_revoked_kiosk_wins_over_unknown_short_code():
    args = {**_scenario("revoked_kiosk"), "code": ParsedCode.unknown_short()}
    assert decide(**args).reason is Reason.REVOKED_KIOSK


# --- gate configuration -------------------------------------------------------------------


def test_allowed_itineraries_admit_listed_ones():
    gate = GateConfig(allowed_itineraries=frozenset({ITINERARY_ID, 99}))
    assert decide(**{**_scenario(), "gate": gate}).accepted


def test_empty_allowed_itineraries_admit_none():
    gate = GateConfig(allowed_itineraries=frozenset())
    assert decide(**{**_scenario(), "gate": gate}).reason is Reason.FOREIGN_ITINERARY


def test_allowed_itineraries_from_a_plain_set_become_frozen():
    gate = GateConfig(allowed_itineraries={ITINERARY_ID})
    assert isinstance(gate.allowed_itineraries, frozenset)
    assert hash(gate)


# --- time ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (OPENS - MICROSECOND, Reason.OUTSIDE_WINDOW),
        (OPENS, Reason.ACCEPTED),
        (OPENS + MICROSECOND, Reason.ACCEPTED),
        (CLOSES - MICROSECOND, Reason.ACCEPTED),
        (CLOSES, Reason.ACCEPTED),
        (CLOSES + MICROSECOND, Reason.OUTSIDE_WINDOW),
    ],
    ids=["before-open", "at-open", "after-open", "before-close", "at-close", "after-close"],
)
def test_window_boundaries_are_inclusive(now, reason):
    assert decide(**{**_scenario(), "now": now}).reason is reason


def test_window_compares_instants_not_wall_clocks():
    lima = timezone(timedelta(hours=-5))
    at_close_in_lima = CLOSES.astimezone(lima)
    assert decide(**{**_scenario(), "now": at_close_in_lima}).accepted
    assert not decide(**{**_scenario(), "now": at_close_in_lima + MICROSECOND}).accepted


def test_naive_now_raises_even_when_the_kiosk_is_revoked():
    for failures in [(), ("revoked_kiosk",), ("malformed",)]:
        with pytest.raises(ValueError, match="now"):
            decide(**{**_scenario(*failures), "now": datetime(2025, 3, 2, 12, 0)})


def test_naive_datetimes_are_refused_at_construction():
    naive = datetime(2025, 3, 2, 12, 0)
    with pytest.raises(ValueError):
        ItineraryWindow(ITINERARY_ID, naive, CLOSES)
    with pytest.raises(ValueError):
        ItineraryWindow(ITINERARY_ID, OPENS, naive)
    with pytest.raises(ValueError):
        PriorUse(used_at=naive, kiosk_name="Puerta 1", scan_id="s")


def test_window_must_not_end_before_it_starts():
    with pytest.raises(ValueError):
        ItineraryWindow(ITINERARY_ID, CLOSES, OPENS)
    assert ItineraryWindow(ITINERARY_ID, OPENS, OPENS).contains(OPENS)


# --- caller mistakes ----------------------------------------------------------------------


def test_ticket_of_another_ticket_id_is_a_caller_bug():
    args = {**_scenario(), "ticket": replace(TICKET, ticket_id=TICKET_ID + 1)}
    with pytest.raises(ValueError, match="ticket"):
        decide(**args)


def test_window_of_another_itinerary_is_a_caller_bug():
    args = {**_scenario(), "window": ItineraryWindow(OTHER_ITINERARY, OPENS, CLOSES)}
    with pytest.raises(ValueError, match="window"):
        decide(**args)


def test_decide_does_not_care_where_the_code_came_from():
    parsed = parse_code(VALID_CODE.lower(), KEYS)
    assert parsed.status is CodeStatus.VALID
    assert decide(**{**_scenario(), "code": parsed}) == decide(**_scenario())


# --- reason text --------------------------------------------------------------------------


def test_every_reason_has_spanish_and_english_text():
    assert set(REASON_TEXT) == set(Reason)
    for reason in Reason:
        assert set(REASON_TEXT[reason]) >= {"es", "en"}
        assert all(REASON_TEXT[reason][lang].strip() for lang in ("es", "en"))
    for lang in ("es", "en"):
        texts = [REASON_TEXT[r][lang] for r in Reason]
        assert len(set(texts)) == len(texts), f"two reasons read the same in {lang}"


@pytest.mark.parametrize(
    ("lang", "expected"),
    [
        ("es", "Ticket ya usado"),
        ("en", "Ticket already used"),
        ("EN", "Ticket already used"),
        ("en-US", "Ticket already used"),
        ("es_PE", "Ticket ya usado"),
        ("fr", "Ticket ya usado"),
        ("", "Ticket ya usado"),
    ],
)
def test_reason_text_falls_back_to_spanish(lang, expected):
    assert reason_text(Reason.ALREADY_USED, lang) == expected


def test_reason_text_accepts_the_stored_string_code():
    assert reason_text("deleted", "en") == "Ticket deleted"
    assert reason_text(Reason.DELETED) == "Ticket eliminado"


def test_reason_codes_are_stable():
    assert [r.value for r in Reason] == [
        "accepted",
        "malformed",
        "forged",
        "unknown",
        "not_printed",
        "deleted",
        "already_used",
        "outside_window",
        "foreign_itinerary",
        "revoked_kiosk",
        "storage_fault",
    ]
