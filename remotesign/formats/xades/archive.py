"""B-LTA: xadesv141:ArchiveTimeStamp, computed as EN 319 132-1 §5.5.2.2 (not distributed case)
prescribes. The message imprint input is the concatenation of

1. the output of every ds:Reference of SignedInfo, in order, processed per XMLDSig §4.4.3.2 by
   the one reference processor (:mod:`~remotesign.formats.xades.references`): detached files
   are their octets, streamed; ``URI=""`` with the enveloped-signature transform, ``#id``,
   ``#xpointer(...)``, the C14N family, base64 and the XPath forms the validator accepts are
   processed exactly as the validator processes them; an output that is still a node-set is
   canonicalized with the time-stamp's algorithm,
2. the canonical ds:SignedInfo, ds:SignatureValue and ds:KeyInfo,
3. every unsigned signature property before this time-stamp, canonicalized, in order,
4. every ds:Object except the one holding xades:QualifyingProperties, canonicalized.

Step 1 is fed while each reference is digested, so every file is read once and a time-stamp is
never put over data that does not match its reference (or over a wrapped signature). The
validator rebuilds the same input with :func:`reference_chunks` + :func:`archive_tail`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from lxml import etree

from remotesign.formats.base import FormatError, TimestampFn, ValidationData
from remotesign.formats.xades import constants as c
from remotesign.formats.xades.c14n import Budget, element_octets, work_budget
from remotesign.formats.xades.dom import DS, SignatureParts, StructureError, children
from remotesign.formats.xades.ltdata import incorporate
from remotesign.formats.xades.reading import (ATS, embedded_validation_data, level_of, parts_of, read_signature,
                                              unsigned_children)
from remotesign.formats.xades.references import (NotFound, ReferenceOutcome, Resolver, Tee, require_intact,
                                                 signature_references)
from remotesign.formats.xades.timestamps import check_hash_name, stamp
from remotesign.formats.xades.unsigned import (Ids, append_timestamp, append_timestamp_validation_data,
                                               check_writable, ensure_usp)
from remotesign.formats.xades.uris import uri_to_name
from remotesign.formats.xades.xmlio import MAX_DOCUMENT_BYTES, find_signature, parse_signatures, serialize

#: ``object_chunks(name)`` -> the octets of data object ``name`` (a container file), in chunks;
#: LookupError / FileNotFoundError when it is not available.
ObjectChunks = Callable[[str], Iterable[bytes]]


# -- the input, shared with the validator -----------------------------------------------------------

def reference_chunks(references: list[ReferenceOutcome], budget: Budget, algorithm: str,
                     prefixes: list[str] | None = None) -> Iterator[bytes]:
    """Step 1 from already processed references; NotFound when one has no output."""
    for ref in references:
        if not ref.found or ref.output is None:
            raise NotFound(ref.message or "a referenced data object is not available")
        yield from ref.output.chunks(budget, algorithm, prefixes)


def archive_tail(parts: SignatureParts, before: list[etree._Element], budget: Budget, algorithm: str,
                 prefixes: list[str] | None = None) -> Iterator[bytes]:
    """Steps 2 to 4 for an archive time-stamp placed after the unsigned properties ``before``."""
    def c14n(el: etree._Element) -> bytes:
        return element_octets(el, algorithm, budget, prefixes)

    yield c14n(parts.signed_info)
    yield c14n(parts.signature_value)
    if parts.key_info is not None:
        yield c14n(parts.key_info)
    for prop in before:
        yield c14n(prop)
    qp = parts.qualifying_properties
    for obj in children(parts.sig, DS, "Object"):
        if qp is None or qp.getparent() is not obj:
            yield c14n(obj)


# -- container files as detached content --------------------------------------------------------------

class _ChunkReader:
    """A binary stream over ``object_chunks(name)`` for the reference processor (which reads
    detached content through openers). An unavailable object reads as FileNotFoundError."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size: int = -1) -> bytes:
        """The next chunk (at most ``size`` octets): short reads, never concatenation."""
        try:
            while not self._buffer:
                chunk = next(self._chunks, None)
                if chunk is None:
                    return b""
                self._buffer = bytes(chunk)
        except LookupError as exc:
            raise FileNotFoundError(str(exc)) from None
        if size < 0 or size >= len(self._buffer):
            out, self._buffer = self._buffer, b""
        else:
            out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()

    def __enter__(self) -> "_ChunkReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def object_resolver(object_chunks: ObjectChunks) -> Resolver:
    """Detached references resolved by container name through ``object_chunks``; it is called
    only when the content is read, so its own errors surface from there."""
    def resolve(uri: str) -> Callable[[], Any] | None:
        name = uri_to_name(uri)
        if name is None:
            return None

        def opener() -> _ChunkReader:
            try:
                return _ChunkReader(object_chunks(name))
            except LookupError as exc:
                raise FileNotFoundError(str(exc)) from None
        return opener
    return resolve


# -- computing and adding an archive time-stamp ---------------------------------------------------------

def archive_digest(sig: etree._Element, before: list[etree._Element], algorithm: str, resolve: Resolver,
                   hash_name: str, prefixes: list[str] | None = None, budget: Budget | None = None) -> bytes:
    """Message imprint of an archive time-stamp of ``sig`` placed after the properties ``before``;
    every reference must be available and intact (FormatError otherwise)."""
    out = hashlib.new(hash_name)
    budget = budget or work_budget(MAX_DOCUMENT_BYTES)
    refs = signature_references(sig, resolve, tee=Tee(out.update, algorithm, prefixes), budget=budget)
    require_intact(refs)
    try:
        for chunk in archive_tail(parts_of(sig), before, budget, algorithm, prefixes):
            out.update(chunk)
    except StructureError as exc:
        raise FormatError("unsupported_xml", f"the archive time-stamp input cannot be canonicalized: {exc}") from None
    return out.digest()


def archive_timestamp_digest(sig: etree._Element, before: list[etree._Element], c14n_algorithm: str,
                             object_chunks: ObjectChunks, hash_name: str,
                             inclusive_prefixes: list[str] | None = None) -> bytes:
    """:func:`archive_digest` with the data objects of a container."""
    return archive_digest(sig, before, c14n_algorithm, object_resolver(object_chunks), hash_name, inclusive_prefixes)


async def archive_signature(sig: etree._Element, resolve: Resolver, timestamp: TimestampFn,
                            validation_data: ValidationData | None = None, hash_name: str = "sha256") -> None:
    """B-LT -> B-LTA (or renewal of B-LTA) of ``sig`` in place: validation data not yet embedded
    goes into a TimeStampValidationData first (or, on a signature with no LT values at all, into
    CertificateValues / RevocationValues), then an ArchiveTimeStamp covers everything."""
    check_hash_name(hash_name)
    check_writable(sig)
    if level_of(sig) == "B":
        raise FormatError("not_timestamped", "an archive time-stamp needs a signature time-stamp first (B-T)")
    ids = Ids(sig)
    if validation_data is not None:
        names = {etree.QName(p).localname for p in unsigned_children(sig)}
        if not names & {"ArchiveTimeStamp", "CertificateValues", "RevocationValues"}:
            incorporate(sig, validation_data, ids)  # the LT step EN 319 132-1 §5.5.2.2 3a/3b asks for
        else:
            missing = validation_data.without(embedded_validation_data(sig, include_key_info=True))
            if not missing.is_empty():
                append_timestamp_validation_data(ensure_usp(sig, ids), missing, ids)
    usp = ensure_usp(sig, ids)
    digest = archive_digest(sig, list(unsigned_children(sig)), c.TIMESTAMP_C14N, resolve, hash_name)
    token = await stamp(timestamp, digest, hash_name)
    append_timestamp(usp, ATS, token, c.TIMESTAMP_C14N, ids, "arctst")


async def add_archive_timestamp(xml: bytes, object_chunks: ObjectChunks, timestamp: TimestampFn,
                                validation_data: ValidationData | None = None, hash_name: str = "sha256", *,
                                signature_id: str | None = None) -> bytes:
    """:func:`archive_signature` on a signature document whose data objects are container files."""
    tree = parse_signatures(xml, MAX_DOCUMENT_BYTES)
    sig = find_signature(tree, signature_id)
    read_signature(sig)
    await archive_signature(sig, object_resolver(object_chunks), timestamp, validation_data, hash_name)
    return serialize(tree)
