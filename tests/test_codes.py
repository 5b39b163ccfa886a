"""Ticket codes: issuing, offline verification, tamper refusal, short codes, display forms."""

from __future__ import annotations

import base64
import math
import re
import secrets
import string

import pytest

from gate_core.codes import (
    CODE_LEN,
    DECIMAL_CODE_LEN,
    DECIMAL_PREFIX,
    MAX_ITINERARY_ID,
    MAX_TICKET_ID,
    PREFIX,
    QR_ALPHANUMERIC,
    SIGNING_DOMAIN,
    CodeStatus,
    ParsedCode,
    SigningKey,
    VerifyKey,
    decimal_form,
    human_readable,
    issue_code,
    keyring,
    looks_like_short_code,
    mask_code,
    new_short_code,
    normalize_code,
    normalize_short_code,
    parse_code,
)

# Fixed private keys so failures reproduce; generated keys are covered separately.
KEY_1 = SigningKey.from_private_bytes(1, bytes(range(32)))
KEY_2 = SigningKey.from_private_bytes(2, bytes(range(100, 132)))
KEYS = {1: KEY_1.public_key(), 2: KEY_2.public_key()}

SAMPLE_CODES = [
    issue_code(KEY_1, 1, 1),
    issue_code(KEY_1, 123_456_789, 42),
    issue_code(KEY_2, MAX_TICKET_ID, MAX_ITINERARY_ID),
]
# Every character a person or a scanner might put in place of one of ours.
REPLACEMENTS = sorted(QR_ALPHANUMERIC | set(string.ascii_lowercase) | set("=_#"))
ED25519_ORDER = 2**252 + 27742317777372353535851937790883648493


def _decode(code: str) -> bytes:
    return base64.b32decode(code[len(PREFIX) :])


def _encode(raw: bytes) -> str:
    return PREFIX + base64.b32encode(raw).decode()


# --- keys ---------------------------------------------------------------------------------


def test_signing_key_round_trips_through_private_bytes():
    key = SigningKey.generate(7)
    again = SigningKey.from_private_bytes(7, key.private_bytes())
    assert len(key.private_bytes()) == 32
    assert again.public_key() == key.public_key()
    assert key.public_key().key_id == 7


def test_verify_key_round_trips_through_public_bytes():
    public = KEY_1.public_key()
    assert len(public.public_bytes()) == 32
    assert VerifyKey(1, public.public_bytes()) == public
    assert VerifyKey(2, public.public_bytes()) != public


def test_signing_key_repr_never_shows_private_bytes():
    key = SigningKey.generate(3)
    assert key.private_bytes().hex() not in repr(key)
    assert repr(key) == "SigningKey(key_id=3)"


@pytest.mark.parametrize("key_id", [0, 256, -1, True, 1.0, "1"])
def test_key_id_outside_1_to_255_is_refused(key_id):
    with pytest.raises(ValueError):
        SigningKey.generate(key_id)
    with pytest.raises(ValueError):
        VerifyKey(key_id, KEY_1.public_key().public_bytes())


@pytest.mark.parametrize("key_id", [1, 255])
def test_key_id_bounds_are_usable(key_id):
    key = SigningKey.generate(key_id)
    parsed = parse_code(issue_code(key, 5, 6), {key_id: key.public_key()})
    assert parsed.valid and parsed.key_id == key_id


@pytest.mark.parametrize("raw", [b"", bytes(31), bytes(33)])
def test_raw_keys_must_be_32_bytes(raw):
    with pytest.raises(ValueError):
        SigningKey.from_private_bytes(1, raw)
    with pytest.raises(ValueError):
        VerifyKey(1, raw)


def test_keyring_indexes_by_key_id_and_refuses_clashes():
    assert keyring([KEY_1.public_key(), KEY_2.public_key()]) == KEYS
    assert keyring([KEY_1.public_key(), KEY_1.public_key()]) == {1: KEY_1.public_key()}
    impostor = SigningKey.generate(1).public_key()
    with pytest.raises(ValueError, match="key_id 1"):
        keyring([KEY_1.public_key(), impostor])


# --- issuing and the happy path -----------------------------------------------------------


@pytest.mark.parametrize("code", SAMPLE_CODES)
def test_code_is_short_and_qr_alphanumeric_only(code):
    assert len(code) == CODE_LEN == 123
    assert len(code) <= 130
    assert code.startswith("PG1")
    assert set(code) <= QR_ALPHANUMERIC


# --- the decimal form (what the printed QR carries) ------------------------------------------


@pytest.mark.parametrize("code", SAMPLE_CODES)
def test_the_decimal_form_parses_as_the_same_code_with_the_same_ids(code):
    decimal = decimal_form(code)
    assert len(decimal) == DECIMAL_CODE_LEN == 184
    assert decimal.startswith(DECIMAL_PREFIX) and decimal[len(DECIMAL_PREFIX) :].isdigit()
    assert decimal_form(decimal) == decimal
    for text in (decimal, decimal.lower(), " ".join([decimal[:3], decimal[3:90], decimal[90:]]) + "\r\n"):
        assert normalize_code(text) == code
        assert parse_code(text, KEYS) == parse_code(code, KEYS)  # same ids, same canonical text


def test_the_decimal_form_keeps_leading_zeros():
    # Key id 1 leads the bytes, so the number has fewer than 181 digits and is padded with zeros.
    decimal = decimal_form(SAMPLE_CODES[0])
    assert decimal[len(DECIMAL_PREFIX)] == "0"
    assert normalize_code(DECIMAL_PREFIX + decimal[len(DECIMAL_PREFIX) :].lstrip("0")) is None


@pytest.mark.parametrize(
    "body",
    [
        str(2**600),  # one past the largest 75-byte number: no code has it
        "9" * 181,
        "1" * 180,
        "1" * 182,
        "1" * 180 + "A",
        "1" * 180 + "\u0661",  # an Arabic-Indic digit: str.isdigit() says yes, a code says no
        "+" + "1" * 180,  # int() would take a sign...
        "1" * 90 + "_" + "1" * 90,  # ...and an underscore between digits
    ],
)
def test_decimal_texts_that_are_not_a_code_are_malformed(body):
    assert normalize_code(DECIMAL_PREFIX + body) is None
    assert parse_code(DECIMAL_PREFIX + body, KEYS).status is CodeStatus.MALFORMED


def test_the_largest_75_byte_number_is_a_well_formed_decimal_code():
    largest = DECIMAL_PREFIX + str(2**600 - 1)
    assert normalize_code(largest) == PREFIX + "7" * 120  # every bit set: base 32's last digit, 7


def test_changing_any_digit_of_the_decimal_form_never_verifies():
    decimal = decimal_form(SAMPLE_CODES[1])
    for position in range(len(DECIMAL_PREFIX), len(decimal)):
        digit = str((int(decimal[position]) + 7) % 10)
        altered = decimal[:position] + digit + decimal[position + 1 :]
        assert not parse_code(altered, KEYS).valid, position


@pytest.mark.parametrize("text", ["", "PG1", "12345678901234567890", "hello"])
def test_only_a_full_code_has_a_decimal_form(text):
    with pytest.raises(ValueError, match="not a full ticket code"):
        decimal_form(text)


def test_the_decimal_form_is_masked_like_the_code():
    assert mask_code(decimal_form(SAMPLE_CODES[1])) == mask_code(SAMPLE_CODES[1])


def test_code_encodes_in_qr_alphanumeric_mode():
    import segno

    assert segno.make(SAMPLE_CODES[1], error="m").mode == "alphanumeric"


@pytest.mark.parametrize(
    ("key", "ticket_id", "itinerary_id"),
    [(KEY_1, 1, 1), (KEY_1, 123_456_789, 42), (KEY_2, MAX_TICKET_ID, MAX_ITINERARY_ID)],
)
def test_issued_code_parses_back(key, ticket_id, itinerary_id):
    parsed = parse_code(issue_code(key, ticket_id, itinerary_id), KEYS)
    assert parsed.status is CodeStatus.VALID
    assert parsed.valid
    assert (parsed.ticket_id, parsed.itinerary_id, parsed.key_id) == (
        ticket_id,
        itinerary_id,
        key.key_id,
    )
    assert parsed.short is False


def test_code_layout_is_key_id_ticket_itinerary_then_signature():
    raw = _decode(issue_code(KEY_2, 0x0102030405, 0x0A0B0C0D))
    assert len(raw) == 11 + 64
    assert raw[:11] == bytes([2, 0, 1, 2, 3, 4, 5, 0x0A, 0x0B, 0x0C, 0x0D])
    # The signature is over the domain-separated payload, not the bare payload.
    assert KEYS[2].verify(raw[11:], SIGNING_DOMAIN + raw[:11])
    assert not KEYS[2].verify(raw[11:], raw[:11])


def test_same_ticket_always_gets_the_same_code():
    # Ed25519 is deterministic: a reprint shows exactly the code printed before.
    assert issue_code(KEY_1, 9, 9) == issue_code(KEY_1, 9, 9)
    assert issue_code(KEY_1, 9, 9) != issue_code(KEY_1, 10, 9)


@pytest.mark.parametrize(
    ("ticket_id", "itinerary_id"),
    [(0, 1), (-1, 1), (MAX_TICKET_ID + 1, 1), (1, 0), (1, MAX_ITINERARY_ID + 1)],
)
def test_ids_out_of_range_cannot_be_issued(ticket_id, itinerary_id):
    with pytest.raises(ValueError):
        issue_code(KEY_1, ticket_id, itinerary_id)


@pytest.mark.parametrize(("ticket_id", "itinerary_id"), [("1", 1), (1, 1.0), (True, 1)])
def test_ids_must_be_ints(ticket_id, itinerary_id):
    with pytest.raises(TypeError):
        issue_code(KEY_1, ticket_id, itinerary_id)


# --- normalisation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variant",
    [
        lambda c: c.lower(),
        lambda c: human_readable(c),
        lambda c: human_readable(c).lower(),
        lambda c: human_readable(c).replace(" ", "-"),
        lambda c: "  " + c + "\r\n",
        lambda c: "\n".join(c[i : i + 40] for i in range(0, len(c), 40)),
        lambda c: c[:3].lower() + " " + c[3:50] + "\t" + c[50:].lower(),
    ],
    ids=["lower", "grouped", "grouped-lower", "dashes", "padded", "wrapped", "mixed"],
)
@pytest.mark.parametrize("code", SAMPLE_CODES)
def test_whitespace_dashes_and_case_are_normalised(code, variant):
    parsed = parse_code(variant(code), KEYS)
    assert parsed.valid
    assert parsed.text == code
    assert normalize_code(variant(code)) == code


def test_human_readable_groups_in_blocks_of_five():
    code = SAMPLE_CODES[1]
    groups = human_readable(code).split(" ")
    assert groups[0] == "PG1"
    assert len(groups) == 1 + 24
    assert all(len(g) == 5 for g in groups[1:])
    assert "".join(groups) == code


def test_human_readable_refuses_garbage():
    with pytest.raises(ValueError):
        human_readable("hello")


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize("code", SAMPLE_CODES, ids=["a", "b", "c"])
@pytest.mark.parametrize("position", range(CODE_LEN))
def test_every_single_character_change_is_refused(code, position):
    original = code[position]
    for replacement in REPLACEMENTS:
        if replacement.upper() == original:
            continue  # the same character, only in another case: not an alteration
        altered = code[:position] + replacement + code[position + 1 :]
        parsed = parse_code(altered, KEYS)
        assert not parsed.valid, (position, replacement)
        assert parsed.ticket_id is None and parsed.itinerary_id is None
        if position < len(PREFIX) or replacement.upper() not in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567":
            assert parsed.status is CodeStatus.MALFORMED, (position, replacement)
        else:
            assert parsed.status in (CodeStatus.BAD_SIGNATURE, CodeStatus.UNKNOWN_KEY)


@pytest.mark.parametrize("code", SAMPLE_CODES)
def test_every_single_bit_flip_of_the_signed_bytes_is_refused(code):
    raw = _decode(code)
    for bit in range(len(raw) * 8):
        flipped = bytearray(raw)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert parse_code(_encode(bytes(flipped)), KEYS).status in (
            CodeStatus.BAD_SIGNATURE,
            CodeStatus.UNKNOWN_KEY,
        ), bit


def test_payload_rewritten_with_an_old_signature_is_forged():
    raw = _decode(issue_code(KEY_1, 100, 7))
    payload = bytes([1]) + (101).to_bytes(6, "big") + (7).to_bytes(4, "big")
    assert parse_code(_encode(payload + raw[11:]), KEYS).status is CodeStatus.BAD_SIGNATURE


def test_signature_from_another_code_is_forged():
    one, other = _decode(issue_code(KEY_1, 100, 7)), _decode(issue_code(KEY_1, 101, 7))
    assert parse_code(_encode(one[:11] + other[11:]), KEYS).status is CodeStatus.BAD_SIGNATURE


def test_signature_made_for_another_domain_is_forged():
    payload = bytes([1]) + (100).to_bytes(6, "big") + (7).to_bytes(4, "big")
    signature = KEY_1._key.sign(payload)
    assert parse_code(_encode(payload + signature), KEYS).status is CodeStatus.BAD_SIGNATURE


def test_non_canonical_signature_is_forged():
    # Ed25519 malleability: S + L verifies in lax implementations; ours must refuse it.
    raw = _decode(issue_code(KEY_1, 100, 7))
    s = int.from_bytes(raw[11 + 32 :], "little") + ED25519_ORDER
    assert s < 2**256
    malleated = raw[: 11 + 32] + s.to_bytes(32, "little")
    assert parse_code(_encode(malleated), KEYS).status is CodeStatus.BAD_SIGNATURE


def test_code_signed_by_an_impostor_key_with_a_known_id_is_forged():
    impostor = SigningKey.generate(1)
    assert parse_code(issue_code(impostor, 100, 7), KEYS).status is CodeStatus.BAD_SIGNATURE


def test_code_with_a_key_id_the_kiosk_does_not_hold_is_unknown_key():
    stranger = SigningKey.generate(9)
    parsed = parse_code(issue_code(stranger, 100, 7), KEYS)
    assert parsed.status is CodeStatus.UNKNOWN_KEY
    assert parsed.key_id == 9
    assert parsed.ticket_id is None


def test_rotated_key_verifies_while_listed_and_is_refused_once_removed():
    old, new = SigningKey.generate(10), SigningKey.generate(11)
    old_code, new_code = issue_code(old, 5, 5), issue_code(new, 6, 5)
    before = keyring([old.public_key()])
    during = keyring([old.public_key(), new.public_key()])
    after = keyring([new.public_key()])
    assert parse_code(old_code, before).valid
    assert parse_code(new_code, before).status is CodeStatus.UNKNOWN_KEY
    assert parse_code(old_code, during).valid
    assert parse_code(new_code, during).valid
    assert parse_code(old_code, after).status is CodeStatus.UNKNOWN_KEY
    assert parse_code(new_code, after).valid


def test_no_keys_at_all_means_unknown_key():
    assert parse_code(SAMPLE_CODES[0], {}).status is CodeStatus.UNKNOWN_KEY


@pytest.mark.parametrize(
    "mangle",
    [
        lambda c: c[:-1],
        lambda c: c[:-8],
        lambda c: c[:60],
        lambda c: c[:3],
        lambda c: c + "A",
        lambda c: c + "AAAAAAAA",
        lambda c: c + c,
        lambda c: c[3:],
        lambda c: "PG2" + c[3:],
        lambda c: "PGI" + c[3:],
        lambda c: "XPG1" + c[3:],
        lambda c: "PG" + c[3:],
        lambda c: c + "=",
        lambda c: c[:-1] + "=",
        lambda c: c[:50] + "0" + c[51:],
        lambda c: c[:50] + "é" + c[51:],
        lambda c: c[:50] + "\x00" + c[51:],
        lambda c: c.replace("A", "\uff41"),  # fullwidth "a"
        lambda c: c + " " * 1000,
    ],
    ids=[
        "minus-1",
        "minus-8",
        "half",
        "prefix-only",
        "plus-1",
        "plus-8",
        "doubled",
        "no-prefix",
        "PG2",
        "PGI",
        "XPG1",
        "PG",
        "padding",
        "padding-in-place",
        "digit-0",
        "accent",
        "nul",
        "fullwidth",
        "huge",
    ],
)
@pytest.mark.parametrize("code", SAMPLE_CODES)
def test_truncated_extended_and_foreign_texts_are_malformed(code, mangle):
    parsed = parse_code(mangle(code), KEYS)
    assert parsed.status is CodeStatus.MALFORMED
    assert parsed.ticket_id is None and parsed.itinerary_id is None


@pytest.mark.parametrize("text", ["", " ", "-", "PG1", "12345678901234567890", "ß" * 123, None, 42])
def test_junk_is_malformed_and_never_raises(text):
    assert parse_code(text, KEYS).status is CodeStatus.MALFORMED


def test_unicode_case_mapping_cannot_produce_a_code():
    # "ß".upper() == "SS": normalising must not turn a non-code into a valid one.
    code = next(c for c in (issue_code(KEY_1, t, 1) for t in range(1, 1000)) if "SS" in c[3:])
    assert parse_code(code, KEYS).valid
    assert parse_code(code.replace("SS", "ß", 1), KEYS).status is CodeStatus.MALFORMED


def test_signed_zero_ids_are_not_trusted():
    # issue_code refuses id 0, but a broken issuer with a real key could sign one.
    payload = bytes([1]) + (0).to_bytes(6, "big") + (7).to_bytes(4, "big")
    forged_by_bug = _encode(payload + KEY_1._key.sign(SIGNING_DOMAIN + payload))
    assert parse_code(forged_by_bug, KEYS).status is CodeStatus.MALFORMED


# --- ParsedCode ---------------------------------------------------------------------------


def test_short_code_constructors():
    found = ParsedCode.from_short(5, 6, text="01234567890123456789")
    assert found.valid and found.short
    assert (found.ticket_id, found.itinerary_id, found.key_id) == (5, 6, None)
    missing = ParsedCode.unknown_short()
    assert missing.status is CodeStatus.NOT_FOUND and missing.short and not missing.valid


def test_parsed_code_ids_are_present_exactly_when_valid():
    with pytest.raises(ValueError):
        ParsedCode(CodeStatus.VALID, ticket_id=1)
    with pytest.raises(ValueError):
        ParsedCode(CodeStatus.BAD_SIGNATURE, ticket_id=1, itinerary_id=2)


# --- short codes --------------------------------------------------------------------------


def test_short_codes_are_twenty_digits_and_distinct():
    codes = [new_short_code() for _ in range(1000)]
    assert all(re.fullmatch(r"[0-9]{20}", c) for c in codes)
    assert len(set(codes)) == 1000
    assert all(looks_like_short_code(c) for c in codes)


def test_short_code_keeps_leading_zeros(monkeypatch):
    monkeypatch.setattr(secrets, "randbelow", lambda n: 42)
    assert new_short_code() == "00000000000000000042"


def test_short_code_draws_from_at_least_64_bits(monkeypatch):
    asked = []
    real_randbelow = secrets.randbelow

    def recording_randbelow(n):
        asked.append(n)
        return real_randbelow(n)

    monkeypatch.setattr(secrets, "randbelow", recording_randbelow)
    code = new_short_code()
    # One uniform draw over every 20-digit value: at least 64 bits an attacker has to guess.
    assert len(asked) == 1 and math.log2(asked[0]) >= 64
    assert re.fullmatch(r"\d{20}", code)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01234567890123456789", True),
        ("01234 56789 01234 56789", True),
        ("0123-4567-8901-2345-6789", True),
        (" 01234567890123456789\r\n", True),
        ("0123456789012345678", False),
        ("012345678901234567890", False),
        ("0123456789012345678X", False),
        ("".join(chr(0xFF10 + int(d)) for d in "01234567890123456789"), False),  # fullwidth
        ("²" + "0" * 19, False),
        ("", False),
        (SAMPLE_CODES[0], False),
    ],
)
def test_looks_like_short_code(text, expected):
    assert looks_like_short_code(text) is expected
    assert (normalize_short_code(text) is not None) is expected


def test_short_code_is_grouped_for_printing():
    assert human_readable("01234567890123456789") == "01234 56789 01234 56789"


# --- masking ------------------------------------------------------------------------------


@pytest.mark.parametrize("code", SAMPLE_CODES)
def test_mask_hides_the_middle_of_a_full_code(code):
    masked = mask_code(code)
    assert masked == f"PG1-••••-••••-{code[-4:]}"
    assert code[3:-4] not in masked
    visible = masked.replace("•", "").replace("-", "")
    assert visible == "PG1" + code[-4:]


def test_mask_is_fixed_length():
    assert len({len(mask_code(c)) for c in SAMPLE_CODES}) == 1
    assert mask_code(human_readable(SAMPLE_CODES[0])) == mask_code(SAMPLE_CODES[0])


def test_mask_of_a_short_code_shows_only_its_last_four_digits():
    assert mask_code("98765432109876543210") == "••••-••••-••••-3210"


@pytest.mark.parametrize("text", ["", "garbage", SAMPLE_CODES[0][:-1]])
def test_mask_of_anything_else_shows_nothing(text):
    assert mask_code(text) == "••••-••••-••••-••••"
