"""``file://DIR``: every message becomes ``DIR/<message id>.eml``, the embedded default.

``file://./var/mail`` and ``file://var/mail`` are relative to the working directory, ``file:///tmp/mail`` is
absolute; the path is percent-decoded. Files appear whole (written beside, then renamed), and sending the same
message again replaces its file rather than adding one, so the directory holds each message once.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import uuid
from pathlib import Path
from urllib.parse import unquote

from integrations.email.base import EmailDeliveryError, OutgoingEmail
from integrations.email.message import build_message

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]+")


def eml_filename(message_id: str) -> str:
    """A file name for `message_id` that is safe on every file system and distinct for distinct ids."""
    readable = _UNSAFE.sub("_", message_id.strip().strip("<>")).strip("._")[:100] or "message"
    digest = hashlib.sha256(message_id.encode("utf-8")).hexdigest()[:12]
    return f"{readable}-{digest}.eml"


class FileBackend:
    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    @classmethod
    def from_url(cls, url: str) -> FileBackend:
        if not url.lower().startswith("file://"):
            raise ValueError("a file email URL starts with file://")
        path = unquote(url[len("file://") :])
        if not path:
            raise ValueError("the file email URL has no directory (e.g. file://./var/mail or file:///var/mail)")
        return cls(path)

    def __repr__(self) -> str:
        return f"<FileBackend {self.directory}>"

    async def send(self, message: OutgoingEmail) -> None:
        data = build_message(message).as_bytes()
        try:
            await asyncio.to_thread(self._write, eml_filename(message.message_id), data)
        except OSError as exc:
            raise EmailDeliveryError(f"cannot write the message file: {exc}", permanent=False) from exc

    async def aclose(self) -> None:
        """Nothing is held open between messages."""

    def _write(self, name: str, data: bytes) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.directory / f".{name}.{uuid.uuid4().hex}.tmp"
        try:
            with temporary.open("xb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, self.directory / name)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
