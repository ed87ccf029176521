"""Batches: many signed documents validated, or extended to T / LT / LTA, in the background
(``/v1/batches``; scope ``remotesign:validate`` for validation, ``remotesign:signatures`` for
extension). Submit once, follow the progress, fetch each document's result::

    batch = rs.batches.submit_validations(["a.pdf", "b.asice"])
    batch = rs.batches.wait(batch.id, on_progress=lambda b: print(b.done, "/", b.total))
    for item in rs.batches.items(batch.id):
        if item.state == "done":
            rs.batches.download_result(batch.id, item.position, f"{item.name}.json")

Paths are opened one at a time while the request is being sent, so a batch of a thousand
documents holds neither their bytes in memory nor a thousand open files. The batch runs on the
service whatever the client does: waiting is only polling."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Union

from remotesign_client._base import ApiClient, Content, file_part, parse_time
from remotesign_client.errors import RemotesignError, ServerError, TransportError
from remotesign_client.validation import ValidationReport

BATCHES = "/v1/batches"
LEVELS = ("T", "LT", "LTA")
PAGE = 1000  # the most items the service lists in one answer

#: one document of a submission: a path, a binary file object, or (name, content) -- bytes need a name
Document = Union[Content, tuple[str, Content]]


@dataclass(frozen=True)
class Batch:
    """A batch and its progress; ``finished`` once every document is done or failed."""

    id: str
    kind: str                     # validation | extension
    status: str                   # running | finished
    total: int
    queued: int
    running: int
    done: int
    failed: int
    level: str | None             # extension: the level every document is extended to
    policy: str | None            # validation: the named policy, None for the instance's own
    created_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status == "finished"

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Batch":
        counts = d.get("items") or {}
        return cls(str(d["id"]), str(d["kind"]), str(d["status"]), int(d["total"]), int(counts.get("queued", 0)),
                   int(counts.get("running", 0)), int(counts.get("done", 0)), int(counts.get("failed", 0)),
                   d.get("level"), d.get("policy"), parse_time(d.get("created_at")), parse_time(d.get("finished_at")),
                   parse_time(d.get("expires_at")), d)


@dataclass(frozen=True)
class BatchItem:
    """One document of a batch. ``outcome`` once done -- validation: ``signature_form``,
    ``signatures``, ``passed``, ``indications``; extension: ``format``, ``levels_before``,
    ``levels_after``, ``size``, ``sha256``. ``error_code``/``error_message`` once failed."""

    position: int
    name: str
    size: int
    sha256: str
    state: str                    # queued | running | done | failed
    attempts: int
    outcome: Mapping[str, Any] | None
    error_code: str | None
    error_message: str | None
    started_at: datetime | None
    finished_at: datetime | None
    result_url: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def signatures(self) -> int | None:
        """Validation: how many signatures the document has (None before it is done)."""
        return int(self.outcome["signatures"]) if self.outcome and "signatures" in self.outcome else None

    @property
    def passed(self) -> int | None:
        """Validation: how many of them are TOTAL-PASSED."""
        return int(self.outcome["passed"]) if self.outcome and "passed" in self.outcome else None

    @property
    def all_passed(self) -> bool:
        """Validation: done, at least one signature, and every one TOTAL-PASSED."""
        return self.state == "done" and bool(self.signatures) and self.passed == self.signatures

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "BatchItem":
        error = d.get("error") or {}
        return cls(int(d["position"]), str(d["name"]), int(d["size"]), str(d["sha256"]), str(d["state"]),
                   int(d.get("attempts") or 0), d.get("outcome"), error.get("code"), error.get("message"),
                   parse_time(d.get("started_at")), parse_time(d.get("finished_at")), d.get("result_url"), d)


class _PathPart:
    """A file opened only while its multipart part is sent and closed at its end: httpx streams
    file objects in chunks, this keeps it to one open file at a time as well. Its length comes
    from ``stat`` (httpx asks through ``seek``/``tell`` for the Content-Length)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.name = path.name
        self.size = path.stat().st_size
        self._pos = 0
        self._fh: IO[bytes] | None = None

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self.close()
        self._pos = {os.SEEK_SET: 0, os.SEEK_CUR: self._pos, os.SEEK_END: self.size}[whence] + offset
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if self._fh is None:
            self._fh = open(self.path, "rb")
            self._fh.seek(self._pos)
        data = self._fh.read(size)
        self._pos += len(data)
        if not data or size < 0:
            self.close()
        return data

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _part(document: Document) -> tuple[str, tuple[str, Any]]:
    if isinstance(document, tuple):
        name, content = document
        if isinstance(content, (str, Path)):
            return "file", (name, _PathPart(Path(content)))
        return "file", file_part(content, name)
    if isinstance(document, (str, Path)):
        part = _PathPart(Path(document))
        return "file", (part.name, part)
    return "file", file_part(document)


class BatchClient(ApiClient):
    """Client of ``/v1/batches``."""

    def submit_validations(self, documents: Iterable[Document], *, policy: str | None = None,
                           callback_url: str | None = None) -> Batch:
        """Validate every document in the background; ``policy``: a built-in policy's name;
        ``callback_url`` gets a signed POST when the batch has finished."""
        return self._submit("validations", documents, {"policy": policy} if policy else {}, callback_url)

    def submit_extensions(self, documents: Iterable[Document], level: str, *,
                          callback_url: str | None = None) -> Batch:
        """Extend every document's signatures to ``level`` (T, LT or LTA) in the background."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, not {level!r}")
        return self._submit("extensions", documents, {"level": level}, callback_url)

    def _submit(self, kind: str, documents: Iterable[Document], data: dict[str, str],
                callback_url: str | None) -> Batch:
        if callback_url:
            data = {**data, "callback_url": callback_url}
        parts = [_part(d) for d in documents]
        if not parts:
            raise ValueError("a batch needs at least one document")
        try:
            r = self.request("POST", f"{BATCHES}/{kind}", files=parts, data=data, expect=(202,))
        finally:
            for _, (_, payload) in parts:
                if isinstance(payload, _PathPart):
                    payload.close()
        return Batch.from_json(r.json())

    def batch(self, batch_id: str) -> Batch:
        """The batch and its progress (one request)."""
        return Batch.from_json(self.request("GET", f"{BATCHES}/{batch_id}").json())

    def batches(self) -> list[Batch]:
        """Your most recent batches, newest first (at most 100)."""
        return [Batch.from_json(b) for b in self.request("GET", BATCHES).json()]

    def items(self, batch_id: str) -> list[BatchItem]:
        """Every document of the batch in submission order (as many requests as pages it takes)."""
        out: list[BatchItem] = []
        while True:
            page = self.request("GET", f"{BATCHES}/{batch_id}/items", params={"offset": len(out), "limit": PAGE}).json()
            out += [BatchItem.from_json(i) for i in page]
            if len(page) < PAGE:
                return out

    def wait(self, batch_id: str, *, interval: float = 1.0, timeout: float | None = None,
             on_progress: Callable[[Batch], None] | None = None,
             on_retry: Callable[[RemotesignError], None] | None = None, patience: float = 120.0) -> Batch:
        """Poll until the batch is finished; ``on_progress`` sees every answer. A service that
        does not answer or answers 5xx (a node restarting) is asked again for up to ``patience``
        seconds in a row, ``on_retry`` told each time; ``timeout``: raise ``TimeoutError``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        failing_since: float | None = None
        while True:
            try:
                batch = self.batch(batch_id)
            except (TransportError, ServerError) as exc:
                now = time.monotonic()
                failing_since = failing_since or now
                if now - failing_since > patience:
                    raise
                if on_retry is not None:
                    on_retry(exc)
            else:
                failing_since = None
                if on_progress is not None:
                    on_progress(batch)
                if batch.finished:
                    return batch
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"batch {batch_id} still running after {timeout} s")
            time.sleep(interval)

    def report(self, batch_id: str, position: int) -> ValidationReport:
        """A validated document's report (simple and detailed)."""
        body = self.request("GET", self._result(batch_id, position)).json()
        return ValidationReport.from_json(body["simpleReport"], body.get("detailedReport"))

    def download_result(self, batch_id: str, position: int, out: str | Path | IO[bytes], *,
                        overwrite: bool = True) -> int:
        """Stream a document's result (validation: the JSON report; extension: the extended file)
        into ``out``, a path or a binary file object; bytes written. A path appears only once
        complete (written beside it, then renamed); ``overwrite=False`` raises
        ``FileExistsError`` rather than replace an existing file, checked at that rename."""
        path = self._result(batch_id, position)
        if not isinstance(out, (str, Path)):
            return self.stream_to(path, out)
        target = Path(out)
        partial = target.with_name(f".{target.name}.{secrets.token_hex(4)}.partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        try:
            with os.fdopen(fd, "wb") as fh:
                written = self.stream_to(path, fh)
            _publish(partial, target, overwrite)
            return written
        finally:
            partial.unlink(missing_ok=True)

    def delete(self, batch_id: str) -> None:
        """Forget the batch, its documents and results (work still queued is dropped)."""
        self.request("DELETE", f"{BATCHES}/{batch_id}", expect=(204,))

    @staticmethod
    def _result(batch_id: str, position: int) -> str:
        return f"{BATCHES}/{batch_id}/items/{int(position)}/result"


def _publish(partial: Path, target: Path, overwrite: bool) -> None:
    """Give the complete file its name: replacing, or (``overwrite`` False) only if the name is free
    at that moment -- a hard link fails on an existing name; without hard links, a check first."""
    if overwrite:
        os.replace(partial, target)
        return
    try:
        os.link(partial, target)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if target.exists():
            raise FileExistsError(f"{target} exists") from None
        os.replace(partial, target)


__all__ = ["Batch", "BatchClient", "BatchItem", "LEVELS"]
