"""`portgate-agent decode`: the field tool for "why won't this print scan?"."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from bench.photos import make_empty_photo, render_qr, write_video
from gate_agent.cli import build_parser, main
from tests.scanner_fixtures import ticket_photos


def run_agent(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gate_agent.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def ticket_image(tmp_path):
    code, photo = ticket_photos()[1]  # one that both backends read
    path = tmp_path / "ticket.jpg"
    cv2.imwrite(str(path), photo)
    return code, path


@pytest.fixture
def ticket_video(tmp_path):
    tickets = ticket_photos()[:3]
    frames = [photo for _code, photo in tickets for _ in range(2)]
    path = write_video(tmp_path / "gate.avi", frames, fps=25)
    return [code for code, _photo in tickets], path


@pytest.mark.timeout(60)
def test_json_gives_one_line_per_image_and_per_frame(ticket_image, ticket_video):
    image_code, image_path = ticket_image
    video_codes, video_path = ticket_video

    result = run_agent("decode", "--json", str(image_path), str(video_path))

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1 + 6
    assert lines[0]["file"] == str(image_path)
    assert lines[0]["frame"] == 0
    assert lines[0]["codes"] == [image_code]
    assert [line["frame"] for line in lines[1:]] == [0, 1, 2, 3, 4, 5]
    assert [line["codes"] for line in lines[1:]] == [[code] for code in video_codes for _ in (1, 2)]
    for line in lines:
        assert set(line) == {"file", "frame", "ms", "codes"}
        assert 0 < line["ms"] < 1000


def test_every_n_samples_video_frames(ticket_video, capsys):
    video_codes, video_path = ticket_video

    status = main(["decode", "--json", "--every", "2", str(video_path)])

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert status == 0
    assert [line["frame"] for line in lines] == [0, 2, 4]
    assert [line["codes"] for line in lines] == [[code] for code in video_codes]


@pytest.mark.parametrize("backend", ["zxing", "pyzbar"])
def test_human_output_names_the_code_and_the_time(ticket_image, capsys, backend):
    code, path = ticket_image

    status = main(["decode", "--backend", backend, str(path)])

    output = capsys.readouterr().out
    assert status == 0
    assert f"{path} frame 0:" in output
    assert " ms " in output
    assert code in output


@pytest.fixture
def far_ticket_image(tmp_path):
    """A ticket's QR code about 50 px wide on a desk: too far for zxing-cpp alone."""
    code = ticket_photos()[0][0]
    qr = cv2.resize(render_qr(code, module_px=1).astype(np.float32), None, fx=1.2, fy=1.2)
    frame = cv2.cvtColor(make_empty_photo((640, 480), 0, "easy"), cv2.COLOR_BGR2GRAY).astype(np.float32)
    frame[200 : 200 + qr.shape[0], 300 : 300 + qr.shape[1]] = qr * 0.8 + 30
    path = tmp_path / "far.png"
    cv2.imwrite(str(path), cv2.GaussianBlur(frame, (0, 0), 0.5).astype(np.uint8))
    return code, path


def test_decode_reads_with_the_gates_own_pipeline(far_ticket_image, capsys):
    code, path = far_ticket_image

    assert main(["decode", "--backend", "zxing", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["codes"] == []

    assert main(["decode", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["codes"] == [code]


def test_all_formats_shows_text_that_is_no_ticket(tmp_path, capsys):
    path = tmp_path / "poster.png"
    cv2.imwrite(
        str(path),
        cv2.copyMakeBorder(render_qr("https://example.com/menu", 6), 40, 40, 40, 40, cv2.BORDER_CONSTANT, value=255),
    )

    assert main(["decode", str(path)]) == 0
    assert "no code found" in capsys.readouterr().out  # the gate would not take it for a ticket

    assert main(["decode", "--all-formats", str(path)]) == 0
    assert "https://example.com/menu" in capsys.readouterr().out


def test_frame_without_code_is_reported_as_such(tmp_path, capsys):
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), ticket_photos()[0][1][:40, :40])

    status = main(["decode", str(blank)])

    assert status == 0
    assert "no code found" in capsys.readouterr().out


@pytest.mark.timeout(60)
def test_missing_file_fails_with_a_message_not_a_traceback(tmp_path, ticket_image):
    _code, good = ticket_image

    result = run_agent("decode", str(tmp_path / "nope.png"), str(good))

    assert result.returncode != 0
    assert "nope.png: no such file" in result.stderr
    assert "Traceback" not in result.stderr
    assert str(good) in result.stdout  # the readable file was still decoded


@pytest.mark.parametrize("name", ["garbage.png", "garbage.avi", "garbage.bin"])
def test_unreadable_file_fails_with_a_message(tmp_path, capsys, name):
    path = tmp_path / name
    path.write_bytes(b"this is not an image or a video\n" * 10)

    status = main(["decode", str(path)])

    assert status != 0
    assert f"{path}:" in capsys.readouterr().err


def test_directory_is_refused(tmp_path, capsys):
    assert main(["decode", str(tmp_path)]) != 0
    assert "not a regular file" in capsys.readouterr().err


def test_every_must_be_positive(ticket_image, capsys):
    _code, path = ticket_image
    with pytest.raises(SystemExit) as exited:
        main(["decode", "--every", "0", str(path)])
    assert exited.value.code == 2
    assert "--every" in capsys.readouterr().err


def test_every_command_has_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    overview = capsys.readouterr().out
    commands = build_parser()._subparsers._group_actions[0].choices
    for name in commands:
        assert re.search(rf"^\s+{name}\s+\S", overview, re.MULTILINE), f"{name} has no help line"
        with pytest.raises(SystemExit) as exited:
            main([name, "--help"])
        assert exited.value.code == 0
        assert len(capsys.readouterr().out.splitlines()) > 3
