"""The CAdES level of a SignerInfo, decided the way EU DSS decides it (CAdESSignature's ladder over
EN 319 122-1 baseline and EN 319 122-2 extended requirements), so that reports name the same level
for the same file.

The level only describes what a signature carries; it never makes a signature valid. Whether the
time-stamps and validation data it names are themselves valid is the business of validation.

DSS's ladder, in short:

* not extended-BES -> CMS_NOT_ETSI; no signature time-stamp -> BASELINE_B / EPES / BES;
* baseline-B and baseline-T and LT (every certificate on the signer's and the time-stamps' paths
  has embedded revocation data, and no CAdES-C/X/XL attribute is present) -> BASELINE_LTA with an
  archive-time-stamp-v3, else BASELINE_LT;
* complete references present (CAdES-C): XL data and an archive time-stamp of any version -> A;
  XL data and an ES-C time-stamp -> XL; an ES-C time-stamp -> X; else C;
* XL data without references: an archive time-stamp -> A, else CAdES_LT;
* otherwise BASELINE_T or T.

"LT" data is judged over the certificates of the signer and of every time-stamp except the last
archive time-stamp (DSS: getAllTimestampsExceptLastArchiveTimestamp), with the revocation data
the signature and its time-stamp tokens carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from asn1crypto import cms, x509

from remotesign.validation import cms_common as cc

#: every unsigned or signed attribute holding a time-stamp token, with where it lives
_TIMESTAMP_ATTRIBUTES: tuple[tuple[str, bool], ...] = (
    (cc.CONTENT_TIMESTAMP, True), (cc.SIGNATURE_TIMESTAMP, False), (cc.ESC_TIMESTAMP, False),
    (cc.CERT_CRL_TIMESTAMP, False), (cc.ARCHIVE_TIMESTAMP_V1, False), (cc.ARCHIVE_TIMESTAMP_V2, False),
    (cc.ARCHIVE_TIMESTAMP_V3, False),
)
_MAX_TOKENS = 64


@dataclass
class _Token:
    oid: str
    token: cms.SignedData
    tsa: x509.Certificate | None
    gen_time: object


def _tokens(signer_info: cms.SignerInfo, pool: Sequence[x509.Certificate]) -> list[_Token]:
    out: list[_Token] = []
    for oid, signed in _TIMESTAMP_ATTRIBUTES:
        for token in cc.timestamp_tokens(signer_info, oid, signed=signed):
            if len(out) >= _MAX_TOKENS:
                return out
            certs = (cc.safe(lambda t=token: cc.signed_data_material(t, t["signer_infos"][0]).certs) or [])
            tsa = cc.safe(lambda t=token, c=certs: cc.find_signer_cert(t["signer_infos"][0], [*c, *pool]))
            out.append(_Token(oid, token, tsa, cc.safe(lambda t=token: cc.tst_info(t)["gen_time"].native)))
    return out


def _last_archive(tokens: list[_Token]) -> _Token | None:
    archives = [t for t in tokens if t.oid in cc.ARCHIVE_TIMESTAMPS and t.gen_time is not None]
    return max(archives, key=lambda t: t.gen_time) if archives else None  # type: ignore[no-any-return]


def lt_material(signed_data: cms.SignedData, signer_info: cms.SignerInfo) -> cc.Material:
    """What the signature carries for LT: its own validation data and every time-stamp token's
    (certificates, CRLs, OCSP responses, and their own certificate-/revocation-values)."""
    material = cc.signed_data_material(signed_data, signer_info)
    for item in _tokens(signer_info, material.certs):
        token_material = cc.safe(lambda t=item.token: cc.signed_data_material(t, t["signer_infos"][0]))
        if token_material is not None:
            material.extend(token_material)
    return material


def lt_roots(signer_info: cms.SignerInfo, signer_cert: x509.Certificate | None,
             pool: Sequence[x509.Certificate]) -> list[x509.Certificate]:
    """The signer and the units of every time-stamp but the last archive time-stamp: the
    certificates whose paths need revocation data for LT / XL."""
    tokens = _tokens(signer_info, pool)
    last = _last_archive(tokens)
    roots = [signer_cert] if signer_cert is not None else []
    roots.extend(t.tsa for t in tokens if t is not last and t.tsa is not None)
    return roots


def cades_lt_complete(signed_data: cms.SignedData, signer_info: cms.SignerInfo,
                      signer_cert: x509.Certificate | None, anchors: Sequence[x509.Certificate],
                      extra: cc.Material | None = None) -> bool:
    """DSS's minimalLTRequirement for a CMS signer: revocation data for every certificate on the
    paths of :func:`lt_roots`, from what the signature (plus ``extra``, e.g. a PDF's DSS) carries."""
    if signer_cert is None:
        return False
    material = lt_material(signed_data, signer_info)
    if extra is not None:
        material.extend(extra)
    return cc.revocation_complete(lt_roots(signer_info, signer_cert, material.certs), material, anchors)


def timestamps_before_expiry(signer_info: cms.SignerInfo, signer_cert: x509.Certificate | None) -> bool:
    """EN 319 122-1 baseline-T (m) / 319 122-2 T (f): every signature time-stamp was made before the
    signing certificate expired."""
    if signer_cert is None:
        return True
    not_after = cc.safe(lambda: signer_cert["tbs_certificate"]["validity"]["not_after"].native)
    if not_after is None:
        return True
    for token in cc.timestamp_tokens(signer_info, cc.SIGNATURE_TIMESTAMP, signed=False):
        gen_time = cc.safe(lambda t=token: cc.tst_info(t)["gen_time"].native)
        if gen_time is not None and gen_time >= not_after:
            return False
    return True


def c_form(signed_data: cms.SignedData, signer_info: cms.SignerInfo) -> bool:
    """EN 319 122-2 CAdES-C: one complete-certificate-references and one complete-revocation-
    references (which may be absent only when every certificate is self-signed)."""
    refs = cc.attribute_count(signer_info, cc.CERTIFICATE_REFS, signed=False)
    revocation_refs = cc.attribute_count(signer_info, cc.REVOCATION_REFS, signed=False)
    if refs != 1 or revocation_refs > 1:
        return False
    if revocation_refs == 1:
        return True
    certs = cc.sd_certificates(signed_data) + cc.timestamp_certificates(signer_info)
    return bool(certs) and all(cc.is_self_issued(c) for c in certs)


@dataclass(frozen=True)
class CadesForms:
    """The DSS profile checks one level name is built from."""

    profile: cc.CmsProfile
    lt_complete: bool                # XL / LT data (DSS minimalLTRequirement)
    t_before_expiry: bool = True     # signature time-stamps before the signing certificate expired
    c_form: bool = False             # CAdES-C references


def cades_level(forms: CadesForms) -> str:
    """The DSS level name (CAdES_BASELINE_B/T/LT/LTA, CAdES_BES/EPES/T/LT/C/X/XL/A, CMS_NOT_ETSI)."""
    profile = forms.profile
    if not profile.extended_bes:
        return "CMS_NOT_ETSI"
    baseline = profile.baseline_b_core and profile.signing_time_present
    if not (profile.signature_timestamp and forms.t_before_expiry):
        if baseline:
            return "CAdES_BASELINE_B"
        return "CAdES_EPES" if profile.policy else "CAdES_BES"
    if baseline and forms.lt_complete and not profile.lt_forbidden_attrs:
        return "CAdES_BASELINE_LTA" if profile.archive_v3 else "CAdES_BASELINE_LT"
    if forms.c_form:
        if forms.lt_complete and profile.archive_any:
            return "CAdES_A"
        if forms.lt_complete and profile.x_timestamps:
            return "CAdES_XL"
        return "CAdES_X" if profile.x_timestamps else "CAdES_C"
    if forms.lt_complete:
        return "CAdES_A" if profile.archive_any else "CAdES_LT"
    return "CAdES_BASELINE_T" if baseline else "CAdES_T"


__all__ = ["CadesForms", "c_form", "cades_level", "cades_lt_complete", "lt_material", "lt_roots",
           "timestamps_before_expiry"]
