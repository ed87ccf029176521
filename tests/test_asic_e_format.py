"""ASiC-E with XAdES through the format interface: new containers and parallel signatures signed
straight to each level, and extension of containers (ours and a parallel one) through T, LT, LTA
and LTA renewal, each checked by xmlsec1 and by remotesign's validator at the new level."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import pem

from remotesign.formats.asic_e_format import AsicEXadesFormat
from remotesign.formats.base import FormatError
from remotesign.formats.interface import Container, Level
from remotesign.validation.asic import validate_container
from remotesign.validation.model import Indication
from tests import format_pki
from tests.pades_pki import Pki, make_pki
from tests.verifiers import xmlsec_verify

FMT = AsicEXadesFormat()
FILES = {"contract.txt": b"We agree.\n" * 100, "annex.bin": bytes(range(256)) * 40}


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    with make_pki(tmp_path_factory.mktemp("asic-e-format-pki")) as made:
        yield made


def docs() -> list[format_pki.Document]:
    return [format_pki.document(name, data, "text/plain" if name.endswith(".txt") else "application/octet-stream")
            for name, data in FILES.items()]


def ca_pem(pki: Pki) -> bytes:
    return b"".join(pem.armor("CERTIFICATE", c.dump()) for c in (pki.root, pki.issuing))


def check(pki: Pki, data: bytes, tmp_path: Path, level: Level, signatures: int = 1) -> None:
    zf = zipfile.ZipFile(io.BytesIO(data))
    files = {n: zf.read(n) for n in zf.namelist() if not n.startswith("META-INF/") and n != "mimetype"}
    names = sorted(n for n in zf.namelist() if n.startswith("META-INF/signatures"))
    assert len(names) == signatures
    for name in names:
        ok, out = xmlsec_verify(tmp_path, zf.read(name), files, ca_pem(pki))
        assert ok, out[-2000:]
    path = tmp_path / "c.asice"
    path.write_bytes(data)
    options = pki.options(revocation_provider=None) if level >= Level.LT else pki.options()
    result = run(validate_container(path, options, filename=path.name))
    assert len(result.signatures) == signatures
    for sig in result.signatures:
        assert (sig.indication, sig.sub_indication) == (Indication.TOTAL_PASSED, None), sig.errors
        assert sig.signature_format == f"XAdES_BASELINE_{level.name}", sig.signature_format
    assert FMT.signature_levels(io.BytesIO(data)) == [level] * signatures


@pytest.mark.parametrize("level", list(Level))
def test_new_container_to_level(pki: Pki, level: Level, tmp_path: Path) -> None:
    _s, issued, key = pki.signer()
    data = run(format_pki.sign(FMT, docs(), format_pki.spec(pki, issued.asn1(), key), key, level,
                               format_pki.context(pki)))
    assert FMT.recognizes(io.BytesIO(data))
    check(pki, data, tmp_path, level)


def test_parallel_signature_then_extension_and_renewal(pki: Pki, tmp_path: Path) -> None:
    ctx = format_pki.context(pki)
    _s1, first, key1 = pki.signer()
    container = run(format_pki.sign(FMT, docs(), format_pki.spec(pki, first.asn1(), key1), key1))
    _s2, second, key2 = pki.signer()
    both = run(format_pki.sign(FMT, [format_pki.document("c.asice", container)],
                               format_pki.spec(pki, second.asn1(), key2), key2))
    check(pki, both, tmp_path, Level.B, signatures=2)
    data = both
    for level in (Level.T, Level.LT, Level.LTA, Level.LTA):
        data = run(format_pki.extend(FMT, data, level, ctx))
        check(pki, data, tmp_path, level, signatures=2)
    zf = zipfile.ZipFile(io.BytesIO(data))
    assert all(zf.read(n) == FILES[n] for n in FILES), "the signed files are copied as they are"
    assert zf.read("META-INF/signatures0.xml").count(b"ArchiveTimeStamp ") + \
        zf.read("META-INF/signatures0.xml").count(b"ArchiveTimeStamp>") >= 2


def test_new_container_around_a_container(pki: Pki, tmp_path: Path) -> None:
    """container=ASIC_E asks for a new container even when the one document is a container."""
    _s, issued, key = pki.signer()
    spec = format_pki.spec(pki, issued.asn1(), key)
    inner = run(format_pki.sign(FMT, docs(), spec, key))
    outer = run(format_pki.sign(FMT, [format_pki.document("inner.asice", inner, "application/vnd.etsi.asic-e+zip")],
                                spec, key, tweak=lambda p: p.__class__(**{**p.__dict__, "container": Container.ASIC_E})))
    assert zipfile.ZipFile(io.BytesIO(outer)).read("inner.asice") == inner


@pytest.mark.parametrize("data", [b"", b"PK\x03\x04garbage", b"not a zip"], ids=["empty", "bad-zip", "text"])
def test_bad_input(pki: Pki, data: bytes) -> None:
    assert not FMT.recognizes(io.BytesIO(data))
    with pytest.raises(FormatError):
        run(format_pki.extend(FMT, data, Level.T, format_pki.context(pki)))
