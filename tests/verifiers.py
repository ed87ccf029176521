"""Independent verifiers the tests trust more than the service: pyHanko's validators, poppler's
pdfsig, xmlsec1 and openssl."""

from __future__ import annotations

import asyncio
import hashlib
import io
import re
from pathlib import Path

from asn1crypto import cms, pem, tsp, x509
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.ades import ades_lta_validation, ades_with_time_validation
from pyhanko.sign.validation.policy_decl import (
    PdfSignatureValidationSpec,
    RevinfoOnlineFetchingRule,
    RevocationInfoGatheringSpec,
    SignatureValidationSpec,
)
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.context import CertValidationPolicySpec
from pyhanko_certvalidator.policy_decl import REQUIRE_REVINFO, CertRevTrustPolicy
from pyhanko_certvalidator.registry import SimpleTrustManager

from tests.signapi import run


def root_of(ca_pem: bytes) -> x509.Certificate:
    """The self-signed certificate of a PEM bundle such as /pki/ca.pem."""
    certs = [x509.Certificate.load(der) for _, _, der in pem.unarmor(ca_pem, multiple=True)]
    return next(c for c in certs if c.self_signed in ("maybe", "yes"))


def _spec(root: x509.Certificate) -> PdfSignatureValidationSpec:
    return PdfSignatureValidationSpec(SignatureValidationSpec(
        cert_validation_policy=CertValidationPolicySpec(trust_manager=SimpleTrustManager.build([root]),
                                                        revinfo_policy=CertRevTrustPolicy(REQUIRE_REVINFO)),
        revinfo_gathering_policy=RevocationInfoGatheringSpec(online_fetching_rule=RevinfoOnlineFetchingRule.LOCAL_ONLY)))


def pyhanko_pdf(pdf: bytes, root: x509.Certificate) -> dict[str, object]:
    """Classic and AdES verdicts of pyHanko, offline (revocation data must come from the file)."""
    reader = PdfFileReader(io.BytesIO(pdf))
    sig = reader.embedded_regular_signatures[0]
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=[root], allow_fetching=False))
    lta = asyncio.run(ades_lta_validation(sig, _spec(root)))
    return {"summary": status.summary(), "bottom_line": status.bottom_line, "intact": status.intact,
            "trusted": status.trusted, "timestamped": status.timestamp_validity is not None
            and status.timestamp_validity.trusted, "has_dss": reader.root.get("/DSS") is not None,
            "doc_timestamps": len(reader.embedded_timestamp_signatures),
            "lta": f"{lta.ades_subindic.status.name}/{lta.ades_subindic.name}",
            "signatures": len(reader.embedded_regular_signatures), "signature": sig}


def pyhanko_pdf_with_time(pdf: bytes, root: x509.Certificate) -> str:
    """ades_with_time_validation fed with the DSS, as the notes recommend for B-LT."""
    from pyhanko.sign.validation.ades import _dss_to_local_knowledge  # type: ignore[attr-defined]
    from dataclasses import replace

    reader = PdfFileReader(io.BytesIO(pdf))
    sig = reader.embedded_regular_signatures[0]
    spec = _spec(root).signature_validation_spec
    knowledge = _dss_to_local_knowledge(reader)
    spec = replace(spec, local_knowledge=knowledge)
    res = asyncio.run(ades_with_time_validation(sig.signed_data, spec, raw_digest=sig.compute_digest()))
    return f"{res.ades_subindic.status.name}/{res.ades_subindic.name}"


def pdfsig(path: Path) -> str:
    return run("pdfsig", path, check=False).stdout


def openssl_ts_verify(tmp: Path, token_der: bytes, data: bytes, ca_pem: bytes) -> str:
    """``openssl ts -verify`` of a TimeStampToken over ``data``; returns openssl's output."""
    tok, dat, ca = tmp / "tst.der", tmp / "tst.data", tmp / "tst-ca.pem"
    tok.write_bytes(token_der)
    dat.write_bytes(data)
    ca.write_bytes(ca_pem)
    out = run("openssl", "ts", "-verify", "-in", tok, "-token_in", "-data", dat, "-CAfile", ca, check=False)
    return out.stdout + out.stderr


def signature_timestamp_of_cms(signed_data: cms.SignedData) -> tuple[bytes, bytes]:
    """(TimeStampToken DER, the signature value it covers) of the first SignerInfo."""
    si = signed_data["signer_infos"][0]
    for attr in si["unsigned_attrs"]:
        if attr["type"].native == "signature_time_stamp_token":
            return attr["values"][0].dump(), si["signature"].native
    raise AssertionError("no signature time-stamp")


def tst_imprint(token_der: bytes) -> tuple[str, bytes]:
    info = cms.ContentInfo.load(token_der)["content"]["encap_content_info"]["content"].parsed
    assert isinstance(info, tsp.TSTInfo)
    imprint = info["message_imprint"]
    return imprint["hash_algorithm"]["algorithm"].native, imprint["hashed_message"].native


def xmlsec_verify(tmp: Path, signature_xml: bytes, files: dict[str, bytes], ca_pem: bytes | None) -> tuple[bool, str]:
    """xmlsec1 over one signature file with the container's files mapped by URI: (all references
    verified, output). ``ca_pem`` None checks the signature value and every reference with the
    KeyInfo key but not its certificate (``--insecure``: test PKIs of other suites have long expired)."""
    from asn1crypto import pem as apem

    sig = tmp / "sig.xml"
    sig.write_bytes(signature_xml)
    # xmlsec1 reads only the first certificate of a --trusted-pem file: root trusted, others untrusted.
    trust: list[str | Path] = [] if ca_pem is not None else ["--insecure"]
    for i, (_, _, der) in enumerate(apem.unarmor(ca_pem, multiple=True) if ca_pem else ()):
        cert = x509.Certificate.load(der)
        path = tmp / f"xmlsec-ca{i}.pem"
        path.write_bytes(apem.armor("CERTIFICATE", der))
        trust += ["--trusted-pem" if cert.self_signed in ("maybe", "yes") else "--untrusted-pem", path]
    args: list[str | Path] = ["xmlsec1", "--verify", *trust,
                              "--id-attr:Id", "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
                              "--print-debug"]
    for i, (name, content) in enumerate(files.items()):
        path = tmp / f"obj{i}.bin"
        path.write_bytes(content)
        args += [f"--url-map:{name}", path]  # xmlsec1 looks the decoded URI up
    args.append(sig)
    proc = run(*args, check=False)
    out = proc.stdout + proc.stderr
    m = re.search(r"References \(ok/all\): (\d+)/(\d+)", out)
    ok = proc.returncode == 0 and "OK" in out and bool(m) and m.group(1) == m.group(2)  # type: ignore[union-attr]
    return ok, out


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
