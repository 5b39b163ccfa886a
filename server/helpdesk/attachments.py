"""Ticket attachments: checked in full before anything is written, stored outside the web root.

A file is kept under ``<data_dir>/attachments/<uuid>`` (no user-chosen part in the path at all);
its original name is only metadata, cleaned for display and for the download's file name. Checks:
size, allowed extension, and that the first bytes really are that kind of file, so a renamed
executable or HTML page does not pass as a ``.png``.
"""

from __future__ import annotations

import hashlib
import os
import unicodedata
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

from aiohttp import web

from server.forms import ValidationFailed, readable_text
from server.helpdesk.settings import FILE_TYPES, HelpdeskSettings
from server.i18n import Msg

MAX_NAME = 120

_SIGNATURES = {
    "png": (b"\x89PNG\r\n\x1a\n",),
    "jpeg": (b"\xff\xd8\xff",),
    "gif": (b"GIF87a", b"GIF89a"),
    "pdf": (b"%PDF-",),
    "zip": (b"PK\x03\x04", b"PK\x05\x06"),
}
# Executables and archives renamed to .txt/.log are not text.
_BINARY_STARTS = (b"MZ", b"\x7fELF", b"PK\x03\x04", b"\xca\xfe\xba\xbe", b"\xcf\xfa\xed\xfe")


@dataclass(frozen=True)
class Upload:
    """A checked file, ready to store."""

    name: str
    data: bytes
    content_type: str

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class StoredFile:
    upload: Upload
    stored_name: str
    sha256: str


def _size_text(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):g} MB"
    return f"{max(1, size // 1024)} KB"


def clean_name(raw: str) -> str | None:
    """The display name of an uploaded file, or None when the name itself is unacceptable.

    A name that tries to be a path (``../x``, ``a/b``, ``C:\\x``) is refused rather than trimmed:
    whoever sends it is not a browser uploading a file.
    """
    name = unicodedata.normalize("NFC", raw or "").strip()
    if not name or "/" in name or "\\" in name or "\x00" in name or ".." in name or name.startswith("."):
        return None
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in '"<>:|?*')
    if not name or "." not in name:
        return name or None
    if len(name) > MAX_NAME:
        stem, _, ext = name.rpartition(".")
        name = stem[: MAX_NAME - len(ext) - 1] + "." + ext
    return name


def _looks_like(kind: str, data: bytes) -> bool:
    if kind == "text":
        head = data[:8192]
        return b"\x00" not in head and not head.startswith(_BINARY_STARTS)
    return data.startswith(_SIGNATURES[kind])


def check_upload(raw_name: str, data: bytes, settings: HelpdeskSettings) -> Upload | Msg:
    """The checked upload, or the message saying why this file is refused."""
    name = clean_name(raw_name)
    shown = (raw_name or "")[:80]
    if name is None:
        return Msg("The file name %(name)s is not allowed.", {"name": shown})
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if extension not in settings.attachment_types:
        return Msg(
            "Files of this type are not accepted (%(name)s); allowed: %(types)s.",
            {"name": name, "types": ", ".join(sorted(settings.attachment_types))},
        )
    if not data:
        return Msg("The file %(name)s is empty.", {"name": name})
    if len(data) > settings.attachment_max_bytes:
        return Msg(
            "The file %(name)s is larger than %(limit)s.",
            {"name": name, "limit": _size_text(settings.attachment_max_bytes)},
        )
    content_type, kind = FILE_TYPES[extension]
    if not _looks_like(kind, data):
        return Msg("The file %(name)s is not really a .%(ext)s file.", {"name": name, "ext": extension})
    return Upload(name, data, content_type)


def check_uploads(files: Iterable[tuple[str, bytes]], settings: HelpdeskSettings, field: str) -> list[Upload]:
    """Every file checked; the first problem is raised as ``field``'s error and nothing is kept."""
    files = list(files)
    if len(files) > settings.attachment_max_files:
        raise ValidationFailed({field: Msg("At most %(n)s files.", {"n": settings.attachment_max_files})})
    checked = []
    for raw_name, data in files:
        result = check_upload(raw_name, data, settings)
        if isinstance(result, Msg):
            raise ValidationFailed({field: result})
        checked.append(result)
    return checked


def read_file_fields(form: object, name: str, settings: HelpdeskSettings) -> list[tuple[str, bytes]]:
    """(file name, bytes) of each file posted under ``name``; reads at most one byte past the limit.

    A browser posts an empty, nameless part when no file was chosen; that part is not a file.
    """
    getall = getattr(form, "getall", None)
    parts = getall(name, []) if getall else []
    files = []
    for part in parts:
        if not isinstance(part, web.FileField):
            if isinstance(part, str | bytes) and part:
                raise ValidationFailed({name: Msg("Attach files with the file chooser.")})
            continue
        data = part.file.read(settings.attachment_max_bytes + 1)
        if not part.filename and not data:
            continue
        # HTML forms send ``"`` and line breaks in a file name percent-encoded (and some clients
        # encode more); the name is checked after decoding, so ``%2e%2e%2f`` is still a path.
        files.append((readable_text(unquote(part.filename or "")), data))
    return files


def store(directory: Path, uploads: list[Upload]) -> list[StoredFile]:
    """Write the files under generated names (blocking; run it off the event loop)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    stored: list[StoredFile] = []
    try:
        for upload in uploads:
            stored_name = uuid.uuid4().hex
            fd = os.open(directory / stored_name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            stored.append(StoredFile(upload, stored_name, hashlib.sha256(upload.data).hexdigest()))
            with os.fdopen(fd, "wb") as fh:
                fh.write(upload.data)
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        remove(directory, [s.stored_name for s in stored])
        raise
    return stored


def remove(directory: Path, stored_names: Iterable[str]) -> None:
    """Delete stored files (when the transaction that would have recorded them failed)."""
    for stored_name in stored_names:
        try:
            (directory / stored_name).unlink()
        except FileNotFoundError:
            pass


def download_headers(original_name: str, content_type: str) -> dict[str, str]:
    """Always a download, never rendered by the browser, in whatever type the bytes claim."""
    ascii_name = original_name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return {
        "Content-Type": content_type,
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(original_name)}",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "private, no-store",
    }
