"""Hostile and malformed input to the validator: every file gets a report or a clear
ValidationInputError; never another exception, never a hang, never a report without signatures.
Hand-made attacks first, then hypothesis mutations: of real signed files from the conformance
corpus (any byte), and of signatures made here that validate TOTAL-PASSED, mutated only where the
bytes are signed — none of those mutants may pass."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st
from pyhanko.pdf_utils.reader import PdfFileReader

from remotesign.validation.engine import validate_path
from remotesign.validation.model import DocumentResult, Indication, ValidationInputError
from remotesign.validation.options import ValidationOptions
from tests.pades_pki import Pki, make_pki, sign_pdf
from tests.pdfgen import pdf_bytes

CORPUS = Path(__file__).parent / "data" / "conformance" / "files"
SEEDS = {
    "pdf": CORPUS / "pyh-pades-pass-01.pdf",
    "xml": CORPUS / "dss-xades-nochain-01.xml",
    "asice": CORPUS / "dd4j-asice-pass-03.asice",
    "p7s": CORPUS / "dss-cades-b-01.p7m" if (CORPUS / "dss-cades-b-01.p7m").exists() else None,
}
#: A hang guard, not a speed test: every file here validates in about a second on an idle machine.
HANG_GUARD_SECONDS = 180.0


def run(path: Path, options: ValidationOptions | None = None) -> DocumentResult | ValidationInputError:
    started = time.monotonic()
    try:
        result: DocumentResult | ValidationInputError = asyncio.run(
            validate_path(path, options or ValidationOptions()))
    except ValidationInputError as exc:
        result = exc
    assert time.monotonic() - started < HANG_GUARD_SECONDS, f"{path.name} hung"
    return result


def assert_clear(result: DocumentResult | ValidationInputError) -> None:
    """A clear answer: an input error with a code and a sentence, or a report with at least one
    signature, each with a consistent verdict — TOTAL-PASSED without a sub-indication or an error,
    anything else with a sub-indication and a reason."""
    if isinstance(result, ValidationInputError):
        assert result.code and result.message
        return
    assert result.signatures, "a report without signatures would pass silently"
    for signature in result.signatures:
        if signature.indication is Indication.TOTAL_PASSED:
            assert signature.sub_indication is None and not signature.errors, signature
        else:
            assert signature.sub_indication is not None and signature.errors, signature


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


@pytest.mark.slow
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


def test_an_unsigned_file_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "plain.pdf"
    path.write_bytes(pdf_bytes())
    result = run(path)
    assert isinstance(result, ValidationInputError) and result.code == "not_signed"


# --- signatures made here, mutated where they are signed ---------------------------------------------------
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    with make_pki(tmp_path_factory.mktemp("hostile-pki")) as made:
        yield made


@dataclass
class Seed:
    data: bytes
    signed: list[tuple[int, int]]      # [start, end) byte ranges the signature covers


@pytest.fixture(scope="module")
def seeds(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Seed]:
    """A PAdES B-B and an attached CAdES-B that validate TOTAL-PASSED, with their signed bytes."""
    directory = tmp_path_factory.mktemp("seeds")
    signer = pki.signer()[0]
    pdf = asyncio.run(sign_pdf(pki, signer, "B", directory / "seed.pdf")).read_bytes()
    start1, length1, start2, length2 = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0].byte_range
    content = b"invoice 42: 100 EUR\n" * 50
    cms = asyncio.run(signer.async_sign_general_data(content, "sha256", detached=False, use_cades=True)).dump()
    at = cms.index(content)
    out = {"pdf": Seed(pdf, [(start1, start1 + length1), (start2, start2 + length2)]),
           "p7m": Seed(cms, [(at, at + len(content))])}
    for kind, seed in out.items():
        path = directory / f"check.{kind}"
        path.write_bytes(seed.data)
        result = run(path, pki.options())
        assert isinstance(result, DocumentResult) and result.all_passed, (kind, result)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pdf", "p7m"])
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutating_signed_bytes_never_passes(pki: Pki, seeds: dict[str, Seed], kind: str, data: st.DataObject,
                                            tmp_path: Path) -> None:
    seed = seeds[kind]
    mutated = bytearray(seed.data)
    start, end = data.draw(st.sampled_from(seed.signed))
    at = data.draw(st.integers(start, end - 1))
    op = data.draw(st.sampled_from(["flip", "cut", "dup"]))
    if op == "flip":
        mutated[at] ^= data.draw(st.integers(1, 255))
    elif op == "cut":
        del mutated[at:at + data.draw(st.integers(1, 64))]
    else:
        mutated[at:at] = mutated[at:at + data.draw(st.integers(1, 64))]
    # A copy of the file's last bytes inserted at the end leaves every signed byte where it was and
    # only appends to the file: the signed revision is intact and may validate. Only a change of
    # the bytes at the signed offsets is a forgery the validator must catch.
    assume(bytes(mutated[start:end]) != seed.data[start:end])
    path = tmp_path / f"mutant.{kind}"
    path.write_bytes(bytes(mutated))
    result = run(path, pki.options())
    assert_clear(result)
    if isinstance(result, DocumentResult):
        assert not any(s.passed for s in result.signatures), (op, at, [s.errors for s in result.signatures])
