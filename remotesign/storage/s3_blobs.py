"""Blob storage in an S3-compatible object store (AWS S3, SeaweedFS, MinIO, Ceph RGW...), so that
several service processes on several hosts share the documents instead of each keeping its own disk.

A blob ``<namespace>/<name>`` is the object ``<prefix><namespace>/<name>`` of one bucket; names are
validated exactly as on the local disk (storage/blobs.py ``_check``), so no key escapes its
namespace. The semantics are those of LocalBlobStore:

* all-or-nothing writes: an object appears whole when its PutObject or CompleteMultipartUpload
  succeeds and never in part. ``put`` streams: the chunks go out as multipart parts of at least
  ``part_size`` bytes (a blob smaller than one part is a single PutObject), hashed (SHA-256) while
  sent; past ``max_size``, or on any exception, the multipart upload is aborted, nothing is visible.
* ``writer`` hands out an anonymous local temporary file (in ``temp_dir``, unlinked from the start,
  so a crash leaves nothing behind) that is readable, writable and seekable, as PDF signing needs;
  it is uploaded when the block ends without an exception and discarded otherwise.
* ``exclusive`` writes never replace an existing object: the upload is a conditional write
  (``If-None-Match: *`` on PutObject and CompleteMultipartUpload), refused by the store with 412
  when the key exists, which becomes BlobExists. Whether the store honours it is probed once per
  process (AWS S3 and SeaweedFS 4.x do; tests/test_s3_blobs.py proves it for SeaweedFS). On a store
  that ignores ``If-None-Match`` (older S3-compatible servers) a HEAD before the work is the check
  left, a best-effort one: two writers finishing at the same moment could then both succeed, the
  later replacing the earlier.
* ``open`` costs one request: a suffix-range GetObject of the object's last 1 MiB (all of it when
  it is no larger, as most documents to sign are), which also gives its size and ETag and is kept
  in memory; PDF and ZIP readers start there, looking for their trailer backwards. The rest is
  fetched in byte ranges on demand (1 MiB at first, growing up to 8 MiB while reading
  sequentially), so a big blob is never held whole in memory. The ranges are fetched with
  ``If-Match: <ETag>``: a blob replaced while being read fails the read (BlobError) instead of
  mixing two versions.
* a store that cannot be reached, times out, answers 5xx, or refuses the credentials or the bucket
  raises StorageUnavailable('blobs') (HTTP 503 with Retry-After), not an opaque 500. Requests have
  bounded connect and read timeouts and a bounded number of retries (botocore's standard mode).

The store has no local path for its blobs (``local_path`` is None: readers that need a file copy).
Multipart uploads abandoned by a killed process are invisible but hold space until aborted:
``sweep_temporaries`` (run at start) aborts those older than an hour, and a bucket lifecycle rule
(AbortIncompleteMultipartUpload) is the store-side safety net.
"""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any, BinaryIO

import boto3
from botocore.config import Config
from botocore.exceptions import (BotoCoreError, ClientError, ConnectionError as BotoConnectionError,
                                 CredentialRetrievalError, HTTPClientError, IncompleteReadError,
                                 NoCredentialsError, PartialCredentialsError)

from remotesign.storage.blobs import (CHUNK, TMP_MAX_AGE_SECONDS, BlobError, BlobExists, BlobInfo, BlobStore,
                                      BlobTooLarge, _check)
from remotesign.storage.faults import StorageUnavailable, blob_faults

log = logging.getLogger("remotesign.blobs")

MIB = 1 << 20
PART_SIZE = 8 * MIB          # multipart part size (S3's minimum is 5 MiB, except for the last part)
MIN_PART_SIZE = 5 * MIB
MAX_PARTS = 10_000           # S3's limit per multipart upload
READ_BLOCK = CHUNK           # first ranged GET of a read; doubles while reading sequentially...
READ_BLOCK_MAX = 8 * MIB     # ...up to this
READ_RETRIES = 3             # a ranged read whose body breaks off is fetched again from where it stopped
DELETE_BATCH = 1000          # DeleteObjects takes at most 1000 keys
HEALTH_WRITE_INTERVAL = 60.0  # seconds between the write probes of check_writable (a HEAD in between)

# Transport failures: the store is down, unreachable, too slow, or the credentials cannot be had.
_TRANSPORT_ERRORS = (BotoConnectionError, HTTPClientError, IncompleteReadError, NoCredentialsError,
                     PartialCredentialsError, CredentialRetrievalError)
# Answers that say something about the installation (credentials, bucket, capacity), not the request.
_UNAVAILABLE_CODES = frozenset({
    "AccessDenied", "AccountProblem", "AllAccessDisabled", "ExpiredToken", "InvalidAccessKeyId",
    "InvalidBucketState", "InvalidToken", "NoSuchBucket", "QuotaExceeded", "RequestTimeTooSkewed",
    "RequestTimeout", "ServiceUnavailable", "SignatureDoesNotMatch", "SlowDown", "InternalError",
    "XAmzContentSHA256Mismatch",
})


def _status(exc: ClientError) -> int:
    return int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code") or "")


def _is_missing(exc: ClientError) -> bool:
    return _status(exc) == 404 or _code(exc) in ("NoSuchKey", "NotFound", "404")


def _is_precondition_failed(exc: ClientError) -> bool:
    return _status(exc) == 412 or _code(exc) == "PreconditionFailed"


def _unavailable(exc: BaseException, what: str) -> StorageUnavailable | None:
    """The StorageUnavailable an S3 failure stands for, or None when it is the request's own fault
    (a bug, which stays one)."""
    if isinstance(exc, _TRANSPORT_ERRORS):
        return StorageUnavailable("blobs", f"S3 {what}: {exc}")
    if isinstance(exc, ClientError):
        status, code = _status(exc), _code(exc)
        if status >= 500 or status in (401, 403) or code in _UNAVAILABLE_CODES:
            message = exc.response.get("Error", {}).get("Message") or ""
            return StorageUnavailable("blobs", f"S3 {what}: {code or status} {message}".rstrip())
    return None


@contextmanager
def _s3_faults(what: str) -> Iterator[None]:
    """Translate S3 failures that are conditions of the installation into StorageUnavailable('blobs')."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        fault = _unavailable(exc, what)
        if fault is not None:
            raise fault from exc
        raise


class S3BlobStore(BlobStore):
    """Blobs as objects of one bucket. ``endpoint_url`` None means AWS's own endpoint for the region;
    ``access_key``/``secret_key`` None means boto3's usual credential chain (environment, instance
    role...). Addressing is path-style (``endpoint/bucket/key``), which every S3-compatible server
    understands (SeaweedFS and MinIO need it without wildcard DNS)."""

    def __init__(self, *, bucket: str, endpoint_url: str | None = None, access_key: str | None = None,
                 secret_key: str | None = None, region: str = "us-east-1", prefix: str = "",
                 temp_dir: str | None = None, part_size: int = PART_SIZE, connect_timeout: float = 5.0,
                 read_timeout: float = 30.0, max_attempts: int = 3, max_pool_connections: int = 32,
                 health_write_interval: float = HEALTH_WRITE_INTERVAL) -> None:
        if not bucket:
            raise ValueError("an S3 blob store needs a bucket")
        if part_size < MIN_PART_SIZE:
            raise ValueError(f"multipart parts must be at least {MIN_PART_SIZE} bytes")
        if prefix.startswith("/"):
            raise ValueError("the S3 key prefix must not start with '/'")
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.prefix = prefix
        self.temp_dir = temp_dir
        self.part_size = part_size
        self.health_write_interval = health_write_interval
        self._probe_lock = threading.Lock()
        self._last_write_ok: float | None = None  # monotonic time of the last write probe that succeeded
        self._conditional_writes: bool | None = None  # honours If-None-Match (probed at first need)
        config = Config(
            region_name=region,
            s3={"addressing_style": "path"},
            signature_version="s3v4",
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": max_attempts},
            max_pool_connections=max_pool_connections,
            # The parameters are this module's own (keys checked by _check): botocore's validation
            # of every request against the service model cost ~0.1-0.3 ms of CPU per request.
            parameter_validation=False,
            # Plain payloads (no aws-chunked trailers), which every S3-compatible server accepts; the
            # payload's SHA-256 is still signed over http, and TLS protects it over https.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        session = boto3.session.Session()
        self.client: Any = session.client("s3", endpoint_url=endpoint_url, aws_access_key_id=access_key,
                                          aws_secret_access_key=secret_key, region_name=region, config=config)
        self._region = region

    def __repr__(self) -> str:
        return f"S3BlobStore(endpoint={self.endpoint_url!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    # --- names ----------------------------------------------------------------------------------

    def _namespace_prefix(self, namespace: str) -> str:
        return self.prefix + "/".join(_check(p) for p in namespace.split("/")) + "/"

    def key(self, namespace: str, name: str) -> str:
        """The object key of a blob (its name checked as on the local disk)."""
        return self._namespace_prefix(namespace) + _check(name)

    def location(self, namespace: str, name: str) -> str:
        return f"s3://{self.bucket}/{self.key(namespace, name)}"

    # --- bucket ---------------------------------------------------------------------------------

    def ensure_bucket(self) -> bool:
        """Create the bucket unless it exists (idempotent, safe when several processes start at
        once); True if this call created it."""
        with _s3_faults("bucket check"):
            try:
                self.client.head_bucket(Bucket=self.bucket)
                return False
            except ClientError as exc:
                if not _is_missing(exc) and _code(exc) != "NoSuchBucket":
                    raise
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self._region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self._region}
            try:
                self.client.create_bucket(**kwargs)
            except ClientError as exc:
                if _code(exc) == "BucketAlreadyOwnedByYou":  # another process created it meanwhile
                    return False
                raise
        log.info("created S3 bucket %s", self.bucket)
        return True

    # --- writing --------------------------------------------------------------------------------

    def put(self, namespace: str, name: str, chunks: Iterable[bytes], max_size: int | None = None) -> BlobInfo:
        upload = _Upload(self, self.key(namespace, name), exclusive=False)
        digest = hashlib.sha256()
        size = 0
        with upload:
            for chunk in chunks:
                size += len(chunk)
                if max_size is not None and size > max_size:
                    raise BlobTooLarge(f"blob exceeds {max_size} bytes")
                digest.update(chunk)
                upload.write(chunk)
            upload.complete()
        return BlobInfo(namespace=namespace, name=name, size=size, sha256=digest.digest())

    @contextmanager
    def writer(self, namespace: str, name: str, exclusive: bool = False) -> Iterator[BinaryIO]:
        key = self.key(namespace, name)
        if exclusive and not self.honours_conditional_writes() and self._head(key) is not None:
            raise BlobExists(f"blob {name} exists")
        # An anonymous file (O_TMPFILE where the file system has it): nothing is left after a crash.
        # A full or unwritable spool volume is StorageUnavailable, as for the local store.
        with blob_faults(), tempfile.TemporaryFile(dir=self.temp_dir) as spool:
            yield spool  # type: ignore[misc]
            spool.flush()
            self._upload_file(spool, key, exclusive)

    def _upload_file(self, spool: BinaryIO, key: str, exclusive: bool) -> None:
        size = spool.seek(0, io.SEEK_END)
        spool.seek(0)
        # at most MAX_PARTS parts, whatever the size
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        with _Upload(self, key, exclusive=exclusive, part_size=part_size) as upload:
            if size <= part_size:
                upload.put_single(spool)
            else:
                while data := spool.read(part_size):
                    upload.write(data)
            upload.complete()

    def honours_conditional_writes(self) -> bool:
        """Whether the store refuses ``If-None-Match: *`` writes of an existing key (asked once per
        process: a probe object written twice, the second time conditionally). Where it does, an
        exclusive writer needs no HEAD before its work: the store itself refuses the late upload,
        and the HEAD was a request on every exclusive write (per-attempt result names, which
        almost never exist). Where it does not, the HEAD stays as the best-effort check."""
        with self._probe_lock:
            if self._conditional_writes is None:
                key = f"{self.prefix}.conditional-probe-{secrets.token_hex(8)}"
                with _s3_faults("conditional write probe"):
                    self.client.put_object(Bucket=self.bucket, Key=key, Body=b"1")
                    try:
                        self.client.put_object(Bucket=self.bucket, Key=key, Body=b"2", IfNoneMatch="*")
                        honoured = False
                    except ClientError as exc:
                        if not _is_precondition_failed(exc):
                            raise
                        honoured = True
                    finally:
                        self.client.delete_object(Bucket=self.bucket, Key=key)
                if not honoured:
                    log.warning("S3 store %s ignores If-None-Match: exclusive writes fall back to a HEAD "
                                "check, which two writers finishing at once can both pass", self.endpoint_url)
                self._conditional_writes = honoured
            return self._conditional_writes

    # --- reading --------------------------------------------------------------------------------

    def _head(self, key: str) -> dict[str, Any] | None:
        with _s3_faults("head"):
            try:
                return self.client.head_object(Bucket=self.bucket, Key=key)  # type: ignore[no-any-return]
            except ClientError as exc:
                if _is_missing(exc):
                    return None
                raise

    def open(self, namespace: str, name: str) -> BinaryIO:
        """One request: the object's last READ_BLOCK bytes (all of it when no larger, as most signed
        documents are), which also tell its size and ETag; a HEAD first was a second round trip on
        every document opened, and PDF and ZIP readers start at the end anyway."""
        key = self.key(namespace, name)
        raw = _RangeReader.opened(self, key, f"{namespace}/{name}")
        return S3BlobFile(raw, buffer_size=READ_BLOCK)  # type: ignore[return-value]

    def exists(self, namespace: str, name: str) -> bool:
        return self._head(self.key(namespace, name)) is not None

    # --- deleting -------------------------------------------------------------------------------

    def delete(self, namespace: str, name: str) -> None:
        with _s3_faults("delete"):  # 204 whether or not the object was there
            self.client.delete_object(Bucket=self.bucket, Key=self.key(namespace, name))

    def delete_namespace(self, namespace: str) -> int:
        """Delete every object under the namespace (nested namespaces included, as on the local
        disk), in batches of 1000, and abort multipart uploads still pending under it."""
        prefix = self._namespace_prefix(namespace)
        count = 0
        with _s3_faults("delete namespace"):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            batch: list[dict[str, str]] = []
            for page in pages:
                for obj in page.get("Contents", []):
                    batch.append({"Key": obj["Key"]})
                    if len(batch) == DELETE_BATCH:
                        count += self._delete_batch(batch)
                        batch = []
            if batch:
                count += self._delete_batch(batch)
            for upload in self._pending_uploads(prefix):
                self._abort(upload["Key"], upload["UploadId"])
        return count

    def delete_known(self, namespace: str, names: Iterable[str]) -> None:
        """One DeleteObjects for the named blobs; the listing and the multipart check of
        ``delete_namespace`` (two more requests) are left to the sweep that runs it later."""
        keys = [{"Key": self.key(namespace, name)} for name in dict.fromkeys(names)]
        with _s3_faults("delete"):
            for start in range(0, len(keys), DELETE_BATCH):
                self._delete_batch(keys[start:start + DELETE_BATCH])

    def _delete_batch(self, batch: list[dict[str, str]]) -> int:
        answer = self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        errors = answer.get("Errors") or []
        if errors:
            first = errors[0]
            raise StorageUnavailable("blobs", f"S3 delete: {len(errors)} objects not deleted, e.g. "
                                              f"{first.get('Key')}: {first.get('Code')} {first.get('Message')}")
        return len(batch)

    def _pending_uploads(self, prefix: str) -> Iterator[dict[str, Any]]:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix)
        for page in pages:
            yield from page.get("Uploads", []) or []

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except ClientError as exc:
            if _code(exc) != "NoSuchUpload":
                raise

    def sweep_temporaries(self, max_age: float = TMP_MAX_AGE_SECONDS, now: float | None = None) -> int:
        """Abort multipart uploads under the prefix started ``max_age`` seconds ago or earlier: a
        live writer finishes far sooner, so these belong to a process that died mid-upload. The
        writer's temporary files need no sweep (they are anonymous). Returns how many."""
        cutoff = datetime.fromtimestamp(time.time() if now is None else now, timezone.utc) - timedelta(seconds=max_age)
        count = 0
        with _s3_faults("sweep"):
            for upload in self._pending_uploads(self.prefix):
                if upload["Initiated"] <= cutoff:
                    self._abort(upload["Key"], upload["UploadId"])
                    count += 1
        if count:
            log.info("aborted %d abandoned multipart uploads in S3 bucket %s", count, self.bucket)
        return count

    # --- health ---------------------------------------------------------------------------------

    def check_writable(self) -> None:
        """Raise StorageUnavailable unless the store answers and took a write recently.

        Load balancers poll /health every few seconds from several places; a write on each call
        would cost a PUT and a DELETE each time, and leave a version and a delete marker each in a
        versioned bucket. So a call writes and deletes a tiny object (outside every namespace: no
        blob name starts with '.') only when the last successful write probe of this process is
        ``health_write_interval`` seconds old or more, and otherwise asks for the bucket (HEAD:
        the store is up, the credentials and the bucket are good). A store that goes down shows at
        the next call; one that turns read-only or full within the interval. A failed write probe
        counts for nothing: the next call writes again, so a recovered store shows at once."""
        with self._probe_lock:  # one probe at a time per process: concurrent calls never all write
            last = self._last_write_ok
            write = last is None or time.monotonic() - last >= self.health_write_interval
            try:
                if write:
                    key = f"{self.prefix}.health-probe-{secrets.token_hex(8)}"
                    self.client.put_object(Bucket=self.bucket, Key=key, Body=b"remotesign storage probe\n")
                    self.client.delete_object(Bucket=self.bucket, Key=key)
                    self._last_write_ok = time.monotonic()
                else:
                    self.client.head_bucket(Bucket=self.bucket)
            except (ClientError, BotoCoreError) as exc:
                self._last_write_ok = None  # whatever failed, the next call writes again
                raise _unavailable(exc, "probe") or StorageUnavailable("blobs", f"S3 probe: {exc}") from exc


def _total_size(content_range: str | None, received: int) -> int:
    """The object's size from a ranged answer's ``Content-Range: bytes a-b/size``; a store that
    answers a suffix range with the whole object (200, no Content-Range) sent all of it."""
    if content_range and "/" in content_range:
        total = content_range.rsplit("/", 1)[1].strip()
        if total.isdigit():
            return int(total)
    return received


class S3BlobFile(io.BufferedReader):
    """What ``open`` returns: a BufferedReader over ranged reads. A type of its own because code that
    takes the kernel's fast paths for plain files (``type(f) in (io.BufferedReader, ...)``, then
    ``fileno()``: formats/pades.py) must not take this one for a file on disk; it has no fileno."""


class _Upload:
    """One object being written: bytes collect into a part; the first full part starts a multipart
    upload. ``complete`` publishes the object (a single PutObject when it never reached one part);
    leaving the ``with`` block without ``complete`` (an exception, a size limit) aborts the
    multipart upload, so nothing becomes visible and nothing stays pending."""

    def __init__(self, store: S3BlobStore, key: str, *, exclusive: bool, part_size: int | None = None) -> None:
        self.store = store
        self.key = key
        self.exclusive = exclusive
        self.part_size = part_size or store.part_size
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[dict[str, Any]] = []
        self.done = False

    @property
    def _client(self) -> Any:
        return self.store.client

    def __enter__(self) -> _Upload:
        return self

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if not self.done:
            self.abort()
        if isinstance(exc, (ClientError, BotoCoreError)):
            fault = _unavailable(exc, "upload")
            if fault is not None:
                raise fault from exc

    def write(self, data: bytes) -> None:
        if not self.buffer and len(data) >= self.part_size:  # a whole part already: sent as it is
            self._send_part(data)
            return
        self.buffer += data
        if len(self.buffer) >= self.part_size:
            body, self.buffer = self.buffer, bytearray()  # the part goes out as it is, not copied
            self._send_part(body)

    def _send_part(self, body: bytes | bytearray) -> None:
        if self.upload_id is None:
            self.upload_id = self._client.create_multipart_upload(Bucket=self.store.bucket, Key=self.key)["UploadId"]
        number = len(self.parts) + 1
        answer = self._client.upload_part(Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id,
                                          PartNumber=number, Body=body)
        self.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def _condition(self) -> dict[str, str]:
        return {"IfNoneMatch": "*"} if self.exclusive else {}

    def put_single(self, body: BinaryIO | bytes | bytearray) -> None:
        """The whole object in one PutObject (a file is streamed, from its start at every try)."""
        def put() -> None:
            if not isinstance(body, (bytes, bytearray)):
                body.seek(0)
            self._client.put_object(Bucket=self.store.bucket, Key=self.key, Body=body, **self._condition())

        self._conditional(put)
        self.done = True

    def complete(self) -> None:
        if self.done:
            return
        if self.upload_id is None:
            self.put_single(self.buffer)
            self.buffer = bytearray()
            return
        if self.buffer:
            body, self.buffer = self.buffer, bytearray()
            self._send_part(body)
        self._conditional(lambda: self._client.complete_multipart_upload(
            Bucket=self.store.bucket, Key=self.key, UploadId=self.upload_id,
            MultipartUpload={"Parts": self.parts}, **self._condition()))
        self.done = True

    def _conditional(self, call: Any) -> None:
        """Run the publishing request; 412 on an exclusive write means the key exists (BlobExists).
        AWS answers 409 ConditionalRequestConflict while another conditional write of the key is in
        flight: try again shortly, the other one then won (412) or failed."""
        for attempt in range(4):
            try:
                call()
                return
            except ClientError as exc:
                if self.exclusive and _is_precondition_failed(exc):
                    raise BlobExists(f"blob {self.key.rsplit('/', 1)[-1]} exists") from exc
                if not (self.exclusive and _code(exc) == "ConditionalRequestConflict" and attempt < 3):
                    raise
            time.sleep(0.1 * (attempt + 1))

    def abort(self) -> None:
        self.buffer = bytearray()
        if self.upload_id is None:
            return
        upload_id, self.upload_id = self.upload_id, None
        try:
            self.store._abort(self.key, upload_id)
        except (ClientError, BotoCoreError) as exc:  # the original error matters more; the sweep retries
            log.warning("could not abort multipart upload of %s: %s", self.key, exc)


class _RangeReader(io.RawIOBase):
    """A read-only, seekable view of one object that fetches byte ranges on demand. A range is read
    from its response as the caller asks (the BufferedReader above keeps 1 MiB), so memory stays
    bounded; reading on where the last range ended fetches the next, twice as long (up to
    READ_BLOCK_MAX), so sequential reading takes few requests and a seek costs one small one.

    The end of the object is different: PDF readers find ``startxref`` by stepping backwards from
    the end one byte at a time (pyHanko's ``read_next_end_line``), ZIP readers look for the end of
    the central directory, and every step back leaves the BufferedReader's buffer (a seek from the
    end always does): each would be a GetObject of its own, ~30 per PDF opened. So the last
    READ_BLOCK bytes (the whole of a smaller object) are fetched when the file is opened and every
    read there is served from memory; ranges stop where they begin."""

    @classmethod
    def opened(cls, store: S3BlobStore, key: str, label: str) -> _RangeReader:
        """The reader with the object's tail already fetched (a suffix range, whole objects of at
        most READ_BLOCK bytes); BlobError when there is no such object."""
        for attempt in range(READ_RETRIES):
            body = None
            with _s3_faults("read"):
                try:
                    answer = store.client.get_object(Bucket=store.bucket, Key=key, Range=f"bytes=-{READ_BLOCK}")
                except ClientError as exc:
                    if _is_missing(exc):
                        raise BlobError(f"no blob {label}") from exc
                    if _status(exc) == 416 or _code(exc) == "InvalidRange":  # an empty object has no suffix
                        head = store._head(key)
                        if head is None:
                            raise BlobError(f"no blob {label}") from exc
                        return cls(store, key, label, int(head["ContentLength"]), head.get("ETag"), tail=b"")
                    raise
            try:
                body = answer["Body"]
                data = body.read()
            except (BotoCoreError, OSError) as exc:  # the body broke off: ask again
                if isinstance(exc, BotoCoreError) and not isinstance(exc, _TRANSPORT_ERRORS):
                    raise
                if attempt == READ_RETRIES - 1:
                    raise StorageUnavailable("blobs", f"S3 read of {key}: {exc}") from exc
                continue
            finally:
                if body is not None:
                    body.close()
            size = _total_size(answer.get("ContentRange"), len(data))
            if len(data) != min(size, READ_BLOCK):
                if attempt == READ_RETRIES - 1:
                    raise StorageUnavailable("blobs", f"S3 read of {key}: {len(data)} of {size} bytes")
                continue
            return cls(store, key, label, size, answer.get("ETag"), tail=data)
        raise AssertionError("not reached")

    def __init__(self, store: S3BlobStore, key: str, label: str, size: int, etag: str | None, tail: bytes) -> None:
        super().__init__()
        self.store = store
        self.key = key
        self.label = label
        self.size = size
        self.etag = etag
        self.pos = 0
        self.body: Any = None        # the open range's streaming body...
        self.body_pos = 0            # ...the offset its next byte has...
        self.body_end = 0            # ...and the offset after its last byte
        self.span = READ_BLOCK
        self.tail_start = size - len(tail)
        self.tail = tail  # the object's last bytes, fetched at open
        self.name = f"s3://{store.bucket}/{key}"

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if self.closed:
            raise ValueError("seek of closed file")
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self.pos + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence}")
        if target < 0:
            raise OSError(22, "negative seek position")
        self.pos = target
        return target

    def readinto(self, b: Any) -> int:
        if self.closed:
            raise ValueError("read of closed file")
        view = memoryview(b).cast("B")
        want = min(len(view), self.size - self.pos)
        if want <= 0:
            return 0
        if self.pos >= self.tail_start:
            start = self.pos - self.tail_start
            view[:want] = self.tail[start:start + want]
            self.pos += want
            return want
        for attempt in range(READ_RETRIES):
            try:
                if self.body is None or self.body_pos != self.pos or self.body_pos >= self.body_end:
                    self._open_range()
                data = self.body.read(min(want, self.body_end - self.body_pos))
                if not data:
                    raise IncompleteReadError(actual_bytes=self.body_pos, expected_bytes=self.body_end)
            except (BotoCoreError, OSError) as exc:  # the connection broke mid-body: fetch again from here
                self._drop_body()
                if isinstance(exc, BotoCoreError) and not isinstance(exc, _TRANSPORT_ERRORS):
                    raise
                if attempt == READ_RETRIES - 1:
                    raise StorageUnavailable("blobs", f"S3 read of {self.key}: {exc}") from exc
                continue
            n = len(data)
            view[:n] = data
            self.pos += n
            self.body_pos += n
            if self.body_pos >= self.body_end:
                self._drop_body()
            return n
        return 0  # not reached

    def readall(self) -> bytes:
        out = bytearray(max(0, self.size - self.pos))
        view = memoryview(out)
        filled = 0
        while filled < len(out):
            n = self.readinto(view[filled:])
            if not n:
                break
            filled += n
        del view
        return bytes(out[:filled])

    def _open_range(self) -> None:
        sequential = self.body_end > 0 and self.pos == self.body_end  # on where the last range ended
        self._drop_body()
        self.span = min(self.span * 2, READ_BLOCK_MAX) if sequential else READ_BLOCK
        end = min(self.pos + self.span, self.tail_start) - 1  # the tail is held: never fetched twice
        self.body = self._get(self.pos, end)
        self.body_pos = self.pos
        self.body_end = end + 1

    def _get(self, start: int, end: int) -> Any:
        """The streaming body of bytes start..end (inclusive) of this version of the object."""
        kwargs: dict[str, Any] = {"Bucket": self.store.bucket, "Key": self.key, "Range": f"bytes={start}-{end}"}
        if self.etag:
            kwargs["IfMatch"] = self.etag
        with _s3_faults("read"):
            try:
                return self.store.client.get_object(**kwargs)["Body"]
            except ClientError as exc:
                if _is_missing(exc):
                    raise BlobError(f"no blob {self.label}") from exc
                if _is_precondition_failed(exc):
                    raise BlobError(f"blob {self.label} was replaced while being read") from exc
                raise

    def _drop_body(self) -> None:
        if self.body is not None:
            try:
                self.body.close()
            except Exception:  # noqa: BLE001 - a broken connection is being thrown away anyway
                pass
            self.body = None

    def close(self) -> None:
        self._drop_body()
        super().close()
