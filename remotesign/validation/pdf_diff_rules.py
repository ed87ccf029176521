"""The service's difference-analysis policy: pyHanko's whitelist (``pyhanko.sign.diff_analysis``)
with the rules it lacks.

pyHanko explains every object an incremental update writes with a rule and rejects the update
when one object stays unexplained; an object that already existed is only explained when every
path through which the signed revision used it is approved. That design is kept. The rules here
accept updates that real signing products write and that change nothing a reader displays,
which pyHanko's defaults reject:

* a tagged PDF's structure tree growing when a signature field is added (Acrobat, LibreOffice);
* free-list entries for object numbers the signed revision never used;
* an object number the signed revision's trailer pointed at before it existed (PDFBox copies
  LibreOffice's ``/AdditionalStreams`` trailer key with a dangling reference), now a dictionary;
* a page dictionary re-written with value-identical entries (new object numbers, same content)
  when a signature widget is added to it;
* comment annotations (sticky notes without their own appearance, pop-ups) where annotations
  are permitted: they do not paint over the signed content.

Every other added annotation (FreeText, Stamp, Square, Ink, links, widgets of fields that are
not new signature fields, ...) is refused by name: it can overlay what was signed (the "evil
annotation" attack). pyHanko's orphan detection raises on dangling references; the policy here
finds orphans itself, tolerating them."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from pyhanko.pdf_utils import generic, misc
from pyhanko.pdf_utils.reader import HistoricalResolver, RawPdfPath
from pyhanko.sign.diff_analysis import (CatalogModificationRule, DocInfoRule, DSSCompareRule, FieldComparisonContext,
                                        FieldMDPRule, FormUpdate, FormUpdatingRule, GenericFieldModificationRule, MetadataUpdateRule,
                                        ModificationLevel, ObjectStreamRule, QualifiedWhitelistRule, ReferenceUpdate,
                                        SigFieldCreationRule, SigFieldModificationRule, StandardDiffPolicy,
                                        SuspiciousModification, WhitelistRule, XrefStreamRule)
from pyhanko.sign.diff_analysis.commons import compare_key_refs
from pyhanko.sign.diff_analysis.constants import ROOT_EXEMPT_STRICT_COMPARISON
from pyhanko.sign.diff_analysis.rules.form_field_rules import _validate_dss_substructure
from pyhanko.sign.diff_analysis.rules_api import Context

#: Catalog keys another rule judges (pyHanko's set plus the structure tree).
_CATALOG_DELEGATED = ROOT_EXEMPT_STRICT_COMPARISON | frozenset({"/StructTreeRoot"})
#: Trailer keys with a meaning for readers; a dangling reference under any other key is inert.
_STANDARD_TRAILER_KEYS = frozenset({"/Root", "/Info", "/Encrypt", "/ID", "/Size", "/Prev", "/XRefStm"})
#: Annotation subtypes that mark a spot without painting content of their own.
_COMMENT_SUBTYPES = frozenset({"/Text", "/Popup"})
_DSS_STREAM_KEYS = frozenset({"/Certs", "/CRLs", "/OCSPs"})
_HIDDEN_FLAGS = 2 | 32
#: Page entries that index annotations and the structure tree; they do not change what is drawn.
_PAGE_INDEX_KEYS = frozenset({"/Annots", "/StructParents", "/Tabs"})          # Hidden, NoView
_MAX_COMPARE_DEPTH = 64
_MAX_COMPARE_NODES = 20_000


def _raw_value(container: Any, key: Any) -> Any:
    try:
        return container.raw_get(key)
    except (KeyError, IndexError, AttributeError):
        return None


def _old_usages(old: HistoricalResolver, ref: generic.Reference) -> set[RawPdfPath]:
    """Paths through which the signed revision used ``ref`` (pyHanko's reverse index, which its
    policy has loaded before any rule runs)."""
    old._load_reverse_xref_cache()  # noqa: SLF001 - the index pyHanko's own rules use
    return old._get_usages_of_ref(ref)  # noqa: SLF001


def _existed(old: HistoricalResolver, ref: generic.Reference) -> bool:
    if old.is_ref_unassignable(ref):
        return False
    return old.reader.xrefs.get_historical_ref(ref, old.revision) is not None


class StructureTreeRule(QualifiedWhitelistRule):
    """The logical structure tree (``/StructTreeRoot``) may grow: its new objects, and existing
    tree nodes re-written, approved only on their paths inside the tree. An object the signed
    revision also used elsewhere (a page, its content) keeps that path unapproved."""

    def apply_qualified(self, old: HistoricalResolver,
                        new: HistoricalResolver) -> Iterable[tuple[ModificationLevel, ReferenceUpdate]]:
        level = ModificationLevel.FORM_FILLING
        root_path = RawPdfPath("/Root", "/StructTreeRoot")
        _old_tree, new_tree = yield from misc.map_with_return(
            compare_key_refs("/StructTreeRoot", old, old.root, new.root),
            lambda ref: (level, ReferenceUpdate(ref, context_checked=Context.from_absolute(old, root_path))))
        if new_tree is None:
            return
        if not isinstance(new_tree, generic.DictionaryObject) or isinstance(new_tree, generic.StreamObject):
            raise SuspiciousModification("/StructTreeRoot is not a dictionary")
        since = old.revision + 1
        for ref in new.collect_dependencies(new.root.raw_get("/StructTreeRoot"), since_revision=since):
            yield level, ReferenceUpdate(ref)
        for ref in new.explicit_refs_in_revision():
            if not _existed(old, ref):
                continue
            paths = [p for p in _old_usages(old, ref) if _starts_with(p, ("/Root", "/StructTreeRoot"))]
            if not paths:
                continue
            value = new(ref)
            if isinstance(value, generic.StreamObject) or not isinstance(
                    value, (generic.DictionaryObject, generic.ArrayObject)):
                raise SuspiciousModification(f"structure tree node {ref.idnum} {ref.generation} R was replaced "
                                             "by something that is not a structure tree node")
            for path in paths:
                yield level, ReferenceUpdate(ref, context_checked=Context.from_absolute(old, path))
            for dep in new.collect_dependencies(value, since_revision=since):
                yield level, ReferenceUpdate(dep)


def _starts_with(path: RawPdfPath, prefix: tuple[str, ...]) -> bool:
    nodes = tuple(path.path)
    return nodes[:len(prefix)] == prefix


class FreedUnusedObjectRule(WhitelistRule):
    """A free-list entry for an object number the signed revision did not use changes nothing
    (DSS-produced files free never-allocated numbers with generation 65535)."""

    def apply(self, old: HistoricalResolver, new: HistoricalResolver) -> Iterable[ReferenceUpdate]:
        for ref in new.refs_freed_in_revision():
            if not _existed(old, ref) or not _old_usages(old, ref):
                yield ReferenceUpdate(ref)


class DanglingTrailerReferenceRule(WhitelistRule):
    """An object number that a non-standard key of the signed revision's trailer referenced
    before it existed (so readers saw null there) may be defined later as a plain dictionary."""

    def apply(self, old: HistoricalResolver, new: HistoricalResolver) -> Iterable[ReferenceUpdate]:
        for ref in new.explicit_refs_in_revision():
            if _existed(old, ref):
                continue
            paths = _old_usages(old, ref)
            if not paths or not all(p.path and p.path[0] not in _STANDARD_TRAILER_KEYS for p in paths):
                continue
            if isinstance(new(ref), generic.StreamObject):
                continue
            for path in paths:
                yield ReferenceUpdate(ref, context_checked=Context.from_absolute(old, path))


class DssRule(WhitelistRule):
    """The DSS may be updated as pyHanko's DSS rule allows, and further: VRI entries may be
    re-written or dropped (some products replace the whole DSS when they add validation data).
    The VRI only indexes validation data; nothing in the DSS is displayed. New entries are
    checked structurally by pyHanko's own VRI check."""

    def apply(self, old: HistoricalResolver, new: HistoricalResolver) -> Iterable[ReferenceUpdate]:
        dss_context = Context.from_absolute(old, RawPdfPath("/Root", "/DSS"))
        old_dss, new_dss = yield from misc.map_with_return(
            compare_key_refs("/DSS", old, old.root, new.root), ReferenceUpdate.curry_ref(context_checked=dss_context))
        if new_dss is None:
            return
        old_dss = old_dss if isinstance(old_dss, generic.DictionaryObject) else generic.DictionaryObject()
        if not isinstance(new_dss, generic.DictionaryObject) or isinstance(new_dss, generic.StreamObject):
            raise SuspiciousModification("/DSS is not a dictionary")
        unexpected = set(new_dss.keys()) - {"/Type", "/VRI", *_DSS_STREAM_KEYS}
        if unexpected:
            raise SuspiciousModification(f"unexpected keys in the DSS: {sorted(unexpected)}")
        yield from _validate_dss_substructure(old, new, old_dss, new_dss, _DSS_STREAM_KEYS, is_vri=False,
                                              context=dss_context)
        if "/VRI" not in new_dss:
            return
        vri_context = Context.from_absolute(old, RawPdfPath("/Root", "/DSS", "/VRI"))
        old_vri, new_vri = yield from misc.map_with_return(
            compare_key_refs("/VRI", old, old_dss, new_dss), ReferenceUpdate.curry_ref(context_checked=vri_context))
        if not isinstance(new_vri, generic.DictionaryObject) or isinstance(new_vri, generic.StreamObject):
            raise SuspiciousModification("/VRI is not a dictionary")
        old_vri = old_vri if isinstance(old_vri, generic.DictionaryObject) else generic.DictionaryObject()
        kept = generic.DictionaryObject({k: old_vri.raw_get(k) for k in old_vri.keys()
                                         if _raw_value(new_vri, k) == old_vri.raw_get(k)})
        yield from DSSCompareRule._check_vri(old, new, kept, new_vri)  # noqa: SLF001 - pyHanko's entry checks


class OrphanRule(WhitelistRule):
    """New objects nothing refers to (some writers leave them) change nothing; found here with
    dangling references tolerated, where pyHanko's own search raises on them. A number the signed
    revision referred to before it existed is not an orphan: defining it changes what that
    reference shows (pyHanko's own orphan search approves it)."""

    def apply(self, old: HistoricalResolver, new: HistoricalResolver) -> Iterable[ReferenceUpdate]:
        candidates = {ref for ref in new.explicit_refs_in_revision()
                      if not _existed(old, ref) and not _old_usages(old, ref)}
        if not candidates:
            return
        reachable: set[generic.Reference] = set()
        roots: list[Any] = [new.trailer_view]
        roots += [new(ref) for ref in new.explicit_refs_in_revision() if _existed(old, ref)]
        for root in roots:
            _collect_new(new, root, reachable, old.revision + 1)
        for ref in candidates - reachable:
            yield ReferenceUpdate(ref)


def _collect_new(resolver: HistoricalResolver, obj: Any, seen: set[generic.Reference], since: int) -> None:
    """Like ``collect_dependencies(since_revision=...)``, without raising on dangling references."""
    stack = [obj]
    xrefs = resolver.reader.xrefs
    while stack:
        item = stack.pop()
        if isinstance(item, generic.IndirectObject):
            ref = item.reference
            if ref in seen:
                continue
            try:
                introduced = xrefs.get_introducing_revision(ref)
            except KeyError:
                continue
            if introduced < since:
                continue
            seen.add(ref)
            try:
                stack.append(resolver(ref))
            except misc.PdfReadError:
                continue
        elif isinstance(item, generic.DictionaryObject):
            stack.extend(item.raw_get(k) for k in item.keys())
        elif isinstance(item, generic.ArrayObject):
            stack.extend(item.raw_get(i) for i in range(len(item)))


# --- pages: widgets of new signature fields, comment annotations ------------------------------------
class PageAnnotationRule(SigFieldCreationRule):
    """pyHanko's signature-field creation rule, with its own walk over the pages: a page may gain
    widgets of new signature fields (as pyHanko allows) and comment annotations (at level
    ANNOTATIONS); page entries other than ``/Annots`` may be re-written only with value-identical
    content. Any other annotation added to a page is refused by subtype and page number."""

    def __init__(self) -> None:
        super().__init__(approve_widget_bindings=False)

    def apply(self, context: FieldComparisonContext) -> Iterable[tuple[ModificationLevel, FormUpdate]]:
        yield from super().apply(context)
        widgets = _new_signature_widgets(context)
        old_pages = page_refs(context.old)
        new_pages = page_refs(context.new)
        if old_pages != new_pages:
            return  # page tree changes stay unexplained (the change report names them)
        for number, page_ref in enumerate(new_pages, 1):
            yield from _page_update(context.old, context.new, page_ref, number, widgets)


def _new_signature_widgets(context: FieldComparisonContext) -> dict[generic.Reference, str]:
    out: dict[generic.Reference, str] = {}
    for name, spec in context.field_specs.items():
        if spec.field_type != "/Sig" or spec.old_field_ref is not None or spec.new_field_ref is None:
            continue
        field = spec.new_field_ref.get_object()
        kids = _raw_value(field, "/Kids")
        if kids is None:
            out[spec.new_field_ref] = name
            continue
        for kid in kids.get_object() if isinstance(kids, generic.IndirectObject) else kids:
            if isinstance(kid, generic.IndirectObject) and "/T" not in kid.get_object():
                out[kid.reference] = name
    return out


def page_refs(resolver: HistoricalResolver) -> list[generic.Reference]:
    """Page object references of a revision in reading order (bounded; loops raise)."""
    out: list[generic.Reference] = []
    seen: set[generic.Reference] = set()

    def walk(node_value: Any, depth: int) -> None:
        if depth > _MAX_COMPARE_DEPTH:
            raise misc.PdfReadError("page tree too deep")
        kids = node_value.get_object().get("/Kids")
        for kid in kids or ():
            if not isinstance(kid, generic.IndirectObject) or kid.reference in seen:
                raise misc.PdfReadError("malformed page tree")
            seen.add(kid.reference)
            kid_value = kid.get_object()
            if kid_value.get("/Type") == "/Pages":
                walk(kid, depth + 1)
            else:
                out.append(kid.reference)

    walk(resolver.root.raw_get("/Pages"), 0)
    return out


def _annots(page: generic.DictionaryObject) -> tuple[list[generic.Reference], generic.Reference | None]:
    value = _raw_value(page, "/Annots")
    if value is None:
        return [], None
    ref = value.reference if isinstance(value, generic.IndirectObject) else None
    items = value.get_object()
    if not isinstance(items, generic.ArrayObject):
        raise SuspiciousModification("/Annots is not an array")
    out = []
    for item in (items.raw_get(i) for i in range(len(items))):
        if not isinstance(item, generic.IndirectObject):
            raise SuspiciousModification("/Annots holds a direct annotation dictionary")
        out.append(item.reference)
    return out, ref


def _page_update(old: HistoricalResolver, new: HistoricalResolver, page_ref: generic.Reference, number: int,
                 widgets: dict[generic.Reference, str]) -> Iterator[tuple[ModificationLevel, FormUpdate]]:
    old_page, new_page = old(page_ref), new(page_ref)
    if not isinstance(old_page, generic.DictionaryObject) or not isinstance(new_page, generic.DictionaryObject):
        return
    old_annots, old_annots_ref = _annots(old_page)
    new_annots, new_annots_ref = _annots(new_page)
    if old_annots == new_annots:
        return
    removed = set(old_annots) - set(new_annots)
    if removed:
        raise SuspiciousModification(f"annotations were removed from page {number}")
    added = [ref for ref in new_annots if ref not in set(old_annots)]
    level = ModificationLevel.LTA_UPDATES
    field_names = set()
    extra: set[generic.Reference] = set()
    for ref in added:
        if ref in widgets:
            field_names.add(widgets[ref])
            continue
        annot = new(ref)
        subtype = str(annot.get("/Subtype", "(none)")) if isinstance(annot, generic.DictionaryObject) else "(none)"
        if not _is_comment(annot):
            raise SuspiciousModification(f"a {subtype.lstrip('/')} annotation ({ref.idnum} {ref.generation} R) "
                                         f"was added to page {number}; it can overlay the signed content")
        if _existed(old, ref):
            raise SuspiciousModification(f"annotation {ref.idnum} {ref.generation} R on page {number} re-uses an "
                                         "object of the signed revision")
        level = ModificationLevel.ANNOTATIONS
        extra.add(ref)
        extra |= new.collect_dependencies(annot, since_revision=old.revision + 1)
    new_deps = _same_page_entries(old, new, old_page, new_page)
    field_name = next(iter(field_names)) if len(field_names) == 1 and not extra else None
    # Page objects are reachable from many places (link destinations, /P of annotations): the page
    # may change only in /Annots plus value-identical entries, so approve it on every path.
    yield level, FormUpdate(updated_ref=page_ref, field_name=field_name, valid_when_locked=field_name is not None)
    if new_annots_ref is not None and (new_annots_ref == old_annots_ref or not _existed(old, new_annots_ref)):
        yield level, FormUpdate(updated_ref=new_annots_ref, field_name=field_name,
                                valid_when_locked=field_name is not None,
                                context_checked=Context.relative_to(old_page, "/Annots")
                                if old_annots_ref is None else None)
    for ref in extra | new_deps:
        yield level, FormUpdate(updated_ref=ref, field_name=None)


def _is_comment(annot: Any) -> bool:
    if not isinstance(annot, generic.DictionaryObject) or isinstance(annot, generic.StreamObject):
        return False
    if str(annot.get("/Subtype", "")) in _COMMENT_SUBTYPES and "/AP" not in annot:
        return True
    flags = annot.get("/F", 0)
    return isinstance(flags, int) and bool(flags & _HIDDEN_FLAGS) and "/AA" not in annot and "/A" not in annot


def _same_page_entries(old: HistoricalResolver, new: HistoricalResolver, old_page: generic.DictionaryObject,
                       new_page: generic.DictionaryObject) -> set[generic.Reference]:
    """New objects a page re-written with value-identical entries (besides /Annots) refers to;
    SuspiciousModification when any entry's value differs."""
    keys = (set(old_page.keys()) | set(new_page.keys())) - _PAGE_INDEX_KEYS
    fresh: set[generic.Reference] = set()
    budget = [_MAX_COMPARE_NODES]
    for key in sorted(keys):
        if not _same_value(old, new, _raw_value(old_page, key), _raw_value(new_page, key), fresh, 0, budget):
            raise SuspiciousModification(f"the page entry {key} changed")
    return fresh


def _same_value(old: HistoricalResolver, new: HistoricalResolver, a: Any, b: Any, fresh: set[generic.Reference],
                depth: int, budget: list[int]) -> bool:
    """Whether ``b`` (new revision) has the value ``a`` had (signed revision). An old object
    referenced unchanged is equal by reference (re-written old objects are judged by the policy
    itself); a new object is compared by content and recorded in ``fresh``."""
    budget[0] -= 1
    if budget[0] < 0 or depth > _MAX_COMPARE_DEPTH:
        return False
    if isinstance(b, generic.IndirectObject):
        ref = b.reference
        if isinstance(a, generic.IndirectObject) and a.reference == ref:
            return True
        if _existed(old, ref):
            return False
        fresh.add(ref)
        b = new(ref)
    if isinstance(a, generic.IndirectObject):
        a = old(a.reference)
    if isinstance(a, generic.StreamObject) or isinstance(b, generic.StreamObject):
        return (isinstance(a, generic.StreamObject) and isinstance(b, generic.StreamObject)
                and a.encoded_data == b.encoded_data and _same_dict(old, new, a, b, fresh, depth, budget))
    if isinstance(a, generic.DictionaryObject):
        return isinstance(b, generic.DictionaryObject) and _same_dict(old, new, a, b, fresh, depth, budget)
    if isinstance(a, generic.ArrayObject):
        return (isinstance(b, generic.ArrayObject) and len(a) == len(b) and all(
            _same_value(old, new, a.raw_get(i), b.raw_get(i), fresh, depth + 1, budget) for i in range(len(a))))
    if isinstance(a, (generic.TextStringObject, generic.ByteStringObject)):
        return isinstance(b, (generic.TextStringObject, generic.ByteStringObject)) and a.original_bytes == b.original_bytes
    return type(a) is type(b) and a == b


def _same_dict(old: HistoricalResolver, new: HistoricalResolver, a: generic.DictionaryObject,
               b: generic.DictionaryObject, fresh: set[generic.Reference], depth: int, budget: list[int]) -> bool:
    if set(a.keys()) != set(b.keys()):
        return False
    return all(_same_value(old, new, a.raw_get(k), b.raw_get(k), fresh, depth + 1, budget) for k in a.keys()
               if k != "/Length")


class ChangedOnly(FieldMDPRule):
    """A field rule whose updates are kept only for objects that did change after the signed
    revision: pyHanko's in-place appearance check also reports appearance streams last written
    before the signature, which then trip over field locks (FieldMDP) they never touched."""

    def __init__(self, rule: FieldMDPRule) -> None:
        self.rule = rule

    def apply(self, context: FieldComparisonContext) -> Iterable[tuple[ModificationLevel, FormUpdate]]:
        xrefs = context.old.reader.xrefs
        for level, update in self.rule.apply(context):
            ref = update.updated_ref
            if (_existed(context.old, ref) and xrefs.get_historical_ref(ref, context.old.revision)
                    == xrefs.get_historical_ref(ref, context.new.revision)):
                continue
            yield level, update


# --- the policy ----------------------------------------------------------------------------------------
def change_policy() -> StandardDiffPolicy:
    """pyHanko's default rules with the additions above; object freeing is judged by
    :class:`FreedUnusedObjectRule` and orphans by :class:`OrphanRule`."""
    lta = ModificationLevel.LTA_UPDATES
    return StandardDiffPolicy(
        global_rules=[
            CatalogModificationRule(ignored_keys=_CATALOG_DELEGATED),
            StructureTreeRule(),
            DocInfoRule().as_qualified(lta),
            XrefStreamRule().as_qualified(lta),
            ObjectStreamRule().as_qualified(lta),
            DssRule().as_qualified(lta),
            MetadataUpdateRule().as_qualified(lta),
            FreedUnusedObjectRule().as_qualified(lta),
            DanglingTrailerReferenceRule().as_qualified(lta),
            OrphanRule().as_qualified(lta),
        ],
        form_rule=FormUpdatingRule(field_rules=[PageAnnotationRule(), ChangedOnly(SigFieldModificationRule()),
                                                ChangedOnly(GenericFieldModificationRule())]),
        reject_object_freeing=False,
        ignore_orphaned_objects=False,
    )


__all__ = ["change_policy", "page_refs"]
