"""remotesign/asn1fix.py: serialising a signature CMS never re-encodes its parsed parts.

The finalize stall of issue 13.8: a CMS whose SignedData length is 128 bytes past a multiple of 256
(header ``... 82 xx 80``) was taken for BER indefinite length and re-encoded with force, and the
absent DEFAULT hashAlgorithm of the TSA's ESSCertIDv2 then made every level above it re-encode its
children twice: 2^17 re-encodings, 20-35 s. These tests count re-encodings (no timing): with the
fix a dump touches only the few values that were built, never the parsed time-stamp token."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from asn1crypto import cms, core, tsp

from remotesign import asn1fix
from remotesign.formats import pades
from remotesign.formats.base import SignerSpec
from remotesign.trust.timestamping import BuiltinTimeStamper
from tests.pades_pki import Pki, make_pki

#: Far more than serialising a signature CMS needs (2), far fewer than the forced re-encoding (millions).
BUDGET = 5000


class Runaway(Exception):
    pass


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    with make_pki(tmp_path_factory.mktemp("asn1fix")) as made:
        yield made


@pytest.fixture
def reencodings(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts _set_contents calls (one per value re-encoded); raises past BUDGET so the unfixed
    library fails here at once instead of after half a minute."""
    count = [0]
    for cls in (core.Sequence, core.SequenceOf, core.SetOf):
        original = cls.__dict__["_set_contents"]

        def counted(self: core.Asn1Value, force: bool = False, _original=original) -> None:  # type: ignore[no-untyped-def]
            count[0] += 1
            if count[0] > BUDGET:
                raise Runaway(f"more than {BUDGET} values re-encoded")
            _original(self, force)

        monkeypatch.setattr(cls, "_set_contents", counted)
    return count


def test_header_parser() -> None:
    assert asn1fix.definite_der_header(bytes.fromhex("30822280"))          # 8832: DER, ends in 0x80
    assert asn1fix.definite_der_header(bytes.fromhex("a08222843082227f"))  # explicit [0] + inner
    assert asn1fix.definite_der_header(bytes.fromhex("048180"))            # 128 in long form
    assert asn1fix.definite_der_header(bytes.fromhex("0405"))
    assert not asn1fix.definite_der_header(bytes.fromhex("3080"))          # indefinite
    assert not asn1fix.definite_der_header(bytes.fromhex("a08201003080"))  # explicit over indefinite
    assert not asn1fix.definite_der_header(bytes.fromhex("30820080"))      # not minimal (BER)
    assert not asn1fix.definite_der_header(bytes.fromhex("308105"))        # not minimal (BER)
    assert not asn1fix.definite_der_header(bytes.fromhex("3082"))          # truncated


def _signature_cms(pki: Pki, value_length: int) -> cms.ContentInfo:
    """What pades.embed builds: pyHanko's CMS over prepared signed attributes, a signature value
    and a signature time-stamp from the built-in TSA."""
    spec = SignerSpec(certificate=pki.issuing.dump(), chain=(pki.root.dump(),), digest_algorithm="sha256",
                      mechanism="ecdsa")

    async def build() -> cms.ContentInfo:
        prep = pades._external_signer(spec, 72)
        attrs = await prep.signed_attrs(hashlib.sha256(b"document").digest(), "sha256", use_pades=True,
                                        attr_settings=pades.signers.pdf_cms.PdfCMSSignedAttributes(
                                            signing_time=datetime.now(timezone.utc)))
        ext = pades._external_signer(spec, b"\x30" + bytes(value_length - 1))
        return await ext.async_sign_prescribed_attributes("sha256", signed_attrs=cms.CMSAttributes.load(attrs.dump()),
                                                          timestamper=BuiltinTimeStamper(pki.tsa))

    return asyncio.run(build())


def _inner_length(header: bytes) -> int:
    """Content length from the last length octets of a DER header (long form, 2 bytes)."""
    return int.from_bytes(header[-2:], "big")


def test_signed_data_length_ending_in_0x80_is_not_reencoded(pki: Pki, reencodings: list[int]) -> None:
    value_length, hit = 72, None
    for _ in range(12):  # the token's size varies by a byte or two; aim again until the length hits
        ci = _signature_cms(pki, value_length)
        reencodings[0] = 0
        der = ci.dump()
        header = ci["content"]._header
        if header[-1:] == b"\x80":
            hit = (ci, der, reencodings[0])
            break
        value_length += ((0x80 - _inner_length(header)) % 256) or 256
        if value_length > 700:
            value_length -= 256
    assert hit is not None, "no SignedData length ending in 0x80 was produced"
    ci, der, count = hit
    assert count < 20, count  # the new top-level values, not the parsed parts
    # a second dump (pyHanko's, in the old code) reuses everything
    reencodings[0] = 0
    assert ci.dump() == der and reencodings[0] < 20
    # the bytes are a well-formed CMS that survives a strict round trip, token included
    again = cms.ContentInfo.load(der, strict=True)
    token = again["content"]["signer_infos"][0]["unsigned_attrs"][0]["values"][0]
    assert token["content"]["encap_content_info"]["content"].parsed["version"].native == "v1"
    assert again.dump(force=True) == der  # already DER: nothing to normalise


def test_reading_a_default_does_not_mark_a_token_changed(pki: Pki, reencodings: list[int]) -> None:
    """ESSCertIDv2.hashAlgorithm is absent (SHA-256 is its DEFAULT); a validator reads it. The token
    must still count as unchanged, and embedding it must copy its bytes, not rebuild them."""
    req = tsp.TimeStampReq({"version": "v1", "message_imprint": {
        "hash_algorithm": {"algorithm": "sha256"}, "hashed_message": hashlib.sha256(b"x").digest()},
        "cert_req": True})
    token_der = tsp.TimeStampResp.load(pki.tsa.respond(req.dump()).der)["time_stamp_token"].dump()
    token = cms.ContentInfo.load(token_der)
    attrs = token["content"]["signer_infos"][0]["signed_attrs"]
    ess = next(a for a in attrs if a["type"].native == "signing_certificate_v2")["values"][0]["certs"][0]
    assert ess["hash_algorithm"]["algorithm"].native == "sha256"
    assert not token._is_mutated()
    reencodings[0] = 0
    holder = cms.CMSAttribute({"type": "signature_time_stamp_token", "values": [token]})
    assert token_der in holder.dump()
    assert reencodings[0] < 10, reencodings[0]


def test_installed_once() -> None:
    asn1fix.install()
    assert core.Sequence.dump.__wrapped__.__qualname__ == "Sequence.dump"  # type: ignore[attr-defined]
