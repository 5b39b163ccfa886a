"""Enrolment: a one-time code from the supervisor exchanged for this kiosk's access token."""

from __future__ import annotations

import hashlib
import json
import logging
import platform
import socket
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from gate_agent import __version__
from gate_agent.cache import AgentStore
from gate_agent.config import AgentConfig
from gate_agent.sync.client import GateClient, ServerError, Unreachable
from gate_agent.sync.page import BadSyncData, checked_itineraries

log = logging.getLogger("portgate.agent")


class EnrolmentError(Exception):
    """Enrolment could not be completed, or the kiosk is not enrolled; the message says why."""


def machine_fingerprint() -> str:
    """A stable id of this box (machine-id when there is one), hashed so it reveals nothing."""
    for path in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            raw = Path(path).read_text().strip()
            if raw:
                break
        except OSError:
            continue
    else:
        raw = f"{socket.gethostname()}-{uuid.getnode()}"
    return hashlib.sha256(f"portgate:{raw}:{platform.machine()}".encode()).hexdigest()[:32]


async def enrol(config: AgentConfig, store: AgentStore, enrol_code: str) -> dict[str, Any]:
    """Exchange a one-time enrolment code for this kiosk's token and remember it."""
    async with aiohttp.ClientSession() as session:
        client = GateClient(config.server_url, None, session)
        try:
            answer = await client.enrol(enrol_code.strip(), machine_fingerprint(), __version__)
        except Unreachable as exc:
            raise EnrolmentError(f"the server at {config.server_url} did not answer: {exc}") from None
        except ServerError as exc:
            raise EnrolmentError(f"the server refused the enrolment ({exc.code}): {exc}") from None
    token = answer.get("token")
    try:
        allowed = checked_itineraries(answer.get("allowed_itineraries"))
    except BadSyncData as exc:
        raise EnrolmentError(f"the server's answer cannot be used: {exc}") from None
    if not isinstance(token, str) or not token:
        raise EnrolmentError("the server's answer has no access token: is server_url the Portgate server?")
    store.set_meta(
        {
            "token": token,
            "kiosk_id": answer.get("kiosk_id", ""),
            "kiosk_name": answer.get("name", answer.get("kiosk_name", "")),
            "revoked": "0",
            "allowed_itineraries": "" if not allowed else json.dumps(allowed),
            "server_url": config.server_url,
        }
    )
    return answer


async def ensure_enrolled(config: AgentConfig, store: AgentStore) -> str:
    """This kiosk's token, enrolling first with ``enrol_code`` if it has none; raises EnrolmentError without one."""
    if config.enrol_code and not store.get_meta("token"):
        answer = await enrol(config, store, config.enrol_code)
        log.info("enrolled as kiosk %s", answer.get("name", answer.get("kiosk_id")))
    token = store.get_meta("token")
    if not token:
        raise EnrolmentError("this kiosk is not enrolled: run `portgate-agent enrol --code CODE` or set enrol_code")
    return token
