"""Standalone XML signatures through the format interface ("xades"): enveloped, enveloping and
detached XAdES signed straight to B/T/LT/LTA, XML options (canonicalization, transforms, signed
element, placement, roles, policy), and extension of every signature of a document through T,
LT, LTA and LTA renewal -- ours, signxml's XAdES and an xmlsec1-signed XAdES template.

Each result is judged by xmlsec1 (XMLDSig core: references, SignedProperties, signature value,
certificate path) and by remotesign's validator at the level it must have (offline for LT/LTA:
everything from the document); archive time-stamp imprints are also recomputed here from the
text of EN 319 132-1 §5.5.2.2 with lxml, independently of the shared reference processor."""

from __future__ import annotations

import asyncio
import base64
import copy
import hashlib
import io
import re
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import unquote

import pytest
from asn1crypto import cms, pem, x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from remotesign.formats.base import FormatError
from remotesign.formats.interface import Document, Level, Packaging, SignaturePolicy, XmlOptions
from remotesign.formats.xades import constants as xc
from remotesign.formats.xades.c14n import canonicalize
from remotesign.formats.xades_xml import XadesXmlFormat, looks_like_xml
from remotesign.validation.model import Indication
from remotesign.validation.options import DetachedDocument
from remotesign.validation.xades import validate_xml_file
from tests import format_pki
from tests.pades_pki import Pki, make_pki

pytestmark = pytest.mark.skipif(shutil.which("xmlsec1") is None, reason="needs the xmlsec1 command")

FMT = XadesXmlFormat()
DS = xc.DS
XADES = xc.XADES
NS = {"ds": DS, "xades": XADES, "xadesv141": xc.XADES141, "inv": "urn:example:invoice"}
SP_ID_ATTR = f"{XADES}:SignedProperties"
ENVELOPED = DS + "enveloped-signature"

INVOICE = """<?xml version="1.0" encoding="UTF-8"?>
<!-- an invoice -->
<Invoice xmlns="urn:example:invoice" xmlns:x="urn:example:ext" version="2">
  <Header Id="hdr">
    <Number>LV-2025/17</Number>
    <Buyer>SIA “Rīgas Ūdens” &amp; co</Buyer>
  </Header>
  <Lines Id="lines">
    <Line x:code="A1" qty="3"><Text>Ūdens  <![CDATA[<filtrs>]]></Text></Line>
    <Line x:code="B2" qty="1"><?pi data?><Text>čūska</Text></Line>
  </Lines>
</Invoice>
""".encode()
FILES = {"contract.pdf": b"%PDF-1.7\n" + bytes(range(256)) * 20 + b"\n%%EOF\n",
         "dir/Līgums ar šķērsli.txt": "Rīga, čūska\n".encode() * 50}
MIME = {"contract.pdf": "application/pdf", "dir/Līgums ar šķērsli.txt": "text/plain"}


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pki]:
    with make_pki(tmp_path_factory.mktemp("xades-xml-pki")) as made:
        yield made


def files() -> list[Document]:
    return [format_pki.document(name, data, MIME[name]) for name, data in FILES.items()]


def inputs(packaging: Packaging) -> list[Document]:
    if packaging is Packaging.ENVELOPED:
        return [format_pki.document("invoice.xml", INVOICE, "application/xml")]
    if packaging is Packaging.ENVELOPING:
        return [format_pki.document("invoice.xml", INVOICE, "application/xml"), *files()]
    return files()


def params(packaging: Packaging, xml: XmlOptions | None = None, **extra: object):  # type: ignore[no-untyped-def]
    def tweak(p):  # type: ignore[no-untyped-def]
        return replace(p, packaging=packaging, xml=xml or XmlOptions(), **extra)
    return tweak


def sign(pki: Pki, packaging: Packaging, level: Level = Level.B, xml: XmlOptions | None = None,
         documents: list[Document] | None = None, **extra: object) -> bytes:
    _s, issued, key = pki.signer()
    return run(format_pki.sign(FMT, documents or inputs(packaging), format_pki.spec(pki, issued.asn1(), key), key,
                               level, format_pki.context(pki), tweak=params(packaging, xml, **extra)))


def pems(pki: Pki, tmp: Path) -> tuple[Path, Path]:
    root, issuing = tmp / "root.pem", tmp / "issuing.pem"
    root.write_bytes(pem.armor("CERTIFICATE", pki.root.dump()))
    issuing.write_bytes(pem.armor("CERTIFICATE", pki.issuing.dump()))
    return root, issuing


def xmlsec(pki: Pki, tmp: Path, data: bytes, *, id_attrs: tuple[str, ...] = (), detached: bool = False,
           node_id: str | None = None) -> tuple[bool, str]:
    """``xmlsec1 --verify --trusted-pem <root> --untrusted-pem <issuing>``: OK and every
    SignedInfo reference verified."""
    root, issuing = pems(pki, tmp)
    path = tmp / "signed.xml"
    path.write_bytes(data)
    args: list[str] = ["xmlsec1", "--verify", "--trusted-pem", str(root), "--untrusted-pem", str(issuing),
                       "--id-attr:Id", SP_ID_ATTR, "--print-debug"]
    for attr in id_attrs:
        args += ["--id-attr:Id", attr]
    if node_id is not None:
        args += ["--node-id", node_id]
    if detached:
        for i, (name, content) in enumerate(FILES.items()):
            obj = tmp / f"file{i}.bin"
            obj.write_bytes(content)
            args += [f"--url-map:{name}", str(obj)]
    proc = subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=60, check=False)
    out = proc.stdout + proc.stderr
    refs = re.search(r"SignedInfo References \(ok/all\): (\d+)/(\d+)", out)
    ok = proc.returncode == 0 and re.search(r"^OK$", out, re.M) is not None and refs is not None \
        and refs.group(1) == refs.group(2)
    return ok, out


def validate(pki: Pki, tmp: Path, data: bytes, level: Level, *, detached: bool = False, signatures: int = 1,
             baseline: bool = True) -> list:  # type: ignore[type-arg]
    """remotesign's validator: TOTAL_PASSED at ``level`` (LT and LTA from the document alone)."""
    path = tmp / "validate.xml"
    path.write_bytes(data)
    docs = []
    if detached:
        for i, (name, content) in enumerate(FILES.items()):
            obj = tmp / f"detached{i}.bin"
            obj.write_bytes(content)
            docs.append(DetachedDocument(name, obj))
    kwargs: dict[str, object] = {"detached": tuple(docs)}
    if level >= Level.LT:
        kwargs["revocation_provider"] = None
    result = run(validate_xml_file(path, pki.options(**kwargs), filename=path.name))
    assert len(result.signatures) == signatures
    for sig in result.signatures:
        assert (sig.indication, sig.sub_indication) == (Indication.TOTAL_PASSED, None), (sig.errors, sig.warnings)
        if baseline:
            assert sig.signature_format == f"XAdES_BASELINE_{level.name}", sig.signature_format
    return result.signatures


def check(pki: Pki, tmp: Path, data: bytes, level: Level, packaging: Packaging, *,
          id_attrs: tuple[str, ...] = (), signatures: int = 1) -> None:
    detached = packaging is Packaging.DETACHED
    if packaging is Packaging.ENVELOPING:
        id_attrs = (*id_attrs, f"{DS}:Object")
    ok, out = xmlsec(pki, tmp, data, id_attrs=id_attrs, detached=detached)
    assert ok, out[-3000:]
    validate(pki, tmp, data, level, detached=detached, signatures=signatures)
    assert FMT.signature_levels(io.BytesIO(data)) == [level] * signatures
    if level == Level.LTA:
        for sig in etree.fromstring(data).iter(f"{{{DS}}}Signature"):
            check_archive_imprints(sig)


# -- EN 319 132-1 §5.5.2.2 from the text, with lxml ------------------------------------------------

def _reference_octets(sig: etree._Element, ref: etree._Element, ats_algorithm: str = xc.EXC_C14N) -> bytes:
    """One reference's output (XMLDSig §4.4.3), for the forms our signatures use, on a copy of
    the document: a same-document reference selects its node-set without comments, the
    enveloped-signature transform drops the signature (not its tail text), then the last
    transform canonicalizes (or decodes base64); an output that is still a node-set is
    canonicalized with the archive time-stamp's algorithm (EN 319 132-1 §5.5.2.2 a)."""
    uri = ref.get("URI")
    transforms = [t.get("Algorithm") for t in ref.findall("ds:Transforms/ds:Transform", NS)]
    if not (uri == "" or uri.startswith("#")):
        assert not transforms
        return FILES[unquote(uri)]
    doc = etree.fromstring(etree.tostring(sig.getroottree())).getroottree()
    (mine,) = [s for s in doc.iter(f"{{{DS}}}Signature") if s.get("Id") == sig.get("Id")]
    target = doc.getroot() if uri == "" else doc.xpath(f"//*[@Id='{uri[1:]}']")[0]
    if transforms == [DS + "base64"]:
        return base64.b64decode("".join(target.itertext()))
    for comment in doc.xpath("//comment()"):
        if comment.getparent() is not None:
            if comment.tail:
                prev = comment.getprevious()
                if prev is not None:
                    prev.tail = (prev.tail or "") + comment.tail
                else:
                    comment.getparent().text = (comment.getparent().text or "") + comment.tail
            comment.getparent().remove(comment)
    if transforms and transforms[0] == ENVELOPED:
        parent = mine.getparent()
        if mine.tail:
            prev = mine.getprevious()
            if prev is not None:
                prev.tail = (prev.tail or "") + mine.tail
            else:
                parent.text = (parent.text or "") + mine.tail
        parent.remove(mine)
        transforms = transforms[1:]
    assert len(transforms) <= 1
    algorithm = transforms[0] if transforms else ats_algorithm
    exclusive = algorithm.startswith(xc.EXC_C14N)
    comments = algorithm.endswith("#WithComments")
    if uri == "":
        return etree.tostring(doc, method="c14n", exclusive=exclusive, with_comments=comments).replace(
            b"<!-- an invoice -->\n", b"")
    octets = etree.tostring(target, method="c14n", exclusive=exclusive, with_comments=comments)
    # libxml2 renders a spurious xmlns="" on default-namespace grandchildren of an inclusive apex
    # (the reason remotesign has its own C14N); the documents here never undeclare a namespace.
    assert b'xmlns=""' not in etree.tostring(doc)
    return octets.replace(b' xmlns=""', b"")


def independent_archive_imprint(sig: etree._Element, ats: etree._Element, hash_name: str) -> bytes:
    assert ats.find("ds:CanonicalizationMethod", NS).get("Algorithm") == xc.EXC_C14N
    h = hashlib.new(hash_name)

    def exc(el: etree._Element) -> bytes:
        return etree.tostring(el, method="c14n", exclusive=True, with_comments=False)

    for ref in sig.findall("ds:SignedInfo/ds:Reference", NS):
        h.update(_reference_octets(sig, ref))
    for path in ("ds:SignedInfo", "ds:SignatureValue", "ds:KeyInfo"):
        el = sig.find(path, NS)
        if el is not None:
            h.update(exc(el))
    for prop in ats.getparent():
        if prop is ats:
            break
        if isinstance(prop.tag, str):
            h.update(exc(prop))
    for obj in sig.findall("ds:Object", NS):
        if obj.find("xades:QualifyingProperties", NS) is None:
            h.update(exc(obj))
    return h.digest()


def check_archive_imprints(sig: etree._Element) -> None:
    archives = sig.findall(".//xadesv141:ArchiveTimeStamp", NS)
    assert archives
    for ats in archives:
        token = base64.b64decode(ats.findtext("xades:EncapsulatedTimeStamp", namespaces=NS))
        tst = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
        imprint = tst["message_imprint"]
        hash_name = imprint["hash_algorithm"]["algorithm"].native
        assert imprint["hashed_message"].native == independent_archive_imprint(sig, ats, hash_name)


# -- signing ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("level", list(Level), ids=lambda lv: lv.name)
@pytest.mark.parametrize("packaging", list(Packaging), ids=lambda p: p.value)
def test_sign_to_level(pki: Pki, packaging: Packaging, level: Level, tmp_path: Path) -> None:
    data = sign(pki, packaging, level)
    assert FMT.recognizes(io.BytesIO(data))
    check(pki, tmp_path, data, level, packaging)
    root = etree.fromstring(data)
    sig = root if root.tag == f"{{{DS}}}Signature" else root.find("ds:Signature", NS)
    refs = sig.findall("ds:SignedInfo/ds:Reference", NS)
    if packaging is Packaging.ENVELOPED:
        assert root.tag == "{urn:example:invoice}Invoice" and sig.getparent() is root
        assert refs[0].get("URI") == ""
        assert [t.get("Algorithm") for t in refs[0].findall("ds:Transforms/ds:Transform", NS)] == [
            ENVELOPED, xc.C14N_10]
    elif packaging is Packaging.ENVELOPING:
        objects = sig.findall("ds:Object", NS)
        assert objects[0].find("inv:Invoice", NS) is not None  # XML content as XML
        assert base64.b64decode(objects[1].text) == FILES["contract.pdf"]  # the rest base64
        assert objects[1].get("Encoding") == DS + "base64" and objects[1].get("MimeType") == "application/pdf"
    else:
        assert [unquote(r.get("URI")) for r in refs[:-1]] == list(FILES)


@pytest.mark.parametrize("si,sp,transform", [
    (xc.EXC_C14N, xc.EXC_C14N, xc.EXC_C14N),
    (xc.C14N_11, xc.C14N_11_COMMENTS, xc.C14N_11),
    (xc.EXC_C14N_COMMENTS, xc.C14N_10_COMMENTS, xc.C14N_10_COMMENTS),
], ids=["exclusive", "c14n11", "with-comments"])
def test_xml_options_roles_and_policy(pki: Pki, si: str, sp: str, transform: str, tmp_path: Path) -> None:
    policy_doc = b"the signature policy of the example company"
    policy = SignaturePolicy(identifier="1.3.6.1.4.1.59999.9.1", digest_algorithm="sha256",
                             digest=hashlib.sha256(policy_doc).digest(), description="Example policy",
                             uri="https://example.com/policy.pdf")
    xml = XmlOptions(signed_info_c14n=si, signed_properties_c14n=sp, transforms=(transform,))
    data = sign(pki, Packaging.ENVELOPED, Level.T, xml=xml, claimed_roles=("Valdes loceklis", "Director"),
                policy=policy)
    sig = etree.fromstring(data).find("ds:Signature", NS)
    assert sig.find("ds:SignedInfo/ds:CanonicalizationMethod", NS).get("Algorithm") == si
    sp_ref = sig.find("ds:SignedInfo/ds:Reference[@Type='http://uri.etsi.org/01903#SignedProperties']", NS)
    assert sp_ref.find("ds:Transforms/ds:Transform", NS).get("Algorithm") == sp
    data_ref = sig.find("ds:SignedInfo/ds:Reference", NS)
    assert [t.get("Algorithm") for t in data_ref.findall("ds:Transforms/ds:Transform", NS)] == [ENVELOPED, transform]
    ssp = sig.find(".//xades:SignedSignatureProperties", NS)
    assert [e.text for e in ssp.findall("xades:SignerRoleV2/xades:ClaimedRoles/xades:ClaimedRole", NS)] == [
        "Valdes loceklis", "Director"]
    spid = ssp.find("xades:SignaturePolicyIdentifier/xades:SignaturePolicyId", NS)
    identifier = spid.find("xades:SigPolicyId/xades:Identifier", NS)
    assert (identifier.text, identifier.get("Qualifier")) == ("urn:oid:1.3.6.1.4.1.59999.9.1", "OIDAsURN")
    assert base64.b64decode(spid.findtext("xades:SigPolicyHash/ds:DigestValue", namespaces=NS)) == \
        hashlib.sha256(policy_doc).digest()
    assert spid.findtext(".//xades:SPURI", namespaces=NS) == "https://example.com/policy.pdf"
    ok, out = xmlsec(pki, tmp_path, data)
    assert ok, out[-3000:]
    (result,) = validate(pki, tmp_path, data, Level.T)
    assert result.signer_roles == ["Valdes loceklis", "Director"]
    assert result.policy_id == "urn:oid:1.3.6.1.4.1.59999.9.1"


def test_enveloped_element_by_id_and_by_xpath(pki: Pki, tmp_path: Path) -> None:
    header = f"{NS['inv']}:Header"
    by_id = sign(pki, Packaging.ENVELOPED, Level.LTA, xml=XmlOptions(reference_uri="#hdr"))
    sig = etree.fromstring(by_id).find(".//ds:Signature", NS)
    assert sig.getparent().get("Id") == "hdr"  # placed in the signed element
    assert sig.find("ds:SignedInfo/ds:Reference", NS).get("URI") == "#hdr"
    check(pki, tmp_path, by_id, Level.LTA, Packaging.ENVELOPED, id_attrs=(header,))

    # xpath to an element with an Id: that element is signed and holds the signature
    lines = "/*[local-name()='Invoice']/*[local-name()='Lines']"  # XPath 1.0 has no default namespace
    by_xpath = sign(pki, Packaging.ENVELOPED, Level.T, xml=XmlOptions(xpath=lines))
    sig = etree.fromstring(by_xpath).find(".//ds:Signature", NS)
    assert sig.getparent().get("Id") == "lines" and sig.find("ds:SignedInfo/ds:Reference", NS).get("URI") == "#lines"
    check(pki, tmp_path, by_xpath, Level.T, Packaging.ENVELOPED, id_attrs=(f"{NS['inv']}:Lines",))

    # xpath to an element without an Id: the whole document is signed, the signature goes there
    placed = sign(pki, Packaging.ENVELOPED, Level.B, xml=XmlOptions(xpath="(//x:*|//*[@x:code])[2]"))
    sig = etree.fromstring(placed).find(".//ds:Signature", NS)
    assert sig.getparent().get("qty") == "1" and sig.find("ds:SignedInfo/ds:Reference", NS).get("URI") == ""
    check(pki, tmp_path, placed, Level.B, Packaging.ENVELOPED)

    # signed element and placement apart: no enveloped-signature transform (the signature is not inside)
    apart = sign(pki, Packaging.ENVELOPED, Level.B, xml=XmlOptions(reference_uri="hdr", xpath="/*"))
    ref = etree.fromstring(apart).find("ds:Signature/ds:SignedInfo/ds:Reference", NS)
    assert [t.get("Algorithm") for t in ref.findall("ds:Transforms/ds:Transform", NS)] == [xc.C14N_10]
    check(pki, tmp_path, apart, Level.B, Packaging.ENVELOPED, id_attrs=(header,))


@pytest.mark.parametrize("xml,code", [
    (XmlOptions(reference_uri="#nothing"), "invalid_argument"),
    (XmlOptions(xpath="//*[@x:code]"), "invalid_argument"),  # two elements
    (XmlOptions(xpath="//inv:Line"), "invalid_argument"),  # a prefix the document does not declare
    (XmlOptions(xpath="count(//inv:Line)"), "invalid_argument"),
    (XmlOptions(xpath="///"), "invalid_argument"),
    (XmlOptions(signed_info_c14n="http://www.w3.org/TR/1999/REC-xslt-19991116"), "unsupported_algorithm"),
    (XmlOptions(transforms=("http://www.w3.org/TR/1999/REC-xslt-19991116",)), "unsupported_algorithm"),
], ids=["unknown-id", "two-elements", "undeclared-prefix", "not-a-node-set", "bad-xpath", "xslt-c14n",
        "xslt-transform"])
def test_bad_xml_options(pki: Pki, xml: XmlOptions, code: str) -> None:
    with pytest.raises(FormatError) as exc:
        sign(pki, Packaging.ENVELOPED, xml=xml)
    assert exc.value.code == code


def test_signing_refuses_to_break_an_earlier_signature(pki: Pki, tmp_path: Path) -> None:
    """Two enveloped signatures over the whole document: the second would change what the first
    signed (its transform excludes only itself), so it is refused; over separate elements both
    signatures stand, and extension raises every one of them."""
    first = sign(pki, Packaging.ENVELOPED)
    with pytest.raises(FormatError) as exc:
        sign(pki, Packaging.ENVELOPED, documents=[format_pki.document("signed.xml", first, "text/xml")])
    assert exc.value.code == "breaks_other_signature"

    one = sign(pki, Packaging.ENVELOPED, xml=XmlOptions(reference_uri="#hdr"))
    two = sign(pki, Packaging.ENVELOPED, xml=XmlOptions(reference_uri="#lines"),
               documents=[format_pki.document("one.xml", one, "text/xml")])
    assert FMT.signature_levels(io.BytesIO(two)) == [Level.B, Level.B]
    extended = run(format_pki.extend(FMT, two, Level.LTA, format_pki.context(pki)))
    assert FMT.signature_levels(io.BytesIO(extended)) == [Level.LTA, Level.LTA]
    validate(pki, tmp_path, extended, Level.LTA, signatures=2)
    ids = (f"{NS['inv']}:Header", f"{NS['inv']}:Lines")
    for sig in etree.fromstring(extended).iter(f"{{{DS}}}Signature"):
        ok, out = xmlsec(pki, tmp_path, extended, id_attrs=(*ids, f"{DS}:Signature"), node_id=sig.get("Id"))
        assert ok, out[-3000:]
        check_archive_imprints(sig)


# -- extension ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("packaging", list(Packaging), ids=lambda p: p.value)
def test_extend_own_b_through_every_level_and_renew(pki: Pki, packaging: Packaging, tmp_path: Path) -> None:
    ctx = format_pki.context(pki)
    data = sign(pki, packaging)
    detached = tuple(files()) if packaging is Packaging.DETACHED else ()
    for level in (Level.T, Level.LT, Level.LTA, Level.LTA):
        extended = run(format_pki.extend(FMT, data, level, ctx, detached))
        check(pki, tmp_path, extended, level, packaging)
        assert extended != data
        data = extended
    sig = etree.fromstring(data)
    sig = sig if sig.tag == f"{{{DS}}}Signature" else sig.find(".//ds:Signature", NS)
    assert len(sig.findall(".//xadesv141:ArchiveTimeStamp", NS)) == 2
    assert run(format_pki.extend(FMT, data, Level.T, ctx, detached)) == FMT_serialized(data)


def FMT_serialized(data: bytes) -> bytes:  # noqa: N802 - reads as what the format writes
    """What the format writes back for a document it does not change (the same document)."""
    from remotesign.formats.xades.xmlio import parse_xml, serialize
    return serialize(parse_xml(data, 1 << 26))


def test_detached_lta_needs_the_documents(pki: Pki) -> None:
    ctx = format_pki.context(pki)
    lt = sign(pki, Packaging.DETACHED, Level.LT)
    with pytest.raises(FormatError) as exc:
        run(format_pki.extend(FMT, lt, Level.LTA, ctx))
    assert exc.value.code == "missing_data_object"
    changed = [format_pki.document(n, d + b"!" if n == "contract.pdf" else d) for n, d in FILES.items()]
    with pytest.raises(FormatError) as exc:
        run(format_pki.extend(FMT, lt, Level.LTA, ctx, tuple(changed)))
    assert exc.value.code == "digest_mismatch"
    # matched by the last path segment when the names differ in their directories
    renamed = tuple(format_pki.document(f"upload/{n.rsplit('/', 1)[-1]}", d) for n, d in FILES.items())
    lta = run(format_pki.extend(FMT, lt, Level.LTA, ctx, renamed))
    assert FMT.signature_levels(io.BytesIO(lta)) == [Level.LTA]


def test_timestamp_archives_every_long_term_signature(pki: Pki, tmp_path: Path) -> None:
    """``timestamp`` adds an archive time-stamp to signatures at LT or above and refuses a
    document with none (a B or T signature needs ``extend``)."""
    ctx = format_pki.context(pki)
    with pytest.raises(FormatError) as exc:
        run(FMT.timestamp(io.BytesIO(sign(pki, Packaging.ENVELOPING, Level.T)), io.BytesIO(), ctx))
    assert exc.value.code == "not_long_term"
    out = io.BytesIO()
    run(FMT.timestamp(io.BytesIO(sign(pki, Packaging.ENVELOPING, Level.LT)), out, ctx))
    check(pki, tmp_path, out.getvalue(), Level.LTA, Packaging.ENVELOPING)
    renewed = io.BytesIO()
    run(FMT.timestamp(io.BytesIO(out.getvalue()), renewed, ctx))
    check(pki, tmp_path, renewed.getvalue(), Level.LTA, Packaging.ENVELOPING)
    assert renewed.getvalue().count(b"ArchiveTimeStamp ") == 2


def _key_files(pki: Pki, tmp: Path) -> tuple[object, x509.Certificate, Path, Path]:
    _s, issued, key = pki.signer()
    key_pem = tmp / "key.pem"
    key_pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    cert_pem = tmp / "cert.pem"
    cert_pem.write_bytes(pem.armor("CERTIFICATE", issued.der) + pem.armor("CERTIFICATE", pki.issuing.dump()))
    return key, issued.asn1(), key_pem, cert_pem


def _extend_and_check_all(pki: Pki, tmp: Path, data: bytes, *, baseline: bool) -> None:
    ctx = format_pki.context(pki)
    for level in (Level.T, Level.LT, Level.LTA, Level.LTA):
        data = run(format_pki.extend(FMT, data, level, ctx))
        ok, out = xmlsec(pki, tmp, data)
        assert ok, (level, out[-3000:])
        (result,) = validate(pki, tmp, data, level, baseline=baseline)
        assert FMT.signature_levels(io.BytesIO(data)) == [level]
        if not baseline:
            assert result.signature_format in {Level.T: ("XAdES_T",), Level.LT: ("XAdES_LT",),
                                               Level.LTA: ("XAdES_A",)}[level], result.signature_format
    check_archive_imprints(etree.fromstring(data).find(".//ds:Signature", NS))


def test_extend_signxml_xades(pki: Pki, tmp_path: Path) -> None:
    """signxml's XAdES-B-B (enveloped, C14N 1.1, SigningCertificateV2, a signed KeyInfo
    reference) extended through T, LT, LTA and renewal."""
    from signxml import DigestAlgorithm, SignatureMethod
    from signxml.xades import XAdESSigner

    key, cert, key_pem, cert_pem = _key_files(pki, tmp_path)
    signer = XAdESSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256)
    signed = signer.sign(etree.fromstring(INVOICE), key=key_pem.read_bytes(), cert=cert_pem.read_text())
    data = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
    ok, out = xmlsec(pki, tmp_path, data)
    assert ok, out[-3000:]
    validate(pki, tmp_path, data, Level.B)
    _extend_and_check_all(pki, tmp_path, data, baseline=True)


XMLSEC_TEMPLATE = """<Invoice xmlns="urn:example:invoice"><Number>T-1</Number><Amount>10.00</Amount>
<ds:Signature xmlns:ds="{ds}" Id="xs"><ds:SignedInfo>
<ds:CanonicalizationMethod Algorithm="{exc}"/>
<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"/>
<ds:Reference Id="xs-ref" URI=""><ds:Transforms><ds:Transform Algorithm="{enveloped}"/>
<ds:Transform Algorithm="{exc}"/></ds:Transforms>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>
<ds:Reference URI="#xs-sp" Type="http://uri.etsi.org/01903#SignedProperties"><ds:Transforms>
<ds:Transform Algorithm="{exc}"/></ds:Transforms>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue/></ds:Reference>
</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><ds:X509Data/></ds:KeyInfo>
<ds:Object><xades:QualifyingProperties xmlns:xades="{xades}" Target="#xs">
<xades:SignedProperties Id="xs-sp"><xades:SignedSignatureProperties>
<xades:SigningTime>{time}</xades:SigningTime>
<xades:SigningCertificateV2><xades:Cert><xades:CertDigest>
<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><ds:DigestValue>{digest}</ds:DigestValue>
</xades:CertDigest></xades:Cert></xades:SigningCertificateV2>
</xades:SignedSignatureProperties><xades:SignedDataObjectProperties>
<xades:DataObjectFormat ObjectReference="#xs-ref"><xades:MimeType>text/xml</xades:MimeType></xades:DataObjectFormat>
</xades:SignedDataObjectProperties></xades:SignedProperties></xades:QualifyingProperties></ds:Object>
</ds:Signature></Invoice>"""


def test_extend_xmlsec1_signed_xades_template(pki: Pki, tmp_path: Path) -> None:
    """A XAdES-B-B made by xmlsec1 from a template (exclusive c14n, no Ids on most elements)."""
    _key, cert, key_pem, cert_pem = _key_files(pki, tmp_path)
    template = tmp_path / "template.xml"
    template.write_text(XMLSEC_TEMPLATE.format(
        ds=DS, xades=XADES, exc=xc.EXC_C14N, enveloped=ENVELOPED,
        time=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        digest=base64.b64encode(hashlib.sha256(cert.dump()).digest()).decode()))
    out = tmp_path / "xmlsec-signed.xml"
    proc = subprocess.run(["xmlsec1", "--sign", "--privkey-pem", f"{key_pem},{cert_pem}", "--id-attr:Id", SP_ID_ATTR,
                           "--output", str(out), str(template)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    data = out.read_bytes()
    assert etree.fromstring(data).find(".//ds:X509Certificate", NS) is not None
    ok, log = xmlsec(pki, tmp_path, data)
    assert ok, log[-3000:]
    validate(pki, tmp_path, data, Level.B)
    _extend_and_check_all(pki, tmp_path, data, baseline=True)


def test_plain_xmldsig_cannot_become_xades(pki: Pki, tmp_path: Path) -> None:
    from signxml import DigestAlgorithm, SignatureMethod, XMLSigner

    _key, _cert, key_pem, cert_pem = _key_files(pki, tmp_path)
    signed = XMLSigner(signature_algorithm=SignatureMethod.ECDSA_SHA256, digest_algorithm=DigestAlgorithm.SHA256).sign(
        etree.fromstring(INVOICE), key=key_pem.read_bytes(), cert=cert_pem.read_text())
    data = etree.tostring(signed)
    assert FMT.signature_levels(io.BytesIO(data)) == [Level.B]
    for level in (Level.T, Level.LT, Level.LTA):
        with pytest.raises(FormatError) as exc:
            run(format_pki.extend(FMT, data, level, format_pki.context(pki)))
        assert exc.value.code == "not_xades"


# -- hostile and broken input ---------------------------------------------------------------------------

def test_tampered_documents_are_not_extended(pki: Pki) -> None:
    ctx = format_pki.context(pki)
    data = sign(pki, Packaging.ENVELOPED)
    cases = {
        "digest_mismatch": data.replace(b"LV-2025/17", b"LV-2025/18"),
        "invalid_signature": re.sub(rb"(<ds:SignatureValue[^>]*>)(.)", lambda m: m.group(1) + (
            b"A" if m.group(2) != b"A" else b"B"), data, count=1),
    }
    for code, tampered in cases.items():
        for level in (Level.T, Level.LTA):
            with pytest.raises(FormatError) as exc:
                run(format_pki.extend(FMT, tampered, level, ctx))
            assert exc.value.code == code, (level, exc.value.message)
    # signature wrapping: the signed header moved away from its signature, a forged one (holding
    # the signature) in its place -- every digest still matches, xmlsec1 would say OK
    by_id = sign(pki, Packaging.ENVELOPED, xml=XmlOptions(reference_uri="#hdr"))
    root = etree.fromstring(by_id)
    header = root.find("inv:Header", NS)
    signature = header.find("ds:Signature", NS)
    forged = copy.deepcopy(header)
    forged.remove(forged.find("ds:Signature", NS))
    forged.find("inv:Number", NS).text = "EVIL-1"
    del forged.attrib["Id"]
    forged.append(signature)
    root.replace(header, forged)
    hidden = etree.SubElement(root, "{urn:example:invoice}Hidden")
    hidden.append(header)
    with pytest.raises(FormatError) as exc:
        run(format_pki.extend(FMT, etree.tostring(root), Level.T, ctx))
    assert exc.value.code == "invalid_xades", exc.value.message


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
<!ENTITY lol9 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<doc>&lol9;</doc>"""
XXE = b"""<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>"""


@pytest.mark.parametrize("data,code", [
    (BILLION_LAUGHS, "invalid_xml"),
    (XXE, "invalid_xml"),
    (b"<doc><unclosed></doc>", "invalid_xml"),
    (b"<\x00d\x00", "invalid_xml"),
    (b"", "invalid_xml"),
    (b"<doc>not signed</doc>", "not_signed"),
], ids=["billion-laughs", "xxe", "malformed", "garbage", "empty", "unsigned"])
def test_bad_input_is_a_format_error(pki: Pki, data: bytes, code: str) -> None:
    with pytest.raises(FormatError) as exc:
        run(format_pki.extend(FMT, data, Level.T, format_pki.context(pki)))
    assert exc.value.code == code
    assert FMT.signature_levels(io.BytesIO(data)) == []
    if code == "not_signed":
        return  # an unsigned XML document is what one signs
    with pytest.raises(FormatError) as exc:
        sign(pki, Packaging.ENVELOPED, documents=[format_pki.document("x.xml", data, "text/xml")])
    assert exc.value.code == code


def test_size_limit() -> None:
    from remotesign.formats.base import Limits

    small = XadesXmlFormat(Limits(max_xml_bytes=100))
    with pytest.raises(FormatError) as exc:
        run(small.extend(io.BytesIO(b"<a>" + b"x" * 200 + b"</a>"), io.BytesIO(), Level.T, None))  # type: ignore[arg-type]
    assert exc.value.code == "document_too_large"


@pytest.mark.parametrize("head,expected", [
    (b'<?xml version="1.0"?><a/>', True), (b"\xef\xbb\xbf  <a/>", True), (b"<!-- c --><a/>", True),
    ('<?xml version="1.0" encoding="UTF-16"?><a/>'.encode("utf-16"), True),
    (b"%PDF-1.7 <a/>", False), (b"PK\x03\x04<a/>", False), (b"\x30\x82\x01\x00", False), (b"", False),
    (b"hello <a/>", False), (b"< a", False),
])
def test_recognizes(head: bytes, expected: bool) -> None:
    assert looks_like_xml(head) is expected
    assert FMT.recognizes(io.BytesIO(head)) is expected


def test_c14n_does_not_undeclare_on_the_apex() -> None:
    """C14N 1.0 §2.3: xmlns="" is rendered only when an output ancestor has a default namespace."""
    root = etree.fromstring(b'<a xmlns="urn:x"><b xmlns=""><c/></b><d><e xmlns=""/></d></a>')
    assert canonicalize(root[0], xc.C14N_10) == b"<b><c></c></b>"
    assert canonicalize(root[1], xc.C14N_10) == b'<d xmlns="urn:x"><e xmlns=""></e></d>'
