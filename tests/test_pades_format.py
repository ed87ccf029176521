"""PAdES through the format interface: two-step signing to each level, and extension of PDFs
signed here and by pyHanko from B to T, LT, LTA and LTA renewal, each result checked by
remotesign's validator at the new level, by pyHanko's validator and by poppler's pdfsig."""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext

from remotesign.formats.base import FormatError
from remotesign.formats.interface import Level
from remotesign.formats.pades_format import PadesFormat
from remotesign.validation.model import Indication
from remotesign.validation.pades import validate_pdf
from tests import format_pki
from tests.pades_pki import Pki, make_pki, sign_pdf
from tests.pdfgen import pdf_bytes

FMT = PadesFormat()


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    with make_pki(tmp_path_factory.mktemp("pades-format-pki")) as made:
        yield made


def check(pki: Pki, data: bytes, tmp_path: Path, level: str, signatures: int = 1) -> None:
    """remotesign's validator (from embedded data only for LT/LTA), pyHanko, pdfsig."""
    path = tmp_path / f"check-{level}.pdf"
    path.write_bytes(data)
    options = pki.options(revocation_provider=None) if level in ("LT", "LTA") else pki.options()
    result = run(validate_pdf(path, options, filename=path.name))
    assert len(result.signatures) == signatures
    for sig in result.signatures:
        assert (sig.indication, sig.sub_indication) == (Indication.TOTAL_PASSED, None), sig.errors
        assert sig.signature_format == f"PAdES_BASELINE_{level}", sig.signature_format
    reader = PdfFileReader(io.BytesIO(data))
    vc = ValidationContext(trust_roots=[pki.root], other_certs=[pki.issuing], allow_fetching=False,
                           revocation_mode="soft-fail")
    for embedded in reader.embedded_regular_signatures:
        status = run(async_validate_pdf_signature(embedded, vc))
        assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    if shutil.which("pdfsig"):
        out = subprocess.run(["pdfsig", "-nocert", str(path)], capture_output=True, text=True, check=False)
        assert out.stdout.count("Signature is Valid.") >= signatures, out.stdout


@pytest.mark.parametrize("level", [Level.B, Level.T, Level.LT, Level.LTA])
def test_sign_to_level(pki: Pki, level: Level, tmp_path: Path) -> None:
    _signer, issued, key = pki.signer()
    spec = format_pki.spec(pki, issued.asn1(), key)
    doc = format_pki.document("a.pdf", pdf_bytes(), "application/pdf")
    data = run(format_pki.sign(FMT, [doc], spec, key, level, format_pki.context(pki)))
    assert FMT.signature_levels(io.BytesIO(data)) == [level]
    check(pki, data, tmp_path, level.name)


def test_extend_own_b_through_every_level_and_renew(pki: Pki, tmp_path: Path) -> None:
    _signer, issued, key = pki.signer()
    ctx = format_pki.context(pki)
    data = run(format_pki.sign(FMT, [format_pki.document("a.pdf", pdf_bytes())], format_pki.spec(pki, issued.asn1(), key), key))
    for level in (Level.T, Level.LT, Level.LTA):
        extended = run(format_pki.extend(FMT, data, level, ctx))
        assert extended.startswith(data), "extension must only append incremental updates"
        assert FMT.signature_levels(io.BytesIO(extended)) == [level]
        check(pki, extended, tmp_path, level.name)
        data = extended
    renewed = run(format_pki.extend(FMT, data, Level.LTA, ctx))
    assert renewed.startswith(data) and len(renewed) > len(data)
    assert PdfFileReader(io.BytesIO(renewed)).embedded_signatures[-1].sig_object["/Type"] == "/DocTimeStamp"
    assert len(PdfFileReader(io.BytesIO(renewed)).embedded_timestamp_signatures) == 3
    check(pki, renewed, tmp_path, "LTA")


@pytest.mark.parametrize("target", [Level.LT, Level.LTA])
def test_extend_pyhanko_b_b_directly(pki: Pki, target: Level, tmp_path: Path) -> None:
    """A PDF signed elsewhere (pyHanko, B-B, no time-stamp) goes to LT or LTA in one call."""
    signer, _issued, _key = pki.signer()
    source = run(sign_pdf(pki, signer, "B", tmp_path / "pyhanko-b.pdf")).read_bytes()
    extended = run(format_pki.extend(FMT, source, target, format_pki.context(pki)))
    assert FMT.signature_levels(io.BytesIO(extended)) == [target]
    check(pki, extended, tmp_path, target.name)


def test_extend_two_signatures(pki: Pki, tmp_path: Path) -> None:
    """Every signature of the document is extended, not only the last one."""
    first, _i1, _k1 = pki.signer()
    source = run(sign_pdf(pki, first, "B", tmp_path / "one.pdf")).read_bytes()
    _s2, issued, key = pki.signer()
    both = run(format_pki.sign(FMT, [format_pki.document("one.pdf", source)], format_pki.spec(pki, issued.asn1(), key), key))
    extended = run(format_pki.extend(FMT, both, Level.LTA, format_pki.context(pki)))
    assert FMT.signature_levels(io.BytesIO(extended)) == [Level.LTA, Level.LTA]
    check(pki, extended, tmp_path, "LTA", signatures=2)


def test_t_does_not_stamp_twice(pki: Pki) -> None:
    """A signature that has its time-stamp is already T: extending to T changes nothing."""
    _signer, issued, key = pki.signer()
    ctx = format_pki.context(pki)
    data = run(format_pki.sign(FMT, [format_pki.document("a.pdf", pdf_bytes())], format_pki.spec(pki, issued.asn1(), key),
                               key, Level.T, ctx))
    assert run(format_pki.extend(FMT, data, Level.T, ctx)) == data


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7\n garbage", pdf_bytes()], ids=["empty", "garbage", "unsigned"])
def test_bad_input_is_a_format_error(pki: Pki, data: bytes) -> None:
    with pytest.raises(FormatError) as exc:
        run(format_pki.extend(FMT, data, Level.LT, format_pki.context(pki)))
    assert exc.value.code in {"invalid_pdf", "not_a_pdf", "not_signed"}
    assert FMT.signature_levels(io.BytesIO(data)) == []


def test_sign_with_a_visible_stamp(pki: Pki, tmp_path: Path) -> None:
    """SignParameters.stamp makes the new signature's field visible: the QR code reads back."""
    if shutil.which("zbarimg") is None:
        pytest.skip("zbar-tools is installed by scripts/test.sh")
    import dataclasses

    from remotesign.formats.stamps import StampSpec

    _signer, issued, key = pki.signer()
    stamp = StampSpec(text_lines=("Approved",), qr="https://verify.example/abc", page=1, x=300, y=500)
    data = run(format_pki.sign(FMT, [format_pki.document("a.pdf", pdf_bytes())], format_pki.spec(pki, issued.asn1(), key),
                               key, Level.T, format_pki.context(pki), tweak=lambda p: dataclasses.replace(p, stamp=stamp)))
    check(pki, data, tmp_path, "T")
    (tmp_path / "s.pdf").write_bytes(data)
    subprocess.run(["pdftoppm", "-r", "150", "-png", str(tmp_path / "s.pdf"), str(tmp_path / "p")], check=True)
    decoded = subprocess.run(["zbarimg", "--quiet", "--raw", str(next(tmp_path.glob("p*.png")))],
                             capture_output=True, text=True).stdout
    assert "https://verify.example/abc" in decoded


@pytest.mark.parametrize("level", [Level.B, Level.T, Level.LT])
def test_sign_at_level_hashes_what_it_writes_and_keeps_the_prepared_file(pki: Pki, level: Level,
                                                                        tmp_path: Path) -> None:
    """Finalize streams the prepared file into the output once (placeholder filled on the way),
    appends the DSS from the CMS it just built, and returns the output's SHA-256 hashed while
    writing; the prepared file is left as it was (a finalize that dies can run again)."""
    import hashlib
    from datetime import datetime, timezone

    from remotesign.formats.interface import SignParameters

    _signer, issued, key = pki.signer()
    spec = format_pki.spec(pki, issued.asn1(), key)
    doc = format_pki.document("a.pdf", pdf_bytes(padding_bytes=3 << 20), "application/pdf")
    params = SignParameters(signer=spec, signing_time=datetime.now(timezone.utc))
    with open(tmp_path / "prepared.pdf", "w+b") as scratch, open(tmp_path / "out.pdf", "w+b") as out:
        prepared = run(FMT.data_to_sign([doc], params, scratch))
        scratch.flush()
        before = (tmp_path / "prepared.pdf").read_bytes()
        out.write(b"stale bytes the output must lose" * 100000)
        written = run(FMT.sign_at_level([doc], params, prepared, format_pki.raw_sign(key, prepared.digest), scratch,
                                        out, level, format_pki.context(pki)))
    data = (tmp_path / "out.pdf").read_bytes()
    assert written == hashlib.sha256(data).digest()
    assert (tmp_path / "prepared.pdf").read_bytes() == before
    assert data[:len(before)] != before and len(data[:len(before)]) == len(before)
    assert FMT.signature_levels(io.BytesIO(data)) == [level]
    check(pki, data, tmp_path, level.name)
    if level == Level.LT:
        dss = PdfFileReader(io.BytesIO(data)).root["/DSS"]
        assert len(dss["/Certs"]) >= 3 and len(dss["/OCSPs"]) >= 2


def test_sign_at_level_hash_without_plain_files(pki: Pki) -> None:
    """In-memory scratch and output (no kernel copy, no hashing thread): the same promise."""
    import hashlib
    from datetime import datetime, timezone

    from remotesign.formats.interface import SignParameters

    _signer, issued, key = pki.signer()
    doc = format_pki.document("a.pdf", pdf_bytes(padding_bytes=1 << 20), "application/pdf")
    params = SignParameters(signer=format_pki.spec(pki, issued.asn1(), key), signing_time=datetime.now(timezone.utc))
    scratch, out = io.BytesIO(), io.BytesIO(b"stale" * 500000)
    prepared = run(FMT.data_to_sign([doc], params, scratch))
    before = scratch.getvalue()
    written = run(FMT.sign_at_level([doc], params, prepared, format_pki.raw_sign(key, prepared.digest), scratch, out,
                                    Level.LT, format_pki.context(pki)))
    assert written == hashlib.sha256(out.getvalue()).digest()
    assert scratch.getvalue() == before
    assert FMT.signature_levels(io.BytesIO(out.getvalue())) == [Level.LT]


@pytest.mark.parametrize("kind", ["p256", "rsa4096"])
def test_placeholder_is_sized_for_the_signer(pki: Pki, kind: str, tmp_path: Path) -> None:
    """The CMS placeholder is reckoned from the signer's certificates and key plus room for a
    time-stamp token: a B-T signature adds about twice that (hex) to the file, not a fixed 96 KB,
    and an RSA-4096 signer's CMS still fits."""
    from cryptography.hazmat.primitives.asymmetric import rsa

    from remotesign.formats import pades

    key = rsa.generate_private_key(65537, 4096) if kind == "rsa4096" else None
    _signer, issued, key = pki.signer(key=key)
    spec = format_pki.spec(pki, issued.asn1(), key)
    source = pdf_bytes()
    data = run(format_pki.sign(FMT, [format_pki.document("a.pdf", source, "application/pdf")], spec, key, Level.T,
                               format_pki.context(pki)))
    check(pki, data, tmp_path, "T")
    reserved = pades.cms_reserved_bytes(spec)
    certificates = len(spec.certificate) + sum(len(c) for c in spec.chain)
    assert reserved < certificates + 24 * 1024
    grown = len(data) - len(source)
    assert 2 * reserved < grown < 2 * reserved + 8 * 1024, (grown, reserved)


def test_a_timestamp_token_too_large_for_the_placeholder_is_refused(pki: Pki) -> None:
    """A TSA whose tokens carry far more certificates than any seen: the finalize fails with
    signature_too_large, and nothing half-written comes out as a signed document."""
    from asn1crypto import cms

    from remotesign.trust.timestamping import BuiltinTimeStamper

    class Bloated(BuiltinTimeStamper):
        async def async_timestamp(self, message_digest, md_algorithm):  # type: ignore[no-untyped-def]
            token = await super().async_timestamp(message_digest, md_algorithm)
            signed = token["content"]
            padding = [cms.CertificateChoices({"certificate": pki.root})] * 40  # unsigned: the token stays valid
            signed["certificates"] = cms.CertificateSet(list(signed["certificates"]) + padding)
            return cms.ContentInfo.load(token.dump(force=True))

    _signer, issued, key = pki.signer()
    spec = format_pki.spec(pki, issued.asn1(), key)
    doc = format_pki.document("a.pdf", pdf_bytes(), "application/pdf")
    with pytest.raises(FormatError) as err:
        run(format_pki.sign(FMT, [doc], spec, key, Level.T, format_pki.context(pki, Bloated(pki.tsa))))
    assert err.value.code == "signature_too_large"
