"""Settings: a TOML file plus ``PORTGATE_*`` variables, validated once, with errors that name the key."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gate_agent.config import AgentConfigError, load_agent_config
from server.config import Config, ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
# The console script installed next to the interpreter running the tests (.venv/bin/portgate-server).
SERVER = Path(sys.executable).parent / "portgate-server"


def write(tmp_path: Path, text: str, name: str = "server.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_need_no_file_and_no_environment():
    config = load_config(environ={})
    assert config == Config()
    assert config.public_url == "http://127.0.0.1:8080"
    assert config.db_path == Path("./data/portgate.db")


def test_toml_file_then_environment_then_command_line(tmp_path):
    path = write(
        tmp_path,
        """
        data_dir = "/srv/portgate"
        port = 9000
        default_language = "en"
        [mail]
        backend = "smtp"
        host = "mail.port.example"
        port = 587
        starttls = true
        [security]
        session_hours = 8
        """,
    )
    config = load_config(
        path,
        environ={
            "PORTGATE_PORT": "9100",
            "PORTGATE_MAIL__PORT": "2525",
            "PORTGATE_SECURITY__COOKIE_SECURE": "yes",
            "PORTGATE_DEMO": "true",
            "HOME": "/root",  # other variables are none of our business
        },
        host="0.0.0.0",
    )
    assert config.data_dir == "/srv/portgate" and config.default_language == "en"
    assert config.port == 9100  # environment beats the file
    assert config.host == "0.0.0.0"  # the command line beats both
    assert config.mail.backend == "smtp" and config.mail.host == "mail.port.example"
    assert config.mail.port == 2525 and config.mail.starttls is True
    assert config.security.session_hours == 8 and config.security.cookie_secure is True
    assert config.demo is True
    assert config.security.password_min_length == 10  # untouched defaults stay


def test_config_file_path_can_come_from_the_environment(tmp_path):
    path = write(tmp_path, "port = 8181\n")
    assert load_config(environ={"PORTGATE_CONFIG": str(path)}).port == 8181


def test_command_line_override_beats_environment():
    assert load_config(environ={"PORTGATE_PORT": "9100"}, port=9200).port == 9200


def test_developer_switches_are_not_mistaken_for_settings():
    assert load_config(environ={"PORTGATE_STRICT_TEMPLATES": "1"}) == Config()


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("prot = 80\n", "prot: unknown setting"),
        ("[mail]\nhots = 'x'\n", "mail.hots: unknown setting"),
        ("[security]\nsecret = 'x'\n", "security.secret: unknown setting"),
        ("[database]\npath = 'x'\n", "database: unknown setting"),
    ],
)
def test_unknown_keys_are_rejected_with_the_key_named(tmp_path, toml, message):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, toml), environ={})
    assert str(caught.value).startswith(message)
    assert "allowed:" in str(caught.value)


def test_unknown_environment_variable_names_the_variable():
    with pytest.raises(ConfigError) as caught:
        load_config(environ={"PORTGATE_MAIL__PROT": "25"})
    assert str(caught.value).startswith("mail.prot: unknown setting")
    assert "PORTGATE_MAIL__PROT" in str(caught.value)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("port = 'eighty'\n", "port: expected a whole number, got 'eighty'"),
        ("port = 80.5\n", "port: expected a whole number, got 80.5"),
        ("port = true\n", "port: expected a whole number, got True"),
        ("port = 0\n", "port: must be between 1 and 65535, got 0"),
        ("port = 70000\n", "port: must be between 1 and 65535, got 70000"),
        ("demo = 'maybe'\n", "demo: expected true or false, got 'maybe'"),
        ("data_dir = 5\n", "data_dir: expected text, got 5"),
        ("data_dir = ''\n", "data_dir: must not be empty"),
        ("default_language = 'fr'\n", "default_language: must be one of es, en"),
        ("log_level = 'LOUD'\n", "log_level: must be one of DEBUG, INFO, WARNING, ERROR"),
        ("base_url = 'portgate.example'\n", "base_url: must start with http:// or https://"),
        ("db_readers = 0\n", "db_readers: must be between 1 and 64"),
        ("mail = 'smtp'\n", "mail: expected a [mail] table"),
        ("[mail]\nbackend = 'pigeon'\n", "mail.backend: must be 'folder' or 'smtp'"),
        ("[mail]\nport = 99999\n", "mail.port: must be between 1 and 65535"),
        ("[security]\nhuman_check = 'none'\n", "security.human_check: must be 'builtin' or 'hosted'"),
        ("[security]\npassword_min_length = 4\n", "security.password_min_length: must be at least 8"),
        ("[security]\nsession_hours = 0\n", "security.session_hours: must be at least 1"),
        ("[security]\nlogin_lock_minutes = -1\n", "security.login_lock_minutes: must be at least 1"),
    ],
)
def test_wrong_types_and_ranges_have_clear_messages(tmp_path, toml, message):
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, toml), environ={})
    assert str(caught.value).startswith(message)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("PORTGATE_PORT", "abc", "port: expected a whole number, got 'abc'"),
        ("PORTGATE_MAIL__PORT", "0", "mail.port: must be between 1 and 65535"),
        ("PORTGATE_SECURITY__COOKIE_SECURE", "sometimes", "security.cookie_secure: expected true or false"),
        ("PORTGATE_PORT__NUMBER", "1", "port: expected a whole number"),
    ],
)
def test_bad_environment_values_name_the_variable(variable, value, message):
    with pytest.raises(ConfigError) as caught:
        load_config(environ={variable: value})
    assert str(caught.value).startswith(message)
    assert f"(set by the environment variable {variable})" in str(caught.value)


def test_a_table_in_the_environment_cannot_replace_a_value():
    with pytest.raises(ConfigError, match="PORTGATE_MAIL__HOST__NAME"):
        load_config(environ={"PORTGATE_MAIL__HOST": "x", "PORTGATE_MAIL__HOST__NAME": "y"})


def test_missing_unreadable_and_broken_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match="cannot be read"):
        load_config(tmp_path, environ={})  # a folder, not a file
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "port = = 1\n"), environ={})
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('support_email = "soporte@año.example"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(latin1, environ={})


HOSTED = {
    "PORTGATE_SECURITY__HUMAN_CHECK": "hosted",
    "PORTGATE_SECURITY__HOSTED_CAPTCHA_URL": "https://captcha.example/siteverify",
    "PORTGATE_SECURITY__HOSTED_CAPTCHA_SECRET": "s3cret",
    "PORTGATE_SECURITY__HOSTED_CAPTCHA_SITE_KEY": "site-key",
}


def test_hosted_human_check_needs_its_url_secret_and_site_key():
    config = load_config(environ=HOSTED)
    assert config.security.human_check == "hosted"
    for missing in ("URL", "SECRET", "SITE_KEY"):
        environ = {k: v for k, v in HOSTED.items() if not k.endswith(f"HOSTED_CAPTCHA_{missing}")}
        with pytest.raises(ConfigError) as caught:
            load_config(environ=environ)
        assert str(caught.value).startswith(f"security.hosted_captcha_{missing.lower()}: required")
    with pytest.raises(ConfigError, match="hosted_captcha_url: must be an http"):
        load_config(environ={**HOSTED, "PORTGATE_SECURITY__HOSTED_CAPTCHA_URL": "captcha.example"})
    with pytest.raises(ConfigError, match="hosted_captcha_script: must be an http"):
        load_config(environ={**HOSTED, "PORTGATE_SECURITY__HOSTED_CAPTCHA_SCRIPT": "//x.js"})


def _run_server(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PORTGATE_")}
    return subprocess.run(
        [str(SERVER), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean, **(env or {})},
        cwd=ROOT,
    )


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ("prot = 80\n", "prot: unknown setting"),
        ("port = = 1\n", "not valid TOML"),
        ('[helpdesk]\nattachment_types = "png,exe"\n', "helpdesk.attachment_types: exe not supported"),
        ('timezone = "Mars/Olympus"\n', "timezone: unknown time zone 'Mars/Olympus'"),
    ],
    ids=["unknown-key", "broken-toml", "helpdesk-value", "time-zone"],
)
def test_server_with_a_bad_config_exits_2_with_a_readable_message(tmp_path, toml, expected):
    result = _run_server("--config", str(write(tmp_path, toml)), "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 2, result.stderr
    assert "portgate-server: configuration error:" in result.stderr
    assert expected in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not (tmp_path / "data").exists()  # nothing was started or created


def test_server_with_a_bad_environment_value_exits_2(tmp_path):
    result = _run_server("--data-dir", str(tmp_path / "data"), env={"PORTGATE_MAIL__PORT": "lots"})
    assert result.returncode == 2
    assert "configuration error: mail.port: expected a whole number, got 'lots'" in result.stderr
    assert "PORTGATE_MAIL__PORT" in result.stderr and "Traceback" not in result.stderr


def test_a_server_whose_database_file_cannot_be_opened_stops_with_one_readable_line(tmp_path):
    (tmp_path / "data" / "portgate.db").mkdir(parents=True)  # in the way of the file, as a wrong owner would be
    result = _run_server("--data-dir", str(tmp_path / "data"), "--port", "1")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"portgate-server: cannot start: the database sqlite://{tmp_path / 'data'}/portgate.db")
    assert "unable to open database file" in message and "write that file and its folder" in message


def test_a_server_that_cannot_reach_postgresql_says_so_without_its_password(tmp_path):
    with socket.socket() as closed:  # a loopback port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    url = f"postgresql://portgate:s3cret-pw@127.0.0.1:{port}/portgate"
    result = _run_server("--data-dir", str(tmp_path / "data"), "--database-url", url, "--port", "1")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and "s3cret-pw" not in result.stderr
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"portgate-server: cannot start: the database postgresql://portgate:***@127.0.0.1:{port}")
    assert "Connection refused" in message and "is PostgreSQL running" in message
    assert "Unclosed" not in result.stderr  # what start-up had opened is closed


def test_a_server_whose_mail_port_is_taken_says_which_and_closes_what_it_had_opened(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        smtp_port = taken.getsockname()[1]
        env = {"PORTGATE_HELPDESK__INBOUND_SMTP_PORT": str(smtp_port)}
        with socket.socket() as free:  # the server's own port: free
            free.bind(("127.0.0.1", 0))
            port = free.getsockname()[1]
        result = _run_server("--data-dir", str(tmp_path / "data"), "--port", str(port), env=env)
    assert result.returncode == 1, result.stderr
    assert "portgate-server: cannot start: [Errno 98]" in result.stderr and str(smtp_port) in result.stderr
    assert "Unclosed" not in result.stderr and "Traceback" not in result.stderr


def test_server_help_lists_every_option():
    result = _run_server("--help")
    assert result.returncode == 0
    for option in ("--config", "--data-dir", "--host", "--port", "--demo"):
        assert option in result.stdout


def test_helpdesk_settings_come_from_the_helpdesk_table_and_its_variables(tmp_path):
    from server.helpdesk.settings import settings_for

    path = write(tmp_path, '[helpdesk]\nareas = "sales,claims"\nattachment_max_files = 2\ninbound_smtp_port = 2525\n')
    config = load_config(path, environ={"PORTGATE_HELPDESK__ATTACHMENT_TYPES": "pdf,png"})
    settings = settings_for(config)
    assert settings.areas == ("sales", "claims") and settings.attachment_max_files == 2
    assert settings.attachment_types == {"pdf", "png"} and settings.inbound_smtp_port == 2525
    with pytest.raises(
        ConfigError,
        match=r"helpdesk.max_deactivations: must be between 1 and 1000, got 0 .*"
        r"PORTGATE_HELPDESK__MAX_DEACTIVATIONS",
    ):
        load_config(environ={"PORTGATE_HELPDESK__MAX_DEACTIVATIONS": "0"})
    with pytest.raises(ConfigError, match="helpdesk.arreas: unknown setting"):
        load_config(write(tmp_path, "[helpdesk]\narreas = 'x'\n"), environ={})


def test_the_old_helpdesk_variables_say_where_the_setting_went():
    with pytest.raises(
        ConfigError, match=r"HELPDESK_INBOUND_SMTP_PORT: .*\[helpdesk\].*PORTGATE_HELPDESK__INBOUND_SMTP_PORT"
    ):
        load_config(environ={"HELPDESK_INBOUND_SMTP_PORT": "2525"})


def test_the_example_configuration_file_is_valid():
    config = load_config(ROOT / "systemd" / "server.toml.example", environ={})
    assert config.timezone == "America/Guayaquil" and config.helpdesk.inbound_smtp_port == 2525


# --- both programs on one strict base (gate_core.settings) -----------------------------------------

SAME_VALUES = [
    ("abc", "expected a whole number, got 'abc'"),
    ("80.5", "expected a whole number, got '80.5'"),
    ("0", "must be between 1 and 65535, got 0"),
    ("70000", "must be between 1 and 65535, got 70000"),
]


@pytest.mark.parametrize(("value", "why"), SAME_VALUES)
def test_server_and_agent_refuse_a_bad_port_with_the_same_words(value, why):
    with pytest.raises(ConfigError) as server:
        load_config(environ={"PORTGATE_PORT": value})
    with pytest.raises(AgentConfigError) as agent:
        load_agent_config(environ={"PORTGATE_AGENT_UI_PORT": value})
    assert str(server.value) == f"port: {why} (set by the environment variable PORTGATE_PORT)"
    assert str(agent.value) == f"ui_port: {why} (set by the environment variable PORTGATE_AGENT_UI_PORT)"


@pytest.mark.parametrize(("value", "expected"), [("on", True), ("off", False), ("yes", True), ("0", False)])
def test_server_and_agent_read_the_same_spellings_of_true_and_false(value, expected):
    assert load_config(environ={"PORTGATE_DEMO": value}).demo is expected
    assert load_agent_config(environ={"PORTGATE_AGENT_VERDICT_SOUND": value}).verdict_sound is expected


def test_an_agent_whole_number_is_not_silently_cut(tmp_path):
    with pytest.raises(AgentConfigError, match=r"^ui_port: expected a whole number, got 8081\.5$"):
        load_agent_config(write(tmp_path, "ui_port = 8081.5\n", "agent.toml"), environ={})
    with pytest.raises(AgentConfigError, match=r"^online_timeout_ms: expected a whole number, got '250\.9'"):
        load_agent_config(environ={"PORTGATE_AGENT_ONLINE_TIMEOUT_MS": "250.9"})


def test_a_camera_is_asked_for_1280x720_frames_unless_told_otherwise(tmp_path):
    """The size the decoding pipeline is built and measured for; a webcam left to itself often gives 640x480,
    where a printed code at arm's length has half the pixels a module (docs/performance.md)."""
    from gate_agent.runner import build_sources

    cameras = '[[scanner]]\ntype = "camera"\nsource = "0"\n[[scanner]]\ntype = "camera"\nsource = "1"\n'
    for written, asked in (
        ("", (1280, 720)),
        ('resolution = "640x480"\n', (640, 480)),
        ('resolution = "camera"\n', None),
    ):
        config = load_agent_config(write(tmp_path, cameras + written, "agent.toml"), environ={})
        first, second = build_sources(config)
        assert (first.frame_size, second.frame_size) == ((1280, 720), asked)


@pytest.mark.parametrize(
    "value", ["1280*720", "hd", "1280x", "x720", "99999x720", "1280x100", "-640x480", "", "1280x7\u00b20"]
)
def test_a_camera_resolution_that_is_not_a_frame_size_is_refused_by_name(tmp_path, value):
    camera = f'[[scanner]]\ntype = "camera"\nsource = "0"\nresolution = "{value}"\n'
    with pytest.raises(AgentConfigError) as caught:
        load_agent_config(write(tmp_path, camera, "agent.toml"), environ={})
    assert str(caught.value) == (
        "scanner[0].resolution: must be WIDTHxHEIGHT in pixels, each 160 to 4096 (such as 1280x720), or camera, "
        f"got {value!r}"
    )


def test_agent_errors_name_the_scanner_and_what_it_may_be(tmp_path):
    two = '[[scanner]]\ntype = "camera"\nsource = "0"\n[[scanner]]\ntype = "serial"\nsource = "loop://"\n'
    with pytest.raises(AgentConfigError) as caught:
        load_agent_config(write(tmp_path, two + "baudrate = 1000\n", "agent.toml"), environ={})
    assert str(caught.value) == (
        "scanner[1].baudrate: must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, got 1000"
    )
    with pytest.raises(AgentConfigError, match=r"^scanner\[1\]\.sufix: unknown setting \(allowed: .*suffix"):
        load_agent_config(write(tmp_path, two + 'sufix = "LF"\n', "agent.toml"), environ={})
    with pytest.raises(AgentConfigError, match=r"^scanner\[0\]\.type: required$"):
        load_agent_config(write(tmp_path, '[[scanner]]\nsource = "0"\n', "agent.toml"), environ={})
    with pytest.raises(AgentConfigError, match=r"^scanner: expected \[\[scanner\]\] tables"):
        load_agent_config(write(tmp_path, 'scanner = "camera"\n', "agent.toml"), environ={})


def test_an_empty_agent_data_dir_is_refused_as_the_servers_is():
    with pytest.raises(ConfigError, match="^data_dir: must not be empty"):
        load_config(environ={"PORTGATE_DATA_DIR": " "})
    with pytest.raises(AgentConfigError, match="^data_dir: must not be empty"):
        load_agent_config(environ={"PORTGATE_AGENT_DATA_DIR": " "})


def test_a_refused_choice_shows_the_value_given(tmp_path):
    with pytest.raises(ConfigError, match=r"^log_level: must be one of DEBUG, INFO, WARNING, ERROR, got 'LOUD'$"):
        load_config(write(tmp_path, "log_level = 'LOUD'\n"), environ={})
    with pytest.raises(AgentConfigError, match=r"^language: must be one of es, en, got 'fr'"):
        load_agent_config(environ={"PORTGATE_AGENT_LANGUAGE": "fr"})
    assert load_config(environ={"PORTGATE_LOG_LEVEL": "debug"}).log_level == "debug"  # any case, as before


def test_a_file_that_is_not_utf8_says_so_for_both_programs(tmp_path):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('support_email = "soporte@año.example"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not valid TOML: not UTF-8 text"):
        load_config(latin1, environ={})
    latin1.write_bytes('kiosk_name = "Garita Número 1"\n'.encode("latin-1"))
    with pytest.raises(AgentConfigError, match="not valid TOML: not UTF-8 text"):
        load_agent_config(latin1, environ={})
