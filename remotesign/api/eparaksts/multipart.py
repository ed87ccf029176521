"""Streaming reader for one file part of a multipart/form-data body: chunks go straight from the
socket to the caller (and on to disk), so uploads of any size use constant memory. Starlette's
form parser would spool the file to a temporary file first and copy it again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request


class MultipartError(Exception):
    pass


@dataclass
class _State:
    field_name: str
    header_field: bytes = b""
    header_value: bytes = b""
    headers: dict[bytes, bytes] = field(default_factory=dict)
    in_file: bool = False
    filename: str | None = None
    content_type: str = "application/octet-stream"
    done: bool = False
    pending: list[bytes] = field(default_factory=list)


@dataclass
class FilePart:
    filename: str
    content_type: str
    chunks: AsyncIterator[bytes]


async def file_part(request: Request, field_name: str = "file") -> FilePart:
    """The first part named ``field_name`` that carries a file name; MultipartError otherwise."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise MultipartError("the request must be multipart/form-data with a 'file' part")
    state = _State(field_name)

    def on_header_field(data: bytes, start: int, end: int) -> None:
        state.header_field += data[start:end]

    def on_header_value(data: bytes, start: int, end: int) -> None:
        state.header_value += data[start:end]

    def on_header_end() -> None:
        state.headers[state.header_field.lower()] = state.header_value
        state.header_field = state.header_value = b""

    def on_headers_finished() -> None:
        if state.done:
            return
        _, disposition = parse_options_header(state.headers.get(b"content-disposition", b""))
        name = disposition.get(b"name", b"").decode("utf-8", "replace")
        filename = disposition.get(b"filename")
        if name == state.field_name and filename is not None:
            state.in_file = True
            state.filename = filename.decode("utf-8", "replace")
            state.content_type = state.headers.get(b"content-type", b"application/octet-stream").decode("latin-1")

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if state.in_file and not state.done:
            state.pending.append(bytes(data[start:end]))

    def on_part_end() -> None:
        if state.in_file:
            state.done = True
            state.in_file = False
        state.headers = {}

    parser = MultipartParser(boundary, {
        "on_header_field": on_header_field, "on_header_value": on_header_value, "on_header_end": on_header_end,
        "on_headers_finished": on_headers_finished, "on_part_data": on_part_data, "on_part_end": on_part_end})
    stream = request.stream()

    async def feed_until(predicate: object) -> bool:
        """Feed body chunks until ``predicate()``; False when the body ended first."""
        while not predicate():  # type: ignore[operator]
            try:
                chunk = await stream.__anext__()
            except StopAsyncIteration:
                return False
            try:
                parser.write(chunk)
            except Exception as exc:  # python-multipart raises its own and ValueError subclasses
                raise MultipartError(f"malformed multipart body: {exc}") from exc
        return True

    if not await feed_until(lambda: state.filename is not None or state.done):
        raise MultipartError(f"the request has no '{field_name}' file part")

    async def chunks() -> AsyncIterator[bytes]:
        while True:
            if state.pending:
                data, state.pending = b"".join(state.pending), []
                if data:
                    yield data
            if state.done:
                return
            if not await feed_until(lambda: bool(state.pending) or state.done):
                raise MultipartError("the multipart body ended inside the file part")

    return FilePart(filename=state.filename or "", content_type=state.content_type, chunks=chunks())
