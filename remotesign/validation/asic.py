"""ASiC-E and ASiC-S containers (ETSI EN 319 162-1) with XAdES or CAdES signatures: the container
checks (layout, manifest, coverage of every file) on top of the per-format validators, which get
the container's entries as their detached content."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
from pathlib import Path
from typing import BinaryIO

from lxml import etree

from remotesign.formats.asic import AsicContainer
from remotesign.formats.asic.names import MIMETYPE as ASIC_E_MIMETYPE
from remotesign.formats.base import FormatError
from remotesign.formats.xades import uri_to_name
from remotesign.validation.model import (Block, Conclusion, DocumentResult, SignatureResult, SubIndication,
                                         TimestampKind, TimestampResult, ValidationInputError)
from remotesign.validation.options import ContentOpener, ValidationOptions
from remotesign.validation.policy import ValidationPolicy, record

ASIC_S_MIMETYPE = "application/vnd.etsi.asic-s+zip"
ASIC_NS = "http://uri.etsi.org/02918/v1.2.1#"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
_DIGESTS = {
    "http://www.w3.org/2000/09/xmldsig#sha1": "sha1",
    "http://www.w3.org/2001/04/xmldsig-more#sha224": "sha224",
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
    "http://www.w3.org/2007/05/xmldsig-more#sha3-256": "sha3_256",
    "http://www.w3.org/2007/05/xmldsig-more#sha3-384": "sha3_384",
    "http://www.w3.org/2007/05/xmldsig-more#sha3-512": "sha3_512",
}


def _opener(container: AsicContainer, name: str) -> ContentOpener:
    def open_entry() -> BinaryIO:
        return container.open_entry(name)
    return open_entry


def _resolver(container: AsicContainer):
    entries = set(container.names)

    def resolve(uri: str) -> ContentOpener | None:
        try:
            name = uri_to_name(uri)
        except FormatError:
            return None
        if name is None or name not in entries or name.endswith("/"):
            return None
        return _opener(container, name)
    return resolve


def _format_failure(signature: SignatureResult, message: str) -> None:
    signature.blocks[Block.FORMAT_CHECKING] = Conclusion.of(SubIndication.FORMAT_FAILURE, message)
    signature.conclude(SubIndication.FORMAT_FAILURE, message)


def _not_found(signature: SignatureResult, message: str) -> None:
    signature.blocks[Block.CRYPTOGRAPHIC_VERIFICATION] = Conclusion.of(SubIndication.SIGNED_DATA_NOT_FOUND, message)
    if signature.indication.value == "TOTAL-PASSED" or signature.sub_indication not in (
            SubIndication.FORMAT_FAILURE, SubIndication.HASH_FAILURE, SubIndication.SIG_CRYPTO_FAILURE):
        signature.conclude(SubIndication.SIGNED_DATA_NOT_FOUND, message)


def _parse_asic_manifest(data: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.fromstring(data, parser)
    if root.tag != f"{{{ASIC_NS}}}ASiCManifest":
        raise ValueError(f"root element is {root.tag}, not asic:ASiCManifest")
    return root


class _CadesManifest:
    """One META-INF/ASiCManifest*.xml: which signature (or time-stamp) covers which files."""

    def __init__(self, name: str, raw: bytes) -> None:
        self.name = name
        self.raw = raw
        self.error: str | None = None
        self.sig_reference: str | None = None
        self.references: list[tuple[str, str | None, bytes | None]] = []   # name, hash, digest
        try:
            root = _parse_asic_manifest(raw)
        except (etree.XMLSyntaxError, ValueError) as exc:
            self.error = f"{name} is not a valid ASiCManifest ({exc})"
            return
        sig = root.find(f"{{{ASIC_NS}}}SigReference")
        self.sig_reference = sig.get("URI") if sig is not None else None
        for ref in root.findall(f"{{{ASIC_NS}}}DataObjectReference"):
            method = ref.find(f"{{{DS_NS}}}DigestMethod")
            value = ref.find(f"{{{DS_NS}}}DigestValue")
            hash_name = _DIGESTS.get(method.get("Algorithm", "")) if method is not None else None
            try:
                digest = base64.b64decode((value.text or "").strip(), validate=True) if value is not None else None
            except (binascii.Error, ValueError):
                digest = None
            self.references.append((uri_to_name_or_raw(ref.get("URI", "")), hash_name, digest))


def uri_to_name_or_raw(uri: str) -> str:
    try:
        return uri_to_name(uri) or uri
    except FormatError:
        return uri


def _check_references(container: AsicContainer, manifest: _CadesManifest, signature: SignatureResult) -> None:
    """An ASiCManifest's digests are signed data: every file must be present and intact."""
    for name, hash_name, digest in manifest.references:
        signature.signed_objects.append(name)
        if name not in container.names:
            _not_found(signature, f"signed file {name!r} is missing from the container")
            continue
        if hash_name is None or digest is None:
            _format_failure(signature, f"{manifest.name}: reference to {name!r} has no usable digest")
            continue
        hasher = hashlib.new(hash_name)
        for chunk in container.stream(name):
            hasher.update(chunk)
        if hasher.digest() != digest:
            signature.blocks[Block.CRYPTOGRAPHIC_VERIFICATION] = Conclusion.of(
                SubIndication.HASH_FAILURE, f"{name!r} differs from what was signed")
            signature.conclude(SubIndication.HASH_FAILURE, f"signed file {name!r} was altered")


def _meta_inf(container: AsicContainer, prefix: str) -> list[_CadesManifest]:
    found = []
    for name in container.names:
        base = name[len("META-INF/"):] if name.startswith("META-INF/") else None
        if base and base.startswith(prefix) and base.endswith(".xml") and "/" not in base:
            found.append(_CadesManifest(name, container.read_small(name)))
    return found


def _digest_matches(container: AsicContainer, name: str, hash_name: str | None, digest: bytes | None) -> bool:
    if name not in container.names or hash_name is None or digest is None:
        return False
    hasher = hashlib.new(hash_name)
    for chunk in container.stream(name):
        hasher.update(chunk)
    return hasher.digest() == digest


async def _archive_manifests(container: AsicContainer, options: ValidationOptions,
                             signatures: dict[str, list[SignatureResult]]) -> None:
    """EN 319 162-1 §4.4.3 ASiCArchiveManifest: a time-stamp over a manifest that digests the
    signatures and files. A valid one covering a signature file is its archive time-stamp (LTA)."""
    from remotesign.validation.model import TimestampKind
    from remotesign.validation.timestamps import validate_timestamp

    for manifest in _meta_inf(container, "ASiCArchiveManifest"):
        if manifest.error or not manifest.sig_reference:
            continue
        token_name = uri_to_name_or_raw(manifest.sig_reference)
        if token_name not in container.names:
            continue
        covered = [name for name, h, d in manifest.references if name in signatures]
        if not covered:
            continue
        intact = all(_digest_matches(container, name, h, d) for name, h, d in manifest.references)
        raw = manifest.raw

        def imprint(hash_name: str, raw: bytes = raw) -> bytes:
            return hashlib.new(hash_name, raw).digest()

        check = await validate_timestamp(container.read_small(token_name), TimestampKind.ARCHIVE, imprint,
                                         options.signature_spec(), options.timing_info())
        for name in covered:
            for signature in signatures[name]:
                signature.timestamps.append(check.result)
                if not intact:
                    record(signature, options.policy, "asic.manifest_mismatch",
                           f"{manifest.name} does not match the files it lists; its time-stamp is no proof of existence")
                elif not check.result.valid:
                    record(signature, options.policy, "timestamp.archive_invalid",
                           f"the archive time-stamp {token_name} is not valid", block=Block.TIME_STAMP_VALIDATION)
                elif signature.signature_format in ("CAdES_BASELINE_T", "CAdES_BASELINE_LT"):
                    signature.signature_format = "CAdES_BASELINE_LTA"


async def _cades_signatures(container: AsicContainer, options: ValidationOptions, kind: str) -> list[SignatureResult]:
    from remotesign.validation.cades import validate_cms
    manifests = _meta_inf(container, "ASiCManifest")
    by_file: dict[str, list[SignatureResult]] = {}
    results: list[SignatureResult] = []
    for index, sig_name in enumerate(container.cades_signature_names):
        cms = container.read_small(sig_name)
        prefix = f"S{index}" if len(container.cades_signature_names) > 1 else "S"
        if kind == "ASiC-S":
            data = container.data_objects[0].name if len(container.data_objects) == 1 else None
            content = _opener(container, data) if data else None
            found = await validate_cms(cms, options, content=content, id_prefix=prefix)
            for signature in found:
                if data:
                    signature.signed_objects.append(data)
            results.extend(found)
            continue
        manifest = next((m for m in manifests if m.sig_reference and
                         uri_to_name_or_raw(m.sig_reference) == sig_name), None)
        if manifest is None:
            # A corrupt manifest cannot name its signature; pair a lone one with a lone signature.
            broken = [m for m in manifests if m.error]
            manifest = broken[0] if len(broken) == 1 and len(container.cades_signature_names) == 1 else None
        content = (lambda raw=manifest.raw: io.BytesIO(raw)) if manifest is not None else None
        found = await validate_cms(cms, options, content=content, id_prefix=prefix)
        by_file[sig_name] = [s for s in found if s.parent_id is None]
        for signature in found:
            if manifest is None:
                _not_found(signature, f"no ASiCManifest names {sig_name!r}")
            elif manifest.error:
                _format_failure(signature, manifest.error)
            elif signature.parent_id is None:
                _check_references(container, manifest, signature)
        results.extend(found)
    if kind == "ASiC-E" and by_file:
        await _archive_manifests(container, options, by_file)
    return results


async def _xades_signatures(container: AsicContainer, options: ValidationOptions) -> list[SignatureResult]:
    from remotesign.validation.xades import validate_xades
    results: list[SignatureResult] = []
    resolve = _resolver(container)
    for name in container.signature_names:
        try:
            xml = container.read_small(name)
        except FormatError as exc:
            raise ValidationInputError("invalid_container", f"{name}: {exc.message}") from exc
        results.extend(await validate_xades(xml, options, resolve=resolve))
    return results


async def _nested_ddoc_signatures(container: AsicContainer, options: ValidationOptions) -> list[SignatureResult]:
    """An ASiC-S without signatures of its own whose one data object is a DigiDoc file (a
    time-stamped DDOC, as SiVa validates it): the DDOC's signatures, each covering that file."""
    from remotesign.validation.ddoc import validate_ddoc
    from remotesign.validation.ddoc_xml import is_ddoc

    if len(container.data_objects) != 1:
        return []
    name = container.data_objects[0].name
    with container.open_entry(name) as handle:
        head = handle.read(1024)
    if not (name.lower().endswith(".ddoc") or is_ddoc(head)):
        return []
    try:
        nested = await validate_ddoc(container.read_small(name), options, filename=name)
    except ValidationInputError:  # not a readable DigiDoc file: the container's time-stamps still stand
        return []
    for signature in nested.signatures:
        signature.signed_objects.append(name)
    return nested.signatures


#: Containers of other media types built like ASiC: signatures in META-INF/, data elsewhere
#: (OpenDocument, the Lithuanian ADOC, BDOC 1.0, ...). Validated by their structure, as DSS does.
OTHER_CONTAINERS = {"application/vnd.oasis.opendocument": "OpenDocument", "application/vnd.lt.archyvai.adoc": "ADOC",
                    "application/vnd.bdoc": "BDOC", "application/vnd.etsi.asic": "ASiC"}


def _token_names(container: AsicContainer) -> list[str]:
    """The time-stamp tokens in META-INF/ (``timestamp.tst``, ``timestamp002.tst``, ...)."""
    return sorted(n for n in container.names if n.startswith("META-INF/") and "/" not in n[len("META-INF/"):]
                  and n.lower().endswith(".tst"))


async def _time_assertions(container: AsicContainer, kind: str, options: ValidationOptions) -> list[TimestampResult]:
    """EN 319 162-1 time assertions: in ASiC-S, ``META-INF/timestamp.tst`` over the data object;
    then (either kind) each ASiCManifest / ASiCArchiveManifest whose SigReference is a
    time-stamp token, the token over the manifest, which digests the files (and earlier tokens)
    it renews. A manifest whose files are missing leaves its token without signed data; one
    whose digests differ makes it a hash failure."""
    from remotesign.validation.timestamps import validate_timestamp

    spec, timing = options.signature_spec(), options.timing_info()
    results: list[TimestampResult] = []
    tokens = _token_names(container)
    named = {uri_to_name_or_raw(m.sig_reference): m for m in (_meta_inf(container, "ASiCManifest")
                                                              + _meta_inf(container, "ASiCArchiveManifest"))
             if m.sig_reference and not m.error}
    first = "META-INF/timestamp.tst"
    if kind == "ASiC-S" and first in tokens and first not in named:
        data = container.data_objects[0].name if len(container.data_objects) == 1 else None

        def over_data(hash_name: str) -> bytes | None:
            if data is None:
                return None
            hasher = hashlib.new(hash_name)
            for chunk in container.stream(data):
                hasher.update(chunk)
            return hasher.digest()

        results.append((await validate_timestamp(container.read_small(first), TimestampKind.CONTAINER, over_data,
                                                 spec, timing)).result)
    for token_name in [t for t in tokens if t in named]:
        manifest = named[token_name]
        missing = [name for name, _, _ in manifest.references if name not in container.names]
        altered = [name for name, h, d in manifest.references
                   if name in container.names and not _digest_matches(container, name, h, d)]
        raw = manifest.raw

        def over_manifest(hash_name: str, raw: bytes = raw, missing: list[str] = missing) -> bytes | None:
            return None if missing else hashlib.new(hash_name, raw).digest()

        check = await validate_timestamp(container.read_small(token_name), TimestampKind.CONTAINER, over_manifest,
                                         spec, timing, unavailable=f"{manifest.name} names files the container "
                                                                   f"lacks: {', '.join(missing)[:200]}")
        result = check.result
        if altered and result.valid:
            result.conclusion = Conclusion.of(SubIndication.HASH_FAILURE,
                                              f"{manifest.name}: {', '.join(altered)[:200]} differ from what was "
                                              "time-stamped")
        results.append(result)
    return results


def _container_kind(container: AsicContainer) -> tuple[str, str | None]:
    """(ASiC-S or ASiC-E, a note when the media type did not say so)."""
    if container.mimetype == ASIC_S_MIMETYPE:
        return "ASiC-S", None
    if container.mimetype in (None, ASIC_E_MIMETYPE):
        return "ASiC-E", None
    if not (container.signature_names or container.cades_signature_names or _token_names(container)):
        raise ValidationInputError("invalid_container", f"unknown container media type {container.mimetype!r}")
    data = container.data_objects
    kind = "ASiC-S" if len(data) == 1 and "/" not in data[0].name else "ASiC-E"
    family = next((name for prefix, name in OTHER_CONTAINERS.items()
                   if (container.mimetype or "").startswith(prefix)), None)
    what = f"an {family} container" if family else f"a container of media type {container.mimetype!r}"
    return kind, f"{what}: its signatures are validated by its structure, as {kind}"


def _asic_s_signature_files(container: AsicContainer) -> str | None:
    """EN 319 162-1 §4.3.2: an ASiC-S holds one signature file or one time assertion
    (``timestamp.tst``), never several signature files nor a signature and a time assertion."""
    signatures = [*container.signature_names, *container.cades_signature_names]
    if len(signatures) > 1:
        return f"an ASiC-S container holds one signature file; this one has {len(signatures)}"
    if signatures and "META-INF/timestamp.tst" in container.names:
        return "an ASiC-S container holds either a signature file or a time assertion, this one has both"
    return None


def _coverage_checks(container: AsicContainer, kind: str, document: DocumentResult, policy: ValidationPolicy) -> None:
    """EN 319 162-1 structure: ASiC-S has exactly one data object; ASiC-E files should all be
    signed and listed in the manifest."""
    data_names = [entry.name for entry in container.data_objects]
    if kind == "ASiC-S" and len(data_names) != 1:
        message = f"an ASiC-S container must hold exactly one data object, this one has {len(data_names)}"
        document.errors.append(message)
        for signature in document.signatures:
            _format_failure(signature, message)
        return
    if kind == "ASiC-S":
        problem = _asic_s_signature_files(container)
        if problem:
            document.errors.append(problem)
            for signature in document.signatures:
                _format_failure(signature, problem)
            return
    for signature in document.signatures:
        if signature.parent_id is not None:
            continue  # a counter-signature signs its parent signature, not the files
        if kind == "ASiC-S" and data_names and "/" in data_names[0]:
            record(signature, policy, "asic.signature_without_file",
                   f"the data object of an ASiC-S container is at the root; {data_names[0]!r} is not")
        elif not set(signature.signed_objects) & set(data_names) and \
                signature.sub_indication is not SubIndication.SIGNED_DATA_NOT_FOUND:
            # (a reference to a file that is missing already says what is wrong)
            record(signature, policy, "asic.signature_without_file",
                   "the signature covers no file of the container")
    for missing in container.manifest_missing:
        document.errors.append(f"META-INF/manifest.xml lists {missing!r}, which is not in the container")
    signed = {name for s in document.signatures for name in s.signed_objects}
    for name in data_names:
        if name not in signed:
            message = f"file {name!r} in the container is not covered by this signature"
            for signature in document.signatures:
                if signature.sub_indication is SubIndication.SIGNED_DATA_NOT_FOUND:
                    # most likely the file its broken reference meant: that finding says more
                    signature.errors.append(message)
                else:
                    record(signature, policy, "asic.file_not_signed", message)
        if kind == "ASiC-E" and container.signature_names and container.manifest and name not in container.manifest:
            document.errors.append(f"file {name!r} is not listed in META-INF/manifest.xml")
    for signature in document.signatures:
        for name, declared in signature.declared_media_types.items():
            listed = container.manifest.get(name)
            if listed and listed.lower() != declared.lower():
                record(signature, policy, "asic.media_type_mismatch",
                       f"META-INF/manifest.xml gives {name!r} the media type {listed!r}; the signature declares "
                       f"{declared!r}")
        for name in signature.signed_objects:
            if container.signature_names and container.manifest and name in data_names \
                    and name not in container.manifest:
                record(signature, policy, "asic.file_not_in_manifest",
                       f"signed file {name!r} is not listed in META-INF/manifest.xml")


async def validate_container(path: Path, options: ValidationOptions, *, filename: str) -> DocumentResult:
    """Validate every XAdES and CAdES signature of an ASiC-E / ASiC-S container."""
    try:
        container = AsicContainer.open(path, options.limits, lenient=True)
    except FormatError as exc:
        raise ValidationInputError("invalid_container", exc.message) from exc
    with container:
        kind, note = _container_kind(container)
        document = DocumentResult(filename=filename, signature_form=kind, validation_time=options.at,
                                  included_files=[entry.name for entry in container.data_objects])
        try:
            document.signatures.extend(await _xades_signatures(container, options))
            document.signatures.extend(await _cades_signatures(container, options, kind))
            if not document.signatures:  # ASiC-S, or a container without mimetype holding one file
                document.signatures.extend(await _nested_ddoc_signatures(container, options))
        except FormatError as exc:
            raise ValidationInputError("invalid_container", exc.message) from exc
        document.timestamps.extend(await _time_assertions(container, kind, options))
        for problem in container.structure_errors:  # ambiguous content: nothing in it is proven
            document.errors.append(problem)
            for signature in document.signatures:
                _format_failure(signature, f"the container is malformed: {problem}")
            for stamp in document.timestamps:
                stamp.conclusion = Conclusion.of(SubIndication.FORMAT_FAILURE, f"the container is malformed: {problem}")
        if document.signatures or not document.timestamps:
            _coverage_checks(container, kind, document, options.policy)
        if note:
            for signature in document.signatures:
                signature.infos.append(note)
    return document
