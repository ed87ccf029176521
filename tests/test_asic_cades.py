"""ASiC-S and ASiC-E with CAdES through the format interface, against the running service's TSA and
OCSP responder: new containers signed straight to B/T/LT/LTA, extension of B containers through
T, LT, LTA and renewal; the CAdES signature inside checked by ``openssl cms -verify`` over the data
object (ASiC-S) or the ASiCManifest (ASiC-E), the container layout by zipfile and unzip, and every
container by remotesign's validator at the level; hostile containers are clear FormatErrors."""

from __future__ import annotations

import base64
import hashlib
import io
import shutil
import subprocess
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from lxml import etree

from remotesign.formats.asic import write_new
from remotesign.formats.asic.asics import MIMETYPE_S
from remotesign.formats.asic_cades import AsicECadesFormat, AsicSFormat
from remotesign.formats.base import FormatError
from remotesign.formats.interface import Document, Level, SignatureFormat, SignParameters
from remotesign.validation.engine import validate_path
from remotesign.validation.model import Indication
from tests.cades_support import ServicePki, openssl_verify, run, service_pki
from tests.harness import Service
from tests.signapi import Card

ASICS = AsicSFormat()
ASICE = AsicECadesFormat()
FILES = {"līgums.txt": "Līgums Nr. 14\n".encode() * 300, "scan 2.png": bytes(range(256)) * 40}


@pytest.fixture(scope="module")
def pki(service: Service, tmp_path_factory: pytest.TempPathFactory) -> ServicePki:
    return service_pki(service, tmp_path_factory.mktemp("asic-cades-pki"))


@pytest.fixture(scope="module")
def card(pki: ServicePki) -> Card:
    return pki.card("p256")


def documents(names: list[str]) -> list[Document]:
    return [Document(name=n, mime_type="", open=lambda n=n: io.BytesIO(FILES[n])) for n in names]


def sign(fmt: SignatureFormat, pki: ServicePki, card: Card, names: list[str], level: Level) -> bytes:
    docs = documents(names)
    params = SignParameters(signer=pki.spec(card), signing_time=datetime.now(timezone.utc))
    scratch = io.BytesIO()
    prepared = run(fmt.data_to_sign(docs, params, scratch))
    out = io.BytesIO()
    run(fmt.sign_at_level(docs, params, prepared, card.sign(prepared.digest), scratch, out, level,
                          pki.context() if level > Level.B else None))
    return out.getvalue()


def extend(fmt: SignatureFormat, pki: ServicePki, data: bytes, level: Level) -> bytes:
    out = io.BytesIO()
    run(fmt.extend(io.BytesIO(data), out, level, pki.context()))
    return out.getvalue()


def check(fmt: SignatureFormat, pki: ServicePki, data: bytes, level: Level, tmp: Path, names: list[str]) -> None:
    assert fmt.recognizes(io.BytesIO(data))
    assert fmt.signature_levels(io.BytesIO(data)) == [level]
    path = tmp / ("c.asics" if fmt is ASICS else "c.asice")
    path.write_bytes(data)
    if shutil.which("unzip"):
        test = subprocess.run(["unzip", "-t", str(path)], capture_output=True, text=True)
        assert test.returncode == 0, test.stdout
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert infos[0].filename == "mimetype" and infos[0].compress_type == zipfile.ZIP_STORED
        assert data[30:38] == b"mimetype" and not infos[0].extra
        for name in names:
            assert zf.read(name) == FILES[name]
        signature = zf.read("META-INF/signature.p7s")
        if fmt is ASICS:
            assert zf.read("mimetype") == MIMETYPE_S.encode()
            assert [i.filename for i in infos] == ["mimetype", names[0], "META-INF/signature.p7s"]
            openssl_verify(pki, signature, tmp, FILES[names[0]])
        else:
            assert zf.read("mimetype") == b"application/vnd.etsi.asic-e+zip"
            manifest = zf.read("META-INF/ASiCManifest.xml")
            openssl_verify(pki, signature, tmp, manifest)
            root = etree.fromstring(manifest)
            refs = root.findall("{http://uri.etsi.org/02918/v1.2.1#}DataObjectReference")
            assert len(refs) == len(names)
            for ref, name in zip(refs, names):
                value = ref.find("{http://www.w3.org/2000/09/xmldsig#}DigestValue").text
                assert base64.b64decode(value) == hashlib.sha256(FILES[name]).digest()
    result = run(validate_path(path, pki.options(level.name), filename=path.name))
    assert result.signature_form == ("ASiC-S" if fmt is ASICS else "ASiC-E")
    assert not result.errors, result.errors
    assert len(result.signatures) == 1
    sig = result.signatures[0]
    assert (sig.indication, sig.sub_indication) == (Indication.TOTAL_PASSED, None), sig.errors
    assert sig.signature_format == f"CAdES_BASELINE_{level.name}", sig.signature_format
    assert sorted(sig.signed_objects) == sorted(names)
    archive = [t for t in sig.timestamps if t.kind.name == "ARCHIVE"]
    assert all(t.valid for t in archive) and len(archive) >= (level == Level.LTA)


CASES = [(ASICS, ["līgums.txt"]), (ASICE, ["līgums.txt", "scan 2.png"])]


@pytest.mark.parametrize("level", list(Level), ids=lambda lv: lv.name)
@pytest.mark.parametrize("fmt,names", CASES, ids=["asic-s", "asic-e-cades"])
def test_sign_to_level(pki: ServicePki, card: Card, fmt: SignatureFormat, names: list[str], level: Level,
                       tmp_path: Path) -> None:
    check(fmt, pki, sign(fmt, pki, card, names, level), level, tmp_path, names)


@pytest.mark.parametrize("fmt,names", CASES, ids=["asic-s", "asic-e-cades"])
def test_extend_b_through_every_level_and_renew(pki: ServicePki, card: Card, fmt: SignatureFormat,
                                                names: list[str], tmp_path: Path) -> None:
    data = sign(fmt, pki, card, names, Level.B)
    for level in (Level.T, Level.LT, Level.LTA, Level.LTA):
        extended = extend(fmt, pki, data, level)
        # data entries are copied as they are: same compressed bytes, same CRC
        old, new = zipfile.ZipFile(io.BytesIO(data)), zipfile.ZipFile(io.BytesIO(extended))
        for name in names:
            assert (old.getinfo(name).CRC, old.getinfo(name).compress_size) == \
                (new.getinfo(name).CRC, new.getinfo(name).compress_size)
        check(fmt, pki, extended, level, tmp_path, names)
        data = extended
    assert extend(fmt, pki, data, Level.LT) == data  # already above LT: unchanged


def test_t_does_not_stamp_twice(pki: ServicePki, card: Card) -> None:
    t = sign(ASICS, pki, card, ["līgums.txt"], Level.T)
    assert extend(ASICS, pki, t, Level.T) == t


def test_formats_tell_containers_apart(pki: ServicePki, card: Card) -> None:
    asics = sign(ASICS, pki, card, ["līgums.txt"], Level.B)
    asice = sign(ASICE, pki, card, ["līgums.txt"], Level.B)
    assert ASICS.recognizes(io.BytesIO(asics)) and not ASICS.recognizes(io.BytesIO(asice))
    assert ASICE.recognizes(io.BytesIO(asice)) and not ASICE.recognizes(io.BytesIO(asics))
    xades_like = io.BytesIO()
    write_new(xades_like, [("a.txt", "text/plain", [b"a"])], {"META-INF/signatures0.xml": b"<x/>"})
    assert not ASICE.recognizes(xades_like) and not ASICS.recognizes(xades_like)


def _zip(entries: list[tuple[str, bytes]], stored_first: bool = True) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, (name, data) in enumerate(entries):
            zf.writestr(zipfile.ZipInfo(name), data,
                        compress_type=zipfile.ZIP_STORED if i == 0 and stored_first else zipfile.ZIP_DEFLATED)
    return out.getvalue()


def test_hostile_containers_are_format_errors(pki: ServicePki, card: Card) -> None:
    signature = zipfile.ZipFile(io.BytesIO(sign(ASICS, pki, card, ["līgums.txt"], Level.B))).read(
        "META-INF/signature.p7s")
    mimetype = ("mimetype", MIMETYPE_S.encode())
    bomb = _zip([mimetype, ("a.txt", b"\0" * (64 << 20)), ("META-INF/signature.p7s", signature)])
    cases = {
        "two data objects": (_zip([mimetype, ("a.txt", b"a"), ("b.txt", b"b"), ("META-INF/signature.p7s", signature)]),
                             {"invalid_container"}),
        "no signature": (_zip([mimetype, ("a.txt", b"a")]), {"not_signed"}),
        "garbage signature": (_zip([mimetype, ("a.txt", b"a"), ("META-INF/signature.p7s", b"\x30\x03junk")]),
                              {"invalid_cms"}),
        "zip bomb": (bomb, {"zip_bomb"}),
        "traversal": (_zip([mimetype, ("../a.txt", b"a"), ("META-INF/signature.p7s", signature)]),
                      {"unsafe_entry_name"}),
        "not a zip": (b"PK\x03\x04" + b"\0" * 100, {"invalid_container"}),
        "truncated": (sign(ASICS, pki, card, ["līgums.txt"], Level.B)[:-40], {"invalid_container"}),
    }
    for label, (data, codes) in cases.items():
        ASICS.recognizes(io.BytesIO(data))
        assert ASICS.signature_levels(io.BytesIO(data)) == [], label
        with pytest.raises(FormatError) as err:
            run(ASICS.extend(io.BytesIO(data), io.BytesIO(), Level.T, pki.context()))
        assert err.value.code in codes, (label, err.value.code, err.value.message)
    with pytest.raises(FormatError):
        run(ASICE.extend(io.BytesIO(b"garbage"), io.BytesIO(), Level.T, pki.context()))
    with pytest.raises(FormatError) as err:
        run(ASICS.data_to_sign(documents(["līgums.txt", "scan 2.png"]),
                               SignParameters(signer=pki.spec(card), signing_time=datetime.now(timezone.utc)),
                               io.BytesIO()))
    assert err.value.code == "one_document_per_signature"
