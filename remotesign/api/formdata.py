"""A multipart/form-data body written straight to disk: every file part becomes a file in a
scratch directory while it arrives (constant memory, no second copy), small text fields are kept.
Used where one request carries several files (a signed file, its detached content, anchors)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

MAX_FIELD_BYTES = 16 << 10
MAX_PARTS = 64
FEED_BYTES = 1 << 20  # received bytes parsed and written to disk in a worker thread at a time


class FormDataError(Exception):
    pass


@dataclass
class UploadedFile:
    field: str
    filename: str
    path: Path
    size: int


@dataclass
class FormData:
    files: list[UploadedFile] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)

    def named(self, name: str) -> list[UploadedFile]:
        return [f for f in self.files if f.field == name]


async def read_form(request: Request, directory: Path, *, max_bytes: int, max_parts: int = MAX_PARTS) -> FormData:
    """Parse the body into ``directory``; FormDataError on malformed bodies, too many parts, or
    more than ``max_bytes`` of file content in total. Receiving runs on the event loop; parsing
    and writing the files run in the thread pool, FEED_BYTES at a time."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise FormDataError("the request must be multipart/form-data")
    form = FormData()
    headers: dict[bytes, bytes] = {}
    current: dict[str, object] = {}
    total = 0
    pending_field = [b"", b""]

    def on_header_field(data: bytes, start: int, end: int) -> None:
        pending_field[0] += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        pending_field[1] += data[start:end]

    def on_header_end() -> None:
        headers[pending_field[0].lower()] = pending_field[1]
        pending_field[0] = pending_field[1] = b""

    def on_headers_finished() -> None:
        if len(form.files) + len(form.fields) >= max_parts:
            raise FormDataError(f"more than {max_parts} parts")
        _, disposition = parse_options_header(headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        current.clear()
        current["name"] = name
        if filename is not None:
            index = len(form.files)
            path = directory / f"part-{index}"
            current["file"] = open(path, "xb")
            current["upload"] = UploadedFile(field=name, filename=filename.decode("utf-8", "replace"),
                                             path=path, size=0)
        else:
            current["text"] = bytearray()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        nonlocal total
        chunk = data[start:end]
        if "file" in current:
            total += len(chunk)
            if total > max_bytes:
                raise FormDataError(f"the files exceed {max_bytes} bytes")
            current["file"].write(chunk)  # type: ignore[union-attr]
            current["upload"].size += len(chunk)  # type: ignore[union-attr]
        elif "text" in current:
            text = current["text"]
            text += chunk  # type: ignore[operator]
            if len(text) > MAX_FIELD_BYTES:  # type: ignore[arg-type]
                raise FormDataError(f"field {current['name']!r} is too long")

    def on_part_end() -> None:
        if "file" in current:
            handle: BinaryIO = current.pop("file")  # type: ignore[assignment]
            handle.close()
            form.files.append(current["upload"])  # type: ignore[arg-type]
        elif "text" in current:
            try:
                form.fields[str(current["name"])] = bytes(current["text"]).decode("utf-8")  # type: ignore[arg-type]
            except UnicodeDecodeError:
                raise FormDataError(f"field {current['name']!r} is not UTF-8") from None
        current.clear()
        headers.clear()

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end})

    def feed(batch: list[bytes], last: bool) -> None:
        for chunk in batch:
            parser.write(chunk)
        if last:
            parser.finalize()

    try:
        batch: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            batch.append(chunk)
            size += len(chunk)
            if size >= FEED_BYTES:
                await run_in_threadpool(feed, batch, False)
                batch, size = [], 0
        await run_in_threadpool(feed, batch, True)
    except FormDataError:
        raise
    except Exception as exc:  # python-multipart raises its own and ValueError subclasses
        raise FormDataError(f"malformed multipart body: {exc}") from exc
    finally:
        handle = current.pop("file", None)
        if handle is not None:
            handle.close()  # type: ignore[union-attr]
    return form
