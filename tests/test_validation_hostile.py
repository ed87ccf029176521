"""Hostile and malformed input to the validator: every file gets a report or a clear
ValidationInputError within a bounded time; never another exception, never a hang. Hand-made
attacks first, then hypothesis mutations of real signed files from the conformance corpus."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from remotesign.validation.engine import validate_path
from remotesign.validation.model import DocumentResult, ValidationInputError
from remotesign.validation.options import ValidationOptions

CORPUS = Path(__file__).parent / "data" / "conformance" / "files"
SEEDS = {
    "pdf": CORPUS / "pyh-pades-pass-01.pdf",
    "xml": CORPUS / "dss-xades-nochain-01.xml",
    "asice": CORPUS / "dd4j-asice-pass-03.asice",
    "p7s": CORPUS / "dss-cades-b-01.p7m" if (CORPUS / "dss-cades-b-01.p7m").exists() else None,
}
TIME_BOUND = 20.0


def run(path: Path) -> DocumentResult | ValidationInputError:
    started = time.monotonic()
    try:
        result: DocumentResult | ValidationInputError = asyncio.run(validate_path(path, ValidationOptions()))
    except ValidationInputError as exc:
        result = exc
    assert time.monotonic() - started < TIME_BOUND, f"{path.name} took too long"
    return result


def assert_clear(result: DocumentResult | ValidationInputError) -> None:
    if isinstance(result, ValidationInputError):
        assert result.code and result.message
    else:
        for signature in result.signatures:
            assert signature.indication.value in ("TOTAL-PASSED", "TOTAL-FAILED", "INDETERMINATE")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
<!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">]>
<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#">&lol4;</ds:Signature>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>&xxe;</ds:SignedInfo></ds:Signature>"""


def _xref_loop_pdf() -> bytes:
    """Two cross-reference sections whose /Prev point at each other."""
    body = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n2 0 obj\n<< /Type /Pages /Kids [] /Count 0 >>\nendobj\n"
    first = len(body)
    xref1 = b"xref\n0 3\n0000000000 65535 f \n0000000009 00000 n \n0000000058 00000 n \n"
    second = first + len(xref1) + 60
    trailer1 = b"trailer\n<< /Size 3 /Root 1 0 R /Prev %d >>\n" % second
    trailer1 = trailer1.ljust(60, b" ")
    xref2 = b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size 3 /Root 1 0 R /Prev %d >>\n" % first
    return body + xref1 + trailer1 + xref2 + b"startxref\n%d\n%%%%EOF\n" % second


def _reference_loop_pdf() -> bytes:
    """A page tree whose /Kids and /Parent point at each other forever, and a signature field whose
    value is itself."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [4 0 R] >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 /Parent 3 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R] /Count 1 /Parent 2 0 R >>",
        b"<< /FT /Sig /T (Sig1) /V 4 0 R /Kids [4 0 R] >>",
    ]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _zip_bomb() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zipfile.ZipInfo("mimetype"), b"application/vnd.etsi.asic-e+zip", zipfile.ZIP_STORED)
        z.writestr("bomb.txt", b"\0" * (64 << 20))
        z.writestr("META-INF/signatures0.xml", b"<x/>")
    return out.getvalue()


HOSTILE = {
    "billion-laughs.xml": BILLION_LAUGHS,
    "xxe.xml": EXTERNAL_ENTITY,
    "xref-loop.pdf": _xref_loop_pdf(),
    "truncated.pdf": b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog",
    "reference-loop.pdf": _reference_loop_pdf(),
    "bomb.asice": _zip_bomb(),
    "absurd-length.p7s": b"\x30\x84\x7f\xff\xff\xff\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x02",
    "deep-nesting.p7s": b"\x30\x80" * 5000,
    "not-a-zip.asice": b"PK\x03\x04" + b"\xff" * 200,
    "empty.xml": b"<a/>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_get_a_clear_answer(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(HOSTILE[name])
    result = run(path)
    assert_clear(result)
    if name in ("billion-laughs.xml", "xxe.xml", "bomb.asice", "truncated.pdf", "not-a-zip.asice"):
        assert isinstance(result, ValidationInputError) or all(
            s.indication.value != "TOTAL-PASSED" for s in result.signatures)


@pytest.mark.parametrize("kind", [k for k, v in SEEDS.items() if v is not None])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_signed_files(kind: str, data: st.DataObject, tmp_path: Path) -> None:
    seed = SEEDS[kind].read_bytes()  # type: ignore[union-attr]
    mutated = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        op = data.draw(st.sampled_from(["flip", "cut", "dup"]))
        if op == "flip":
            mutated[at] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del mutated[at:at + data.draw(st.integers(1, 64))]
        elif len(mutated) < 4 * len(seed):
            mutated[at:at] = mutated[at:at + data.draw(st.integers(1, 64))]
    path = tmp_path / f"mutant.{kind}"
    path.write_bytes(bytes(mutated))
    assert_clear(run(path))
