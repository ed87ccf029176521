"""XML signature wrapping (XSW) never passes.

Every known way of moving, wrapping or duplicating what a XAdES signature references is applied
with lxml to a real signature -- remotesign's own signer for detached / ASiC-E signatures,
signxml (an independent producer, as tests/test_validation_xades.py uses) for enveloped and
enveloping ones -- and the result goes through the validation engine. The expected outcomes are
EU DSS's (dss-xades .../validation/xsw tests and XAdESSignature's reference checks):

* signed data not where XMLDSig / XAdES puts it (a SignedProperties, ds:Object or ds:Manifest
  that is not the signature's own) -> INDETERMINATE / SIGNED_DATA_NOT_FOUND;
* an Id carried by two elements -> TOTAL_FAILED / FORMAT_FAILURE;
* digest no longer matching -> TOTAL_FAILED / HASH_FAILURE, and a counter-signature that does not
  cover its parent's SignatureValue -> TOTAL_FAILED / HASH_FAILURE.

Two shapes DSS lets through with a PARTIAL signature scope are refused here too (see
remotesign/validation/xades_placement.py): an enveloped-signature transform over an element that
no longer contains the signature (DSS's XSW-enveloped-fake-content and -misplaced files), and
signed data inside another signature or inside a part of this one that holds no data objects.

xmlsec1 (libxmlsec, an independent XMLDSig core verifier) is run beside the validator: for the
wrapped files whose digests still match it says OK -- which is exactly why a validator must check
*where* the signed data is, not only that its digest matches."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import io
import subprocess
import unicodedata
import warnings
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from asn1crypto import pem as apem
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

from remotesign.formats.asic import write_new
from remotesign.keystore import KeyAlgorithm
from remotesign.trust.crl import CrlPublisher
from remotesign.trust.ocsp import OcspResponder
from remotesign.trust.tsa import TimeStampAuthority
from remotesign.validation.engine import validate_path
from remotesign.validation.model import (
    Indication,
    SignatureResult,
    SubIndication,
    ValidationInputError,
)
from remotesign.validation.options import DetachedDocument
from tests.inprocess_pki import build_ca
from tests.test_validation_xades import FILES, MIME, Pki, _issue, options, sign_b

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
XML_NS = "http://www.w3.org/XML/1998/namespace"
NS = {"ds": DS, "xades": XADES}
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
OBJECT_TYPE = DS + "Object"
MANIFEST_TYPE = DS + "Manifest"
COUNTERSIGNED_TYPE = "http://uri.etsi.org/01903#CountersignedSignature"
#: What xmlsec1 must know as IDs to find a counter-signature and the value it counter-signs.
COUNTER_IDS = (f"{DS}:Signature", f"{DS}:SignatureValue")

PASSED = (Indication.TOTAL_PASSED, None)
NOT_FOUND = (Indication.INDETERMINATE, SubIndication.SIGNED_DATA_NOT_FOUND)
AMBIGUOUS = (Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE)
FORMAT = AMBIGUOUS
HASH = (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)
BROKEN = (Indication.TOTAL_FAILED, SubIndication.HASH_FAILURE)

INVOICE = (b'<invoice Id="invoice-1"><payee>R\xc4\xabga SIA</payee><iban>LV80BANK0000435195001</iban>'
           b'<amount currency="EUR">100.00</amount></invoice>')
INVOICE_NO_ID = INVOICE.replace(b' Id="invoice-1"', b"")
ORDER = b"<order><item>Laptop</item><quantity>1</quantity></order>"


# -- signing ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    """The in-process CA with one P-256 signer, set up as tests/test_validation_xades.py does."""
    db, keystore, ca = build_ca(tmp_path_factory.mktemp("xsw"), "http://127.0.0.1:1", KeyAlgorithm.EC_P384)
    p = Pki(db=db, ca=ca, tsa=TimeStampAuthority(db, ca, keystore, "1.3.6.1.4.1.59999.1.3.1", 500),
            ocsp=OcspResponder(ca, keystore, 60), crl=CrlPublisher(db, ca, keystore, 24))
    key = ec.generate_private_key(ec.SECP256R1())
    p.signers["p256"] = (key, _issue(p, key))
    yield p
    db.dispose()


def q(local: str, ns: str = DS) -> str:
    return f"{{{ns}}}{local}"


def signxml_sign(pki: Pki, document: bytes, method: str, reference_uri: str | None = None) -> etree._Element:
    """A XAdES-B-B signature by signxml with exclusive c14n (what EU DSS uses for references, and
    what lets a moved element keep its digest: the point of these attacks); returns the root of
    a freshly parsed copy. signxml computes the SignedProperties and KeyInfo digests with that
    c14n but writes no Transform for them (the XMLDSig default is then inclusive C14N 1.0), so
    the Transform is added and SignedInfo signed again."""
    from signxml import DigestAlgorithm, SignatureMethod, methods
    from signxml.xades import XAdESSigner
    key, cert = pki.signers["p256"]
    certs = [cx509.load_der_x509_certificate(d) for d in (cert, pki.ca.issuing.der)]
    signer = XAdESSigner(method=getattr(methods, method), signature_algorithm=SignatureMethod.ECDSA_SHA256,
                         digest_algorithm=DigestAlgorithm.SHA256, c14n_algorithm=EXC_C14N)
    signed = signer.sign(etree.fromstring(document), key=key, cert=certs,
                         reference_uri=[reference_uri] if reference_uri else None)
    root = etree.fromstring(etree.tostring(signed))
    sig = root if root.tag == q("Signature") else root.find(".//ds:Signature", NS)
    for ref in sig.findall("ds:SignedInfo/ds:Reference", NS):
        if ref.find("ds:Transforms", NS) is None:
            transforms = etree.Element(q("Transforms"))
            etree.SubElement(transforms, q("Transform"), Algorithm=EXC_C14N)
            ref.insert(0, transforms)
    resign(pki, sig)
    return root


def resign(pki: Pki, sig: etree._Element) -> None:
    """Sign ``sig``'s SignedInfo again (ECDSA P-256, raw r||s) after a change to it. lxml has no
    C14N 1.1, but for a SignedInfo (no xml:id / xml:base to inherit) it equals C14N 1.0."""
    signed_info = sig.find("ds:SignedInfo", NS)
    algorithm = signed_info.find("ds:CanonicalizationMethod", NS).get("Algorithm")
    assert algorithm in (EXC_C14N, C14N_10, C14N_11), algorithm
    octets = etree.tostring(signed_info, method="c14n", exclusive=algorithm == EXC_C14N, with_comments=False)
    r, s = decode_dss_signature(pki.signers["p256"][0].sign(octets, ec.ECDSA(hashes.SHA256())))
    sig.find("ds:SignatureValue", NS).text = base64.b64encode(r.to_bytes(32, "big") + s.to_bytes(32, "big")).decode()


def exc_digest(el: etree._Element) -> str:
    return base64.b64encode(hashlib.sha256(etree.tostring(el, method="c14n", exclusive=True,
                                                          with_comments=False)).digest()).decode()


def add_reference(sig: etree._Element, uri: str, digest: str, ref_type: str | None = None) -> etree._Element:
    """A ds:Reference (exclusive c14n, SHA-256) at the end of ``sig``'s SignedInfo."""
    attrs = {"URI": uri, **({"Type": ref_type} if ref_type else {})}
    ref = etree.SubElement(sig.find("ds:SignedInfo", NS), q("Reference"), attrs)
    etree.SubElement(etree.SubElement(ref, q("Transforms")), q("Transform"), Algorithm=EXC_C14N)
    etree.SubElement(ref, q("DigestMethod"), Algorithm=SHA256)
    etree.SubElement(ref, q("DigestValue")).text = digest
    return ref


def data_reference(sig: etree._Element) -> etree._Element:
    """signxml's reference to the signed data (its first one)."""
    return sig.find("ds:SignedInfo/ds:Reference", NS)


def detach(el: etree._Element) -> etree._Element:
    """Remove ``el`` from its parent, leaving its tail text where it was (the enveloped-signature
    transform removes the element only, not the text after it)."""
    parent = el.getparent()
    if el.tail:
        previous = el.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + el.tail
        else:
            parent.text = (parent.text or "") + el.tail
        el.tail = None
    parent.remove(el)
    return el


def new_object(sig: etree._Element, **attrs: str) -> etree._Element:
    return etree.SubElement(sig, q("Object"), attrs)


def forged_invoice(ident: str | None = None) -> etree._Element:
    forged = etree.fromstring(INVOICE.replace(b"R\xc4\xabga SIA", b"Evil Ltd").replace(b"100.00", b"99999.00"))
    if ident is None:
        del forged.attrib["Id"]
    else:
        forged.set("Id", ident)
    return forged


# -- validation and the independent verifier --------------------------------------------------------

def validate(pki: Pki, tmp_path: Path, data: bytes, name: str = "signed.xml",
             detached: dict[str, bytes] | None = None) -> list[SignatureResult]:
    """The signatures of ``data`` as the validation engine (what the API and CLI call) sees them,
    with ``detached`` documents supplied beside an XML file."""
    path = tmp_path / name
    path.write_bytes(data)
    documents = []
    for i, (doc_name, content) in enumerate((detached or {}).items()):
        doc_path = tmp_path / f"detached-{i}.bin"
        doc_path.write_bytes(content)
        documents.append(DetachedDocument(name=doc_name, path=doc_path))
    return asyncio.run(validate_path(path, options(pki, detached=tuple(documents)))).signatures


def outcome_of(results: list[SignatureResult], sig_id: str) -> tuple[Indication, SubIndication | None]:
    (result,) = [r for r in results if r.id == sig_id]
    return result.indication, result.sub_indication


def assert_outcome(results: list[SignatureResult], sig_id: str, expected: tuple) -> None:
    (result,) = [r for r in results if r.id == sig_id]
    got = (result.indication, result.sub_indication)
    assert got == expected, (got, result.errors)
    if expected != PASSED:
        assert result.indication is not Indication.TOTAL_PASSED


def xmlsec1(pki: Pki, tmp_path: Path, data: bytes, *id_nodes: str, node_id: str | None = None,
            files: dict[str, bytes] | None = None) -> tuple[bool, str]:
    """``xmlsec1 --verify`` with the in-process root trusted: (verified, output). ``id_nodes``
    are the elements whose ``Id`` attribute xmlsec1 must know as an XML ID (SignedProperties
    always); ``node_id`` picks the ds:Signature to verify."""
    root = tmp_path / "xmlsec-root.pem"
    root.write_bytes(apem.armor("CERTIFICATE", pki.ca.root.der))
    issuing = tmp_path / "xmlsec-issuing.pem"
    issuing.write_bytes(apem.armor("CERTIFICATE", pki.ca.issuing.der))
    doc = tmp_path / "xmlsec-input.xml"
    doc.write_bytes(data)
    args = ["xmlsec1", "--verify", "--trusted-pem", str(root), "--untrusted-pem", str(issuing)]
    for node in (f"{XADES}:SignedProperties", *id_nodes):
        args += ["--id-attr:Id", node]
    if node_id:
        args += ["--node-id", node_id]
    for i, (name, content) in enumerate((files or {}).items()):
        path = tmp_path / f"xmlsec-obj{i}.bin"
        path.write_bytes(content)
        args += [f"--url-map:{name}", str(path)]
    proc = subprocess.run([*args, str(doc)], capture_output=True, text=True, timeout=60, check=False)
    out = proc.stdout + proc.stderr
    return proc.returncode == 0 and "OK" in out, out


# -- controls: the untouched signatures pass (and xmlsec1 agrees) --------------------------------------

@pytest.fixture(scope="module")
def enveloped_by_id(pki: Pki) -> bytes:
    """signxml's enveloped form for a root with an Id: URI="#invoice-1" + enveloped-signature."""
    return etree.tostring(signxml_sign(pki, INVOICE, "enveloped"))


@pytest.fixture(scope="module")
def enveloped_whole(pki: Pki) -> bytes:
    """The enveloped form over the whole document: URI="" + enveloped-signature."""
    return etree.tostring(signxml_sign(pki, INVOICE_NO_ID, "enveloped"))


@pytest.fixture(scope="module")
def enveloping(pki: Pki) -> bytes:
    """signxml's enveloping form: the data in ds:Object Id="object", referenced as "#object"."""
    return etree.tostring(signxml_sign(pki, ORDER, "enveloping"))


@pytest.fixture(scope="module")
def enveloping_typed(pki: Pki, enveloping: bytes) -> bytes:
    """The enveloping form as EU DSS writes it: the reference typed xmldsig#Object."""
    sig = etree.fromstring(enveloping)
    data_reference(sig).set("Type", OBJECT_TYPE)
    resign(pki, sig)
    return etree.tostring(sig)


@pytest.fixture(scope="module")
def sibling(pki: Pki) -> bytes:
    """A detached reference inside one document: the signature signs a sibling element."""
    root = etree.fromstring(b"<letter><body Id=\"body-1\"><p>Sveiki</p></body></letter>")
    root.append(signxml_sign(pki, etree.tostring(root), "detached", reference_uri="#body-1"))
    return etree.tostring(root)


def _sig_id(data: bytes) -> str:
    return etree.fromstring(data).xpath("//ds:Signature", namespaces=NS)[0].get("Id")


@pytest.mark.parametrize("form,id_nodes", [
    ("enveloped_by_id", ("invoice",)), ("enveloped_whole", ()), ("enveloping", ()),
    ("enveloping_typed", ()), ("sibling", ("body",)),
])
def test_untouched_signatures_pass(pki: Pki, tmp_path: Path, request: pytest.FixtureRequest, form: str,
                                   id_nodes: tuple[str, ...]) -> None:
    data = request.getfixturevalue(form)
    results = validate(pki, tmp_path, data)
    assert_outcome(results, _sig_id(data), PASSED)
    ok, out = xmlsec1(pki, tmp_path, data, *id_nodes)
    assert ok, out


# -- enveloped, reference by Id: the signed element moved, a forged one in its place ------------------------

def _move_invoice(data: bytes, place: Callable[[etree._Element, etree._Element, etree._Element], None], *,
                  forged_id: str | None = None) -> bytes:
    """EU DSS's fake-content attack: a forged invoice becomes the document and keeps the
    signature; the signed invoice (signature taken out, as the enveloped-signature transform
    saw it) is put where ``place(forged, sig, original)`` puts it."""
    original = etree.fromstring(data)
    sig = detach(original.find("ds:Signature", NS))
    forged = forged_invoice(forged_id)
    forged.append(sig)
    place(forged, sig, original)
    return etree.tostring(forged)


def _into_own_object(forged: etree._Element, sig: etree._Element, original: etree._Element) -> None:
    new_object(sig).append(original)


def _into_unknown_wrapper(forged: etree._Element, sig: etree._Element, original: etree._Element) -> None:
    """DSS's XSW-enveloped-fake-content-misplaced: deep inside an extension of the forged document."""
    wrapper = etree.Element("extensions")
    etree.SubElement(etree.SubElement(wrapper, "archive"), "copy").append(original)
    sig.addprevious(wrapper)


def _into_signature_properties(forged: etree._Element, sig: etree._Element, original: etree._Element) -> None:
    props = etree.SubElement(new_object(sig), q("SignatureProperties"))
    etree.SubElement(props, q("SignatureProperty"), Target="#" + sig.get("Id")).append(original)


def _into_key_info(forged: etree._Element, sig: etree._Element, original: etree._Element) -> None:
    sig.find("ds:KeyInfo", NS).append(original)


def _other_signature(pki: Pki) -> etree._Element:
    return signxml_sign(pki, b"<note>unrelated</note>", "enveloped").find("ds:Signature", NS)


@pytest.mark.parametrize("place,xmlsec_ok", [
    (_into_own_object, False), (_into_unknown_wrapper, True), (_into_signature_properties, False),
    (_into_key_info, False),
], ids=["into-own-ds-Object", "into-unknown-wrapper", "into-own-SignatureProperties", "into-own-KeyInfo"])
def test_enveloped_element_moved(pki: Pki, tmp_path: Path, enveloped_by_id: bytes, place, xmlsec_ok: bool) -> None:
    """The enveloped-signature transform says the signature is inside the signed element; now
    it is not -> SIGNED_DATA_NOT_FOUND (DSS reports its two files of this kind intact, with a
    PARTIAL scope). xmlsec1 verifies the copy moved into a wrapper outside the signature: its
    digest still matches. Moved into the signature, libxmlsec's enveloped-signature transform
    removes it along with the signature's other descendants, and the digest breaks."""
    wrapped = _move_invoice(enveloped_by_id, place)
    assert_outcome(validate(pki, tmp_path, wrapped), _sig_id(enveloped_by_id), NOT_FOUND)
    ok, out = xmlsec1(pki, tmp_path, wrapped, "invoice")
    assert ok is xmlsec_ok, out


def test_enveloped_element_moved_into_another_signature(pki: Pki, tmp_path: Path, enveloped_by_id: bytes) -> None:
    def into_other(forged: etree._Element, sig: etree._Element, original: etree._Element) -> None:
        other = _other_signature(pki)
        forged.insert(0, other)
        new_object(other).append(original)
    wrapped = _move_invoice(enveloped_by_id, into_other)
    assert_outcome(validate(pki, tmp_path, wrapped), _sig_id(enveloped_by_id), NOT_FOUND)
    ok, out = xmlsec1(pki, tmp_path, wrapped, "invoice", f"{DS}:Signature", node_id=_sig_id(enveloped_by_id))
    assert ok, out  # the enveloped-signature transform removes this signature only


XPATH = "http://www.w3.org/TR/1999/REC-xpath-19991116"
FILTER2 = "http://www.w3.org/2002/06/xmldsig-filter2"
ENVELOPED_FORMS = {
    "xpath-not-signature": f'<ds:Transform xmlns:ds="{DS}" Algorithm="{XPATH}">'
                           "<ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>",
    "filter2-subtract-here": f'<ds:Transform xmlns:ds="{DS}" Algorithm="{FILTER2}"><f:XPath xmlns:f="{FILTER2}" '
                             'Filter="subtract">here()/ancestor::ds:Signature[1]</f:XPath></ds:Transform>',
}


@pytest.mark.parametrize("form", list(ENVELOPED_FORMS))
def test_enveloped_transform_forms(pki: Pki, tmp_path: Path, enveloped_by_id: bytes, form: str) -> None:
    """The XPath forms that equal the enveloped-signature transform say the same thing, and the
    moved element is refused the same way."""
    root = etree.fromstring(enveloped_by_id)
    sig = root.find("ds:Signature", NS)
    enveloped = data_reference(sig).find("ds:Transforms/ds:Transform", NS)
    enveloped.addprevious(etree.fromstring(ENVELOPED_FORMS[form]))
    detach(enveloped)
    resign(pki, sig)
    control = etree.tostring(root)
    assert_outcome(validate(pki, tmp_path, control), sig.get("Id"), PASSED)
    ok, out = xmlsec1(pki, tmp_path, control, "invoice")
    assert ok, out
    moved = _move_invoice(control, _into_unknown_wrapper)
    assert_outcome(validate(pki, tmp_path, moved), sig.get("Id"), NOT_FOUND)


@pytest.mark.parametrize("order", ["forged-first", "forged-second"])
def test_enveloped_duplicate_id(pki: Pki, tmp_path: Path, enveloped_by_id: bytes, order: str) -> None:
    """Two elements carry the referenced Id (DSS's XSW-enveloped-fake-content-two-same-id, i.e.
    corpus row dss-xades-xsw-03) -> FORMAT_FAILURE, whichever comes first in document order."""
    if order == "forged-first":
        wrapped = _move_invoice(enveloped_by_id, _into_own_object, forged_id="invoice-1")
    else:
        root = etree.fromstring(enveloped_by_id)
        new_object(root.find("ds:Signature", NS)).append(forged_invoice("invoice-1"))
        wrapped = etree.tostring(root)
    results = validate(pki, tmp_path, wrapped)
    assert_outcome(results, _sig_id(enveloped_by_id), AMBIGUOUS)
    assert "invoice-1" in results[0].errors[0]


@pytest.mark.parametrize("attribute", ["ID", "id", q("id", XML_NS), q("Id", WSU), "iD", q("ID", "urn:x")],
                         ids=["ID", "id", "xml-id", "wsu-Id", "iD", "other-ns-ID"])
def test_enveloped_id_attribute_ambiguity(pki: Pki, tmp_path: Path, enveloped_by_id: bytes, attribute: str) -> None:
    """A forged element whose Id-like attribute (another name, case or namespace) repeats the
    referenced Id: XMLDSig engines disagree on which attributes are IDs (DSS/Santuario take any
    attribute named Id case-insensitively, in any namespace), so the reference is ambiguous."""
    root = etree.fromstring(enveloped_by_id)
    forged = forged_invoice()
    forged.set(attribute, "invoice-1")
    new_object(root.find("ds:Signature", NS)).append(forged)
    assert_outcome(validate(pki, tmp_path, etree.tostring(root)), _sig_id(enveloped_by_id), AMBIGUOUS)


# -- XPointer forms -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def enveloped_xpointer(pki: Pki, enveloped_by_id: bytes) -> bytes:
    """The same signature with the bare name replaced by ``#xpointer(id('invoice-1'))`` (the
    document has no comments, so the digest does not change)."""
    root = etree.fromstring(enveloped_by_id)
    sig = root.find("ds:Signature", NS)
    data_reference(sig).set("URI", "#xpointer(id('invoice-1'))")
    resign(pki, sig)
    return etree.tostring(root)


def test_xpointer_control_and_wrapping(pki: Pki, tmp_path: Path, enveloped_xpointer: bytes) -> None:
    sig_id = _sig_id(enveloped_xpointer)
    assert_outcome(validate(pki, tmp_path, enveloped_xpointer), sig_id, PASSED)
    ok, out = xmlsec1(pki, tmp_path, enveloped_xpointer, "invoice")
    assert ok, out
    moved = _move_invoice(enveloped_xpointer, _into_own_object)
    assert_outcome(validate(pki, tmp_path, moved), sig_id, NOT_FOUND)
    duplicated = _move_invoice(enveloped_xpointer, _into_own_object, forged_id="invoice-1")
    assert_outcome(validate(pki, tmp_path, duplicated), sig_id, AMBIGUOUS)


def test_unresolvable_xpointer(pki: Pki, tmp_path: Path, enveloped_by_id: bytes) -> None:
    """An XPointer other than ``#xpointer(/)`` / ``#xpointer(id(...))`` selects nothing a
    validator can trust (Santuario has no resolver for it: DSS's data is 'not found')."""
    root = etree.fromstring(enveloped_by_id)
    sig = root.find("ds:Signature", NS)
    data_reference(sig).set("URI", "#xpointer(//*[@Id='invoice-1'])")
    resign(pki, sig)
    assert_outcome(validate(pki, tmp_path, etree.tostring(root)), sig.get("Id"), NOT_FOUND)


# -- enveloped over the whole document (URI="") -------------------------------------------------------------

def test_whole_document_signature_moved_into_a_wrapper(pki: Pki, tmp_path: Path, enveloped_whole: bytes) -> None:
    """The signature moved into an element of its own: the document it covers changed."""
    root = etree.fromstring(enveloped_whole)
    sig = detach(root.find("ds:Signature", NS))
    etree.SubElement(root, "attachments").append(sig)
    wrapped = etree.tostring(root)
    assert_outcome(validate(pki, tmp_path, wrapped), sig.get("Id"), BROKEN)
    ok, out = xmlsec1(pki, tmp_path, wrapped)
    assert not ok, out


def test_whole_document_wrapped_in_a_forged_document(pki: Pki, tmp_path: Path, enveloped_whole: bytes) -> None:
    """The signed document (signature inside) becomes part of a bigger forged one: URI="" now
    means the forged document."""
    original = etree.fromstring(enveloped_whole)
    envelope = etree.Element("envelope")
    envelope.append(forged_invoice())
    etree.SubElement(envelope, "archive").append(original)
    wrapped = etree.tostring(envelope)
    assert_outcome(validate(pki, tmp_path, wrapped), _sig_id(enveloped_whole), BROKEN)
    ok, out = xmlsec1(pki, tmp_path, wrapped)
    assert not ok, out


# -- enveloping: the signed ds:Object ---------------------------------------------------------------------

def _fake_object(data: bytes) -> bytes:
    """EU DSS's XSW-enveloping-fake-object: the signed ds:Object goes into a wrapper inside another
    ds:Object, and a forged ds:Object takes its place."""
    sig = etree.fromstring(data)
    original = detach(sig.find("ds:Object[@Id='object']", NS))
    evil = new_object(sig, Id="evil")
    evil.append(etree.fromstring(ORDER.replace(b"Laptop", b"Gold bars").replace(b">1<", b">500<")))
    etree.SubElement(new_object(sig), "wrapper").append(original)
    return etree.tostring(sig)


@pytest.mark.parametrize("form", ["enveloping", "enveloping_typed"])
def test_enveloping_fake_object(pki: Pki, tmp_path: Path, request: pytest.FixtureRequest, form: str) -> None:
    """The signed ds:Object is no longer a ds:Object of the signature -> SIGNED_DATA_NOT_FOUND;
    xmlsec1 still finds it by Id and verifies."""
    data = request.getfixturevalue(form)
    wrapped = _fake_object(data)
    assert_outcome(validate(pki, tmp_path, wrapped), _sig_id(data), NOT_FOUND)
    ok, out = xmlsec1(pki, tmp_path, wrapped, f"{DS}:Object")
    assert ok, out


def test_enveloping_object_moved_out_of_the_signature(pki: Pki, tmp_path: Path, enveloping: bytes) -> None:
    sig = etree.fromstring(enveloping)
    original = detach(sig.find("ds:Object[@Id='object']", NS))
    bundle = etree.Element("bundle")
    bundle.append(original)
    bundle.append(sig)
    wrapped = etree.tostring(bundle)
    assert_outcome(validate(pki, tmp_path, wrapped), sig.get("Id"), NOT_FOUND)
    ok, out = xmlsec1(pki, tmp_path, wrapped, f"{DS}:Object")
    assert ok, out


def test_enveloping_object_moved_into_another_signature(pki: Pki, tmp_path: Path, enveloping: bytes) -> None:
    sig = etree.fromstring(enveloping)
    original = detach(sig.find("ds:Object[@Id='object']", NS))
    other = _other_signature(pki)
    new_object(other).append(original)
    bundle = etree.Element("bundle")
    bundle.append(sig)
    bundle.append(other)
    assert_outcome(validate(pki, tmp_path, etree.tostring(bundle)), sig.get("Id"), NOT_FOUND)


@pytest.mark.parametrize("order", ["forged-first", "forged-second"])
def test_enveloping_second_object_with_the_same_id(pki: Pki, tmp_path: Path, enveloping: bytes, order: str) -> None:
    sig = etree.fromstring(enveloping)
    original = sig.find("ds:Object[@Id='object']", NS)
    forged = copy.deepcopy(original)
    forged[0].find("item").text = "Gold bars"
    if order == "forged-first":
        original.addprevious(forged)
    else:
        sig.append(forged)
    assert_outcome(validate(pki, tmp_path, etree.tostring(sig)), sig.get("Id"), AMBIGUOUS)


# -- ds:Manifest --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def with_manifest(pki: Pki, enveloping: bytes) -> bytes:
    """The enveloping signature plus a signed ds:Manifest in its own ds:Object (its entries name
    files that are not supplied: a manifest's entries are not signed data)."""
    sig = etree.fromstring(enveloping)
    manifest = etree.SubElement(new_object(sig), q("Manifest"), Id="manifest")
    entry = etree.SubElement(manifest, q("Reference"), URI="data.bin")
    etree.SubElement(entry, q("DigestMethod"), Algorithm=SHA256)
    etree.SubElement(entry, q("DigestValue")).text = base64.b64encode(hashlib.sha256(FILES["data.bin"]).digest()).decode()
    add_reference(sig, "#manifest", exc_digest(manifest), MANIFEST_TYPE)
    resign(pki, sig)
    return etree.tostring(sig)


def test_fake_manifest(pki: Pki, tmp_path: Path, with_manifest: bytes) -> None:
    """EU DSS's XSW-enveloping-fake-manifest (corpus row dss-xades-xsw-02 is that file): the signed
    manifest wrapped away, a forged one in its place. Here the signature also signs real data, so
    only the manifest's place can fail it."""
    sig_id = _sig_id(with_manifest)
    files = {"data.bin": FILES["data.bin"]}
    results = validate(pki, tmp_path, with_manifest, detached=files)
    assert_outcome(results, sig_id, PASSED)
    assert any("ds:Manifest" in n for n in results[0].infos)  # its entries are checked and signed
    assert "data.bin" in results[0].signed_objects
    # an entry of the signed manifest that is altered or missing fails the signature
    assert_outcome(validate(pki, tmp_path, with_manifest, detached={"data.bin": b"altered"}), sig_id, HASH)
    assert_outcome(validate(pki, tmp_path, with_manifest), sig_id, NOT_FOUND)
    sig = etree.fromstring(with_manifest)
    original = detach(sig.find("ds:Object/ds:Manifest", NS).getparent())
    forged = copy.deepcopy(original)
    forged[0].set("Id", "evil")
    sig.append(forged)
    etree.SubElement(new_object(sig), "wrapper").append(original)
    wrapped = etree.tostring(sig)
    assert_outcome(validate(pki, tmp_path, wrapped), sig_id, NOT_FOUND)
    ok, out = xmlsec1(pki, tmp_path, wrapped, f"{DS}:Manifest", files={"data.bin": FILES["data.bin"]})
    assert ok, out


# -- KeyInfo references ------------------------------------------------------------------------------------

def test_signed_key_info_moved(pki: Pki, tmp_path: Path, enveloping: bytes) -> None:
    """signxml signs its KeyInfo; the signed one moved into a ds:Object and a copy without Id in
    its place -> the KeyInfo the signature covers is not its KeyInfo."""
    sig = etree.fromstring(enveloping)
    key_info = sig.find("ds:KeyInfo", NS)
    replacement = copy.deepcopy(key_info)
    del replacement.attrib["Id"]
    key_info.addprevious(replacement)
    new_object(sig).append(detach(key_info))
    wrapped = etree.tostring(sig)
    assert_outcome(validate(pki, tmp_path, wrapped), sig.get("Id"), NOT_FOUND)
    ok, out = xmlsec1(pki, tmp_path, wrapped, f"{DS}:KeyInfo")
    assert ok, out


def test_signed_key_info_duplicated(pki: Pki, tmp_path: Path, enveloping: bytes) -> None:
    sig = etree.fromstring(enveloping)
    new_object(sig).append(copy.deepcopy(sig.find("ds:KeyInfo", NS)))
    assert_outcome(validate(pki, tmp_path, etree.tostring(sig)), sig.get("Id"), AMBIGUOUS)


# -- a detached reference inside one document ------------------------------------------------------------

def _move_body(data: bytes, place: Callable[[etree._Element, etree._Element], None]) -> bytes:
    root = etree.fromstring(data)
    body = detach(root.find("body"))
    root.insert(0, etree.fromstring(b"<body><p>Forged</p></body>"))
    place(root.find("ds:Signature", NS), body)
    return etree.tostring(root)


def test_sibling_moved_into_another_signature(pki: Pki, tmp_path: Path, sibling: bytes) -> None:
    def into_other(sig: etree._Element, body: etree._Element) -> None:
        other = _other_signature(pki)
        sig.addprevious(other)
        new_object(other).append(body)
    assert_outcome(validate(pki, tmp_path, _move_body(sibling, into_other)), _sig_id(sibling), NOT_FOUND)


def test_sibling_moved_into_unsigned_properties(pki: Pki, tmp_path: Path, sibling: bytes) -> None:
    """QualifyingProperties hold properties, never data objects; UnsignedProperties are open to anyone."""
    def into_unsigned(sig: etree._Element, body: etree._Element) -> None:
        qp = sig.find("ds:Object/xades:QualifyingProperties", NS)
        usp = etree.SubElement(etree.SubElement(qp, q("UnsignedProperties", XADES)),
                               q("UnsignedSignatureProperties", XADES))
        usp.append(body)
    assert_outcome(validate(pki, tmp_path, _move_body(sibling, into_unsigned)), _sig_id(sibling), NOT_FOUND)


def test_sibling_moved_into_own_object_is_still_what_is_signed(pki: Pki, tmp_path: Path, sibling: bytes) -> None:
    """The one shape no validator can refuse: a reference to an element that is not the
    document and not around the signature may legitimately sit in the signature's own ds:Object
    (enveloping), so nothing tells that it was moved there. What is signed is still intact and
    unambiguous; EU DSS passes it too and reports a PARTIAL scope. The report says which element
    the signature covers, so the forged <body> is never taken for signed content."""
    sig_id = _sig_id(sibling)
    results = validate(pki, tmp_path, _move_body(sibling, lambda sig, body: new_object(sig).append(body)))
    assert_outcome(results, sig_id, PASSED)
    assert "the signature covers element 'body-1' only, not the whole document" in results[0].warnings
    control = validate(pki, tmp_path, sibling)
    assert "the signature covers element 'body-1' only, not the whole document" in control[0].warnings


# -- counter-signatures ----------------------------------------------------------------------------------

def _counter_signature(pki: Pki, master: etree._Element, counter_id: str) -> etree._Element:
    """A xades:CounterSignature over ``master``'s SignatureValue (plain XMLDSig, as
    tests/test_validation_xades.py builds it), signed with the p256 key."""
    value = master.find("ds:SignatureValue", NS)
    qp = master.find(".//xades:QualifyingProperties", NS)
    up = qp.find("xades:UnsignedProperties", NS)
    if up is None:
        up = etree.SubElement(qp, q("UnsignedProperties", XADES))
    usp = up.find("xades:UnsignedSignatureProperties", NS)
    if usp is None:
        usp = etree.SubElement(up, q("UnsignedSignatureProperties", XADES))
    holder = etree.SubElement(usp, q("CounterSignature", XADES))
    counter = etree.SubElement(holder, q("Signature"), Id=counter_id)
    signed_info = etree.SubElement(counter, q("SignedInfo"))
    etree.SubElement(signed_info, q("CanonicalizationMethod"), Algorithm=EXC_C14N)
    etree.SubElement(signed_info, q("SignatureMethod"), Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256")
    etree.SubElement(counter, q("SignatureValue"))
    x509_data = etree.SubElement(etree.SubElement(counter, q("KeyInfo")), q("X509Data"))
    etree.SubElement(x509_data, q("X509Certificate")).text = base64.b64encode(pki.signers["p256"][1]).decode()
    add_reference(counter, "#" + value.get("Id"), exc_digest(value), COUNTERSIGNED_TYPE)
    resign(pki, counter)
    return counter


@pytest.fixture(scope="module")
def two_masters(pki: Pki) -> bytes:
    """Two signatures by remotesign's own signer in one XAdESSignatures document, the first
    counter-signed."""
    root = etree.fromstring(sign_b(pki))
    root.append(etree.fromstring(sign_b(pki)).find("ds:Signature", NS))
    _counter_signature(pki, root[0], "counter-1")
    return etree.tostring(root)


def test_counter_signature_control(pki: Pki, tmp_path: Path, two_masters: bytes) -> None:
    results = validate(pki, tmp_path, two_masters, detached=FILES)
    assert len(results) == 3
    assert all(r.indication is Indication.TOTAL_PASSED for r in results), [(r.id, r.errors) for r in results]
    assert [r.parent_id for r in results if r.id == "counter-1"] == [results[0].id]
    ok, out = xmlsec1(pki, tmp_path, two_masters, *COUNTER_IDS, node_id="counter-1")
    assert ok, out


def test_counter_signature_moved_to_another_signature(pki: Pki, tmp_path: Path, two_masters: bytes) -> None:
    """Moved under the second signature it still covers the first one's SignatureValue, which
    xmlsec1 happily verifies; DSS compares it with its new parent's -> HASH_FAILURE."""
    root = etree.fromstring(two_masters)
    holder = detach(root[0].find(".//xades:CounterSignature", NS))
    qp = root[1].find(".//xades:QualifyingProperties", NS)
    etree.SubElement(etree.SubElement(qp, q("UnsignedProperties", XADES)),
                     q("UnsignedSignatureProperties", XADES)).append(holder)
    moved = etree.tostring(root)
    results = validate(pki, tmp_path, moved, detached=FILES)
    assert_outcome(results, "counter-1", BROKEN)
    assert [r.parent_id for r in results if r.id == "counter-1"] == [root[1].get("Id")]
    assert outcome_of(results, root[0].get("Id")) == PASSED
    ok, out = xmlsec1(pki, tmp_path, moved, *COUNTER_IDS, node_id="counter-1")
    assert ok, out


def test_counter_signature_over_an_injected_signature_value(pki: Pki, tmp_path: Path, two_masters: bytes) -> None:
    """DSS's xades-counter-signature-injected: the counter-signed SignatureValue is a copy (of
    another signature's value) inside the counter-signature's own ds:Object."""
    root = etree.fromstring(two_masters)
    counter = root.xpath("//ds:Signature[@Id='counter-1']", namespaces=NS)[0]
    injected = copy.deepcopy(root[1].find("ds:SignatureValue", NS))
    injected.set("Id", "injected-value")
    new_object(counter).append(injected)
    ref = data_reference(counter)
    ref.set("URI", "#injected-value")
    ref.find("ds:DigestValue", NS).text = exc_digest(injected)
    resign(pki, counter)
    assert_outcome(validate(pki, tmp_path, etree.tostring(root), detached=FILES), "counter-1", BROKEN)


def test_counter_signature_without_the_parent_value(pki: Pki, tmp_path: Path, two_masters: bytes) -> None:
    """DSS's xades-counter-signature-no-type-invalid: a counter-signature that signs something
    (its own ds:Object) but not its parent's SignatureValue."""
    root = etree.fromstring(two_masters)
    counter = root.xpath("//ds:Signature[@Id='counter-1']", namespaces=NS)[0]
    obj = new_object(counter, Id="counter-data")
    obj.text = "approved"
    signed_info = counter.find("ds:SignedInfo", NS)
    signed_info.remove(data_reference(counter))
    add_reference(counter, "#counter-data", exc_digest(obj), OBJECT_TYPE)
    resign(pki, counter)
    assert_outcome(validate(pki, tmp_path, etree.tostring(root), detached=FILES), "counter-1", BROKEN)


def test_counter_signed_value_id_duplicated(pki: Pki, tmp_path: Path, two_masters: bytes) -> None:
    root = etree.fromstring(two_masters)
    forged = copy.deepcopy(root[0].find("ds:SignatureValue", NS))
    forged.text = base64.b64encode(b"\x00" * 64).decode()
    new_object(root[0]).append(forged)
    assert_outcome(validate(pki, tmp_path, etree.tostring(root), detached=FILES), "counter-1", AMBIGUOUS)


# -- ASiC-E: XAdES over the container's files ---------------------------------------------------------

@pytest.fixture(scope="module")
def asic_entries(pki: Pki) -> list[tuple[str, bytes]]:
    """The entries of an ASiC-E written by remotesign (writer + XAdES signer), in zip order."""
    out = io.BytesIO()
    write_new(out, [(n, MIME[n], [d]) for n, d in FILES.items()], {"META-INF/signatures0.xml": sign_b(pki)})
    with zipfile.ZipFile(io.BytesIO(out.getvalue())) as archive:
        return [(n, archive.read(n)) for n in archive.namelist()]


def rezip(entries: list[tuple[str, bytes]]) -> bytes:
    """A zip of ``entries`` as given (mimetype stored first; duplicate names are kept)."""
    out = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names, which is the point
        with zipfile.ZipFile(out, "w") as archive:
            for name, data in entries:
                info = zipfile.ZipInfo(name, (2024, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
                archive.writestr(info, data)
    return out.getvalue()


def _signature_xml(entries: list[tuple[str, bytes]]) -> bytes:
    return dict(entries)["META-INF/signatures0.xml"]


def _with_signature_xml(entries: list[tuple[str, bytes]], xml: bytes) -> list[tuple[str, bytes]]:
    return [(n, xml if n == "META-INF/signatures0.xml" else d) for n, d in entries]


def _ca_pem(pki: Pki) -> bytes:
    return apem.armor("CERTIFICATE", pki.ca.root.der) + apem.armor("CERTIFICATE", pki.ca.issuing.der)


def test_asic_control(pki: Pki, tmp_path: Path, asic_entries: list[tuple[str, bytes]]) -> None:
    from tests.verifiers import xmlsec_verify
    (result,) = validate(pki, tmp_path, rezip(asic_entries), "c.asice")
    assert (result.indication, result.sub_indication) == PASSED, result.errors
    assert result.signed_objects == list(FILES)
    ok, out = xmlsec_verify(tmp_path, _signature_xml(asic_entries), FILES, _ca_pem(pki))
    assert ok, out


@pytest.mark.parametrize("forged,expected", [(True, BROKEN), (False, NOT_FOUND)], ids=["forged-in-place", "gone"])
def test_asic_signed_file_moved(pki: Pki, tmp_path: Path, asic_entries: list[tuple[str, bytes]], forged: bool,
                                expected: tuple) -> None:
    """The signed data.bin moved to archive/data.bin, a forged data.bin (or none) under the signed
    name: a detached reference names one container path, nothing else answers for it."""
    from tests.verifiers import xmlsec_verify
    entries = [("archive/data.bin" if n == "data.bin" else n, d) for n, d in asic_entries]
    files = {**FILES}
    if forged:
        entries.insert(1, ("data.bin", b"forged" + FILES["data.bin"][6:]))
        files["data.bin"] = dict(entries)["data.bin"]
    else:
        del files["data.bin"]
    (result,) = validate(pki, tmp_path, rezip(entries), "c.asice")
    assert (result.indication, result.sub_indication) == expected, result.errors
    if forged:
        ok, out = xmlsec_verify(tmp_path, _signature_xml(asic_entries), files, _ca_pem(pki))
        assert not ok, out


@pytest.mark.parametrize("name", ["data.bin", "DATA.BIN", unicodedata.normalize("NFD", "dir/Līgums ā.txt"),
                                  "dir/Līgums ā.txt"],
                         ids=["same-name", "case-variant", "nfd-variant", "same-name-in-folder"])
@pytest.mark.parametrize("order", ["forged-first", "forged-second"])
def test_asic_two_files_with_one_name(pki: Pki, tmp_path: Path, asic_entries: list[tuple[str, bytes]], name: str,
                                      order: str) -> None:
    """Two zip entries one file system (or one reader) would take for the same file: which one
    was signed is undecidable, so every signature fails its format check (or, where the reader
    cannot open the container at all, it is refused as input); never reported valid."""
    entries = list(asic_entries)
    position = 1 if order == "forged-first" else len(entries)
    entries.insert(position, (name, b"forged content"))
    try:
        results = validate(pki, tmp_path, rezip(entries), "c.asice")
    except ValidationInputError as err:  # a container the reader cannot even open
        assert err.code == "invalid_container"
        return
    assert results and all((r.indication, r.sub_indication) == FORMAT for r in results), \
        [(r.indication, r.sub_indication, r.errors) for r in results]
    assert any("appears more than once" in e for r in results for e in r.errors)


@pytest.mark.parametrize("order", ["forged-first", "forged-second"])
def test_asic_signed_properties_duplicated(pki: Pki, tmp_path: Path, asic_entries: list[tuple[str, bytes]],
                                           order: str) -> None:
    root = etree.fromstring(_signature_xml(asic_entries))
    sig = root.find("ds:Signature", NS)
    props = sig.find(".//xades:SignedProperties", NS)
    forged = copy.deepcopy(props)
    forged.find(".//xades:SigningTime", NS).text = "2001-01-01T00:00:00Z"
    holder = etree.Element(q("Object"))
    holder.append(forged)
    if order == "forged-first":
        sig.find("ds:Object", NS).addprevious(holder)
    else:
        sig.append(holder)
    entries = _with_signature_xml(asic_entries, etree.tostring(root))
    (result,) = validate(pki, tmp_path, rezip(entries), "c.asice")
    assert (result.indication, result.sub_indication) == AMBIGUOUS, result.errors


def test_asic_signed_properties_moved(pki: Pki, tmp_path: Path, asic_entries: list[tuple[str, bytes]]) -> None:
    """DSS's XSW-enveloped-fake-signedProperties: the signed SignedProperties moved into a ds:Object
    of its own, forged properties (another Id) in the QualifyingProperties -> the reference does
    not find this signature's SignedProperties: SIGNED_DATA_NOT_FOUND."""
    from tests.verifiers import xmlsec_verify
    root = etree.fromstring(_signature_xml(asic_entries))
    sig = root.find("ds:Signature", NS)
    props = sig.find(".//xades:SignedProperties", NS)
    forged = copy.deepcopy(props)
    forged.set("Id", "forged-props")
    forged.find(".//xades:SigningTime", NS).text = "2001-01-01T00:00:00Z"
    props.addprevious(forged)
    new_object(sig).append(detach(props))
    xml = etree.tostring(root)
    (result,) = validate(pki, tmp_path, rezip(_with_signature_xml(asic_entries, xml)), "c.asice")
    assert (result.indication, result.sub_indication) == NOT_FOUND, result.errors
    ok, out = xmlsec_verify(tmp_path, xml, FILES, _ca_pem(pki))
    assert ok, out
