"""The long-term part of a PDF signature's level (LT, LTA, LTV), decided the way EU DSS decides it
(PAdESBaselineRequirementsChecker), so that reports name the same level for the same file.

* LT: every certificate on the paths of the signer and of every time-stamp but the last archive
  time-stamp has revocation data in what the document carries (DSS dictionary, CMS, time-stamp
  tokens), and a DSS dictionary is present.
* A document time-stamp is an *archive* time-stamp when a revision with a DSS dictionary precedes
  (or is) the revision it signs.
* LTA / LTV / PKCS7_LTA: an archive document time-stamp that covers the LT data: the revocation data
  present in the revision it signs already makes the signature LT-complete, and it also covers either
  an earlier time-stamp of the signature or the revocation data of its own time-stamping unit.
  PAdES-BASELINE-LTA additionally wants the time-stamp's SubFilter to be ETSI.RFC3161 (requirement y).
  Validation data added after the last time-stamp is LT, not LTA, data (DSS-2199).

A level only describes what a signature carries; validity is decided elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from asn1crypto import x509
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature

from remotesign.validation import cms_common as cc
from remotesign.validation.cms_level import lt_material

RFC3161_SUBFILTER = "/ETSI.RFC3161"


@dataclass
class PdfLtFacts:
    """What the LT / LTA decision of one signature needs."""

    embedded: EmbeddedPdfSignature
    signer_cert: x509.Certificate | None
    anchors: Sequence[x509.Certificate]
    dss_now: cc.Material
    dss_present: bool
    dss_revision: int | None
    #: the document time-stamps after the signature, oldest first
    covering: list[EmbeddedPdfSignature]
    #: the DSS dictionary's material as of a revision (None: no DSS then)
    dss_at: Callable[[int], cc.Material]
    _cms: cc.Material | None = field(default=None, repr=False)

    @property
    def cms(self) -> cc.Material:
        """The signature's own CMS material and that of its signature time-stamps."""
        if self._cms is None:
            self._cms = lt_material(self.embedded.signed_data, self.embedded.signer_info)
        return self._cms


def is_level_timestamp(stamp: EmbeddedPdfSignature) -> bool:
    """What DSS counts as a document time-stamp (AbstractPDFSignatureService.isDocTimestamp): SubFilter
    ETSI.RFC3161 and /Type absent or /DocTimeStamp. A /Type /Sig entry with that SubFilter is neither a
    signature nor a document time-stamp for DSS (DSS-1899), so it adds no level."""
    sig = stamp.sig_object
    kind = cc.safe(lambda: sig.get("/Type"))
    return (kind is None or str(kind) == "/DocTimeStamp") and str(sig.get("/SubFilter", "")) == RFC3161_SUBFILTER


def _tsa(stamp: EmbeddedPdfSignature, pool: Sequence[x509.Certificate]) -> x509.Certificate | None:
    return cc.safe(lambda: cc.find_signer_cert(stamp.signer_info, [*cc.sd_certificates(stamp.signed_data), *pool]))


def _stamp_material(stamps: Sequence[EmbeddedPdfSignature]) -> cc.Material:
    material = cc.Material()
    for stamp in stamps:
        part = cc.safe(lambda s=stamp: cc.signed_data_material(s.signed_data, s.signer_info))
        if part is not None:
            material.extend(part)
    return material


def is_archive(facts: PdfLtFacts, stamp: EmbeddedPdfSignature) -> bool:
    """DSS: a document time-stamp after a DSS revision is an archive (PAdES) time-stamp."""
    return facts.dss_revision is not None and stamp.signed_revision >= facts.dss_revision


def _signature_roots(facts: PdfLtFacts) -> list[x509.Certificate]:
    """The signer and the units of its CMS time-stamps (signature and content time-stamps)."""
    roots = [facts.signer_cert] if facts.signer_cert is not None else []
    roots.extend(cc.tst_signers(facts.embedded.signer_info))
    return roots


def _covered(roots: Sequence[x509.Certificate], material: cc.Material, anchors: Sequence[x509.Certificate]) -> bool:
    """Revocation data for every certificate of ``roots``' paths that needs some (none needed: True)."""
    anchor_keys = {c.sha256 for c in anchors}
    if all(cc.is_self_issued(c) or c.sha256 in anchor_keys for c in roots):
        return True
    return cc.revocation_complete(roots, material, anchors)


def pdf_lt_complete(facts: PdfLtFacts) -> bool:
    """DSS hasLTProfile: minimalLTRequirement over the signer and every time-stamp but the last
    archive one, and a DSS dictionary."""
    if facts.signer_cert is None or not facts.dss_present:
        return False
    archives = [s for s in facts.covering if is_archive(facts, s)]
    last = archives[-1] if archives else None
    material = _merged(facts.dss_now, facts.cms, _stamp_material(facts.covering))
    roots = _signature_roots(facts)
    roots.extend(t for t in (_tsa(s, material.certs) for s in facts.covering if s is not last) if t is not None)
    return cc.revocation_complete(roots, material, facts.anchors)


def covers_lt_data(facts: PdfLtFacts, stamp: EmbeddedPdfSignature) -> bool:
    """DSS coversLTLevelData: ``stamp`` is an archive time-stamp, the data of the revision it signs
    makes the signature LT-complete, and it covers an earlier time-stamp or its own TSA's
    revocation data."""
    if facts.signer_cert is None or not is_archive(facts, stamp):
        return False
    earlier = [s for s in facts.covering if s.signed_revision < stamp.signed_revision]
    material = _merged(facts.dss_at(stamp.signed_revision), facts.cms, _stamp_material([*earlier, stamp]))
    roots = _signature_roots(facts)
    roots.extend(t for t in (_tsa(s, material.certs) for s in earlier) if t is not None)
    if not cc.revocation_complete(roots, material, facts.anchors):
        return False
    if earlier or cc.timestamp_tokens(facts.embedded.signer_info, cc.SIGNATURE_TIMESTAMP, signed=False):
        return True  # it covers an earlier time-stamp of the signature
    own = _tsa(stamp, material.certs)
    return own is not None and _covered([own], material, facts.anchors)


def lta_timestamp(facts: PdfLtFacts, *, rfc3161: bool) -> bool:
    """Whether some document time-stamp covers the LT data (with the ETSI.RFC3161 SubFilter when
    ``rfc3161``: PAdES-BASELINE-LTA requirement y)."""
    return any(covers_lt_data(facts, s) for s in facts.covering
               if not rfc3161 or str(s.sig_object.get("/SubFilter", "")) == RFC3161_SUBFILTER)


def _merged(*parts: cc.Material) -> cc.Material:
    out = cc.Material()
    for part in parts:
        out.extend(part)
    return out


__all__ = ["PdfLtFacts", "covers_lt_data", "is_archive", "is_level_timestamp", "lta_timestamp", "pdf_lt_complete"]
