"""The TSA and the OCSP responder assemble their answers from pre-encoded DER parts. Each is
compared here, byte for byte, with asn1crypto's own encoding of the same values, for edge cases
of every variable field (nonce sign and size, millisecond trailing zeros, lengths crossing the
short/long boundary, revoked with and without a reason)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from asn1crypto import algos, cms, core, ocsp, tsp, x509

from remotesign import der
from remotesign.trust.ocsp import OcspResponder
from remotesign.trust.signing import sign_der
from remotesign.trust.tsa import TimeStampAuthority
from tests.inprocess_pki import build_ca


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    db, keystore, ca = build_ca(Path(tmp_path_factory.mktemp("pki")))
    return db, keystore, ca


@pytest.mark.parametrize("value", [0, 1, 127, 128, 255, 256, -1, -128, -129, 2**64, -(2**64), 2**159 - 1])
def test_integer_matches_asn1crypto(value: int) -> None:
    assert der.integer(value) == core.Integer(value).dump()


@pytest.mark.parametrize("n", [0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 24])
def test_length_matches_asn1crypto(n: int) -> None:
    assert der.tlv(der.OCTET_STRING, b"\x00" * n) == core.OctetString(b"\x00" * n).dump()


@pytest.mark.parametrize("micro", [0, 1000, 100_000, 120_000, 123_000, 999_000])
def test_generalized_time_drops_trailing_zeros(micro: int) -> None:
    when = datetime(2026, 12, 5, 13, 4, 5, micro, tzinfo=timezone.utc)
    expected = core.GeneralizedTime(when).dump()
    assert der.generalized_time(when) == expected


def _reference_token(tsa: TimeStampAuthority, ca, keystore, query: tsp.TimeStampReq,  # type: ignore[no-untyped-def]
                     serial: int, gen_time: datetime) -> bytes:
    """The token as asn1crypto encodes it (how the TSA built it before the template)."""
    cert, key = ca.tsa_signer()
    c = cert.asn1()
    info: dict = {"version": "v1", "policy": tsa.policy, "message_imprint": query["message_imprint"],
                  "serial_number": serial, "gen_time": gen_time,
                  "tsa": x509.GeneralName(name="directory_name", value=c.subject),
                  "accuracy": {"millis": 500}}
    if query["nonce"].native is not None:
        info["nonce"] = query["nonce"]
    tst_info = tsp.TSTInfo(info)
    tst_der = tst_info.dump()
    signed_attrs = cms.CMSAttributes([
        cms.CMSAttribute({"type": "content_type", "values": ["tst_info"]}),
        cms.CMSAttribute({"type": "signing_time",
                          "values": [cms.Time(name="utc_time", value=gen_time.replace(microsecond=0))]}),
        cms.CMSAttribute({"type": "message_digest", "values": [hashlib.sha256(tst_der).digest()]}),
        cms.CMSAttribute({"type": "signing_certificate_v2", "values": [tsp.SigningCertificateV2({"certs": [{
            "cert_hash": hashlib.sha256(cert.der).digest(),
            "issuer_serial": {"issuer": [x509.GeneralName(name="directory_name", value=c.issuer)],
                              "serial_number": c.serial_number}}]})]}),
    ])
    signed_attrs_der = signed_attrs.dump()
    sig = sign_der(keystore, key, signed_attrs_der, "sha256")
    digest_alg = algos.DigestAlgorithm({"algorithm": "sha256"})
    signed_data: dict = {
        "version": "v3", "digest_algorithms": [digest_alg],
        "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(tst_der)},
        "signer_infos": [{
            "version": "v1",
            "sid": cms.SignerIdentifier(name="issuer_and_serial_number",
                                        value={"issuer": c.issuer, "serial_number": c.serial_number}),
            "digest_algorithm": digest_alg, "signed_attrs": signed_attrs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa",
                                                                "parameters": core.Null()}),
            "signature": sig,
        }],
    }
    if query["cert_req"].native:
        signed_data["certificates"] = [c, *[x.asn1() for x in ca.chain()]]
    token = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})
    return tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()


@pytest.mark.parametrize("nonce,cert_req,hash_name,micro", [
    (None, False, "sha256", 0), (1, True, "sha256", 120_000), (-5, True, "sha512", 999_000),
    (2**200 + 7, False, "sha1", 1000), (128, True, "sha384", 500_000),
])
def test_tsa_token_equals_asn1crypto_encoding(pki, nonce: int | None, cert_req: bool, hash_name: str,  # type: ignore[no-untyped-def]
                                              micro: int) -> None:
    db, keystore, ca = pki
    tsa = TimeStampAuthority(db, ca, keystore, "1.3.6.1.4.1.99999.1.1", accuracy_ms=500)
    req: dict = {"version": 1, "cert_req": cert_req, "message_imprint": {
        "hash_algorithm": {"algorithm": hash_name}, "hashed_message": hashlib.new(hash_name, b"x").digest()}}
    if nonce is not None:
        req["nonce"] = nonce
    query = tsp.TimeStampReq.load(tsp.TimeStampReq(req).dump())
    gen_time = datetime(2026, 12, 5, 12, 0, 1, micro, tzinfo=timezone.utc)
    serial = (gen_time.microsecond << 40) | 0xABCDEF
    t = tsa._template
    tst = t.tst_info(query["message_imprint"].dump(), serial, gen_time, query["nonce"].native)
    attrs = t.signed_attributes(tst, gen_time)
    ours = t.response(tst, attrs, sign_der(keystore, tsa._key, attrs, "sha256"), cert_req)
    assert ours == _reference_token(tsa, ca, keystore, query, serial, gen_time)
    parsed = tsp.TimeStampResp.load(ours, strict=True)
    assert parsed["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed["nonce"].native == nonce


def _reference_ocsp(responder: OcspResponder, keystore, request: ocsp.OCSPRequest,  # type: ignore[no-untyped-def]
                    statuses: list[ocsp.CertStatus], now: datetime) -> bytes:
    cert, key = responder.ca.ocsp_signer()
    tbs = request["tbs_request"]
    data: dict = {
        "version": "v1",
        "responder_id": ocsp.ResponderId(name="by_key", value=hashlib.sha1(
            cert.asn1().public_key["public_key"].contents[1:]).digest()),
        "produced_at": now,
        "responses": [{"cert_id": r["req_cert"], "cert_status": st, "this_update": now,
                       "next_update": now + responder.validity}
                      for r, st in zip(tbs["request_list"], statuses)],
    }
    for ext in tbs["request_extensions"] or ():
        if ext["extn_id"].native == "nonce":
            data["response_extensions"] = [{"extn_id": "nonce", "critical": False,
                                            "extn_value": core.ParsableOctetString(bytes(ext["extn_value"]))}]
    rd = ocsp.ResponseData(data)
    sig = sign_der(keystore, key, rd.dump())
    basic = ocsp.BasicOCSPResponse({
        "tbs_response_data": rd,
        "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_rsa", "parameters": core.Null()}),
        "signature": sig, "certs": [cert.asn1()]})
    return ocsp.OCSPResponse({"response_status": "successful", "response_bytes": {
        "response_type": "basic_ocsp_response", "response": basic}}).dump()


@pytest.mark.parametrize("with_nonce,count", [(True, 1), (False, 1), (True, 3), (False, 40)])
def test_ocsp_response_equals_asn1crypto_encoding(pki, with_nonce: bool, count: int) -> None:  # type: ignore[no-untyped-def]
    _db, keystore, ca = pki
    responder = OcspResponder(ca, keystore)
    issuer = ca.issuing.asn1()
    cert_ids = [ocsp.CertId({
        "hash_algorithm": {"algorithm": "sha1"},
        "issuer_name_hash": hashlib.sha1(issuer.subject.dump()).digest(),
        "issuer_key_hash": hashlib.sha1(issuer.public_key["public_key"].contents[1:]).digest(),
        "serial_number": 1000 + i}) for i in range(count)]
    tbs: dict = {"request_list": [{"req_cert": c} for c in cert_ids]}
    if with_nonce:
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": core.OctetString(b"n" * 16)}]
    request = ocsp.OCSPRequest.load(ocsp.OCSPRequest({"tbs_request": tbs}).dump())
    now = datetime(2026, 12, 5, 12, 0, 1, tzinfo=timezone.utc)
    revoked_at = now - timedelta(days=1)
    statuses = [ocsp.CertStatus(name="good", value=None),
                ocsp.CertStatus(name="unknown", value=None),
                ocsp.CertStatus(name="revoked", value={"revocation_time": revoked_at}),
                ocsp.CertStatus(name="revoked", value={"revocation_time": revoked_at,
                                                       "revocation_reason": "key_compromise"})]
    chosen = [statuses[i % 4] for i in range(count)]
    encoded = [responder._template.cert_status(s.name, s.chosen["revocation_time"].native
                                               if s.name == "revoked" else None,
                                               s.chosen["revocation_reason"].native
                                               if s.name == "revoked" and s.chosen["revocation_reason"].native
                                               else None)
               for s in chosen]
    ours = responder._template.response(request, encoded, now, now + responder.validity,
                                        lambda tbs_der: sign_der(keystore, responder._key, tbs_der))
    assert ours == _reference_ocsp(responder, keystore, request, chosen, now)
    ocsp.OCSPResponse.load(ours, strict=True).native  # noqa: B018 - parses completely
