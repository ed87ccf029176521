"""Putting a stamp into a PDF revision. pyHanko gives a signature field exactly one widget, so
the field's widget carries the stamp on the first selected page and, for "every page", the other
pages get the same appearance painted into their content in the SAME incremental revision, before
the signature: the signature then covers them. A PDF that is already signed cannot have its pages
changed (validators see a modified page), so there a stamp goes on one page only, as the widget
of the new signature or document time-stamp field, which pyHanko's and Acrobat's change rules
accept as form filling. A certified PDF takes no stamp at all: pyHanko rejects any new visible
field after a certification signature."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.form_tools import get_single_field_annot
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.sign import fields

from remotesign.formats.stamps.appearance import StampStyle, make_style, natural_size
from remotesign.formats.stamps.spec import StampSpec, stamp_error


@dataclass(frozen=True)
class StampPlacement:
    """What ``PdfSigner`` needs for a visible signature: ``PdfSigner(..., stamp_style=style,
    new_field_spec=field_spec)`` and ``appearance_text_params=text_params``. ``pages`` are the
    0-based pages that show the stamp (the widget's first)."""

    field_spec: fields.SigFieldSpec
    style: StampStyle
    pages: tuple[int, ...]
    size: tuple[float, float]
    text_params: dict[str, Any] = field(default_factory=dict)


def page_count(writer: IncrementalPdfFileWriter) -> int:
    return int(writer.root["/Pages"]["/Count"])


def resolve_pages(spec: StampSpec, count: int) -> list[int]:
    """0-based pages for ``spec.page`` (1..n, -1 last, 0 all) in a document of ``count`` pages."""
    if spec.page == 0:
        return list(range(count))
    if spec.page == -1:
        return [count - 1]
    if spec.page > count:
        raise stamp_error(f"the stamp page {spec.page} is out of range: the document has {count} page(s)")
    return [spec.page - 1]


def _media_box(writer: IncrementalPdfFileWriter, page_index: int) -> tuple[float, float, float, float]:
    page_ref, _ = writer.find_page_for_modification(page_index)
    node: Any = page_ref.get_object()
    while node is not None:
        box = node.get("/CropBox") or node.get("/MediaBox")
        if box is not None:
            x1, y1, x2, y2 = (float(v) for v in box)
            return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)
        parent = node.get("/Parent")
        node = parent.get_object() if parent is not None else None
    return 0.0, 0.0, 612.0, 792.0  # ISO 32000 has no default; US Letter is what readers assume


def is_signed(writer: IncrementalPdfFileWriter) -> bool:
    """Whether the revision being extended already holds a signature or document time-stamp."""
    return bool(writer.prev.embedded_signatures)


def is_certified(writer: IncrementalPdfFileWriter) -> bool:
    """Whether the document carries a certification (DocMDP) signature."""
    perms = writer.prev.root.get("/Perms")
    return perms is not None and "/DocMDP" in perms.get_object()


def stamped_field(writer: IncrementalPdfFileWriter, spec: StampSpec, field_name: str, signing_time: datetime,
                  signer_name: str | None) -> StampPlacement:
    """Check ``spec`` against the document, paint the stamp on the extra pages of an "every page"
    stamp into ``writer`` (the revision the signature will cover) and return the visible field's
    spec and style for the signature itself. Raises ``FormatError('invalid_stamp')`` for a page
    out of range, a stamp off the page, every page of an already-signed PDF, or a certified PDF."""
    pages = resolve_pages(spec, page_count(writer))
    if is_certified(writer):
        raise stamp_error("the PDF is certified: validators (pyHanko by default) reject a new visible field "
                          "after a certification signature, so it cannot take a stamp")
    if len(pages) > 1 and is_signed(writer):
        raise stamp_error("the PDF is already signed: a stamp on every page would change signed pages; "
                          "choose one page (a number or -1)")
    style = make_style(spec, spec.lines(signer_name, signing_time))
    width, height = natural_size(style)
    box = (spec.x, spec.y, spec.x + width, spec.y + height)
    for page in pages:
        x1, y1, x2, y2 = _media_box(writer, page)
        if box[0] < x1 or box[1] < y1 or box[2] > x2 + 0.5 or box[3] > y2 + 0.5:
            raise stamp_error(f"the stamp ({width:.0f}x{height:.0f} pt at {spec.x:g},{spec.y:g}) does not fit on "
                              f"page {page + 1} ({x2 - x1:.0f}x{y2 - y1:.0f} pt)")
    if len(pages) > 1:
        stamp = style.create_stamp(writer, BoxConstraints(width=width, height=height), {})
        for page in pages[1:]:
            stamp.apply(page, spec.x, spec.y)  # one form XObject, painted on each page
    return StampPlacement(field_spec=fields.SigFieldSpec(field_name, on_page=pages[0], box=box), style=style,
                          pages=tuple(pages), size=(width, height))


def add_stamp_field(writer: IncrementalPdfFileWriter, spec: StampSpec, field_name: str, signing_time: datetime,
                    signer_name: str | None = None) -> StampPlacement:
    """Create an empty signature field ``field_name`` whose widget shows the stamp, for a filler
    that draws no appearance itself (pyHanko's document time-stamper fills an existing field)."""
    placement = stamped_field(writer, spec, field_name, signing_time, signer_name)
    fields.append_signature_field(writer, placement.field_spec)
    form_fields = writer.root["/AcroForm"]["/Fields"]
    sig_field = next(f.get_object() for f in form_fields if f.get_object().get("/T") == field_name)
    annot = get_single_field_annot(sig_field)
    width, height = placement.size
    stamp = placement.style.create_stamp(writer, BoxConstraints(width=width, height=height), {})
    stamp.apply_appearance(annot)
    annot[generic.pdf_name("/F")] = generic.NumberObject(4)  # printed
    writer.update_container(annot)
    return placement
