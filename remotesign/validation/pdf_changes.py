"""What happened to a signed PDF after each signature, revision by revision.

For one signature: does its byte range cover exactly the revision it signed (else signature
wrapping or a universal forgery); does every later byte belong to a revision the cross-reference
data accounts for (else an incremental saving attack: objects lenient viewers show but the
revision history hides); and is every later revision a change the signature permits, judged by
the service's difference-analysis policy (:mod:`remotesign.validation.pdf_diff_rules`, pyHanko's
whitelist plus the service's rules) against the signature's DocMDP level (or the document's
certification, whichever is stricter) and its FieldMDP locks. A widget shown or hidden by a
later revision (a shadow "hide") is refused too.

Each finding is a :class:`~remotesign.validation.model.DocumentChange` that names the revision,
the page, the object and the kind of change, with the policy check it falls under; allowed
revisions are listed too, so a report can say what was added after signing."""

from __future__ import annotations

import logging
import mmap
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import HistoricalResolver, PdfFileReader
from pyhanko.sign.diff_analysis import DiffResult, ModificationLevel, SuspiciousModification
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature, read_certification_data
from pyhanko.sign.validation.status import SignatureCoverageLevel

from remotesign.validation.model import DocumentChange
from remotesign.validation.pdf_diff_rules import change_policy, page_refs

log = logging.getLogger(__name__)

MAX_CHANGES = 40
MAX_WALK = 50_000
_POLICY = change_policy()

# Policy check identifiers (see remotesign/validation/policy.py).
CHECK_BYTE_RANGE = "pdf.byte_range"
CHECK_UNLISTED = "pdf.unlisted_data"
CHECK_PAGE_TREE = "pdf.page_tree"
CHECK_MODIFICATION = "pdf.disallowed_change"
CHECK_CERTIFICATION = "pdf.certification_exceeded"
CHECK_LOCKED_FIELD = "pdf.locked_field"
CHECK_VISIBILITY = "pdf.visibility_change"
CHECK_UNANALYSABLE = "pdf.unanalysable_change"
CHECK_ALLOWED = "pdf.allowed_change"

_OBJECT_HEADER = re.compile(rb"(?:(?<=[\s>\]\)])|^)(\d{1,10})\s+(\d{1,5})\s+obj\b")
_STREAM_START = re.compile(rb"\bstream\r?\n")
_END_STREAM = re.compile(rb"endstream")
#: What may follow the last cross-reference data: a table's trailer or the end of an xref
#: stream object, comments, startxref and %%EOF.
_TAIL = re.compile(rb"^\s*(?:(?:trailer)?\s*<<.*>>\s*|(?:endstream\s*)?endobj\s*)?(?:%[^\r\n]*[\r\n]+\s*)*"
                   rb"startxref\s+\d+\s+%%EOF[\s\x00]*$", re.S)
_VISIBILITY_FLAGS = 1 | 2 | 32       # Invisible, Hidden, NoView


@dataclass
class ChangeReview:
    """The changes after one signature; ``disallowed`` are what the signature does not permit."""

    changes: list[DocumentChange] = field(default_factory=list)

    @property
    def disallowed(self) -> list[DocumentChange]:
        return [c for c in self.changes if not c.allowed]

    def add(self, change: DocumentChange) -> None:
        if len(self.changes) < MAX_CHANGES:
            self.changes.append(change)


def review_signature(embedded: EmbeddedPdfSignature) -> ChangeReview:
    """Every change made after ``embedded`` was signed, each allowed or not."""
    review = ChangeReview()
    reader = embedded.reader
    signed = embedded.signed_revision
    coverage = embedded.evaluate_signature_coverage()
    if coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        review.add(DocumentChange(
            revision=signed + 1, kind="byte range", allowed=False, check=CHECK_BYTE_RANGE,
            description="The signature's byte range does not cover exactly the revision it signed: bytes "
                        "inside the signed part of the file are not protected (signature wrapping)."))
        return review
    if coverage == SignatureCoverageLevel.ENTIRE_FILE:
        return review
    _, len1, start2, len2 = embedded.byte_range
    for change in unlisted_data(reader, start2 + len2, signed):
        review.add(change)
    docmdp = _effective_docmdp(embedded)
    fieldmdp = embedded.fieldmdp
    base = reader.get_historical_resolver(signed)
    filled: set[str] = set()
    for revision in range(signed + 1, reader.xrefs.total_revisions):
        new = reader.get_historical_resolver(revision)
        try:
            result = _POLICY.apply(base, new, field_mdp_spec=fieldmdp, doc_mdp=docmdp)
        except SuspiciousModification as exc:
            check = CHECK_LOCKED_FIELD if "is locked" in str(exc) else CHECK_MODIFICATION
            for change in describe_revision(base, new, reason=_first_line(exc), check=check):
                review.add(change)
            continue
        except Exception as exc:  # noqa: BLE001 - hostile structures: nothing proves the change harmless
            log.info("difference analysis of revision %d failed", revision, exc_info=True)
            review.add(DocumentChange(
                revision=revision + 1, kind="unreadable update", allowed=False, check=CHECK_UNANALYSABLE,
                description=f"Revision {revision + 1} cannot be analysed ({_first_line(exc)}), so it cannot be "
                            "shown to leave the signed content unchanged."))
            continue
        for change in visibility_changes(base, new):
            review.add(change)
        kind, summary = _allowed_summary(new, result, filled)
        filled |= result.changed_form_fields
        if docmdp is not None and result.modification_level.value > docmdp.value:
            review.add(DocumentChange(
                revision=revision + 1, kind="certification", allowed=False, check=CHECK_CERTIFICATION,
                description=f"Revision {revision + 1} ({summary}) goes beyond what the certification permits "
                            f"({_docmdp_text(docmdp)})."))
        else:
            review.add(DocumentChange(revision=revision + 1, kind=kind, allowed=True,
                                      check=CHECK_ALLOWED, description=f"Revision {revision + 1}: {summary}."))
    return review


def _first_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0].rstrip(".")


def _effective_docmdp(embedded: EmbeddedPdfSignature) -> MDPPerm | None:
    """The signature's own DocMDP level, or the document certification's when that is stricter
    and the certification was made no later than this signature."""
    own = embedded.docmdp_level
    try:
        certification = read_certification_data(embedded.reader)
    except Exception:  # noqa: BLE001 - a broken /Perms entry certifies nothing
        certification = None
    if certification is None:
        return own
    try:
        certified_at = EmbeddedPdfSignature(embedded.reader, certification.author_sig.container_ref,
                                            "certification").signed_revision
    except Exception:  # noqa: BLE001
        certified_at = None
    if certified_at is None or certified_at > embedded.signed_revision:
        return own
    if own is None or certification.permission.value < own.value:
        return certification.permission
    return own


def _docmdp_text(level: MDPPerm) -> str:
    return {MDPPerm.NO_CHANGES: "P=1, no changes", MDPPerm.FILL_FORMS: "P=2, form filling and signing",
            MDPPerm.ANNOTATE: "P=3, form filling, signing and annotations"}.get(level, str(level))


def _allowed_summary(new: HistoricalResolver, result: DiffResult, filled_before: set[str]) -> tuple[str, str]:
    """(kind, words) for what an allowed revision added, read from the objects it wrote."""
    parts: list[str] = []
    kind = "validation data"
    for ref in sorted(new.explicit_refs_in_revision(), key=lambda r: r.idnum)[:2000]:
        value = _safe(lambda r=ref: new(r))
        if not isinstance(value, generic.DictionaryObject) or isinstance(value, generic.StreamObject):
            continue
        if value.get("/Type") == "/DocTimeStamp":
            parts.append("a document time-stamp")
        elif "/ByteRange" in value and "/Contents" in value:
            parts.append("a signature")
            kind = "signature"
        elif "/VRI" in value or "/OCSPs" in value or "/Certs" in value or "/CRLs" in value:
            parts.append("validation data (DSS)")
    fields = sorted(result.changed_form_fields - filled_before - _signature_field_names(new))
    if fields:
        parts.append("form fields filled: " + ", ".join(fields[:10]))
        kind = "form filling"
    if result.modification_level == ModificationLevel.ANNOTATIONS and not parts:
        parts.append("comment annotations")
        kind = "comment annotations"
    return kind, ", ".join(dict.fromkeys(parts)) or "no visible change"


def _signature_field_names(resolver: HistoricalResolver) -> set[str]:
    """Fully qualified names of the signature fields of a revision (bounded walk)."""
    names: set[str] = set()
    fields = _safe(lambda: resolver.root["/AcroForm"]["/Fields"])
    stack = [(fields.raw_get(i), "", None) for i in range(min(len(fields), 1000))] if isinstance(
        fields, generic.ArrayObject) else []
    seen = 0
    while stack and seen < 5000:
        seen += 1
        item, prefix, inherited = stack.pop()
        node = _safe(lambda i=item: i.get_object())
        if not isinstance(node, generic.DictionaryObject):
            continue
        partial = node.get("/T")
        name = f"{prefix}.{partial}" if prefix and partial is not None else str(partial if partial is not None else prefix)
        field_type = node.get("/FT", inherited)
        kids = node.get("/Kids")
        if isinstance(kids, generic.ArrayObject):
            stack.extend((kids.raw_get(i), name, field_type) for i in range(min(len(kids), 1000)))
        if field_type == "/Sig" and partial is not None:
            names.add(name)
    return names


def _safe(fn: Any) -> Any:
    try:
        return fn()
    except Exception:  # noqa: BLE001
        return None


# --- bytes no revision accounts for (incremental saving attack) --------------------------------------
def unlisted_data(reader: PdfFileReader, signed_end: int, signed_revision: int) -> list[DocumentChange]:
    """Objects after the signed byte range (which ends at ``signed_end``) that no later
    cross-reference section lists at their offset, and data after the last end-of-file marker:
    invisible to the revision history, shown by viewers that repair files."""
    xrefs = reader.xrefs
    out: list[DocumentChange] = []
    view, size = _file_view(reader)
    if view is None:
        return out
    try:
        total = xrefs.total_revisions
        listed: set[tuple[int, int, int]] = set()
        for revision in range(signed_revision + 1, total):
            listed |= _listed(xrefs, revision)
        starts = sorted((xrefs.get_xref_container_info(r).start_location, r) for r in range(signed_revision + 1, total))
        for idnum, generation, offset in _object_headers(view, signed_end, size):
            if not any((idnum, generation, o) in listed for o in (offset, offset - 1, offset - 2)):
                revision = next((r for start, r in starts if start > offset), total)
                out.append(DocumentChange(
                    revision=revision + 1, kind="unlisted object", allowed=False, check=CHECK_UNLISTED,
                    obj=f"{idnum} {generation} R",
                    description=f"Object {idnum} {generation} R at byte {offset}, written after the signature, is not "
                                "listed by any cross-reference section (incremental saving attack)."))
                if len(out) >= 5:
                    return out
        tail_start = max(xrefs.get_xref_container_info(r).end_location for r in range(total))
        tail = bytes(view[tail_start:min(size, tail_start + 4096)])
        if size - tail_start > 4096 or not _TAIL.match(tail):
            out.append(DocumentChange(
                revision=total + 1, kind="unlisted data", allowed=False, check=CHECK_UNLISTED,
                description=f"{size - tail_start} bytes follow the last revision of the document without "
                            "belonging to any revision (incremental saving attack)."))
    finally:
        if isinstance(view, mmap.mmap):
            view.close()
    return out


def _file_view(reader: PdfFileReader) -> tuple[Any, int]:
    stream = reader.stream
    try:
        return mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ), stream.seek(0, 2)
    except (AttributeError, OSError, ValueError):
        pass
    try:
        data = stream.getvalue() if hasattr(stream, "getvalue") else None
    except Exception:  # noqa: BLE001
        data = None
    return (memoryview(data), len(data)) if data is not None else (None, 0)


def _listed(xrefs: Any, revision: int) -> set[tuple[int, int, int]]:
    """(object number, generation, offset) of every object revision ``revision`` lists, its
    cross-reference stream included."""
    data = xrefs.get_xref_data(revision)
    sections = [data] + ([data.hybrid.xref_data] if data.hybrid is not None else [])
    out = {(idnum, gen, offset) for section in sections for idnum, (gen, offset) in section.standard_xrefs.items()}
    meta = xrefs.get_xref_container_info(revision)
    if meta.stream_ref is not None:
        out.add((meta.stream_ref.idnum, meta.stream_ref.generation, meta.start_location))
    return out


def _object_headers(view: Any, start: int, end: int) -> list[tuple[int, int, int]]:
    """``N G obj`` headers in [start, end) of the file, skipping stream bodies; searched in
    place (no copy of the region)."""
    out: list[tuple[int, int, int]] = []
    position = start
    while position < end:
        header = _OBJECT_HEADER.search(view, position, end)
        if header is None:
            return out
        stream = _STREAM_START.search(view, position, header.start())
        if stream is not None:
            closing = _END_STREAM.search(view, stream.end(), end)
            if closing is None:
                return out
            position = closing.end()
            continue
        out.append((int(header.group(1)), int(header.group(2)), header.start(1)))
        position = header.end()
    return out


# --- widgets shown or hidden (shadow "hide") -----------------------------------------------------------
def visibility_changes(base: HistoricalResolver, new: HistoricalResolver) -> list[DocumentChange]:
    """Annotations present when signed whose hidden/visible state a later revision changed."""
    out: list[DocumentChange] = []
    try:
        pages = page_refs(base)
    except Exception:  # noqa: BLE001 - a broken page tree is reported by the policy
        return out
    for number, page_ref in enumerate(pages, 1):
        old_annots = _safe(lambda r=page_ref: base(r).get("/Annots"))
        count = min(len(old_annots), 1000) if isinstance(old_annots, generic.ArrayObject) else 0
        for annot in (old_annots.raw_get(i) for i in range(count)):
            if not isinstance(annot, generic.IndirectObject):
                continue
            before = _flags(_safe(lambda a=annot: base(a.reference)))
            after = _flags(_safe(lambda a=annot: new(a.reference)))
            if before is None or after is None or (before ^ after) & _VISIBILITY_FLAGS == 0:
                continue
            shown = after & _VISIBILITY_FLAGS == 0
            ref = annot.reference
            out.append(DocumentChange(
                revision=new.revision + 1, kind="visibility", allowed=False, check=CHECK_VISIBILITY, page=number,
                obj=f"{ref.idnum} {ref.generation} R",
                description=f"Revision {new.revision + 1} {'shows' if shown else 'hides'} annotation "
                            f"{ref.idnum} {ref.generation} R on page {number}, which was "
                            f"{'hidden' if shown else 'visible'} when signed."))
    return out


def _flags(annot: Any) -> int | None:
    if not isinstance(annot, generic.DictionaryObject):
        return None
    value = annot.get("/F", 0)
    return int(value) if isinstance(value, int) else 0


# --- naming the changes of a refused revision ------------------------------------------------------------
def describe_revision(base: HistoricalResolver, new: HistoricalResolver, *, reason: str,
                      check: str) -> list[DocumentChange]:
    """The objects revision ``new`` wrote, each named by page and kind; those that touch what
    is displayed first. ``reason`` is the difference analysis' own explanation."""
    revision = new.revision + 1
    previous = new.reader.get_historical_resolver(new.revision - 1)
    new_paths = _paths(new)
    old_paths = _paths(base)
    new_pages = {ref: n for n, ref in enumerate(_safe(lambda: page_refs(new)) or [], 1)}
    old_pages = {ref: n for n, ref in enumerate(_safe(lambda: page_refs(base)) or [], 1)}
    named: list[DocumentChange] = []
    if list(new_pages) != list(old_pages):
        named.append(DocumentChange(
            revision=revision, kind="page tree", allowed=False, check=CHECK_PAGE_TREE,
            description=f"Revision {revision} changed the pages: {len(old_pages)} signed, {len(new_pages)} now"
                        + (" (pages added, removed or reordered)." if len(old_pages) == len(new_pages) else ".")))
    mentioned = [(int(a), int(b)) for a, b in _MENTIONED_REF.findall(reason)]
    refs = sorted(new.explicit_refs_in_revision(),
                  key=lambda r: ((r.idnum, r.generation) not in mentioned, r.idnum, r.generation))
    for ref in refs[:5000]:
        existed = not base.is_ref_unassignable(ref) and base.reader.xrefs.get_historical_ref(ref, base.revision) is not None
        paths = (old_paths if existed else new_paths).get(ref) or new_paths.get(ref)
        pages = old_pages if existed else new_pages
        kind, page, where = _classify(paths, pages, (base if existed else new), ref)
        detail, keys = _key_changes(previous, new, ref) if existed else ("", set())
        if kind in _BENIGN_KINDS or (kind == "document catalog" and keys <= _CATALOG_UPDATABLE):
            continue
        verb = "re-defines" if existed else "adds"
        named.append(DocumentChange(
            revision=revision, kind=kind, allowed=False, check=check, page=page,
            obj=f"{ref.idnum} {ref.generation} R",
            description=f"Revision {revision} {verb} {where} ({ref.idnum} {ref.generation} R){detail}."))
    reason_text = _MENTIONED_REF.sub(lambda m: f"{m.group(1)} {m.group(2)} R", reason)
    reason_text = _PYHANKO_REVISION.sub(lambda m: f"{m.group(1)} {int(m.group(2)) + 1}", reason_text)
    if not named:
        named.append(DocumentChange(revision=revision, kind="unexplained change", allowed=False, check=check,
                                    description=f"Revision {revision} makes a change the signature does not permit: "
                                                f"{reason_text}."))
    else:
        first = named[0]
        named[0] = DocumentChange(revision=first.revision, kind=first.kind, allowed=False, check=first.check,
                                  page=first.page, obj=first.obj,
                                  description=f"{first.description.rstrip('.')} ({reason_text}).")
    return named


#: pyHanko numbers revisions from 0, reports from 1.
_PYHANKO_REVISION = re.compile(r"\b([Rr]evision) (\d+)")
_MENTIONED_REF = re.compile(r"Reference\(idnum=(\d+), generation=(\d+)\)")
#: Catalog entries other rules judge; a catalog re-written only in these is not itself a finding.
_CATALOG_UPDATABLE = frozenset({"/AcroForm", "/DSS", "/Extensions", "/Metadata", "/MarkInfo", "/Version",
                                "/StructTreeRoot"})
_BENIGN_KINDS = frozenset({"cross-reference stream", "object stream", "validation data (DSS)", "metadata",
                           "document information", "unreferenced object", "structure tree"})


def _paths(resolver: HistoricalResolver) -> dict[generic.Reference, tuple[Any, ...]]:
    """A shortest path from the trailer to every object of a revision (breadth first, bounded),
    preferring paths through the page tree: an object a page uses is named after the page."""
    found: dict[generic.Reference, tuple[Any, ...]] = {}
    budget = [MAX_WALK]
    pages = _safe(lambda: resolver.root.raw_get("/Pages"))
    root = _safe(lambda: resolver.root_ref)
    if pages is not None:   # not through the catalog: a signature's /Data may point back at it
        _walk(resolver, deque([(pages, ("/Root", "/Pages"))]), found, budget, avoid=root)
    _walk(resolver, deque([(resolver.trailer_view, ())]), found, budget)
    return found


def _walk(resolver: HistoricalResolver, queue: deque[tuple[Any, tuple[Any, ...]]],
          found: dict[generic.Reference, tuple[Any, ...]], budget: list[int], avoid: Any = None) -> None:
    while queue and budget[0] > 0:
        budget[0] -= 1
        value, path = queue.popleft()
        if isinstance(value, generic.IndirectObject):
            ref = value.reference
            if ref in found or ref == avoid:
                continue
            found[ref] = path
            value = _safe(lambda r=ref: resolver(r))
        if isinstance(value, generic.DictionaryObject):
            for key in list(value.keys())[:500]:
                if key in ("/Parent", "/P"):
                    continue
                queue.append((_safe(lambda k=key: value.raw_get(k)), path + (key,)))
        elif isinstance(value, generic.ArrayObject):
            for index in range(min(len(value), 2000)):
                queue.append((_safe(lambda i=index: value.raw_get(i)), path + (index,)))


#: Streams that say what they are, whatever refers to them.
_STREAM_KINDS = {"/XRef": "cross-reference stream", "/ObjStm": "object stream", "/Metadata": "metadata"}
_UNDER_ROOT = {
    "/OpenAction": "catalog action", "/AA": "catalog action", "/DSS": "validation data (DSS)",
    "/Metadata": "metadata", "/StructTreeRoot": "structure tree", "/AcroForm": "form field",
    "/Outlines": "bookmarks", "/Perms": "permissions", "/OCProperties": "optional content",
}
_UNDER_PAGE = {"/Contents": "page content", "/Resources": "page resources", "/Annots": "annotation",
               "/AA": "page action", "/Thumb": "page thumbnail"}


def _classify(path: tuple[Any, ...] | None, pages: dict[generic.Reference, int], resolver: HistoricalResolver,
              ref: generic.Reference) -> tuple[str, int | None, str]:
    """(kind, page number, words for the object) from where the object is used."""
    value = _safe(lambda: resolver(ref))
    if isinstance(value, generic.StreamObject) and value.get("/Type") in _STREAM_KINDS:
        kind = _STREAM_KINDS[value.get("/Type")]
        return kind, None, f"the {kind}"
    if ref in pages:
        return "page", pages[ref], f"the dictionary of page {pages[ref]}"
    if path is None:
        return "unreferenced object", None, "an object nothing refers to"
    if path == ("/Root",):
        return "document catalog", None, "the document catalog"
    if path[:1] == ("/Info",):
        return "document information", None, "the document information dictionary"
    if path[:2] == ("/Root", "/Names"):
        tree = path[2] if len(path) > 2 else None
        kind = {"/JavaScript": "document JavaScript", "/EmbeddedFiles": "embedded file"}.get(str(tree), "name tree")
        return kind, None, f"an entry of the document's {str(tree or '/Names').lstrip('/')} names"
    page, rest = _page_in_path(path, resolver, pages)
    if page is not None:
        kind = _UNDER_PAGE.get(rest[0], "page entry") if rest else "page"
        if kind == "page resources" and len(rest) > 1 and rest[1] in ("/Font", "/XObject"):
            kind = "font" if rest[1] == "/Font" else "image or form XObject"
        if kind == "annotation":
            annotation = _safe(lambda: _PathWalk(resolver, path[:len(path) - len(rest) + 2]).value())
            if isinstance(annotation, generic.DictionaryObject) and annotation.get("/Subtype") == "/Widget":
                name = _widget_field_name(annotation)
                words = f"form field '{name}'" if len(rest) <= 2 else f"the appearance of form field '{name}'"
                return "form field", page, f"{words} on page {page}"
            subtype = _safe(lambda: str(annotation.get("/Subtype", "")).lstrip("/"))
            words = f"a {subtype} annotation" if len(rest) <= 2 else f"the appearance of a {subtype} annotation"
            return kind, page, f"{words} on page {page}"
        return kind, page, f"the {kind} of page {page}"
    if len(path) >= 2 and path[0] == "/Root" and path[1] == "/AcroForm":
        name = _field_name_on_path(path, resolver)
        if name is None:
            return "form", None, "the document's form"
        appearance = "/AP" in path
        return ("form field", None, f"the appearance of form field '{name}'" if appearance
                else f"form field '{name}'")
    if len(path) >= 2 and path[0] == "/Root" and path[1] in _UNDER_ROOT:
        kind = _UNDER_ROOT[path[1]]
        return kind, None, f"the document's {kind}"
    if path[:2] == ("/Root", "/Pages"):
        return "page tree", None, "a node of the page tree"
    return "document object", None, "an object at " + "".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path)


class _PathWalk:
    """The value at a path from a revision's trailer."""

    def __init__(self, resolver: HistoricalResolver, path: tuple[Any, ...]) -> None:
        self.resolver, self.path = resolver, path

    def value(self) -> Any:
        current: Any = self.resolver.trailer_view
        for key in self.path:
            current = current.raw_get(key)
            if isinstance(current, generic.IndirectObject):
                current = current.get_object()
        return current


def _widget_field_name(widget: generic.DictionaryObject) -> str:
    """The fully qualified name of the field a widget belongs to (bounded /Parent walk)."""
    names: list[str] = []
    node: Any = widget
    for _ in range(32):
        if not isinstance(node, generic.DictionaryObject):
            break
        if "/T" in node:
            names.append(str(node.get("/T")))
        node = _safe(lambda n=node: n.get("/Parent"))
    return ".".join(reversed(names)) or "(unnamed)"


def _field_name_on_path(path: tuple[Any, ...], resolver: HistoricalResolver) -> str | None:
    """The (partial) names of the form fields a path goes through, joined with dots."""
    current: Any = resolver.trailer_view
    names: list[str] = []
    for key in path:
        current = _safe(lambda c=current, k=key: c.raw_get(k))
        current = _safe(lambda c=current: c.get_object()) if isinstance(current, generic.IndirectObject) else current
        if isinstance(current, generic.DictionaryObject) and "/T" in current and key != "/AP":
            names.append(str(current.get("/T")))
        if key == "/AP":
            break
    return ".".join(names) or None


def _page_in_path(path: tuple[Any, ...], resolver: HistoricalResolver,
                  pages: dict[generic.Reference, int]) -> tuple[int | None, tuple[Any, ...]]:
    """The page a path goes through (the last one) and the rest of the path after it."""
    current: Any = resolver.trailer_view
    found: tuple[int | None, tuple[Any, ...]] = (None, ())
    for index, key in enumerate(path):
        current = _safe(lambda c=current, k=key: c.raw_get(k))
        if current is None:
            break
        if isinstance(current, generic.IndirectObject):
            if current.reference in pages:
                found = (pages[current.reference], path[index + 1:])
            current = _safe(lambda c=current: c.get_object())
    return found


def _key_changes(base: HistoricalResolver, new: HistoricalResolver, ref: generic.Reference) -> tuple[str, set[str]]:
    """For a re-defined object: words for what changed, and the dictionary keys involved."""
    before, after = _safe(lambda: base(ref)), _safe(lambda: new(ref))
    if isinstance(before, generic.StreamObject) or isinstance(after, generic.StreamObject):
        same = (isinstance(before, generic.StreamObject) and isinstance(after, generic.StreamObject)
                and before.encoded_data == after.encoded_data)
        return ("", set()) if same else (": its content was replaced", {"(content)"})
    if not isinstance(before, generic.DictionaryObject) or not isinstance(after, generic.DictionaryObject):
        return "", {"(value)"}
    added = sorted(set(after.keys()) - set(before.keys()))
    removed = sorted(set(before.keys()) - set(after.keys()))
    changed = sorted(k for k in set(before.keys()) & set(after.keys()) if before.raw_get(k) != after.raw_get(k))
    words = [f"{label} {', '.join(keys[:6])}" for label, keys in
             (("added", added), ("removed", removed), ("changed", changed)) if keys]
    return ((": " + "; ".join(words)) if words else ""), set(added) | set(removed) | set(changed)


__all__ = ["ChangeReview", "describe_revision", "review_signature", "unlisted_data", "visibility_changes"]
