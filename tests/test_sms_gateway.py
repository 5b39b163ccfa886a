"""The HTTP SMS sender (``[sms] backend = "http"``), against a local gateway the test starts.

What an operator and a registering customer notice: the code reaches the gateway in the body the
gateway wants, with its credentials; a gateway hiccup (a 5xx, a slow answer) is retried; a refusal
gives the app a clear error and leaves no request behind; the log never holds a code; and a wrong
setting stops the server with a message that names its key.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import replace

import pytest

from server.app import create_app
from server.config import ConfigError, SmsConfig, load_config
from tests.helpers import api_error, count
from tests.sms_gateway import COMPANY_PHONE, NEW_ACCOUNT, gateway_fixture, request_code  # noqa: F401 (the gateway fixture)


async def _app_client(config, aiohttp_client, **sms):
    from server.demo import install_demo

    app = create_app(replace(config, sms=SmsConfig(backend="http", **sms)))
    app.on_startup.append(install_demo)
    return await aiohttp_client(app)


async def test_the_code_reaches_the_gateway_with_its_bearer_token_and_completes_the_registration(
    config, aiohttp_client, gateway
):
    client = await _app_client(config, aiohttp_client, url=gateway.url, auth="bearer", token="gw-secret-1")
    resp = await request_code(client)
    assert resp.status == 200, await resp.text()
    token = (await resp.json())["request_token"]

    [sms] = gateway.received
    assert sms.headers["Authorization"] == "Bearer gw-secret-1"
    assert sms.body["to"] == "+59340000000"  # the phone as the form cleaned it
    assert "código" in sms.body["text"]  # in the registrant's language
    code = gateway.code_for(COMPANY_PHONE)

    done = await client.post(
        "/api/v1/registration/complete", json={"request_token": token, "code": code, **NEW_ACCOUNT}
    )
    assert done.status == 201
    assert (await done.json())["status"] == "active"


async def test_basic_auth_and_a_gateway_shaped_body_template(config, aiohttp_client, gateway):
    template = '{"from": "Portgate", "messages": [{"destination": "{phone}", "content": "Portgate: {text}"}]}'
    client = await _app_client(
        config,
        aiohttp_client,
        url=gateway.url,
        auth="basic",
        username="terminal",
        password='p"w:1',
        body_template=template,
    )
    assert (await request_code(client, lang="en")).status == 200

    [sms] = gateway.received
    scheme, credentials = sms.headers["Authorization"].split()
    assert scheme == "Basic" and base64.b64decode(credentials).decode() == 'terminal:p"w:1'
    assert sms.body["from"] == "Portgate"
    [message] = sms.body["messages"]
    assert message["destination"] == "+59340000000"
    assert message["content"].startswith("Portgate: Your Portgate confirmation code is ")


async def test_a_5xx_and_a_timeout_are_retried_and_the_log_never_holds_the_code(
    config, aiohttp_client, gateway, caplog
):
    client = await _app_client(config, aiohttp_client, url=gateway.url, timeout_s=0.5, retries=2, backoff_s=0.05)
    gateway.answer(500)
    gateway.answer(200, delay=2)  # slower than timeout_s: given up, tried again
    with caplog.at_level(logging.INFO, logger="server.sms"):
        resp = await request_code(client)
    assert resp.status == 200, await resp.text()
    assert len(gateway.received) == 3
    code = gateway.code_for(COMPANY_PHONE)

    lines = [r.getMessage() for r in caplog.records if r.name == "server.sms"]
    assert any("answered 500 on try 1 of 3" in line for line in lines), lines
    assert any("failed (" in line and "try 2 of 3" in line for line in lines), lines
    assert any("sent (try 3" in line for line in lines), lines
    assert all("*" * 7 + "0000" in line for line in lines)  # the phone masked
    assert not any(code in line or "código" in line for line in lines)


async def test_a_refusing_gateway_gives_a_clear_error_is_not_retried_and_leaves_no_request(
    config, aiohttp_client, gateway, caplog
):
    client = await _app_client(config, aiohttp_client, url=gateway.url, auth="bearer", token="revoked", backoff_s=0)
    gateway.answer(401)
    with caplog.at_level(logging.INFO, logger="server.sms"):
        resp = await request_code(client)
    assert resp.status == 503
    error = await api_error(resp)
    assert error["code"] == "sms_not_sent"
    assert error["message"] == "No se pudo enviar el mensaje de texto. Inténtelo de nuevo en unos minutos."
    assert len(gateway.received) == 1
    assert any("refused by the gateway (status 401); not retried" in r.getMessage() for r in caplog.records)
    assert count(config, "one_time_tokens WHERE purpose = 'phone_registration'") == 0

    # The failed send did not use up the phone's texts for the hour: the limit is still three.
    for _ in range(3):
        assert (await request_code(client)).status == 200
    assert (await api_error(await request_code(client)))["code"] == "too_many_codes"


async def test_a_gateway_that_stays_down_is_tried_retries_plus_one_times(config, aiohttp_client, gateway):
    client = await _app_client(config, aiohttp_client, url=gateway.url, retries=1, backoff_s=0)
    for _ in range(2):
        gateway.answer(503)
    resp = await request_code(client, lang="en")
    assert resp.status == 503
    assert (await api_error(resp))["message"] == "The text message could not be sent. Try again in a few minutes."
    assert len(gateway.received) == 2


async def test_an_unreachable_gateway_is_a_clear_error(config, aiohttp_client):
    from tests.mailbox import free_port

    client = await _app_client(config, aiohttp_client, url=f"http://127.0.0.1:{free_port()}/send", backoff_s=0)
    resp = await request_code(client)
    assert resp.status == 503 and (await api_error(resp))["code"] == "sms_not_sent"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PORTGATE_SMS__BACKEND": "twilio"}, "sms.backend: must be 'log' or 'http', got 'twilio'"),
        ({"PORTGATE_SMS__BACKEND": "http"}, "sms.url: required when sms.backend = 'http'"),
        ({"PORTGATE_SMS__URL": "gateway.example/send"}, "sms.url: must be an http(s) URL"),
        ({"PORTGATE_SMS__AUTH": "bearer"}, "sms.token: required when sms.auth = 'bearer'"),
        ({"PORTGATE_SMS__AUTH": "basic", "PORTGATE_SMS__USERNAME": "u"}, "sms.password: required when sms.auth"),
        ({"PORTGATE_SMS__TOKEN": "t"}, "sms.token: not used when sms.auth = 'none'"),
        ({"PORTGATE_SMS__USERNAME": "a:b"}, "sms.username: must not contain ':'"),
        ({"PORTGATE_SMS__AUTH": "oauth"}, "sms.auth: must be 'none', 'bearer' or 'basic'"),
        ({"PORTGATE_SMS__BODY_TEMPLATE": '{"to": "{phone}"}'}, "sms.body_template: must contain {text}"),
        ({"PORTGATE_SMS__BODY_TEMPLATE": "to={phone}&text={text}"}, "sms.body_template: must be a JSON object"),
        ({"PORTGATE_SMS__BODY_TEMPLATE": '["{phone}", "{text}"]'}, "sms.body_template: must be a JSON object"),
        ({"PORTGATE_SMS__TIMEOUT_S": "0"}, "sms.timeout_s: must be between 0.5 and 60 seconds"),
        ({"PORTGATE_SMS__RETRIES": "11"}, "sms.retries: must be between 0 and 10"),
        ({"PORTGATE_SMS__MAX_CODES_PER_ADDRESS_PER_HOUR": "-1"}, "sms.max_codes_per_address_per_hour: must be between"),
        ({"PORTGATE_SMS__SENDER": "Portgate"}, "sms.sender: unknown setting"),
    ],
)
def test_a_wrong_sms_setting_names_its_key(environ, message):
    with pytest.raises(ConfigError) as refused:
        load_config(environ=environ)
    assert str(refused.value).startswith(message), str(refused.value)
