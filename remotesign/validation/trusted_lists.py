"""EU trusted lists (ETSI TS 119 612) read from local files into pyHanko's TSP registry.

Never touches the network: the operator mirrors the LOTL and the national lists (or writes its own
list, see :mod:`remotesign.trust.local_tl`) and names the files or directories. Trust follows the
EU model: the LOTL is checked against known LOTL signer certificates, each national list against
the signer certificates its LOTL pointer names. A list no LOTL points to is the operator's own
decision and is trusted as configured. A list that fails its check is skipped and reported, never
trusted. Results are cached per file set and modification time, so requests do not re-parse.
"""

from __future__ import annotations

import base64
import logging
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from asn1crypto import x509
from lxml import etree
from pyhanko.sign.validation.qualified import eutl_parse
from pyhanko.sign.validation.qualified.tsp import (CAServiceInformation, QTSTServiceInformation,
                                                   QualifiedServiceInformation, TSPRegistry)

from remotesign.asn1_shared import shareable, shared_certificate

logger = logging.getLogger(__name__)

TSL_NS = "http://uri.etsi.org/02231/v2#"
#: A national list is a few MB; this bounds memory per file and the number of files per set.
MAX_FILE_BYTES = 32 << 20
MAX_FILES = 256
_CACHE_SIZE = 8


@dataclass(frozen=True)
class LoadedList:
    """One list that contributed to the registry (or, for a LOTL, that named the lists that did)."""

    source: Path
    territory: str
    sequence_number: int | None
    issued: datetime | None
    next_update: datetime | None
    lotl: bool = False
    verified: bool = False        # XML signature checked; False = trusted as configured by the operator
    services: int = 0             # qualified CA / QTST service definitions taken from it


class TrustListRegistry(TSPRegistry):
    """pyHanko's registry of qualified CA / QTST services, plus the OCSP responders the lists name
    as services of their own (``Svctype/Certstatus/OCSP[/QC]``): RFC 6960 §4.2.2.2's "local
    configuration of OCSP signing authority", which is how EU DSS and the Estonian trust model
    accept SK's responders, whose certificates the issuing CA did not delegate."""

    def __init__(self) -> None:
        super().__init__()
        self.ocsp_responders: list[x509.Certificate] = []

    def is_ocsp_responder(self, cert: x509.Certificate) -> bool:
        der = cert.dump()
        return any(known.dump() == der for known in self.ocsp_responders)


@dataclass(frozen=True)
class TrustedLists:
    """The registry built from the configured lists, which lists made it, and what went wrong."""

    registry: TrustListRegistry = field(default_factory=TrustListRegistry)
    lists: tuple[LoadedList, ...] = ()
    problems: tuple[str, ...] = ()


@dataclass(frozen=True)
class _ListFile:
    path: Path
    text: str
    lotl: bool
    territory: str
    sequence_number: int | None
    issued: datetime | None
    next_update: datetime | None


@dataclass(frozen=True)
class _Pointer:
    """A LOTL pointer to a national list; ``signers`` empty when the LOTL itself is unverified."""

    url: str
    territory: str
    signers: tuple[x509.Certificate, ...]
    verified: bool
    lotl: Path

    @property
    def file_name(self) -> str:
        return PurePosixPath(urlsplit(self.url).path).name


_cache: dict[tuple, TrustedLists] = {}
_cache_lock = threading.Lock()
_load_lock = threading.Lock()   # one parse at a time: concurrent first requests wait for it


def load_trusted_lists(paths: Sequence[Path], *, lotl_signers: Sequence[x509.Certificate] = (),
                       at: datetime | None = None) -> TrustedLists:
    """Read the LOTL and trusted-list XML files at ``paths`` (files, or directories of ``*.xml``).

    ``lotl_signers`` are the certificates a LOTL must be signed with (default: the EU LOTL signer
    certificates pyHanko ships). ``at`` is the time for signature checks and freshness (default
    now). Never raises: unusable files are reported in ``problems``."""
    files, problems = _expand(paths)
    key = (tuple(str(p) for p in paths), tuple(_stamp(p) for p in files), tuple(c.sha256 for c in lotl_signers), at)
    with _load_lock:
        with _cache_lock:
            cached = _cache.get(key)
        if cached is not None:
            return cached
        result = _load(files, problems, lotl_signers, at or datetime.now(timezone.utc))
        with _cache_lock:
            if len(_cache) >= _CACHE_SIZE:
                _cache.pop(next(iter(_cache)))
            _cache[key] = result
    return result


def _expand(paths: Sequence[Path]) -> tuple[list[Path], list[str]]:
    files: list[Path] = []
    problems: list[str] = []
    for path in map(Path, paths):
        try:
            if path.is_dir():
                files.extend(sorted(p for p in path.iterdir() if p.suffix.lower() == ".xml" and p.is_file()))
            elif path.is_file():
                files.append(path)
            else:
                problems.append(f"{path}: no such file or directory")
        except OSError as exc:
            problems.append(f"{path}: {exc.strerror or exc}")
    unique = list(dict.fromkeys(p.resolve() for p in files))
    if len(unique) > MAX_FILES:
        problems.append(f"{len(unique)} trusted-list files configured; only the first {MAX_FILES} are read")
        unique = unique[:MAX_FILES]
    return unique, problems


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        st = path.stat()
        return str(path), st.st_mtime_ns, st.st_size
    except OSError:
        return str(path), -1, -1


def _load(paths: list[Path], problems: list[str], lotl_signers: Sequence[x509.Certificate],
          at: datetime) -> TrustedLists:
    files: list[_ListFile] = []
    for path in paths:
        try:
            files.append(_read(path))
        except (OSError, ValueError, etree.LxmlError) as exc:
            problems.append(f"{path}: not a usable trusted list: {exc}")
    pointers: list[_Pointer] = []
    loaded: list[LoadedList] = []
    for lotl in (f for f in files if f.lotl):
        lotl_pointers, verified = _read_lotl(lotl, lotl_signers, at, problems)
        pointers.extend(lotl_pointers)
        if verified:
            loaded.append(_loaded(lotl, verified=True, services=0))
    registry = TrustListRegistry()
    for tl in _newest_per_territory([f for f in files if not f.lotl], problems):
        pointer = _pointer_for(tl, pointers)
        if pointer is not None and not pointer.verified:
            problems.append(f"{tl.path}: skipped: listed by the LOTL {pointer.lotl.name}, whose signature "
                            f"could not be verified")
            continue
        try:
            services, errors, checked_xml = _services(tl, pointer, at)
            responders = _ocsp_responders(checked_xml)
        except Exception as exc:  # noqa: BLE001 - a bad list is reported, the others still load
            problems.append(f"{tl.path}: skipped ({tl.territory}): {_reason(exc)}")
            continue
        for service in services:
            for cert in service.base_info.provider_certs:  # kept in the cached registry, read concurrently
                shareable(cert)
            if isinstance(service, CAServiceInformation):
                registry.register_ca(service)
            elif isinstance(service, QTSTServiceInformation):
                registry.register_tst(service)
        registry.ocsp_responders.extend(responders)
        problems.extend(f"{tl.path} ({tl.territory}): service ignored: {e}" for e in errors)
        loaded.append(_loaded(tl, verified=pointer is not None, services=len(services)))
    for item in loaded:
        if item.next_update is not None and item.next_update < at:
            problems.append(f"{item.source} ({item.territory}): stale, its NextUpdate "
                            f"{item.next_update:%Y-%m-%dT%H:%M:%SZ} has passed")
    logger.info("trusted lists: %d loaded (%s), %d problem(s)", len(loaded),
                ", ".join(f"{t.territory}#{t.sequence_number}" for t in loaded), len(problems))
    for problem in problems:
        logger.warning("trusted lists: %s", problem)
    return TrustedLists(registry=registry, lists=tuple(loaded), problems=tuple(problems))


def _newest_per_territory(lists: list[_ListFile], problems: list[str]) -> list[_ListFile]:
    """One list per territory, the highest sequence number, so an old copy left next to its
    replacement cannot resurrect withdrawn services."""
    def key(tl: _ListFile) -> str:
        return tl.territory if tl.territory != "?" else str(tl.path)

    newest: dict[str, _ListFile] = {}
    for tl in lists:
        kept = newest.get(key(tl))
        if kept is None or (tl.sequence_number or 0) > (kept.sequence_number or 0):
            newest[key(tl)] = tl
    for tl in lists:
        if newest[key(tl)] is not tl:
            problems.append(f"{tl.path}: skipped: superseded by {newest[key(tl)].path.name} for {tl.territory}")
    return [tl for tl in lists if newest[key(tl)] is tl]


def _read_lotl(lotl: _ListFile, signers: Sequence[x509.Certificate], at: datetime,
               problems: list[str]) -> tuple[list[_Pointer], bool]:
    """The LOTL's pointers; when its signature fails they are still returned, unverified, so the
    lists they name are refused rather than mistaken for operator-local lists."""
    try:
        parsed = eutl_parse.validate_and_parse_lotl(lotl.text, list(signers) or None, validation_time=at)
        verified = True
    except Exception as exc:  # noqa: BLE001
        problems.append(f"{lotl.path}: LOTL not trusted: {_reason(exc)}")
        try:
            parsed = eutl_parse.parse_lotl_unsafe(lotl.text)
        except Exception:  # noqa: BLE001 - nothing usable in it at all
            return [], False
        verified = False
    problems.extend(f"{lotl.path}: {e}" for e in parsed.errors)
    pointers = [_Pointer(url=ref.location_uri, territory=ref.territory,
                         signers=tuple(ref.tlso_certs) if verified else (), verified=verified, lotl=lotl.path)
                for ref in parsed.references]
    return pointers, verified


def _pointer_for(tl: _ListFile, pointers: Iterable[_Pointer]) -> _Pointer | None:
    """The LOTL pointer naming this file: same territory (preferring the one whose URL ends in
    this file's name), else same file name."""
    pointers = list(pointers)
    by_territory = [p for p in pointers if p.territory == tl.territory]
    for p in by_territory:
        if p.file_name == tl.path.name:
            return p
    if by_territory:
        return by_territory[0]
    return next((p for p in pointers if p.file_name and p.file_name == tl.path.name), None)


def _services(tl: _ListFile, pointer: _Pointer | None,
              at: datetime) -> tuple[list[QualifiedServiceInformation], list[Exception], str]:
    """Every qualified CA / QTST definition of a list (after checking its signature against the
    pointer's signers, when a LOTL points to it), collected before any is registered, so a list
    that fails half-way contributes nothing; and the checked XML. pyHanko's private helper is used for the check
    because its public ``trust_list_to_registry`` cannot take the validation time (pinned 0.38)."""
    xml = tl.text
    if pointer is not None:
        xml = eutl_parse._validate_and_extract_tl_data_multiple_certs(xml, list(pointer.signers), at)
    services: list[QualifiedServiceInformation] = []
    generator = eutl_parse.read_qualified_service_definitions(xml)
    while True:
        try:
            services.append(next(generator))
        except StopIteration as stop:
            return services, list(stop.value or []), xml


#: Service statuses under which a listed OCSP responder is (or was) an authority.
_ACTIVE_STATUSES = ("/granted", "/undersupervision", "/accredited", "/supervisionincessation",
                    "/setbynationallaw", "/recognisedatnationallevel")


def _ocsp_responders(xml: str) -> list[x509.Certificate]:
    """The certificates of the OCSP services a (checked) list names with an active status now or
    in its history."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    root = etree.fromstring(xml.encode("utf-8"), parser)
    out: list[x509.Certificate] = []
    for info in root.iter(f"{{{TSL_NS}}}ServiceInformation"):
        kind = _text(info, "ServiceTypeIdentifier") or ""
        if "/Svctype/Certstatus/OCSP" not in kind:
            continue
        statuses = [_text(info, "ServiceStatus") or ""]
        parent = info.getparent()
        statuses += [(h.text or "").strip() for h in parent.iterfind(
            f"{{{TSL_NS}}}ServiceHistory/{{{TSL_NS}}}ServiceHistoryInstance/{{{TSL_NS}}}ServiceStatus")]
        if not any(s.endswith(_ACTIVE_STATUSES) for s in statuses):
            continue
        for node in info.iterfind(f"{{{TSL_NS}}}ServiceDigitalIdentity/{{{TSL_NS}}}DigitalId/"
                                  f"{{{TSL_NS}}}X509Certificate"):
            try:
                out.append(shared_certificate(base64.b64decode("".join((node.text or "").split()))))
            except (ValueError, TypeError):
                continue
    return out


def _read(path: Path) -> _ListFile:
    """Read and classify a list file with a parser that refuses DTDs, entities and the network."""
    with open(path, "rb") as handle:
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES >> 20} MiB")
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             remove_comments=True)
    root = etree.fromstring(data, parser)
    if root.getroottree().docinfo.doctype:
        raise ValueError("a document type declaration is not allowed")
    if root.tag != f"{{{TSL_NS}}}TrustServiceStatusList":
        raise ValueError(f"root element is {etree.QName(root).localname}, not TrustServiceStatusList")
    info = root.find(f"{{{TSL_NS}}}SchemeInformation")
    if info is None:
        raise ValueError("no SchemeInformation")
    tsl_type = _text(info, "TSLType") or ""
    sequence = _text(info, "TSLSequenceNumber")
    return _ListFile(
        path=path, text=data.decode("utf-8-sig"), lotl=tsl_type.lower().endswith("listofthelists"),
        territory=_text(info, "SchemeTerritory") or "?",
        sequence_number=int(sequence) if sequence and sequence.isdigit() else None,
        issued=_time(_text(info, "ListIssueDateTime")),
        next_update=_time(_text(info, "NextUpdate/{%s}dateTime" % TSL_NS)),
    )


def _text(parent: etree._Element, path: str) -> str | None:
    node = parent.find("{%s}%s" % (TSL_NS, path))
    return node.text.strip() if node is not None and node.text else None


def _time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _loaded(f: _ListFile, *, verified: bool, services: int) -> LoadedList:
    return LoadedList(source=f.path, territory=f.territory, sequence_number=f.sequence_number, issued=f.issued,
                      next_update=f.next_update, lotl=f.lotl, verified=verified, services=services)


def _reason(exc: Exception) -> str:
    message = getattr(exc, "failure_message", None) or str(exc) or type(exc).__name__
    return " ".join(message.split())[:500]


def clear_cache() -> None:
    """Forget cached results (tests; an operator replacing files changes mtimes anyway)."""
    with _cache_lock:
        _cache.clear()
