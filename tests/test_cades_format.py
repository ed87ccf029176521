"""CAdES through the format interface, against the running service's own TSA (HTTP, pyHanko's
HTTPTimeStamper) and OCSP responder / CRLs (fetched from the URLs in its certificates): two-step
signing with RSA and P-256 keys held by the test, detached and attached, straight to B, T, LT, LTA;
extension of signatures made here, by ``openssl cms -sign`` (DER and BER) and by pyHanko, through
T, LT, LTA and LTA renewal. Every result is checked by ``openssl cms -verify``, ``openssl ts
-verify`` on its time-stamp tokens, pyHanko's CMS validation (offline from the embedded data for
LT/LTA) and remotesign's validator at the new level."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tracemalloc
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from asn1crypto import cms, keys
from cryptography.hazmat.primitives import serialization
from pyhanko.sign import signers
from pyhanko_certvalidator.registry import SimpleCertificateStore

from remotesign.formats.base import FormatError
from remotesign.formats.cades import ats, der
from remotesign.formats.cades.format import CadesFormat
from remotesign.formats.cades.layout import SignedDataLayout
from remotesign.formats.interface import Document, Level, Packaging, SignaturePolicy, SignParameters
from remotesign.validation.cades import validate_cms_file
from remotesign.validation.model import Indication
from tests.cades_support import (ARCHIVE_TIMESTAMP_V3, SIGNATURE_TIMESTAMP, ServicePki, openssl_ts_verify,
                                 openssl_verify, pyhanko_verify, run, service_pki, unsigned_values)
from tests.harness import Service
from tests.signapi import Card

FMT = CadesFormat()
CONTENT = "Līgums Nr. 14 — CAdES test content\n".encode() * 200


@pytest.fixture(scope="module")
def pki(service: Service, tmp_path_factory: pytest.TempPathFactory) -> ServicePki:
    return service_pki(service, tmp_path_factory.mktemp("cades-pki"))


@pytest.fixture(scope="module")
def cards(pki: ServicePki) -> dict[str, Card]:
    return {"rsa": pki.card("rsa"), "p256": pki.card("p256")}


def document(data: bytes = CONTENT, name: str = "contract.txt") -> Document:
    return Document(name=name, mime_type="text/plain", open=lambda: io.BytesIO(data))


def sign(pki: ServicePki, card: Card, level: Level, packaging: Packaging = Packaging.DETACHED,
         data: bytes = CONTENT, **extra: object) -> bytes:
    """Two-step signing: the format gives the digest, the test's key signs it (DER ECDSA)."""
    params = SignParameters(signer=pki.spec(card), signing_time=datetime.now(timezone.utc), packaging=packaging,
                            **extra)  # type: ignore[arg-type]
    docs = [document(data)]
    scratch = io.BytesIO()
    prepared = run(FMT.data_to_sign(docs, params, scratch))
    out = io.BytesIO()
    run(FMT.sign_at_level(docs, params, prepared, card.sign(prepared.digest), scratch, out, level,
                          pki.context() if level > Level.B else None))
    return out.getvalue()


def extend(pki: ServicePki, signature: bytes, level: Level, content: bytes | None = CONTENT) -> bytes:
    out = io.BytesIO()
    detached = (document(content),) if content is not None else ()
    run(FMT.extend(io.BytesIO(signature), out, level, pki.context(), detached))
    return out.getvalue()


def check(pki: ServicePki, signature: bytes, level: Level, tmp: Path, *, detached: bool = True,
          content: bytes = CONTENT, signers_count: int = 1) -> None:
    """Every independent verifier, and remotesign's validator at ``level``."""
    assert FMT.recognizes(io.BytesIO(signature))
    assert FMT.signature_levels(io.BytesIO(signature)) == [level] * signers_count
    openssl_verify(pki, signature, tmp, content if detached else None)
    layout = SignedDataLayout.read(io.BytesIO(signature))
    for index, signer in enumerate(layout.signer_infos):
        stamps = unsigned_values(signature, SIGNATURE_TIMESTAMP, index)
        assert len(stamps) == (1 if level >= Level.T else 0)
        for token in stamps:  # the signature time-stamp covers the signature value
            openssl_ts_verify(pki, token, tmp, data=signer.signature_value())
        for token in unsigned_values(signature, ARCHIVE_TIMESTAMP_V3, index):
            # the TSA's signature over the ATSv3 imprint (the imprint itself: remotesign's validator below)
            info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
            openssl_ts_verify(pki, token, tmp, digest=info["message_imprint"]["hashed_message"].native)
    if signers_count == 1:
        pyhanko_verify(pki, signature, content, offline=level >= Level.LT, timestamped=level >= Level.T)
    path = tmp / f"check-{level.name}.p7s"
    path.write_bytes(signature)
    content_path = None
    if detached:
        content_path = tmp / "contract.txt"
        content_path.write_bytes(content)
    result = run(validate_cms_file(path, pki.options(level.name, content_path), filename=path.name))
    tops = [s for s in result.signatures if s.parent_id is None]
    assert len(tops) == signers_count
    for sig in tops:
        assert (sig.indication, sig.sub_indication) == (Indication.TOTAL_PASSED, None), sig.errors
        assert sig.signature_format == f"CAdES_BASELINE_{level.name}", sig.signature_format
        archive = [t for t in sig.timestamps if t.kind.name == "ARCHIVE"]
        assert all(t.valid for t in archive), [t.conclusion for t in archive]
        assert len(archive) >= (1 if level == Level.LTA else 0)


# --- signing ------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", list(Level), ids=lambda lv: lv.name)
@pytest.mark.parametrize("packaging", [Packaging.DETACHED, Packaging.ENVELOPING], ids=["detached", "attached"])
@pytest.mark.parametrize("kind", ["rsa", "p256"])
def test_sign_to_level(pki: ServicePki, cards: dict[str, Card], kind: str, packaging: Packaging, level: Level,
                       tmp_path: Path) -> None:
    signature = sign(pki, cards[kind], level, packaging)
    layout = SignedDataLayout.read(io.BytesIO(signature))
    assert layout.attached is (packaging is Packaging.ENVELOPING)
    check(pki, signature, level, tmp_path, detached=packaging is Packaging.DETACHED)


def test_signed_attributes_baseline_b(pki: ServicePki, cards: dict[str, Card], tmp_path: Path) -> None:
    """EN 319 122-1 B-B attributes, policy, content hints and claimed roles, as signed."""
    policy = SignaturePolicy("urn:oid:1.3.6.1.4.1.99999.1.2", "sha256", hashlib.sha256(b"policy").digest(),
                             uri="https://example.test/policy.pdf")
    signature = sign(pki, cards["p256"], Level.B, policy=policy, claimed_roles=("Valdes loceklis",),
                     content_hint="text/plain")
    signer_info = cms.ContentInfo.load(signature)["content"]["signer_infos"][0]
    attrs = {a["type"].dotted: a["values"] for a in signer_info["signed_attrs"]}
    assert attrs["1.2.840.113549.1.9.3"][0].native == "data"                        # content-type
    assert attrs["1.2.840.113549.1.9.4"][0].native == hashlib.sha256(CONTENT).digest()
    assert "1.2.840.113549.1.9.5" in attrs                                           # signing-time
    cert_id = attrs["1.2.840.113549.1.9.16.2.47"][0]["certs"][0]                     # signing-certificate-v2
    assert cert_id["cert_hash"].native == hashlib.sha256(cards["p256"].cert.public_bytes(
        serialization.Encoding.DER)).digest()
    assert cert_id["issuer_serial"]["serial_number"].native == cards["p256"].cert.serial_number
    assert attrs["1.2.840.113549.1.9.16.2.15"][0].chosen["sig_policy_id"].dotted == "1.3.6.1.4.1.99999.1.2"
    assert "1.2.840.113549.1.9.16.2.4" in attrs                                      # content-hints
    path = tmp_path / "b.p7s"
    path.write_bytes(signature)
    (tmp_path / "contract.txt").write_bytes(CONTENT)
    result = run(validate_cms_file(path, pki.options("B", tmp_path / "contract.txt"), filename=path.name))
    sig = result.signatures[0]
    assert sig.indication is Indication.TOTAL_PASSED, sig.errors
    assert sig.policy_id == "1.3.6.1.4.1.99999.1.2" and sig.signer_roles == ["Valdes loceklis"]
    openssl_verify(pki, signature, tmp_path, CONTENT)


# --- extension ----------------------------------------------------------------------------------

def test_extend_own_b_through_every_level_and_renew(pki: ServicePki, cards: dict[str, Card], tmp_path: Path) -> None:
    signature = sign(pki, cards["rsa"], Level.B)
    original = SignedDataLayout.read(io.BytesIO(signature)).signer_infos[0].signed_fields()
    for level in (Level.T, Level.LT, Level.LTA):
        signature = extend(pki, signature, level)
        assert SignedDataLayout.read(io.BytesIO(signature)).signer_infos[0].signed_fields() == original
        check(pki, signature, level, tmp_path)
    renewed = extend(pki, signature, Level.LTA)
    assert len(unsigned_values(renewed, ARCHIVE_TIMESTAMP_V3)) == 2
    check(pki, renewed, Level.LTA, tmp_path)
    again = extend(pki, renewed, Level.LTA)
    assert len(unsigned_values(again, ARCHIVE_TIMESTAMP_V3)) == 3
    check(pki, again, Level.LTA, tmp_path)


def test_attached_extension_and_renewal_needs_no_detached_content(pki: ServicePki, cards: dict[str, Card],
                                                                   tmp_path: Path) -> None:
    signature = sign(pki, cards["p256"], Level.T, Packaging.ENVELOPING)
    lta = extend(pki, signature, Level.LTA, content=None)
    check(pki, lta, Level.LTA, tmp_path, detached=False)
    check(pki, extend(pki, lta, Level.LTA, content=None), Level.LTA, tmp_path, detached=False)


def _pem_files(card: Card, directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "signer.pem", directory / "signer.key"
    cert.write_bytes(card.cert.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(card.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert, key


def openssl_sign(pki: ServicePki, card: Card, directory: Path, *, attached: bool = False,
                 stream: bool = False) -> bytes:
    cert, key = _pem_files(card, directory)
    (directory / "content.txt").write_bytes(CONTENT)
    args = ["openssl", "cms", "-sign", "-binary", "-cades", "-md", "sha256", "-in", str(directory / "content.txt"),
            "-signer", str(cert), "-inkey", str(key), "-certfile", str(pki.chain_pem), "-outform", "DER",
            "-out", str(directory / "openssl.p7s")]
    if attached:
        args.append("-nodetach")
    args.append("-nosmimecap")
    if stream:
        args.append("-stream")
    result = subprocess.run(args, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return (directory / "openssl.p7s").read_bytes()


@pytest.mark.parametrize("variant", ["detached-der", "attached-ber-stream"])
def test_extend_openssl_signature(pki: ServicePki, cards: dict[str, Card], variant: str, tmp_path: Path) -> None:
    """``openssl cms -sign -cades``: detached DER, and attached BER (indefinite lengths, -stream)."""
    attached = variant.startswith("attached")
    signature = openssl_sign(pki, cards["p256"], tmp_path, attached=attached, stream=attached)
    if attached:
        assert signature[1] == 0x80, "openssl -stream writes BER indefinite lengths"
    assert FMT.signature_levels(io.BytesIO(signature)) == [Level.B]
    content = None if attached else CONTENT
    for level in (Level.T, Level.LT, Level.LTA):
        signature = extend(pki, signature, level, content)
        check(pki, signature, level, tmp_path, detached=not attached)
    check(pki, extend(pki, signature, Level.LTA, content), Level.LTA, tmp_path, detached=not attached)


def test_extend_pyhanko_signature(pki: ServicePki, cards: dict[str, Card], tmp_path: Path) -> None:
    """pyHanko's sign_general_data (detached, CAdES attributes)."""
    card = cards["rsa"]
    key = keys.PrivateKeyInfo.load(card.key.private_bytes(serialization.Encoding.DER,
                                                          serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    from asn1crypto import x509

    signer = signers.SimpleSigner(signing_cert=x509.Certificate.load(card.cert.public_bytes(serialization.Encoding.DER)),
                                  signing_key=key, cert_registry=SimpleCertificateStore.from_certs([pki.issuing,
                                                                                                    pki.root]))
    signed = run(signer.async_sign_general_data(CONTENT, "sha256", detached=True, use_cades=True))
    signature = signed.dump()
    for level in (Level.T, Level.LT, Level.LTA, Level.LTA):
        signature = extend(pki, signature, level)
        check(pki, signature, level, tmp_path)


def test_every_signer_is_extended(pki: ServicePki, cards: dict[str, Card], tmp_path: Path) -> None:
    """Two SignerInfos (openssl cms -resign adds the second): both get T, LT data and an ATSv3."""
    signature = openssl_sign(pki, cards["p256"], tmp_path)
    (tmp_path / "one.p7s").write_bytes(signature)
    cert, key = _pem_files(cards["rsa"], tmp_path)
    result = subprocess.run(["openssl", "cms", "-resign", "-binary", "-cades", "-inform", "DER", "-outform", "DER",
                             "-in", str(tmp_path / "one.p7s"), "-content", str(tmp_path / "content.txt"),
                             "-signer", str(cert), "-inkey", str(key), "-md", "sha256", "-nosmimecap",
                             "-out", str(tmp_path / "two.p7s")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    signature = (tmp_path / "two.p7s").read_bytes()
    assert FMT.signature_levels(io.BytesIO(signature)) == [Level.B, Level.B]
    lta = extend(pki, signature, Level.LTA)
    check(pki, lta, Level.LTA, tmp_path, signers_count=2)


def test_t_and_lt_do_not_repeat(pki: ServicePki, cards: dict[str, Card]) -> None:
    t = sign(pki, cards["p256"], Level.T)
    assert extend(pki, t, Level.T) == t
    lt = extend(pki, t, Level.LT)
    assert extend(pki, lt, Level.LT) == lt
    assert extend(pki, lt, Level.T) == lt


def test_lta_of_detached_needs_its_content(pki: ServicePki, cards: dict[str, Card]) -> None:
    signature = sign(pki, cards["p256"], Level.B)
    with pytest.raises(FormatError) as missing:
        extend(pki, signature, Level.LTA, content=None)
    assert missing.value.code == "detached_content_required"
    with pytest.raises(FormatError) as wrong:
        extend(pki, signature, Level.LTA, content=b"another document")
    assert wrong.value.code == "detached_content_mismatch"
    assert extend(pki, signature, Level.LT, content=None)  # T and LT need no content


def test_archive_timestamp_hash_index_covers_everything(pki: ServicePki, cards: dict[str, Card]) -> None:
    """The ATSHashIndexV3 lists every certificate, revocation entry and unsigned attribute value
    present when it was made (EN 319 122-1 §5.5.2), and the TSA stamped exactly its imprint."""
    lt = extend(pki, sign(pki, cards["rsa"], Level.T), Level.LT)
    lta = extend(pki, lt, Level.LTA)
    before = SignedDataLayout.read(io.BytesIO(lt))
    token = unsigned_values(lta, ARCHIVE_TIMESTAMP_V3)[0]
    token_layout = SignedDataLayout.read(io.BytesIO(token))
    index_values = [der.children_of(der.children_of(a)[1])[0] for a in token_layout.signer_infos[0].unsigned_attrs]
    index = ats.HashIndex.parse(index_values[0])
    after = SignedDataLayout.read(io.BytesIO(lta))
    # LTA first adds the new TSA's validation data (OCSP responses, new unless the responder
    # answers with the same bytes), then stamps everything
    assert len(before.certificates) <= len(index.certificates) == len(after.certificates)
    assert len(before.crls) <= len(index.crls) == len(after.crls)
    assert len(index.unsigned_attr_values) == 1  # the signature time-stamp
    assert index.missing(after.certificates, after.crls, after.signer_infos[0].unsigned_attrs) == []
    expected = hashlib.sha256(ats.imprint_input(before.econtent_type, hashlib.sha256(CONTENT).digest(),
                                                before.signer_infos[0].signed_fields(), index.encoded)).digest()
    info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    assert info["message_imprint"]["hashed_message"].native == expected


# --- hostile and large input --------------------------------------------------------------------

def _garbage(pki: ServicePki, cards: dict[str, Card]) -> list[bytes]:
    good = sign(pki, cards["p256"], Level.T)
    cuts = [good[:n] for n in (1, 2, 5, 20, 60, len(good) // 2, len(good) - 1)]
    flipped = bytearray(good)
    flipped[4] ^= 0xFF
    deep = b"\x30\x80" * 200
    huge_length = b"\x30\x84\x7f\xff\xff\xff" + bytes.fromhex("06092a864886f70d010702")
    return [b"", b"\x00", b"%PDF-1.7\n", b"PK\x03\x04junk", deep, huge_length, bytes(flipped),
            bytes.fromhex("3080") + bytes.fromhex("06092a864886f70d010702") + b"\xa0\x80", *cuts]


def test_garbage_truncated_and_ber_edge_cases_are_format_errors(pki: ServicePki, cards: dict[str, Card]) -> None:
    ctx = pki.context()
    for data in _garbage(pki, cards):
        FMT.recognizes(io.BytesIO(data))  # must not raise
        assert FMT.signature_levels(io.BytesIO(data)) == []
        for level in (Level.T, Level.LTA):
            with pytest.raises(FormatError) as err:
                run(FMT.extend(io.BytesIO(data), io.BytesIO(), level, ctx, (document(),)))
            assert err.value.code in {"invalid_cms", "signature_too_large", "not_signed"}, (data[:20], err.value)
    assert not FMT.recognizes(io.BytesIO(b"%PDF-1.7\n"))


def test_large_attached_content_is_streamed(pki: ServicePki, cards: dict[str, Card], tmp_path: Path) -> None:
    """24 MiB signed attached and extended to LTA: Python allocations stay far below the content size
    (bench/cades_extend.py measures RSS at 100 MB)."""
    path = tmp_path / "big.bin"
    with open(path, "wb") as fh:
        for i in range(24):
            fh.write(hashlib.sha256(bytes([i])).digest() * (1 << 15))
    big = Document(name="big.bin", mime_type="application/octet-stream", open=lambda: open(path, "rb"))
    card = cards["p256"]
    params = SignParameters(signer=pki.spec(card), signing_time=datetime.now(timezone.utc),
                            packaging=Packaging.ENVELOPING)
    tracemalloc.start()
    try:
        prepared = run(FMT.data_to_sign([big], params, io.BytesIO()))
        with open(tmp_path / "big.p7m", "w+b") as out:
            run(FMT.sign([big], params, prepared, card.sign(prepared.digest), io.BytesIO(), out))
        with open(tmp_path / "big.p7m", "rb") as src, open(tmp_path / "big-lta.p7m", "w+b") as out:
            run(FMT.extend(src, out, Level.LTA, pki.context()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak Python allocation {peak} bytes"
    with open(tmp_path / "big-lta.p7m", "rb") as fh:
        assert FMT.signature_levels(fh) == [Level.LTA]
    verify = subprocess.run(["openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in",
                             str(tmp_path / "big-lta.p7m"), "-CAfile", str(pki.root_pem), "-purpose", "any",
                             "-out", str(tmp_path / "big.out")], capture_output=True, text=True, timeout=300)
    assert "Verification successful" in verify.stderr, verify.stderr
    assert (tmp_path / "big.out").stat().st_size == path.stat().st_size



@pytest.fixture(scope="module")
def b_signature(pki: ServicePki, cards: dict[str, Card]) -> bytes:
    return openssl_sign(pki, cards["p256"], pki.dir, attached=True, stream=True)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_signatures_never_crash_extension(pki: ServicePki, b_signature: bytes, data: st.DataObject) -> None:
    """Bytes flipped, cut or inserted anywhere in a BER signature: extension either works or says
    why (FormatError; PathError when a certificate no longer chains), never another exception."""
    from pyhanko.sign.timestamps import TimestampRequestError

    from remotesign.trust.revocation import PathError

    mutated = bytearray(b_signature)
    for _ in range(data.draw(st.integers(1, 4))):
        where = data.draw(st.integers(0, len(mutated) - 1))
        action = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        if action == "flip":
            mutated[where] ^= data.draw(st.integers(1, 255))
        elif action == "cut":
            del mutated[where:where + data.draw(st.integers(1, 64))]
        else:
            mutated[where:where] = data.draw(st.binary(min_size=1, max_size=8))
    FMT.recognizes(io.BytesIO(bytes(mutated)))
    FMT.signature_levels(io.BytesIO(bytes(mutated)))
    try:
        run(FMT.extend(io.BytesIO(bytes(mutated)), io.BytesIO(), data.draw(st.sampled_from([Level.T, Level.LT])),
                       pki.context()))
    except (FormatError, PathError, TimestampRequestError):
        pass


def test_validator_rejects_stale_or_copied_archive_timestamps(pki: ServicePki, cards: dict[str, Card],
                                                              tmp_path: Path) -> None:
    """remotesign's validator recomputes the ATSv3 imprint: an archive time-stamp whose covered
    revocation data was removed, or one copied from another signature, is not valid."""
    lta = extend(pki, sign(pki, cards["p256"], Level.LT), Level.LTA)
    stale = SignedDataLayout.read(io.BytesIO(lta))
    stale.crls.pop()
    other = SignedDataLayout.read(io.BytesIO(extend(pki, sign(pki, cards["rsa"], Level.LT), Level.LTA)))
    copied = SignedDataLayout.read(io.BytesIO(lta))
    copied.signer_infos[0].unsigned_attrs[-1] = other.signer_infos[0].unsigned_attrs[-1]
    (tmp_path / "contract.txt").write_bytes(CONTENT)
    for label, layout, message in (("stale", stale, "revocation data it covers is missing"),
                                   ("copied", copied, "does not cover this data")):
        out = io.BytesIO()
        layout.write(out)
        path = tmp_path / f"{label}.p7s"
        path.write_bytes(out.getvalue())
        result = run(validate_cms_file(path, pki.options("LTA", tmp_path / "contract.txt"), filename=path.name))
        archive = [t for t in result.signatures[0].timestamps if t.kind.name == "ARCHIVE"]
        assert len(archive) == 1 and not archive[0].valid, label
        assert archive[0].conclusion.sub_indication.name == "HASH_FAILURE", (label, archive[0].conclusion)
        assert any(message in m for m in archive[0].conclusion.messages), (label, archive[0].conclusion.messages)
