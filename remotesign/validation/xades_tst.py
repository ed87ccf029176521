"""The XAdES time-stamp properties of a signature and the octets each one time-stamps, rebuilt
by the validator (EN 319 132-1 §5.2.8, §5.3, §5.5.2; TS 101 903 v1.3.2 §7.3, §7.5, §7.7):

- SignatureTimeStamp: the canonical ds:SignatureValue;
- AllDataObjectsTimeStamp / IndividualDataObjectsTimeStamp: the processed data references;
- SigAndRefsTimeStamp(V2) / RefsOnlyTimeStamp(V2): SignatureValue, earlier signature
  time-stamps and the complete-references properties;
- ArchiveTimeStamp (xadesv141, and the older xades 1.3.2 one): every reference output,
  SignedInfo, SignatureValue, KeyInfo, the unsigned signature properties before it and the
  ds:Objects other than the QualifyingProperties one.

Only the implicit mechanism is supported; a time-stamp using explicit ``Include`` /
``HashDataInfo`` inputs (other than IndividualDataObjectsTimeStamp) is reported as unsupported
rather than guessed."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from remotesign.formats.xades import constants as c
from remotesign.formats.xades.algorithms import new_hash
from remotesign.formats.xades.archive import archive_tail, reference_chunks
from remotesign.formats.xades.c14n import ALGORITHMS, Budget, element_octets, inclusive_namespaces
from remotesign.formats.xades.dom import DS, SignatureParts, StructureError, is_element, local_name, namespace, single
from remotesign.formats.xades.references import NotFound, ReferenceOutcome
from remotesign.validation.model import TimestampKind

_COMPLETE_REFS = ("CompleteCertificateRefs", "CompleteCertificateRefsV2", "CompleteRevocationRefs",
                  "AttributeCertificateRefs", "AttributeCertificateRefsV2", "AttributeRevocationRefs")
_UNSIGNED_KINDS = {
    "SignatureTimeStamp": TimestampKind.SIGNATURE,
    "SigAndRefsTimeStamp": TimestampKind.VALIDATION_DATA,
    "SigAndRefsTimeStampV2": TimestampKind.VALIDATION_DATA,
    "RefsOnlyTimeStamp": TimestampKind.VALIDATION_DATA,
    "RefsOnlyTimeStampV2": TimestampKind.VALIDATION_DATA,
    "ArchiveTimeStamp": TimestampKind.ARCHIVE,
}
_CONTENT = ("AllDataObjectsTimeStamp", "IndividualDataObjectsTimeStamp")
MAX_TOKENS = 100


@dataclass
class StampProperty:
    """One time-stamp property and its tokens (DER), with where it sits among the unsigned
    signature properties (None for content time-stamps)."""

    element: etree._Element
    name: str
    kind: TimestampKind
    algorithm: str
    prefixes: list[str] | None
    tokens: list[bytes]
    position: int | None
    problem: str | None = None


def stamp_properties(parts: SignatureParts) -> list[StampProperty]:
    """Every time-stamp property of the signature: content ones first, then the unsigned ones
    in document order."""
    out = []
    for prop in parts.data_object_properties(_CONTENT[0]) + parts.data_object_properties(_CONTENT[1]):
        out.append(_stamp(prop, TimestampKind.CONTENT, None))
    for index, prop in enumerate(parts.unsigned()):
        name = local_name(prop)
        if name in _UNSIGNED_KINDS and namespace(prop) in parts.ns():
            out.append(_stamp(prop, _UNSIGNED_KINDS[name], index))
    if sum(len(p.tokens) for p in out) > MAX_TOKENS:
        raise StructureError(f"more than {MAX_TOKENS} time-stamp tokens")
    return out


def _stamp(prop: etree._Element, kind: TimestampKind, position: int | None) -> StampProperty:
    method = single(prop, DS, "CanonicalizationMethod")
    algorithm = method.get("Algorithm", "") if method is not None else c.C14N_10
    problem = None
    if algorithm not in ALGORITHMS:
        problem = f"time-stamp canonicalization {algorithm!r} is not supported"
    tokens = []
    for enc in [e for e in prop if is_element(e) and local_name(e) == "EncapsulatedTimeStamp"]:
        try:
            tokens.append(base64.b64decode("".join((enc.text or "").split()), validate=True))
        except (binascii.Error, ValueError):
            problem = "EncapsulatedTimeStamp is not valid base64"
    if any(is_element(e) and local_name(e) == "XMLTimeStamp" for e in prop):
        problem = problem or "XML time-stamps are not supported"
    explicit = [e for e in prop if is_element(e) and local_name(e) in ("Include", "HashDataInfo")]
    if explicit and local_name(prop) != "IndividualDataObjectsTimeStamp":
        problem = problem or "time-stamps over explicitly included data are not supported"
    return StampProperty(prop, local_name(prop), kind, algorithm,
                         inclusive_namespaces(method) if method is not None else None, tokens, position, problem)


class StampInputs:
    """Rebuilds the time-stamped octets of a signature's time-stamp properties."""

    def __init__(self, parts: SignatureParts, references: list[ReferenceOutcome], budget: Budget) -> None:
        self.parts = parts
        self.references = references
        self.budget = budget

    def imprint(self, prop: StampProperty, hash_name: str) -> bytes | None:
        """Digest of the input of ``prop`` with ``hash_name``; None when data is missing."""
        hasher = new_hash(hash_name)
        try:
            for chunk in self._chunks(prop):
                hasher.update(chunk)
        except NotFound:
            return None
        return hasher.digest()

    def _c14n(self, el: etree._Element, prop: StampProperty) -> bytes:
        return element_octets(el, prop.algorithm, self.budget, prop.prefixes)

    def _chunks(self, prop: StampProperty) -> Iterator[bytes]:
        name = prop.name
        if name == "SignatureTimeStamp":
            yield self._c14n(self.parts.signature_value, prop)
        elif name in _CONTENT:
            yield from self._content(prop)
        elif name.startswith("SigAndRefsTimeStamp"):
            yield self._c14n(self.parts.signature_value, prop)
            for other in self._before(prop):
                if local_name(other) == "SignatureTimeStamp" or local_name(other) in _COMPLETE_REFS:
                    yield self._c14n(other, prop)
        elif name.startswith("RefsOnlyTimeStamp"):
            for other in self._before(prop):
                if local_name(other) in _COMPLETE_REFS:
                    yield self._c14n(other, prop)
        else:
            yield from self._archive(prop)

    def _before(self, prop: StampProperty) -> list[etree._Element]:
        return self.parts.unsigned()[:prop.position]

    def _reference_chunks(self, refs: list[ReferenceOutcome], prop: StampProperty) -> Iterator[bytes]:
        yield from reference_chunks(refs, self.budget, prop.algorithm, prop.prefixes)

    def _content(self, prop: StampProperty) -> Iterator[bytes]:
        if prop.name == "AllDataObjectsTimeStamp":
            refs = [r for r in self.references if r.kind != "signed_properties"]
        else:
            wanted = [inc.get("URI", "") for inc in prop.element if is_element(inc) and local_name(inc) == "Include"]
            by_id = {f"#{r.id}": r for r in self.references if r.id}
            if not wanted or any(w not in by_id for w in wanted):
                raise StructureError("IndividualDataObjectsTimeStamp includes an unknown reference")
            refs = [by_id[w] for w in wanted]
        yield from self._reference_chunks(refs, prop)

    def _archive(self, prop: StampProperty) -> Iterator[bytes]:
        # The same input the extender time-stamps (formats.xades.archive, EN 319 132-1 §5.5.2.2).
        yield from self._reference_chunks(self.references, prop)
        yield from archive_tail(self.parts, self._before(prop), self.budget, prop.algorithm, prop.prefixes)

