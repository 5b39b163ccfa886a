"""Every documented API operation, fed garbage, answers a 4xx JSON error — never a 500."""

from __future__ import annotations

import re

import pytest

from tests.gate_support import enrol_kiosk
from tests.helpers import api_token, bearer

GARBAGE_BODIES = [b"", b"not json", b"[]", b'"text"', b'{"a": null}', b'{"quantity": "1e999", "code": 5}', b"[" * 5000]
PATH_VALUES = ["abc", "99999999999999999999999", "-1", "..%2F..%2Fetc"]


async def operations(client) -> list[tuple[str, str]]:
    """The operations the running app documents (fetched from it, so every area is included)."""
    document = await (await client.get("/api/v1/openapi.json")).json()
    return [(method.upper(), path) for path, methods in document["paths"].items() for method in methods]


@pytest.mark.timeout(120)
async def test_no_operation_answers_500_to_garbage(client):
    tokens = {
        "anonymous": {},
        "customer": bearer(await api_token(client, "pacifico")),
        "staff": bearer(await api_token(client, "admin")),
        "kiosk": bearer((await enrol_kiosk(client))["token"]),
    }
    failures = []
    ops = await operations(client)
    assert len(ops) > 50
    for method, path in ops:
        if path.endswith("/live") or path.endswith("openapi.json"):
            continue
        for value in PATH_VALUES:
            url = re.sub(r"\{[^}]+\}", value, path)
            for who, headers in tokens.items():
                for body in GARBAGE_BODIES if method in ("POST", "PUT", "PATCH") else [None]:
                    resp = await client.request(
                        method, url, data=body, headers={**headers, "Content-Type": "application/json"}
                    )
                    if resp.status >= 500:
                        failures.append((method, url, who, body[:20] if body else body, resp.status))
    assert not failures, failures[:10]
