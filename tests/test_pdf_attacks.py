"""Changes made to a signed PDF after signing: every attack class of the public PDF-signature
research (incremental saving, signature wrapping, universal signature forgery, shadow hide /
replace / hide-and-replace, evil annotation, sneaky signature) as a file made here, and the
changes a signature does permit (validation data, document time-stamps, a second signature,
permitted form filling, comments).

Each file is judged twice: by remotesign (EN 319 102-1 outcome, and which change the report
names: revision, page, object, kind) and by pyHanko's own difference analysis (coverage,
ModificationLevel, docmdp_ok), so the test also shows where pyHanko alone would have let an
attack through."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields
from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY, ModificationLevel
from pyhanko.sign.fields import FieldMDPAction, FieldMDPSpec, MDPPerm
from pyhanko.sign.validation.status import SignatureCoverageLevel

from remotesign.validation.engine import validate_path
from remotesign.validation.etsi_report import etsi_validation_report
from remotesign.validation.model import DocumentChange, Indication, SignatureResult, SubIndication
from remotesign.validation.reports import detailed_report, report_v1, report_v2, text_report
from tests import pdf_forge as forge
from tests.pades_pki import Pki, make_pki, sign_pdf
from tests.pdfgen import pdf_bytes

pytestmark = pytest.mark.slow


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    with make_pki(tmp_path_factory.mktemp("pdf-attacks")) as made:
        yield made


@pytest.fixture(scope="module")
def signer(pki: Pki):  # type: ignore[no-untyped-def]
    return pki.signer()[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pdfs")


def sign(pki: Pki, signer, workdir: Path, source: bytes, level: str = "B", **kwargs: object) -> bytes:  # type: ignore[no-untyped-def]
    name = f"signed-{len(list(workdir.iterdir()))}.pdf"
    return run(sign_pdf(pki, signer, level, workdir / name, source=source, **kwargs)).read_bytes()  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def approved(pki: Pki, signer, workdir: Path) -> bytes:  # type: ignore[no-untyped-def]
    """The contract with an approval signature (revision 2)."""
    return sign(pki, signer, workdir, forge.contract_pdf())


def validate(pki: Pki, data: bytes, tmp_path: Path, field: str = "Signature1") -> SignatureResult:
    path = tmp_path / "judged.pdf"
    path.write_bytes(data)
    document = run(validate_path(path, pki.options(), filename=path.name))
    found = [s for s in document.signatures if s.id == field]
    assert found, [s.id for s in document.signatures]
    signature = found[0]
    # every report names what the validator found
    for message in signature.errors:
        assert message in text_report(document)
        assert message in str(report_v1(document)) and message in str(report_v2(document))
        assert message in str(detailed_report(document))
        assert message.split(".")[0].encode() in etsi_validation_report(document)
    return signature


def pyhanko_view(data: bytes, field: str = "Signature1") -> tuple[SignatureCoverageLevel, ModificationLevel | None,
                                                                   bool | None]:
    """pyHanko's own verdict: coverage, modification level (None = suspicious), docmdp_ok."""
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    embedded = next(e for e in reader.embedded_signatures if e.field_name == field)
    embedded.compute_integrity_info(diff_policy=DEFAULT_DIFF_POLICY)
    info = embedded.summarise_integrity_info()
    return info["coverage"], getattr(info["diff_result"], "modification_level", None), info["docmdp_ok"]


def refused(signature: SignatureResult, *, kind: str, revision: int, page: int | None = None) -> DocumentChange:
    """The signature failed with FORMAT_FAILURE because of a named change of ``kind``."""
    assert (signature.indication, signature.sub_indication) == (Indication.TOTAL_FAILED,
                                                                 SubIndication.FORMAT_FAILURE), signature.errors
    changes = [c for c in signature.changes if not c.allowed]
    match = [c for c in changes if c.kind == kind and (page is None or c.page == page)]
    assert match, [(c.kind, c.page, c.description) for c in changes]
    change = match[0]
    assert change.revision == revision, change
    assert f"Revision {revision}" in change.description or "byte" in change.description, change
    assert any(change.description in e for e in signature.errors)
    return change


def passed(signature: SignatureResult) -> list[DocumentChange]:
    assert (signature.indication, signature.sub_indication) == (Indication.TOTAL_PASSED, None), signature.errors
    assert all(c.allowed for c in signature.changes), signature.changes
    return signature.changes


def page_body(data: bytes) -> bytes:
    return forge.object_body(data, forge.PAGE)


def with_contents(page: bytes, contents: bytes) -> bytes:
    """The page dictionary with /Contents replaced."""
    import re
    return re.sub(rb"/Contents\s*(\[[^\]]*\]|\d+ \d+ R)", b"/Contents " + contents, page, count=1)


def with_annots(page: bytes, extra: bytes) -> bytes:
    import re
    if b"/Annots" in page:
        return re.sub(rb"/Annots\s*\[", b"/Annots [" + extra + b" ", page, count=1)
    return page.rstrip()[:-2] + b" /Annots [" + extra + b"] >>"


# --- incremental saving attack ------------------------------------------------------------------------------
def test_new_page_content_after_signing_fails(pki: Pki, approved: bytes, tmp_path: Path) -> None:
    """The issue's case: an update appends a content stream to page 1 with 'PAY 1000000 EUR'."""
    n = forge.next_object_number(approved)
    forged = forge.incremental_update(approved, {
        n: forge.stream(forge.FORGED_TEXT),
        forge.PAGE: with_contents(page_body(approved), b"[5 0 R %d 0 R]" % n)})
    change = refused(validate(pki, forged, tmp_path), kind="page", revision=3, page=1)
    assert "page 1" in change.description and "/Contents" in change.description and "4 0 R" in change.description
    assert pyhanko_view(forged)[1:] == (None, False)


def test_new_content_after_a_service_style_b_lta_fails(pki: Pki, signer, workdir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lta = sign(pki, signer, workdir, forge.contract_pdf(), level="LTA")
    assert passed(validate(pki, lta, tmp_path))
    n = forge.next_object_number(lta)
    forged = forge.incremental_update(lta, {
        n: forge.deflated(forge.FORGED_TEXT), forge.PAGE: with_contents(page_body(lta), b"[5 0 R %d 0 R]" % n)})
    total = PdfFileReader(io.BytesIO(forged), strict=False).xrefs.total_revisions
    refused(validate(pki, forged, tmp_path), kind="page", revision=total, page=1)
    assert pyhanko_view(forged)[1:] == (None, False)


def test_objects_appended_without_cross_reference_data_fail(pki: Pki, approved: bytes, tmp_path: Path) -> None:
    """Objects after the last %%EOF that no xref section lists: pyHanko's revision history does
    not see them (it reports no modification), viewers that repair files show them."""
    forged = forge.incremental_update(approved, {forge.CONTENT: forge.stream(forge.FORGED_TEXT)}, xref=False)
    change = refused(validate(pki, forged, tmp_path), kind="unlisted object", revision=3)
    assert change.obj == "5 0 R" and "incremental saving attack" in change.description
    assert pyhanko_view(forged) == (SignatureCoverageLevel.ENTIRE_REVISION, ModificationLevel.NONE, True)


def test_update_without_prev_does_not_pass(pki: Pki, approved: bytes, tmp_path: Path) -> None:
    """An update whose trailer drops /Prev hides the signed revision from the history."""
    forged = forge.incremental_update(approved, {forge.CONTENT: forge.stream(forge.FORGED_TEXT)}, prev=False)
    path = tmp_path / "noprev.pdf"
    path.write_bytes(forged)
    document = run(validate_path(path, pki.options(), filename=path.name))
    assert document.signatures and all(not s.passed for s in document.signatures)
    assert all(s.sub_indication is SubIndication.FORMAT_FAILURE for s in document.signatures)


# --- signature wrapping and universal signature forgery --------------------------------------------------------
def test_signature_wrapping_fails(pki: Pki, approved: bytes, tmp_path: Path) -> None:
    """The second signed part moved behind forged objects: the digest still matches."""
    forged = forge.signature_wrapping(approved, {forge.CONTENT: forge.stream(forge.FORGED_TEXT)})
    signature = validate(pki, forged, tmp_path)
    change = refused(signature, kind="byte range", revision=1)     # the forged file has one revision
    assert "signature wrapping" in change.description
    coverage, _level, ok = pyhanko_view(forged)
    assert coverage < SignatureCoverageLevel.ENTIRE_REVISION and ok is False


def _copied_cms(approved: bytes) -> bytes:
    return PdfFileReader(io.BytesIO(approved), strict=False).embedded_signatures[0].pkcs7_content


@pytest.mark.parametrize("variant", ["empty-contents", "no-byterange", "null-byterange", "zero-byterange",
                                     "short-byterange"])
def test_universal_signature_forgery_fails(pki: Pki, approved: bytes, variant: str, tmp_path: Path) -> None:
    """A signature field added to an unsigned contract whose signature dictionary carries a
    real CMS (copied from a signed file) with a missing, null or degenerate /ByteRange, or an
    empty /Contents: never valid, and pyHanko cannot validate it either."""
    contents = b"<>" if variant == "empty-contents" else b"<" + _copied_cms(approved).hex().encode() + b">"
    byte_range = {"no-byterange": b"", "null-byterange": b"/ByteRange null", "zero-byterange": b"/ByteRange [0 0 0 0]",
                  "short-byterange": b"/ByteRange [0 10]", "empty-contents": b"/ByteRange [0 10 20 30]"}[variant]
    base = forge.contract_pdf(with_field=False)
    n = forge.next_object_number(base)
    forged = forge.incremental_update(base, {
        n: b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /ETSI.CAdES.detached " + byte_range
           + b" /Contents " + contents + b" >>",
        n + 1: b"<< /Type /Annot /Subtype /Widget /FT /Sig /T (Signature1) /V %d 0 R /F 132 /P 4 0 R "
               b"/Rect [0 0 0 0] >>" % n,
        forge.CATALOG: b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [%d 0 R] /SigFlags 3 >> >>" % (n + 1),
        forge.PAGE: with_annots(page_body(base), b"%d 0 R" % (n + 1))})
    path = tmp_path / f"usf-{variant}.pdf"
    path.write_bytes(forged)
    document = run(validate_path(path, pki.options(), filename=path.name))
    assert document.signatures, variant
    for signature in document.signatures:
        assert (signature.indication, signature.sub_indication) == (Indication.TOTAL_FAILED,
                                                                     SubIndication.FORMAT_FAILURE), signature.errors
    try:   # pyHanko does not accept it either: it raises, or finds the byte range insufficient
        coverage, _level, ok = pyhanko_view(forged)
    except Exception:  # noqa: BLE001
        return
    assert coverage < SignatureCoverageLevel.ENTIRE_REVISION and ok is not True


# --- shadow attacks ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def approved_with_overlay(pki: Pki, signer, workdir: Path) -> bytes:  # type: ignore[no-untyped-def]
    return sign(pki, signer, workdir, forge.contract_pdf(overlay=True))


def test_shadow_hide_by_dropping_the_overlay_fails(pki: Pki, approved_with_overlay: bytes, tmp_path: Path) -> None:
    data = approved_with_overlay
    forged = forge.incremental_update(data, {forge.PAGE: with_contents(page_body(data), b"5 0 R")})
    refused(validate(pki, forged, tmp_path), kind="page", revision=3, page=1)
    assert pyhanko_view(forged)[1:] == (None, False)


def test_shadow_hide_by_redefining_the_overlay_fails(pki: Pki, approved_with_overlay: bytes, tmp_path: Path) -> None:
    forged = forge.incremental_update(approved_with_overlay, {forge.OVERLAY: forge.stream(b"")})
    change = refused(validate(pki, forged, tmp_path), kind="page content", revision=3, page=1)
    assert change.obj == "9 0 R" and "re-defines" in change.description
    assert pyhanko_view(forged)[1:] == (None, False)


def test_shadow_replace_of_the_font_fails(pki: Pki, approved: bytes, tmp_path: Path) -> None:
    forged = forge.incremental_update(approved, {
        forge.FONT: b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>"})
    change = refused(validate(pki, forged, tmp_path), kind="font", revision=3, page=1)
    assert change.obj == "3 0 R" and "/BaseFont" in change.description
    assert pyhanko_view(forged)[1:] == (None, False)


def test_shadow_hide_and_replace_by_cross_reference_only_fails(pki: Pki, signer, workdir: Path,  # type: ignore[no-untyped-def]
                                                               tmp_path: Path) -> None:
    """The signed file carries a second, unlisted definition of the page content; the update is a
    cross-reference section alone that points the content object at it: no new object bytes."""
    data = sign(pki, signer, workdir, forge.contract_pdf(shadow_duplicate=True))
    forged = forge.incremental_update(data, {}, pointers={forge.CONTENT: forge.shadow_offset(data)})
    reader = PdfFileReader(io.BytesIO(forged), strict=False)
    assert b"1000000" in reader.root["/Pages"]["/Kids"][0]["/Contents"].data     # what a viewer now shows
    change = refused(validate(pki, forged, tmp_path), kind="page content", revision=3, page=1)
    assert change.obj == "5 0 R" and "content was replaced" in change.description
    assert pyhanko_view(forged)[1:] == (None, False)


def test_defining_an_object_the_signed_page_referred_to_fails(pki: Pki, signer, workdir: Path,  # type: ignore[no-untyped-def]
                                                              tmp_path: Path) -> None:
    """The signed page's content names object 40, which did not exist (readers show nothing for
    it); the update defines it. pyHanko's orphan search counts the new object as unreferenced and
    lets it through; remotesign sees that the signed revision referred to it."""
    data = sign(pki, signer, workdir, forge.contract_pdf(dangling=True))
    forged = forge.incremental_update(data, {forge.DANGLING: forge.stream(forge.FORGED_TEXT)})
    change = refused(validate(pki, forged, tmp_path), kind="page content", revision=3, page=1)
    assert change.obj == "40 0 R"
    assert pyhanko_view(forged)[1:] == (ModificationLevel.LTA_UPDATES, True)


# --- certified documents: evil annotation, sneaky signature, P=1 ------------------------------------------------
def _free_text(data: bytes) -> bytes:
    n = forge.next_object_number(data)
    return forge.incremental_update(data, {
        n: b"<< /Type /Annot /Subtype /FreeText /Rect [60 700 400 740] /Contents (PAY 1000000 EUR) "
           b"/DA (/F1 18 Tf 0 g) /AP << /N %d 0 R >> /F 4 /P 4 0 R >>" % (n + 1),
        n + 1: forge.stream(b"q 1 g 0 0 340 40 re f Q " + forge.FORGED_TEXT,
                            b"/Type /XObject /Subtype /Form /BBox [0 0 340 40] "
                            b"/Resources << /Font << /F1 3 0 R >> >> "),
        forge.PAGE: with_annots(page_body(data), b"%d 0 R" % n)})


@pytest.mark.parametrize("certify", [None, MDPPerm.FILL_FORMS, MDPPerm.ANNOTATE], ids=["approval", "P2", "P3"])
def test_evil_annotation_fails(pki: Pki, signer, workdir: Path, certify: MDPPerm | None,  # type: ignore[no-untyped-def]
                               tmp_path: Path) -> None:
    """A FreeText annotation that paints over the amount: refused whatever annotations the
    signature permits, because it overlays what was signed."""
    data = sign(pki, signer, workdir, forge.contract_pdf(), certify=certify)
    forged = _free_text(data)
    change = refused(validate(pki, forged, tmp_path), kind="annotation", revision=3, page=1)
    assert "FreeText" in change.description
    assert pyhanko_view(forged)[1:] == (None, False)


def test_sneaky_signature_fails(pki: Pki, signer, workdir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A new visible signature field, whose appearance can show anything, after a certification
    that permits signing (P=2)."""
    data = sign(pki, signer, workdir, forge.contract_pdf(), certify=MDPPerm.FILL_FORMS)
    n = forge.next_object_number(data)
    acroform = PdfFileReader(io.BytesIO(data), strict=False).root.raw_get("/AcroForm")
    fields_ref = [f.reference.idnum for f in acroform.get_object()["/Fields"]]
    catalog = forge.object_body(data, forge.CATALOG)
    import re
    fields_array = b"[" + b" ".join(b"%d 0 R" % f for f in fields_ref + [n]) + b"]"
    if isinstance(acroform, type(None)) or not hasattr(acroform, "reference"):
        catalog = re.sub(rb"/Fields\s*\[[^\]]*\]", b"/Fields " + fields_array, catalog)
        objects = {forge.CATALOG: catalog}
    else:
        form = forge.object_body(data, acroform.reference.idnum)
        objects = {acroform.reference.idnum: re.sub(rb"/Fields\s*\[[^\]]*\]", b"/Fields " + fields_array, form)}
    objects.update({
        n: b"<< /Type /Annot /Subtype /Widget /FT /Sig /T (Approval) /F 4 /P 4 0 R /Rect [60 700 400 740] "
           b"/AP << /N %d 0 R >> >>" % (n + 1),
        n + 1: forge.stream(b"q 1 g 0 0 340 40 re f Q " + forge.FORGED_TEXT,
                            b"/Type /XObject /Subtype /Form /BBox [0 0 340 40] /Resources << /Font << /F1 3 0 R >> >> "),
        forge.PAGE: with_annots(page_body(data), b"%d 0 R" % n)})
    forged = forge.incremental_update(data, objects)
    signature = validate(pki, forged, tmp_path)
    assert (signature.indication, signature.sub_indication) == (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
    refusal = [c for c in signature.changes if not c.allowed]
    assert refusal and refusal[0].revision == 3
    assert "approval signature" in " ".join(signature.errors) or "certification" in " ".join(signature.errors)
    assert pyhanko_view(forged)[1:] == (None, False)


def _fill_amount(data: bytes, value: bytes) -> bytes:
    n = forge.next_object_number(data)
    field = forge.object_body(data, forge.FIELD)
    import re
    field = re.sub(rb"/V \([^)]*\)", b"/V (" + value + b")", field)
    field = re.sub(rb"/AP << /N \d+ 0 R >>", b"/AP << /N %d 0 R >>" % n, field)
    return forge.incremental_update(data, {forge.FIELD: field, n: forge.field_appearance(value)})


def test_form_fill_after_no_changes_certification_fails(pki: Pki, signer, workdir: Path,  # type: ignore[no-untyped-def]
                                                        tmp_path: Path) -> None:
    data = sign(pki, signer, workdir, forge.contract_pdf(), certify=MDPPerm.NO_CHANGES)
    forged = _fill_amount(data, b"1000000")
    change = refused(validate(pki, forged, tmp_path), kind="certification", revision=3)
    assert "P=1" in change.description
    assert pyhanko_view(forged) == (SignatureCoverageLevel.ENTIRE_REVISION, ModificationLevel.FORM_FILLING, False)


def test_locked_field_change_fails(pki: Pki, signer, workdir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    lock = FieldMDPSpec(FieldMDPAction.INCLUDE, ["amount"])
    data = sign(pki, signer, workdir, forge.contract_pdf(), lock=lock)
    forged = _fill_amount(data, b"1000000")
    signature = validate(pki, forged, tmp_path)
    change = refused(signature, kind="form field", revision=3)
    assert change.check == "pdf.locked_field" and "'amount'" in change.description and "locked" in change.description
    assert pyhanko_view(forged)[1:] == (None, False)


def test_hiding_a_signed_field_fails(pki: Pki, approved: bytes, tmp_path: Path) -> None:
    """Form filling may change a widget's flags; making a signed field disappear (or a hidden one
    appear) changes what was displayed. pyHanko calls it form filling."""
    field = forge.object_body(approved, forge.FIELD).replace(b"/F 4", b"/F 6")
    forged = forge.incremental_update(approved, {forge.FIELD: field})
    change = refused(validate(pki, forged, tmp_path), kind="visibility", revision=3, page=1)
    assert change.obj == "7 0 R" and "hides" in change.description
    assert pyhanko_view(forged) == (SignatureCoverageLevel.ENTIRE_REVISION, ModificationLevel.FORM_FILLING, True)


@pytest.mark.parametrize("edit", ["open-action", "embedded-file"])
def test_catalog_actions_and_attachments_fail(pki: Pki, approved: bytes, edit: str, tmp_path: Path) -> None:
    n = forge.next_object_number(approved)
    catalog = forge.object_body(approved, forge.CATALOG).rstrip()[:-2]
    if edit == "open-action":
        objects = {n: b"<< /S /JavaScript /JS (app.alert('paid')) >>", forge.CATALOG: catalog + b" /OpenAction %d 0 R >>" % n}
        kind = "catalog action"
    else:
        objects = {n: forge.stream(b"invoice: 1000000 EUR", b"/Type /EmbeddedFile "),
                   n + 1: b"<< /Type /Filespec /F (invoice.txt) /EF << /F %d 0 R >> >>" % n,
                   forge.CATALOG: catalog + b" /Names << /EmbeddedFiles << /Names [(invoice.txt) %d 0 R] >> >> >>"
                   % (n + 1)}
        kind = "embedded file"
    forged = forge.incremental_update(approved, objects)
    refused(validate(pki, forged, tmp_path), kind=kind, revision=3)
    assert pyhanko_view(forged)[1:] == (None, False)


@pytest.mark.parametrize("edit", ["added", "removed", "reordered"])
def test_page_tree_changes_fail(pki: Pki, signer, workdir: Path, edit: str, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = sign(pki, signer, workdir, pdf_bytes(pages=2))
    reader = PdfFileReader(io.BytesIO(data), strict=False)
    pages_ref = reader.root.raw_get("/Pages").reference.idnum
    kids = [k.reference.idnum for k in reader.root["/Pages"]["/Kids"]]
    n = forge.next_object_number(data)
    objects: dict[int, bytes] = {}
    if edit == "added":
        objects[n] = (b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Contents %d 0 R >>" % (pages_ref, n + 1))
        objects[n + 1] = forge.stream(forge.FORGED_TEXT)
        kids = kids + [n]
    elif edit == "removed":
        kids = kids[:1]
    else:
        kids = kids[::-1]
    objects[pages_ref] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % k for k in kids), len(kids))
    forged = forge.incremental_update(data, objects)
    change = refused(validate(pki, forged, tmp_path), kind="page tree", revision=3)
    assert "pages" in change.description
    assert pyhanko_view(forged)[1:] == (None, False)


# --- changes a signature permits ------------------------------------------------------------------------------
@pytest.mark.parametrize("level", ["LT", "LTA"])
def test_validation_data_and_document_timestamps_are_allowed(pki: Pki, signer, workdir: Path, level: str,  # type: ignore[no-untyped-def]
                                                             tmp_path: Path) -> None:
    data = sign(pki, signer, workdir, forge.contract_pdf(), level=level)
    changes = passed(validate(pki, data, tmp_path))
    assert any("validation data (DSS)" in c.description for c in changes)
    assert any("document time-stamp" in c.description for c in changes) == (level == "LTA")
    _coverage, modification, ok = pyhanko_view(data)
    assert modification is ModificationLevel.LTA_UPDATES and ok is True


def test_second_visible_signature_is_allowed(pki: Pki, signer, workdir: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    first = sign(pki, signer, workdir, forge.contract_pdf())
    second = sign(pki, pki.signer()[0], workdir, first, field_name="Signature2", box=(300, 50, 500, 120))
    changes = passed(validate(pki, second, tmp_path))
    assert [c.description for c in changes] == ["Revision 3: a signature."]
    passed(validate(pki, second, tmp_path, field="Signature2"))
    assert pyhanko_view(second)[1:] == (ModificationLevel.FORM_FILLING, True)


@pytest.mark.parametrize("certify", [None, MDPPerm.FILL_FORMS], ids=["approval", "P2"])
def test_permitted_form_fill_is_allowed(pki: Pki, signer, workdir: Path, certify: MDPPerm | None,  # type: ignore[no-untyped-def]
                                        tmp_path: Path) -> None:
    data = sign(pki, signer, workdir, forge.contract_pdf(), certify=certify)
    filled = _fill_amount(data, b"250")
    changes = passed(validate(pki, filled, tmp_path))
    assert changes[-1].description == "Revision 3: form fields filled: amount." and changes[-1].kind == "form filling"
    assert pyhanko_view(filled)[1:] == (ModificationLevel.FORM_FILLING, True)


def test_signing_a_prepared_field_of_a_certified_document_is_allowed(pki: Pki, signer, workdir: Path,  # type: ignore[no-untyped-def]
                                                                     tmp_path: Path) -> None:
    writer = IncrementalPdfFileWriter(io.BytesIO(forge.contract_pdf()), strict=False)
    fields.append_signature_field(writer, fields.SigFieldSpec("Approver", box=(300, 50, 500, 120)))
    prepared = io.BytesIO()
    writer.write(prepared)
    certified = sign(pki, signer, workdir, prepared.getvalue(), certify=MDPPerm.FILL_FORMS)
    approved = sign(pki, pki.signer()[0], workdir, certified, field_name="Approver")
    passed(validate(pki, approved, tmp_path))
    passed(validate(pki, approved, tmp_path, field="Approver"))
    assert pyhanko_view(approved)[1:] == (ModificationLevel.FORM_FILLING, True)


@pytest.mark.parametrize(("certify", "allowed"), [(None, True), (MDPPerm.ANNOTATE, True), (MDPPerm.FILL_FORMS, False)],
                         ids=["approval", "P3", "P2"])
def test_comments_are_allowed_where_annotations_are(pki: Pki, signer, workdir: Path, certify: MDPPerm | None,  # type: ignore[no-untyped-def]
                                                    allowed: bool, tmp_path: Path) -> None:
    """A sticky note with no appearance of its own marks a spot without painting over the signed
    content (pyHanko's default policy refuses every new annotation)."""
    data = sign(pki, signer, workdir, forge.contract_pdf(), certify=certify)
    n = forge.next_object_number(data)
    commented = forge.incremental_update(data, {
        n: b"<< /Type /Annot /Subtype /Text /Rect [500 780 520 800] /Contents (please check) /F 4 /P 4 0 R >>",
        forge.PAGE: with_annots(page_body(data), b"%d 0 R" % n)})
    signature = validate(pki, commented, tmp_path)
    if allowed:
        assert passed(signature)[-1].kind == "comment annotations"
    else:
        refused(signature, kind="certification", revision=3)
    assert pyhanko_view(commented)[1:] == (None, False)
