"""The S3 blob store (storage/s3_blobs.py) against a real SeaweedFS the harness starts (one per
module): streaming multipart writes with bounded memory, all-or-nothing uploads (a size limit or an
exception aborts, nothing visible, nothing pending), ranged reads, exclusive writes that the store
itself refuses (If-None-Match), names that cannot escape their namespace, StorageUnavailable when
the store is down or refuses the credentials, and the service end to end on S3."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import threading
import time
import tracemalloc
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from remotesign.storage import s3_blobs
from remotesign.storage.blobs import BlobError, BlobExists, BlobTooLarge
from remotesign.storage.faults import StorageUnavailable
from remotesign.storage.s3_blobs import PART_SIZE, S3BlobStore
from tests.harness import SeaweedFS, Service, free_port
from tests.pdfgen import pdf_bytes
from tests.signapi import SignApi, issue_card
from tests.test_storage_faults import assert_storage_unavailable

MiB = 1 << 20
BUCKET = "blobs-under-test"


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs")).start()
    try:
        yield server
    finally:
        server.stop()


def make_store(seaweed: SeaweedFS, **kwargs: Any) -> S3BlobStore:
    options: dict[str, Any] = {"bucket": BUCKET, "endpoint_url": seaweed.endpoint, "access_key": seaweed.access_key,
                               "secret_key": seaweed.secret_key, **kwargs}
    return S3BlobStore(**options)


@pytest.fixture(scope="module")
def store(seaweed: SeaweedFS) -> S3BlobStore:
    s = make_store(seaweed)
    assert s.ensure_bucket() is True
    assert s.ensure_bucket() is False  # idempotent
    return s


@pytest.fixture()
def ns() -> str:
    """A namespace of its own for each test (tenant/session, as the service names them)."""
    return f"tenant-{secrets.token_hex(4)}/session-{secrets.token_hex(4)}"


def keys(seaweed: SeaweedFS, prefix: str = "", bucket: str = BUCKET) -> list[str]:
    pages = seaweed.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


def pending_uploads(seaweed: SeaweedFS, prefix: str = "", bucket: str = BUCKET) -> list[dict[str, Any]]:
    return list(seaweed.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads") or [])


def random_chunks(total: int, size: int = 64 * 1024, digest: Any = None) -> Iterator[bytes]:
    """``total`` random bytes in chunks, made as they are consumed (never all at once)."""
    sent = 0
    while sent < total:
        chunk = os.urandom(min(size, total - sent))
        if digest is not None:
            digest.update(chunk)
        sent += len(chunk)
        yield chunk


def test_put_and_open_round_trip(store: S3BlobStore, seaweed: SeaweedFS, ns: str) -> None:
    chunks = [b"a" * 1000, b"b" * 5000, b""]
    info = store.put(ns, "doc.pdf", iter(chunks))
    assert info.size == 6000 and info.sha256 == hashlib.sha256(b"".join(chunks)).digest()
    assert (info.namespace, info.name) == (ns, "doc.pdf")
    assert store.read_bytes(ns, "doc.pdf") == b"".join(chunks)
    assert store.exists(ns, "doc.pdf") and not store.exists(ns, "other")
    assert store.local_path(ns, "doc.pdf") is None  # readers that need a file copy
    assert keys(seaweed, ns.split("/")[0]) == [f"{ns}/doc.pdf"]
    assert store.location(ns, "doc.pdf") == f"s3://{BUCKET}/{ns}/doc.pdf"
    with store.open(ns, "doc.pdf") as fh:
        assert fh.readable() and fh.seekable() and not fh.writable()
        assert fh.read(3) == b"aaa" and fh.tell() == 3
    empty = store.put_bytes(ns, "empty", b"")
    assert empty.size == 0 and store.read_bytes(ns, "empty") == b""
    with pytest.raises(BlobError, match=f"no blob {ns}/missing"):  # as LocalBlobStore says it
        store.open(ns, "missing")


def test_a_20_mib_put_streams_multipart_in_bounded_memory(store: S3BlobStore, seaweed: SeaweedFS, ns: str) -> None:
    sent = hashlib.sha256()
    tracemalloc.start()
    try:
        began = time.monotonic()
        info = store.put(ns, "big", random_chunks(20 * MiB, digest=sent))
        put_seconds = time.monotonic() - began
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert info.size == 20 * MiB and info.sha256 == sent.digest()
    assert peak < 8 * MiB + PART_SIZE, f"peak {peak / MiB:.1f} MiB while putting 20 MiB"
    head = seaweed.client().head_object(Bucket=BUCKET, Key=f"{ns}/big")
    assert head["ContentLength"] == 20 * MiB and head["ETag"].strip('"').endswith("-3")  # three parts

    tracemalloc.start()
    try:
        began = time.monotonic()
        got = hashlib.sha256()
        for chunk in store.iter_chunks(ns, "big"):
            got.update(chunk)
        get_seconds = time.monotonic() - began
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got.digest() == info.sha256
    assert peak < 4 * MiB + 2 * s3_blobs.READ_BLOCK, f"peak {peak / MiB:.1f} MiB while reading 20 MiB"
    print(f"20 MiB: put {20 / put_seconds:.0f} MiB/s, get {20 / get_seconds:.0f} MiB/s")


def test_ranged_reads_and_seeks_fetch_only_what_is_read(store: S3BlobStore, ns: str) -> None:
    data = os.urandom(12 * MiB + 12345)
    store.put_bytes(ns, "ranged", data)
    fetched: list[int] = []

    def count(http_response: Any, parsed: dict[str, Any], **_: Any) -> None:
        fetched.append(int(parsed.get("ContentLength") or 0))

    store.client.meta.events.register("after-call.s3.GetObject", count)
    try:
        with store.open(ns, "ranged") as fh:
            assert fh.seek(0, io.SEEK_END) == len(data)
            fh.seek(-100, io.SEEK_END)
            assert fh.read() == data[-100:] and fh.read(10) == b""
            fh.seek(5 * MiB - 7)
            assert fh.read(20) == data[5 * MiB - 7:5 * MiB + 13]
            fh.seek(MiB - 3)  # across the first range's end
            assert fh.read(MiB + 10) == data[MiB - 3:2 * MiB + 7]
            fh.seek(10, io.SEEK_CUR)
            assert fh.tell() == 2 * MiB + 17 and fh.read(5) == data[2 * MiB + 17:2 * MiB + 22]
            fh.seek(len(data) + 50)
            assert fh.read(10) == b""
        assert sum(fetched) < 6 * MiB, f"{sum(fetched)} bytes fetched for sparse reads of a 12 MiB blob"
        fetched.clear()
        with store.open(ns, "ranged") as fh:  # sequential: growing ranges, few requests
            assert fh.read() == data
        assert sum(fetched) == len(data) and len(fetched) <= 5, fetched
    finally:
        store.client.meta.events.unregister("after-call.s3.GetObject", count)

    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("mimetype", "application/vnd.etsi.asic-e+zip")
        z.writestr("doc.txt", os.urandom(3 * MiB))
    store.put_bytes(ns, "c.asice", archive.getvalue())
    with store.open(ns, "c.asice") as fh, zipfile.ZipFile(fh) as z:  # zip reads from the end, then seeks back
        assert z.read("mimetype") == b"application/vnd.etsi.asic-e+zip" and len(z.read("doc.txt")) == 3 * MiB


def test_reading_back_from_the_end_fetches_the_tail_once(store: S3BlobStore, ns: str) -> None:
    """pyHanko finds a PDF's startxref by stepping back from the end one byte at a time, and each
    step leaves the BufferedReader's buffer: it was one GetObject per step, ~30 per PDF opened
    (bench/load.py found it). Now opening fetches the tail once (a suffix range: no HEAD, and a
    small object whole), and reads there are served from it."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    pdf = pdf_bytes(pages=2, padding_bytes=100 * 1024)
    big = os.urandom(3 * MiB)
    store.put_bytes(ns, "doc.pdf", pdf)
    store.put_bytes(ns, "big", big)
    ranges: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        ranges.append(str(params.get("Range")))

    heads: list[str] = []
    store.client.meta.events.register("provide-client-params.s3.GetObject", record)
    store.client.meta.events.register("provide-client-params.s3.HeadObject", lambda params, **_: heads.append(params))
    suffix = f"bytes=-{s3_blobs.READ_BLOCK}"
    try:
        with store.open(ns, "doc.pdf") as fh:
            reader = PdfFileReader(fh, strict=False)
            assert int(reader.root["/Pages"]["/Count"]) == 2
            fh.seek(0)
            assert fh.read() == pdf
        assert ranges == [suffix]  # at most READ_BLOCK: whole, in the one request of the open
        ranges.clear()
        with store.open(ns, "big") as fh:
            fh.seek(-1, io.SEEK_END)
            stepped = []
            for _ in range(300):  # backwards, a byte at a time, as read_next_end_line does
                stepped.append(fh.read(1))
                fh.seek(-2, io.SEEK_CUR)
            assert b"".join(reversed(stepped)) == big[-300:]
            assert ranges == [suffix]
            start = len(big) - s3_blobs.READ_BLOCK
            fh.seek(start - 10)  # before the tail: a range of its own, up to the tail, then the tail
            assert fh.read(20) == big[start - 10:start + 10]
            assert ranges[1] == f"bytes={start - 10}-{start - 1}"
            fh.seek(MiB)
            assert fh.read() == big[MiB:]  # sequentially into the tail: the tail is not fetched again
        assert len(ranges) <= 4, ranges
        assert heads == []
        with pytest.raises(BlobError, match="no blob"):
            store.open(ns, "missing")
        store.put_bytes(ns, "empty", b"")
        with store.open(ns, "empty") as fh:
            assert fh.read() == b"" and fh.seek(0, io.SEEK_END) == 0
    finally:
        store.client.meta.events.unregister("provide-client-params.s3.GetObject", record)


def test_a_read_of_a_replaced_blob_fails_instead_of_mixing_versions(store: S3BlobStore, ns: str) -> None:
    first, second = os.urandom(3 * MiB), os.urandom(3 * MiB)
    store.put_bytes(ns, "doc", first)
    with store.open(ns, "doc") as fh:
        assert fh.read(10) == first[:10]
        store.put_bytes(ns, "doc", second)
        with pytest.raises(BlobError, match="replaced while being read"):
            fh.seek(MiB + MiB // 2)  # outside the first range and the tail fetched at open
            fh.read(10)


def test_max_size_aborts_the_multipart_upload(store: S3BlobStore, seaweed: SeaweedFS, ns: str) -> None:
    with pytest.raises(BlobTooLarge):
        store.put(ns, "big", random_chunks(20 * MiB), max_size=12 * MiB)  # one part was sent already
    assert not store.exists(ns, "big")
    assert keys(seaweed, ns) == [] and pending_uploads(seaweed, ns) == []
    with pytest.raises(BlobTooLarge):
        store.put(ns, "small", iter([b"x" * 600, b"x" * 600]), max_size=1000)
    assert keys(seaweed, ns) == []


def test_an_exception_mid_put_leaves_the_old_version_and_nothing_pending(store: S3BlobStore, seaweed: SeaweedFS,
                                                                         ns: str) -> None:
    store.put_bytes(ns, "doc", b"version 1")

    def failing() -> Iterator[bytes]:
        yield from random_chunks(10 * MiB)  # past the first part: a multipart upload is open
        raise OSError("client went away")

    with pytest.raises(OSError, match="client went away"):
        store.put(ns, "doc", failing())
    assert store.read_bytes(ns, "doc") == b"version 1"
    assert keys(seaweed, ns) == [f"{ns}/doc"] and pending_uploads(seaweed, ns) == []

    def failing_early() -> Iterator[bytes]:
        yield b"version 2, first half"
        raise OSError("disk gone")

    with pytest.raises(OSError):
        store.put(ns, "doc", failing_early())
    assert store.read_bytes(ns, "doc") == b"version 1"


@pytest.mark.parametrize("size", [1000, PART_SIZE + MiB], ids=["single", "multipart"])
def test_writer_uploads_on_success_only(store: S3BlobStore, seaweed: SeaweedFS, ns: str, size: int) -> None:
    body = os.urandom(size)
    with store.writer(ns, "signed") as out:  # what PDF signing does: write, read back, seek, patch
        out.write(body)
        out.seek(0)
        assert out.read(10) == body[:10]
        out.seek(5)
        out.write(b"PATCH")
        out.seek(0, io.SEEK_END)
        out.write(b"tail")
        assert not store.exists(ns, "signed")  # nothing visible before the block ends
    expected = body[:5] + b"PATCH" + body[10:] + b"tail"
    assert store.read_bytes(ns, "signed") == expected

    with pytest.raises(RuntimeError):
        with store.writer(ns, "failed") as out:
            out.write(body)
            raise RuntimeError("signing failed")
    assert not store.exists(ns, "failed")
    assert keys(seaweed, ns) == [f"{ns}/signed"] and pending_uploads(seaweed, ns) == []


@pytest.mark.parametrize("size", [1000, PART_SIZE + MiB], ids=["single", "multipart"])
def test_exclusive_writer_never_replaces(store: S3BlobStore, seaweed: SeaweedFS, ns: str, size: int) -> None:
    with store.writer(ns, "result", exclusive=True) as out:
        out.write(b"first")
    assert store.honours_conditional_writes()  # SeaweedFS 4.x does: no HEAD before the work
    with pytest.raises(BlobExists):  # refused by the store at the upload
        with store.writer(ns, "result", exclusive=True) as out:
            out.write(b"second")
    assert store.read_bytes(ns, "result") == b"first"
    store._conditional_writes = False  # a store that ignores If-None-Match: the HEAD check, before any work
    try:
        with pytest.raises(BlobExists):
            with store.writer(ns, "result", exclusive=True) as out:
                pytest.fail("an exclusive writer of an existing blob must not start")
    finally:
        store._conditional_writes = None

    # The blob appears after the writer started (another process finished first): the store itself
    # refuses the conditional upload (If-None-Match), single PutObject or multipart alike.
    with pytest.raises(BlobExists):
        with store.writer(ns, "late", exclusive=True) as out:
            out.write(os.urandom(size))
            store.put_bytes(ns, "late", b"the other writer's")
    assert store.read_bytes(ns, "late") == b"the other writer's"
    assert pending_uploads(seaweed, ns) == []


def test_racing_exclusive_writers_one_wins(store: S3BlobStore, ns: str) -> None:
    writers = 4
    barrier = threading.Barrier(writers)
    outcome: dict[int, str] = {}

    def write(n: int) -> None:
        try:
            with store.writer(ns, "result", exclusive=True) as out:
                out.write(f"writer {n}".encode() * 1000)
                barrier.wait(timeout=30)  # every writer passed the HEAD check: only the store decides
            outcome[n] = "won"
        except BlobExists:
            outcome[n] = "exists"

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    winners = [n for n, result in outcome.items() if result == "won"]
    assert len(outcome) == writers and len(winners) == 1, outcome
    assert store.read_bytes(ns, "result") == f"writer {winners[0]}".encode() * 1000


BAD_NAMES = ["../x", "..", "a/b", "", ".hidden", "x" * 200, "a\x00b", "a b", "a..b"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused(store: S3BlobStore, seaweed: SeaweedFS, name: str) -> None:
    for call in (lambda: store.put_bytes("t", name, b"x"), lambda: store.open("t", name),
                 lambda: store.exists("t", name), lambda: store.delete("t", name),
                 lambda: store.writer("t", name).__enter__()):
        with pytest.raises(BlobError):
            call()
    if "/" not in name:  # nested namespaces are allowed; every part is checked
        with pytest.raises(BlobError):
            store.put_bytes(f"t/{name}" if name else "t//x", "ok", b"x")
        with pytest.raises(BlobError):
            store.delete_namespace(f"t/{name}" if name else "t//x")
    assert not [k for k in keys(seaweed) if ".." in k or k.startswith("/")]


def test_namespaces_are_isolated(store: S3BlobStore, seaweed: SeaweedFS) -> None:
    tenant = f"tenant-{secrets.token_hex(4)}"
    store.put_bytes(f"{tenant}/s1", "a", b"1")
    store.put_bytes(f"{tenant}/s10", "a", b"10")  # a namespace whose name starts like s1's
    other = make_store(seaweed, prefix="other-instance/")
    other.put_bytes(f"{tenant}/s1", "a", b"other")
    assert store.read_bytes(f"{tenant}/s1", "a") == b"1" and other.read_bytes(f"{tenant}/s1", "a") == b"other"
    assert keys(seaweed, f"other-instance/{tenant}") == [f"other-instance/{tenant}/s1/a"]
    assert store.delete_namespace(f"{tenant}/s1") == 1
    assert store.read_bytes(f"{tenant}/s10", "a") == b"10" and other.exists(f"{tenant}/s1", "a")
    assert other.delete_namespace(tenant) == 1 and store.exists(f"{tenant}/s10", "a")


def test_delete_and_delete_namespace(store: S3BlobStore, seaweed: SeaweedFS, monkeypatch: pytest.MonkeyPatch,
                                     ns: str) -> None:
    monkeypatch.setattr(s3_blobs, "DELETE_BATCH", 7)  # several DeleteObjects batches
    for n in range(20):
        store.put_bytes(ns, f"doc-{n}", b"x")
    store.put_bytes(f"{ns}/nested", "deep", b"y")
    pending = seaweed.client().create_multipart_upload(Bucket=BUCKET, Key=f"{ns}/half-written")
    store.delete(ns, "doc-0")
    assert not store.exists(ns, "doc-0")
    store.delete(ns, "doc-0")  # gone already: no error
    assert store.delete_namespace(ns) == 20
    assert keys(seaweed, ns) == [] and pending_uploads(seaweed, ns) == []
    assert store.delete_namespace(ns) == 0
    assert pending["UploadId"]


def test_delete_known_removes_the_named_blobs_in_one_request(store: S3BlobStore, seaweed: SeaweedFS, ns: str) -> None:
    for name in ("doc", "signed", "stray"):
        store.put_bytes(ns, name, b"x")
    calls: list[str] = []

    def record(model: Any, **_: Any) -> None:
        calls.append(model.name)

    store.client.meta.events.register("before-call.s3", record)
    try:
        store.delete_known(ns, ["doc", "signed", "doc", "never-written"])
    finally:
        store.client.meta.events.unregister("before-call.s3", record)
    assert calls == ["DeleteObjects"]
    assert keys(seaweed, ns) == [f"{ns}/stray"]  # unrecorded: left to delete_namespace (the session sweep)
    assert store.delete_namespace(ns) == 1 and keys(seaweed, ns) == []


def test_sweep_aborts_only_old_multipart_uploads(seaweed: SeaweedFS) -> None:
    sweeper = make_store(seaweed, prefix=f"sweep-{secrets.token_hex(4)}/")
    seaweed.client().create_multipart_upload(Bucket=BUCKET, Key=f"{sweeper.prefix}t/s/doc")
    assert sweeper.sweep_temporaries() == 0  # fresh: may be a live writer's
    assert len(pending_uploads(seaweed, sweeper.prefix)) == 1
    assert sweeper.sweep_temporaries(now=time.time() + 2 * 3600) == 1
    assert pending_uploads(seaweed, sweeper.prefix) == []


def test_check_writable_leaves_nothing(store: S3BlobStore, seaweed: SeaweedFS) -> None:
    before = keys(seaweed)
    store.check_writable()
    assert keys(seaweed) == before


def versioned_bucket(seaweed: SeaweedFS, bucket: str) -> str:
    """A bucket with versioning on: a write probe leaves a version (and a delete marker) behind, so
    the probes that ran can be counted although each deletes its object."""
    client = seaweed.client()
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return bucket


def probe_writes(seaweed: SeaweedFS, bucket: str, prefix: str = "") -> int:
    answer = seaweed.client().list_object_versions(Bucket=bucket, Prefix=f"{prefix}.health-probe-")
    return len(answer.get("Versions") or [])


def test_check_writable_writes_at_most_once_per_interval(seaweed: SeaweedFS) -> None:
    bucket = versioned_bucket(seaweed, "probe-interval")
    probed = make_store(seaweed, bucket=bucket, prefix="unit/", health_write_interval=1.0)
    began = time.monotonic()
    for _ in range(20):  # a balancer polling: one write, then HEADs of the bucket
        probed.check_writable()
    assert time.monotonic() - began < 1.0
    assert probe_writes(seaweed, bucket, "unit/") == 1
    assert keys(seaweed, "unit/", bucket) == []  # nothing left visible
    time.sleep(1.05)
    probed.check_writable()
    probed.check_writable()
    assert probe_writes(seaweed, bucket, "unit/") == 2

    # The store stops taking writes while the bucket still answers (here: keys it refuses, as a
    # read-only or full store refuses every write): within the interval the HEADs report it fine,
    # the next write probe reports it, and every call after that writes again until one succeeds.
    probed.prefix = "x" * 1100 + "/"  # KeyTooLongError on PutObject; HEAD bucket still answers
    time.sleep(1.05)
    for _ in range(3):
        with pytest.raises(StorageUnavailable, match="KeyTooLong"):
            probed.check_writable()
    probed.prefix = "unit/"
    probed.check_writable()
    assert probe_writes(seaweed, bucket, "unit/") == 3


def test_health_does_not_write_on_every_call(seaweed: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> None:
    bucket = versioned_bucket(seaweed, "health-polled")
    svc = Service(tmp_path_factory.mktemp("s3-health-home"), free_port(),
                  env=seaweed.env(bucket=bucket, prefix="node/")).start()
    try:
        after_start = probe_writes(seaweed, bucket, "node/")
        assert after_start >= 1  # the first /health wrote (the start waits for a 200)
        with httpx.Client(base_url=svc.url, timeout=30) as http:
            for _ in range(30):  # three balancers polling a minute at 2 s: one write per minute at most
                r = http.get("/health")
                assert r.status_code == 200 and r.json()["components"]["blobs"] == "ok", r.text
        assert probe_writes(seaweed, bucket, "node/") == after_start
        assert not [k for k in keys(seaweed, "node/", bucket) if ".health-probe-" in k]
    finally:
        svc.stop()


def test_a_dead_endpoint_is_storage_unavailable_in_bounded_time(tmp_path: Path) -> None:
    dead = S3BlobStore(bucket=BUCKET, endpoint_url=f"http://127.0.0.1:{free_port()}", access_key="k", secret_key="s",
                       temp_dir=str(tmp_path))
    calls = {"ensure_bucket": dead.ensure_bucket, "check_writable": dead.check_writable,
             "put": lambda: dead.put_bytes("t/s", "doc", b"x"), "open": lambda: dead.open("t/s", "doc"),
             "exists": lambda: dead.exists("t/s", "doc"), "delete": lambda: dead.delete("t/s", "doc"),
             "delete_namespace": lambda: dead.delete_namespace("t/s"), "sweep": dead.sweep_temporaries}
    for what, call in calls.items():
        began = time.monotonic()
        with pytest.raises(StorageUnavailable) as caught:
            call()
        assert caught.value.component == "blobs", what
        assert time.monotonic() - began < 10, what
    with pytest.raises(StorageUnavailable):
        with dead.writer("t/s", "doc") as out:
            out.write(b"signed")
    assert list(tmp_path.iterdir()) == []  # the spool file is anonymous and gone


def test_refused_credentials_are_storage_unavailable(seaweed: SeaweedFS, store: S3BlobStore) -> None:
    wrong = make_store(seaweed, secret_key="not-the-secret")
    for call in (wrong.check_writable, lambda: wrong.put_bytes("t/s", "doc", b"x"), lambda: wrong.exists("t/s", "x")):
        with pytest.raises(StorageUnavailable, match="SignatureDoesNotMatch|403"):
            call()
    with pytest.raises(StorageUnavailable):
        make_store(seaweed, bucket="no-such-bucket-here").put_bytes("t/s", "doc", b"x")


def test_a_crashed_store_is_unavailable_then_serves_its_data_again(store: S3BlobStore, seaweed: SeaweedFS,
                                                                  ns: str) -> None:
    content = os.urandom(3 * MiB)
    store.put_bytes(ns, "kept", content)
    reader = store.open(ns, "kept")
    assert reader.read(10) == content[:10]
    seaweed.kill()
    try:
        began = time.monotonic()
        with pytest.raises(StorageUnavailable):
            store.check_writable()
        with pytest.raises(StorageUnavailable):
            reader.seek(MiB + MiB // 2)  # outside the first range and the tail fetched at open
            reader.read(10)
        with pytest.raises(StorageUnavailable):
            store.put(ns, "new", random_chunks(10 * MiB))
        assert time.monotonic() - began < 30
    finally:
        seaweed.start()
    store.check_writable()
    assert store.read_bytes(ns, "kept") == content
    assert not store.exists(ns, "new")
    reader.seek(MiB + MiB // 2)
    assert reader.read(10) == content[MiB + MiB // 2:MiB + MiB // 2 + 10]  # the same file object reads on
    reader.close()


@pytest.mark.slow
def test_the_service_keeps_documents_in_s3(seaweed: SeaweedFS, tmp_path_factory: pytest.TempPathFactory) -> None:
    bucket = "remotesign-e2e"  # created by the service at start
    home = tmp_path_factory.mktemp("s3-home")
    svc = Service(home, free_port(), env=seaweed.env(bucket=bucket, prefix="instance-1/")).start()
    try:
        health = httpx.get(svc.url + "/health", timeout=30).json()
        assert health["components"]["blobs"] == "ok", health
        demo = svc.demo_client()
        api = SignApi(svc, svc.token(demo["client_id"], demo["client_secret"]))
        card = issue_card(svc, tmp_path_factory.mktemp("s3-card"), "rsa")

        sid = api.start()
        content = pdf_bytes(pages=2)
        doc = api.upload(sid, "contract.pdf", content)["data"]
        assert api.download(sid, doc["id"]) == content
        stored = [k for k in keys(seaweed, "instance-1/", bucket) if k.endswith(f"/{sid}/{doc['id']}")]
        assert len(stored) == 1, keys(seaweed, "instance-1/", bucket)
        got = seaweed.client().get_object(Bucket=bucket, Key=stored[0])["Body"].read()
        assert got == content

        api.sign_sessions([sid], card, sign_as_pdf=True)  # prepared file and result: writer(), open()
        info, signed = api.result(sid)
        assert signed.startswith(b"%PDF") and len(signed) > len(content) and info["size"] == len(signed)
        r = api.client.get(f"/api-validation/v1.0/{sid}/{info['id']}/validate")  # no local path: a copy
        assert r.status_code == 200, r.text
        blob_dir = home / "blobs"
        assert not blob_dir.exists() or not [p for p in blob_dir.rglob("*") if p.is_file()]

        seaweed.kill()  # the store goes away: 503, not 500
        try:
            health_down = httpx.get(svc.url + "/health", timeout=60)
            assert health_down.status_code == 503 and health_down.json()["failing"] == ["blobs"], health_down.text
            assert_storage_unavailable(api.client.get(f"/api-storage/v1.0/{sid}/{info['id']}"), "envelope")
            assert_storage_unavailable(api.client.put(f"/api-storage/v1.0/{sid}/upload",
                                                      files={"file": ("more.pdf", content)}), "envelope")
        finally:
            seaweed.start()
        assert httpx.get(svc.url + "/health", timeout=30).status_code == 200
        assert api.download(sid, info["id"]) == signed
        r = api.client.get(f"/api-session/v1.0/{sid}/close")
        assert r.status_code in (200, 204), r.text
        assert not [k for k in keys(seaweed, "instance-1/", bucket) if f"/{sid}/" in k]
    finally:
        svc.stop()
