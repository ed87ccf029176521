"""ASiC-E container reader/writer: round trips, the byte layout sniffers rely on, and hostile input."""

from __future__ import annotations

import hashlib
import io
import shutil
import struct
import subprocess
import sys
import tracemalloc
import unicodedata
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from remotesign.formats.asic import (
    MIMETYPE,
    AsicContainer,
    Entry,
    guess_mime_type,
    is_asic_e,
    write_new,
    write_with_signature,
)
from remotesign.formats.base import FormatError, Limits

MANIFEST_NS = "urn:oasis:names:tc:opendocument:xmlns:manifest:1.0"
MIB = 1 << 20


# -- helpers ----------------------------------------------------------------------------------


def build(tmp_path: Path, files, signatures=None, name: str = "c.asice", **kwargs) -> Path:
    out = io.BytesIO()
    write_new(out, files, signatures or {}, **kwargs)
    path = tmp_path / name
    path.write_bytes(out.getvalue())
    return path


def zip_test_ok(path: Path) -> None:
    if shutil.which("unzip"):
        result = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
    else:  # pragma: no cover
        result = subprocess.run([sys.executable, "-m", "zipfile", "-t", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def assert_code(path: Path, code: str, limits: Limits | None = None) -> FormatError:
    with pytest.raises(FormatError) as err:
        AsicContainer.open(path, limits).close()
    assert err.value.code == code, err.value.message
    return err.value


def manifest_xml(*paths: tuple[str, str]) -> bytes:
    entries = "".join(f'<manifest:file-entry manifest:full-path="{p}" manifest:media-type="{t}"/>' for p, t in paths)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="{MANIFEST_NS}" '
        f'manifest:version="1.2"><manifest:file-entry manifest:full-path="/" '
        f'manifest:media-type="{MIMETYPE}"/>{entries}</manifest:manifest>'
    ).encode()


@dataclass
class Raw:
    """One entry for :func:`raw_zip`, which writes exactly what it is told (lies included)."""

    name: str | bytes
    data: bytes  # the bytes stored in the zip (already compressed for method 8)
    method: int = 0
    crc: int = 0
    size: int = 0  # declared uncompressed size
    flags: int = 0


def stored(name: str | bytes, data: bytes) -> Raw:
    return Raw(name, data, 0, zlib.crc32(data), len(data))


def deflated(name: str | bytes, data: bytes, declared: int | None = None) -> Raw:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    comp = c.compress(data) + c.flush()
    return Raw(name, comp, 8, zlib.crc32(data), len(data) if declared is None else declared)


def raw_zip(entries: list[Raw], *, comment: bytes = b"", zip64_eocd: bool = False, descriptor: bool = False) -> bytes:
    out = bytearray()
    central = bytearray()
    for e in entries:
        name = e.name.encode("utf-8") if isinstance(e.name, str) else e.name
        flags = e.flags | (0x800 if any(b > 0x7F for b in name) else 0) | (0x8 if descriptor else 0)
        offset = len(out)
        local = (0, 0, 0) if descriptor else (e.crc, len(e.data), e.size)
        out += struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, flags, e.method, 0, 0x21, *local, len(name), 0)
        out += name + e.data
        if descriptor:
            out += struct.pack("<4s3L", b"PK\x07\x08", e.crc, len(e.data), e.size)
        central += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, flags, e.method, 0, 0x21, e.crc, len(e.data), e.size,
            len(name), 0, 0, 0, 0, 0o644 << 16, offset,
        )
        central += name
    cd_offset = len(out)
    out += central
    n = len(entries)
    if zip64_eocd:
        eocd64 = len(out)
        out += struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, n, n, len(central), cd_offset)
        out += struct.pack("<4sLQL", b"PK\x06\x07", 0, eocd64, 1)
        out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, len(comment))
    else:
        out += struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, n, n, len(central), cd_offset, len(comment))
    return bytes(out + comment)


def asic_raw(*entries: Raw, **kwargs) -> bytes:
    return raw_zip([stored("mimetype", MIMETYPE.encode()), *entries], **kwargs)


def write(tmp_path: Path, data: bytes, name: str = "x.asice") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def zeros_200mb() -> Raw:
    """200 MiB of zeros deflated (about 200 KB), built chunk by chunk."""
    chunk = bytes(MIB)
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    parts = []
    crc = 0
    for _ in range(200):
        parts.append(comp.compress(chunk))
        crc = zlib.crc32(chunk, crc)
    parts.append(comp.flush())
    return Raw("zeros.bin", b"".join(parts), 8, crc, 200 * MIB)


SAMPLE = [
    ("readme.txt", "text/plain", [b"hello ", b"world\n"]),
    ("data/blob.bin", "", [bytes(range(256)) * 40]),
    ("документ/ļoti garš fails ü.pdf", "", [b"%PDF-1.7\n", b"\x00\xff" * 3000]),
    ("image.png", "image/png", [b"\x89PNG\r\n\x1a\n" + bytes(5000)]),
]


def sample_bytes(name: str) -> bytes:
    return b"".join(next(chunks for n, _, chunks in SAMPLE if n == name))


# -- round trips ------------------------------------------------------------------------------


def test_round_trip(tmp_path: Path) -> None:
    path = build(tmp_path, SAMPLE, {"META-INF/signatures0.xml": b"<sig/>"})
    assert is_asic_e(path)
    with AsicContainer.open(path) as c:
        assert [e.name for e in c.data_objects] == [n for n, _, _ in SAMPLE]
        by_name = {e.name: e for e in c.data_objects}
        assert by_name["readme.txt"] == Entry("readme.txt", 12, "text/plain")
        assert by_name["data/blob.bin"].mime_type == "application/octet-stream"
        assert by_name["документ/ļoti garš fails ü.pdf"].mime_type == "application/pdf"
        assert by_name["image.png"].mime_type == "image/png"
        for name, _, _ in SAMPLE:
            data = sample_bytes(name)
            assert b"".join(c.stream(name, chunk_size=1000)) == data
            assert all(len(chunk) <= 1000 for chunk in c.stream(name, chunk_size=1000))
            assert c.digest(name) == hashlib.sha256(data).digest()
            assert c.digest(name, "sha512") == hashlib.sha512(data).digest()
            assert by_name[name].size == len(data)
        assert c.manifest == {e.name: e.mime_type for e in c.data_objects}
        assert c.signature_names == ["META-INF/signatures0.xml"]
        assert c.cades_signature_names == []
        assert c.read_small("META-INF/signatures0.xml") == b"<sig/>"
        manifest = c.read_small("META-INF/manifest.xml")
        assert b'manifest:version="1.2"' in manifest
        assert f'<manifest:file-entry manifest:full-path="/" manifest:media-type="{MIMETYPE}"/>'.encode() in manifest
        with pytest.raises(FormatError) as err:
            c.stream("nope.txt")
        assert err.value.code == "not_found"
        with pytest.raises(FormatError) as err:
            c.read_small("data/blob.bin", max_bytes=100)
        assert err.value.code == "container_too_large"
    zip_test_ok(path)
    with zipfile.ZipFile(path) as zf:  # what an ordinary reader sees
        names = zf.namelist()
        assert names[0] == "mimetype" and names[-2:] == ["META-INF/manifest.xml", "META-INF/signatures0.xml"]
        assert zf.getinfo("readme.txt").compress_type == zipfile.ZIP_DEFLATED
        assert zf.getinfo("image.png").compress_type == zipfile.ZIP_STORED


def test_file_objects(tmp_path: Path) -> None:
    path = build(tmp_path, SAMPLE, {"META-INF/signatures0.xml": b"<s/>"})
    memory = io.BytesIO(path.read_bytes())  # no fileno: seek + read under a lock
    memory.seek(7)
    assert is_asic_e(memory) and memory.tell() == 7 and not memory.closed
    with AsicContainer.open(memory) as c:
        assert c.digest("image.png") == hashlib.sha256(sample_bytes("image.png")).digest()
    assert memory.closed  # the container owned it
    fh = path.open("rb")
    assert is_asic_e(fh) and fh.tell() == 0
    with AsicContainer.open(fh) as c:
        a, b = c.stream("data/blob.bin", chunk_size=100), c.stream("readme.txt", chunk_size=3)
        got_a, got_b = [next(a), next(a)], [next(b), next(b)]
        assert b"".join(got_a + list(a)) == sample_bytes("data/blob.bin")
        assert b"".join(got_b + list(b)) == b"hello world\n"
    assert fh.closed
    bad = io.BytesIO(b"not a zip at all")
    with pytest.raises(FormatError):
        AsicContainer.open(bad)
    assert bad.closed


def test_mimetype_header_bytes(tmp_path: Path) -> None:
    raw = build(tmp_path, SAMPLE[:1]).read_bytes()
    sig, _ver, flags, method, _t, _d, _crc, csize, usize, name_len, extra_len = struct.unpack_from("<4s5H3L2H", raw)
    assert sig == b"PK\x03\x04" and method == 0 and extra_len == 0 and flags & 0x8 == 0
    assert name_len == 8 and csize == usize == len(MIMETYPE)
    assert raw[30:38] == b"mimetype"
    assert raw[38 : 38 + len(MIMETYPE)] == MIMETYPE.encode()


def test_thousand_files(tmp_path: Path) -> None:
    files = [(f"dir{i % 7}/file-{i}.txt", "", [f"content {i}".encode()]) for i in range(1000)]
    path = build(tmp_path, files)
    zip_test_ok(path)
    with AsicContainer.open(path) as c:
        assert len(c.data_objects) == 1000
        assert [e.name for e in c.data_objects] == [n for n, _, _ in files]
        assert b"".join(c.stream("dir3/file-500.txt")) == b"content 500"
        assert all(e.mime_type == "text/plain" for e in c.data_objects)


def test_bytes_instead_of_chunks_and_zip64_writer(tmp_path: Path) -> None:
    path = build(tmp_path, [("a.txt", "text/plain", b"plain bytes")], zip64=True)
    zip_test_ok(path)
    with AsicContainer.open(path) as c:
        assert b"".join(c.stream("a.txt")) == b"plain bytes"


def test_write_with_signature_adds_and_replaces(tmp_path: Path) -> None:
    src_path = build(tmp_path, SAMPLE, {"META-INF/signatures0.xml": b"<first/>"})
    with AsicContainer.open(src_path) as src:
        assert src.next_signature_name() == "META-INF/signatures1.xml"
        out = io.BytesIO()
        write_with_signature(src, out, src.next_signature_name(), b"<second/>")
    added = write(tmp_path, out.getvalue(), "added.asice")
    zip_test_ok(added)
    raw = added.read_bytes()
    assert raw[30:38] == b"mimetype" and raw[38 : 38 + len(MIMETYPE)] == MIMETYPE.encode()
    with zipfile.ZipFile(src_path) as a, zipfile.ZipFile(added) as b:
        assert b.namelist() == a.namelist() + ["META-INF/signatures1.xml"]
        for info in a.infolist():
            assert b.read(info.filename) == a.read(info.filename)
            assert b.getinfo(info.filename).compress_size == info.compress_size  # raw copy
    with AsicContainer.open(added) as c:
        assert c.signature_names == ["META-INF/signatures0.xml", "META-INF/signatures1.xml"]
        assert c.next_signature_name() == "META-INF/signatures2.xml"
        out = io.BytesIO()
        write_with_signature(c, out, "META-INF/signatures0.xml", b"<first-extended/>", replace=True)
    replaced = write(tmp_path, out.getvalue(), "replaced.asice")
    zip_test_ok(replaced)
    with AsicContainer.open(replaced) as c:
        assert c.names == AsicContainer.open(added).names  # same order, replaced in place
        assert c.read_small("META-INF/signatures0.xml") == b"<first-extended/>"
        assert c.read_small("META-INF/signatures1.xml") == b"<second/>"
        assert [e.name for e in c.data_objects] == [n for n, _, _ in SAMPLE]


def test_write_with_signature_rejections(tmp_path: Path) -> None:
    with AsicContainer.open(build(tmp_path, SAMPLE, {"META-INF/signatures0.xml": b"<s/>"})) as src:
        cases = [
            ("META-INF/signatures0.xml", False, "duplicate_entry"),
            ("META-INF/SIGNATURES0.xml", False, "duplicate_entry"),
            ("META-INF/signatures5.xml", True, "not_found"),
            ("signatures1.xml", False, "unsafe_entry_name"),
            ("META-INF/../signatures1.xml", False, "unsafe_entry_name"),
            ("META-INF/manifest.xml", True, "unsafe_entry_name"),
        ]
        for name, replace, code in cases:
            out = io.BytesIO()
            with pytest.raises(FormatError) as err:
                write_with_signature(src, out, name, b"<x/>", replace=replace)
            assert err.value.code == code, name
            assert out.getvalue() == b""


def test_zip_comment_survives_signing(tmp_path: Path) -> None:
    buf = io.BytesIO(build(tmp_path, SAMPLE[:1]).read_bytes())
    with zipfile.ZipFile(buf, "a") as zf:
        zf.comment = b"produced by a test"
    path = write(tmp_path, buf.getvalue(), "commented.asice")
    with AsicContainer.open(path) as src:
        assert src.comment == b"produced by a test"
        out = io.BytesIO()
        write_with_signature(src, out, src.next_signature_name(), b"<s/>")
    assert zipfile.ZipFile(io.BytesIO(out.getvalue())).comment == b"produced by a test"


def test_next_signature_name_fills_gaps(tmp_path: Path) -> None:
    with AsicContainer.open(build(tmp_path, SAMPLE[:1])) as c:
        assert c.next_signature_name() == "META-INF/signatures0.xml"
    sigs = {"META-INF/signatures0.xml": b"<a/>", "META-INF/signatures2.xml": b"<b/>", "META-INF/signature.p7s": b"x"}
    with AsicContainer.open(build(tmp_path, SAMPLE[:1], sigs, name="gaps.asice")) as c:
        assert c.next_signature_name() == "META-INF/signatures1.xml"
        assert c.cades_signature_names == ["META-INF/signature.p7s"]


def test_writer_rejects_bad_names(tmp_path: Path) -> None:
    cases = [
        ([("../evil.txt", "", [b"x"])], {}, "unsafe_entry_name"),
        ([("a.txt", "", [b"x"]), ("A.TXT", "", [b"y"])], {}, "duplicate_entry"),
        ([("META-INF/x.txt", "", [b"x"])], {}, "unsafe_entry_name"),
        ([("mimetype", "", [b"x"])], {}, "unsafe_entry_name"),
        ([("a.txt", "", [b"x"])], {"signatures0.xml": b"<s/>"}, "unsafe_entry_name"),
        ([("a.txt", "", [b"x"])], {"META-INF/Manifest.xml": b"<s/>"}, "duplicate_entry"),
        ([("a.txt", "bad\ntype", [b"x"])], {}, "invalid_manifest"),
    ]
    for files, sigs, code in cases:
        out = io.BytesIO()
        with pytest.raises(FormatError) as err:
            write_new(out, files, sigs)
        assert err.value.code == code, files
        assert out.getvalue() == b""  # nothing that looks like a container is left behind


def test_guess_mime_type() -> None:
    assert guess_mime_type("a/b/Report.PDF") == "application/pdf"
    assert guess_mime_type("x.xml") == "application/xml"
    assert guess_mime_type("x.docx").endswith("wordprocessingml.document")
    assert guess_mime_type("x.xlsx").endswith("spreadsheetml.sheet")
    assert guess_mime_type("x.odt") == "application/vnd.oasis.opendocument.text"
    assert guess_mime_type("x.jpg") == guess_mime_type("x.jpeg") == "image/jpeg"
    assert guess_mime_type("old.edoc") == guess_mime_type("new.asice") == MIMETYPE
    assert guess_mime_type("noext") == guess_mime_type(".hidden") == "application/octet-stream"
    assert guess_mime_type("x.unknownext") == "application/octet-stream"


# -- producers' variants ----------------------------------------------------------------------


def test_zip64_records_and_data_descriptors(tmp_path: Path) -> None:
    entries = [stored("a.txt", b"hello"), deflated("b.xml", b"<x/>" * 1000)]
    for kwargs in ({"zip64_eocd": True}, {"descriptor": True}, {"zip64_eocd": True, "descriptor": True, "comment": b"c"}):
        path = write(tmp_path, asic_raw(*entries, **kwargs))
        with AsicContainer.open(path) as c:
            assert [e.name for e in c.data_objects] == ["a.txt", "b.xml"]
            assert b"".join(c.stream("b.xml")) == b"<x/>" * 1000
        assert is_asic_e(path)


def test_zipfile_zip64_and_non_seekable_producer(tmp_path: Path) -> None:
    class Pipe:  # no seek/tell: zipfile writes data descriptors
        def __init__(self) -> None:
            self.buf = io.BytesIO()

        def write(self, data: bytes) -> int:
            return self.buf.write(data)

        def flush(self) -> None:
            pass

    pipe = Pipe()
    with zipfile.ZipFile(pipe, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE)
        with zf.open("big.txt", "w", force_zip64=True) as f:
            f.write(b"zip64 local header " * 5000)
        zf.writestr("META-INF/manifest.xml", manifest_xml(("big.txt", "text/plain")))
    path = write(tmp_path, pipe.buf.getvalue())
    assert is_asic_e(path)  # mimetype is not usable by sniffers here, but the manifest is present
    with AsicContainer.open(path) as c:
        assert c.manifest == {"big.txt": "text/plain"}
        assert c.digest("big.txt") == hashlib.sha256(b"zip64 local header " * 5000).digest()


def test_manifest_variants(tmp_path: Path) -> None:
    data = asic_raw(
        stored("my file.txt", b"x"),
        stored("docs/", b""),
        stored("docs/a.bin", b"y"),
        stored("META-INF/manifest.xml", manifest_xml(("my%20file.txt", "text/x-custom"), ("docs/", ""))),
    )
    with AsicContainer.open(write(tmp_path, data)) as c:
        assert c.manifest == {"my file.txt": "text/x-custom", "docs/": ""}
        assert [(e.name, e.mime_type) for e in c.data_objects] == [
            ("my file.txt", "text/x-custom"),
            ("docs/a.bin", "application/octet-stream"),
        ]


def test_is_asic_e_never_raises(tmp_path: Path) -> None:
    assert not is_asic_e(tmp_path / "missing.asice")
    assert not is_asic_e(write(tmp_path, b"", "empty"))
    assert not is_asic_e(write(tmp_path, b"PK\x03\x04garbage" * 10, "garbage"))
    assert not is_asic_e(write(tmp_path, raw_zip([stored("a.txt", b"x")]), "plain.zip"))
    assert not is_asic_e(write(tmp_path, raw_zip([stored("a.txt", b"x"), stored("mimetype", MIMETYPE.encode())]), "m"))
    anywhere = raw_zip(
        [stored("a.txt", b"x"), stored("mimetype", MIMETYPE.encode()), stored("META-INF/manifest.xml", manifest_xml())]
    )
    assert is_asic_e(write(tmp_path, anywhere, "anywhere.asice"))
    with AsicContainer.open(tmp_path / "anywhere.asice") as c:
        assert [e.name for e in c.data_objects] == ["a.txt"]


# -- hostile input ----------------------------------------------------------------------------


def test_not_a_zip_and_truncated(tmp_path: Path) -> None:
    assert_code(write(tmp_path, b"%PDF-1.7 definitely not a zip" * 100), "invalid_container")
    assert_code(write(tmp_path, b""), "invalid_container")
    good = build(tmp_path, SAMPLE).read_bytes()
    assert_code(write(tmp_path, good[: len(good) // 2]), "invalid_container")
    assert_code(write(tmp_path, good[:-10]), "invalid_container")
    # structure intact, content corrupted (in the stored PNG)
    corrupt = bytearray(good)
    corrupt[good.index(b"\x89PNG") + 100] ^= 0xFF
    path = write(tmp_path, bytes(corrupt))
    with AsicContainer.open(path) as c, pytest.raises(FormatError) as err:
        c.digest("image.png")
    assert err.value.code == "invalid_container"  # CRC mismatch


def test_encrypted_and_unsupported_compression(tmp_path: Path) -> None:
    enc = stored("a.txt", b"x")
    enc.flags = 0x1
    assert_code(write(tmp_path, asic_raw(enc)), "invalid_container")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE)
        zf.writestr("a.txt", b"bzip2 data", compress_type=zipfile.ZIP_BZIP2)
    assert_code(write(tmp_path, buf.getvalue()), "invalid_container")


def test_mimetype_rejections(tmp_path: Path) -> None:
    assert_code(write(tmp_path, raw_zip([stored("a.txt", b"x")])), "invalid_mimetype")
    wrong = raw_zip([stored("mimetype", b"application/vnd.etsi.asic-s+zip"), stored("a.txt", b"x")])
    assert_code(write(tmp_path, wrong), "invalid_mimetype")
    assert_code(write(tmp_path, raw_zip([stored("mimetype", b"x" * 1000)])), "invalid_mimetype")


@pytest.mark.parametrize(
    "name",
    [
        "../evil.txt",
        "docs/../../evil.txt",
        "/abs.txt",
        "a\\b.txt",
        "C:evil.txt",
        "c:/windows/evil.txt",
        b"nul\x00.txt",
        "tab\tname.txt",
        "bell\x07.txt",
        "a//b.txt",
        "./a.txt",
        "x" * 513,
        "ā" * 257,
    ],
)
def test_unsafe_names(tmp_path: Path, name: str | bytes) -> None:
    assert_code(write(tmp_path, asic_raw(stored(name, b"x"))), "unsafe_entry_name")


def test_empty_name(tmp_path: Path) -> None:
    assert_code(write(tmp_path, asic_raw(stored(b"", b"x"))), "unsafe_entry_name")


@pytest.mark.parametrize(
    "first,second",
    [
        ("a.txt", "a.txt"),
        ("Report.PDF", "report.pdf"),
        (unicodedata.normalize("NFC", "café.txt"), unicodedata.normalize("NFD", "café.txt")),
        ("mimetype", "mimetype"),
        ("dir/", "DIR/"),
    ],
)
def test_duplicates(tmp_path: Path, first: str, second: str) -> None:
    assert_code(write(tmp_path, asic_raw(stored(first, b"1"), stored(second, b"2"))), "duplicate_entry")


def test_zip_bomb_by_ratio(tmp_path: Path, zeros_200mb: Raw) -> None:
    path = write(tmp_path, asic_raw(zeros_200mb))
    assert path.stat().st_size < MIB
    assert_code(path, "zip_bomb")


def test_lying_size_header(tmp_path: Path) -> None:
    data = bytes(2 * MIB)
    path = write(tmp_path, asic_raw(deflated("liar.bin", data, declared=1000)))
    with AsicContainer.open(path) as c:  # 1000 bytes declared: no ratio check applies
        assert c.data_objects[0].size == 1000
        seen = []
        with pytest.raises(FormatError) as err:
            for chunk in c.stream("liar.bin", chunk_size=400):
                seen.append(chunk)
        assert err.value.code == "zip_bomb"
        assert sum(map(len, seen)) <= 1000  # nothing past the declared size came out
        with pytest.raises(FormatError) as err:
            c.digest("liar.bin")
        assert err.value.code == "zip_bomb"
    # a stored entry whose sizes disagree with each other is malformed, not a bomb
    short = stored("short.bin", b"abc")
    short.size = 2
    assert_code(write(tmp_path, asic_raw(short)), "invalid_container")
    # declared larger than what is really there
    path = write(tmp_path, asic_raw(deflated("big.bin", b"abc", declared=10)))
    with AsicContainer.open(path) as c, pytest.raises(FormatError) as err:
        c.digest("big.bin")
    assert err.value.code == "invalid_container"


def test_size_limits(tmp_path: Path) -> None:
    path = build(tmp_path, [(f"f{i}.txt", "", [b"x" * 100]) for i in range(20)])
    assert_code(path, "container_too_large", Limits(max_entries=10))
    AsicContainer.open(path, Limits(max_entries=22)).close()  # 20 files + mimetype + manifest
    assert_code(path, "container_too_large", Limits(max_entries=21))
    assert_code(path, "container_too_large", Limits(max_entry_uncompressed=99))
    assert_code(path, "container_too_large", Limits(max_total_uncompressed=1500))
    with pytest.raises(FormatError) as err:
        AsicContainer.open(path, Limits(max_xml_bytes=10))  # the manifest is bigger than that
    assert err.value.code == "container_too_large"


def test_hidden_and_overlapping_entries(tmp_path: Path) -> None:
    good = asic_raw(stored("a.txt", b"hello"), stored("b.txt", b"world"))
    # a second central record pointing at the first entry's local header
    with zipfile.ZipFile(io.BytesIO(good)) as zf:
        offset = zf.getinfo("a.txt").header_offset
    dup = bytearray(good)
    records = [i for i in range(len(good)) if good.startswith(b"PK\x01\x02", i)]
    struct.pack_into("<L", dup, records[2] + 42, offset)  # b.txt's record now points at a.txt
    assert_code(write(tmp_path, bytes(dup)), "invalid_container")
    # bytes smuggled in front of the first entry
    prefixed = b"MZ" + b"\0" * 100 + good
    assert_code(write(tmp_path, prefixed), "invalid_container")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">
<manifest:file-entry manifest:full-path="&lol9;" manifest:media-type="text/plain"/>
</manifest:manifest>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE m [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0">
<manifest:file-entry manifest:full-path="a.txt" manifest:media-type="&xxe;"/>
</manifest:manifest>"""


@pytest.mark.parametrize(
    "manifest",
    [
        BILLION_LAUGHS,
        XXE,
        XXE.decode().encode("utf-16"),  # DOCTYPE not visible as ASCII bytes
        manifest_xml().decode().replace("?>", "?><!DOCTYPE m>", 1).replace("UTF-8", "UTF-16").encode("utf-16"),
        manifest_xml(("a.txt", "text/plain"), ("missing.pdf", "application/pdf")),
        manifest_xml(("a.txt", "text/plain"), ("a.txt", "text/plain")),
        b"<manifest:manifest xmlns:manifest='urn:x'/>",
        b"<not-closed>",
        b"\xff\xfe garbage",
    ],
)
def test_hostile_manifest(tmp_path: Path, manifest: bytes) -> None:
    data = asic_raw(stored("a.txt", b"x"), stored("META-INF/manifest.xml", manifest))
    assert_code(write(tmp_path, data), "invalid_manifest")


# -- memory -----------------------------------------------------------------------------------


def test_streaming_200mb_entry_in_bounded_memory(tmp_path: Path, zeros_200mb: Raw) -> None:
    path = write(tmp_path, asic_raw(zeros_200mb))
    expected = hashlib.sha256()
    chunk = bytes(MIB)
    for _ in range(200):
        expected.update(chunk)
    del chunk
    with AsicContainer.open(path, Limits(max_ratio=100_000)) as c:
        tracemalloc.start()
        try:
            got = c.digest("zeros.bin")
            total = sum(len(piece) for piece in c.stream("zeros.bin"))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert got == expected.digest()
    assert total == 200 * MIB
    assert peak < 20 * MIB, peak
