"""Remote Signing (VN)-style file signing over HTTP: PDFs with a visible signature shaped by
``signCloudMetaData``, XML with an enveloped XAdES signature, several files under one
authorization (passcode, or a one-time code by e-mail), and the download by billCode. Outputs are
checked by poppler (``pdfsig``, ``pdftotext``), pyHanko and ``xmlsec1``."""

from __future__ import annotations

import base64
import hashlib
import io
import re
import secrets
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from asn1crypto import pem, x509 as asn1_x509
from PIL import Image

from tests.crash_tools import pdfsig_signatures, pyhanko_check
from tests.harness import Service, free_port
from tests.mailbox import mailbox
from tests.pdfgen import pdf_bytes
from tests.test_fortress_signature import validate
from tests.test_remote_signing import DIGITS, Rs, fresh

POLICY = b"Signature policy of the example CA for XAdES-EPES e-invoices"
POLICY_ID = "1.3.6.1.4.1.59999.9.1"
XML = b'<?xml version="1.0" encoding="UTF-8"?><HDon><DLHDon Id="data"><TTChung><SHDon>42</SHDon></TTChung></DLHDon></HDon>'


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    policy = tmp_path_factory.mktemp("policy") / "policy.pdf"
    policy.write_bytes(POLICY)
    service = Service(home=tmp_path_factory.mktemp("remote-signing-files"), port=free_port(),
                      env={"REMOTESIGN_XADES_POLICY_ID": POLICY_ID, "REMOTESIGN_XADES_POLICY_FILE": str(policy),
                           "REMOTESIGN_XADES_POLICY_URI": "https://ca.example.vn/policy.pdf"}).start()
    yield service
    service.stop()


@pytest.fixture(scope="module")
def rp(svc: Service) -> Iterator[Rs]:
    party = Rs(svc, "Invoice Platform")
    yield party
    party.http.close()


@pytest.fixture(scope="module")
def ca(svc: Service, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The service's root and issuing CA, as files for pdfsig-free checks and xmlsec1."""
    d = tmp_path_factory.mktemp("ca")
    certs = [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(httpx.get(svc.url + "/pki/ca.pem").content,
                                                                          multiple=True)]
    root = next(c for c in certs if c.self_signed == "maybe" or c.subject == c.issuer)
    issuing = next(c for c in certs if c is not root)
    (d / "root.pem").write_bytes(pem.armor("CERTIFICATE", root.dump()))
    (d / "issuing.pem").write_bytes(pem.armor("CERTIFICATE", issuing.dump()))
    return {"root": root, "dir": d}


def png(color: tuple[int, int, int] = (200, 30, 30), kind: str = "PNG") -> str:
    buf = io.BytesIO()
    Image.new("RGB", (120, 40), color).save(buf, kind)
    return base64.b64encode(buf.getvalue()).decode()


def meta(**pairs: str) -> dict[str, Any]:
    return {"singletonSigning": {"entry": [{"key": k, "value": v} for k, v in pairs.items()]}}


def pdftotext(pdf: bytes, tmp: Path, page: int) -> str:
    path = tmp / f"t-{secrets.token_hex(3)}.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", "-f", str(page), "-l", str(page), str(path), "-"],
                          capture_output=True, text=True, check=True).stdout


def test_a_pdf_with_a_visible_signature(rp: Rs, ca: dict[str, Any], tmp_path: Path) -> None:
    agreement, passcode = fresh(rp)
    answer = rp.call("/signing/file", {
        "agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": passcode,
        "mimeType": "application/pdf", "signingFileName": "hoa-don.pdf",
        "signingFileData": base64.b64encode(pdf_bytes(pages=2)).decode(),
        "signCloudMetaData": meta(VISIBLESIGNATURE="true", PAGENO="Last", COORDINATE="300,80,560,170",
                                  SHOWSIGNERINFO="true", SIGNERINFOPREFIX="Ký bởi", SHOWDATETIME="true",
                                  DATETIMEPREFIX="Ngày ký", SHOWREASON="true", SIGNREASONPREFIX="Lý do",
                                  SIGNREASON="Phê duyệt hóa đơn", SHOWLOCATION="true", LOCATIONPREFIX="Nơi ký",
                                  LOCATION="Hà Nội", SIGNATUREIMAGE=png(), IMAGEANDTEXT="true",
                                  SHOWEMAIL="true", EMAILPREFIX="Thư điện tử", FANCYNEWKEY="42")})
    assert answer["responseCode"] == 0, answer.get("detail")
    assert answer["ignoredMetaData"] == ["FANCYNEWKEY"]
    assert answer["signedFileName"] == "hoa-don.pdf" and answer["mimeType"] == "application/pdf"
    signed = base64.b64decode(answer["signedFileData"])
    assert pdfsig_signatures(signed, tmp_path) == ["Signature is Valid."]
    assert pyhanko_check(signed, ca["root"]) == (1, 0, True)
    first, last = pdftotext(signed, tmp_path, 1), pdftotext(signed, tmp_path, 2)
    assert "Ký bởi" not in first  # PAGENO Last: the stamp is on page 2 only
    lines = [line.strip() for line in last.splitlines() if line.strip()]
    assert "Ký bởi: Nguyễn Văn An" in lines and "Lý do: Phê duyệt hóa đơn" in lines and "Nơi ký: Hà Nội" in lines, lines
    assert any(re.fullmatch(r"Thư điện tử: owner-[0-9a-f]+@example\.test", line) for line in lines), lines
    assert any(re.fullmatch(r"Ngày ký: \d\d/\d\d/\d{4} \d\d:\d\d:\d\d \+07", line) for line in lines), lines
    download = rp.http.get(f"/signing/download/file/{answer['billCode']}").json()
    assert download["signedFiles"] == [{"fileName": "hoa-don.pdf", "base64": answer["signedFileData"],
                                        "mimeType": "application/pdf"}]


def test_several_files_with_a_code_by_email(rp: Rs, ca: dict[str, Any], tmp_path: Path) -> None:
    owner = f"files-{secrets.token_hex(3)}"
    agreement, _ = fresh(rp, owner=owner, ownerEmail=f"{owner}@example.test")
    files = [{"signingFileData": base64.b64encode(pdf_bytes()).decode(), "signingFileName": "a.pdf",
              "mimeType": "application/pdf", "signCloudMetaData": meta(VISIBLESIGNATURE="false")},
             {"signingFileData": base64.b64encode(XML).decode(), "signingFileName": "invoice.xml",
              "mimeType": "application/xml"}]
    answer = rp.call("/signing/file", {"agreementUUID": agreement, "authMode": "EXPLICIT/OTP-EMAIL",
                                       "multipleSigningFileData": files})
    assert answer["responseCode"] == 1007, answer
    bill = answer["billCode"]
    pending = rp.http.get(f"/signing/download/file/{bill}").json()
    assert pending["responseCode"] == 1027, pending
    code = DIGITS.search(mailbox().wait_for(f"{owner}@example.test", 2).get_payload(decode=True).decode()).group(1)  # type: ignore[union-attr]
    wrong_place = rp.call("/signing/hash/authorize", {"agreementUUID": agreement, "billCode": bill,
                                                      "authorizeCode": code})
    assert wrong_place["responseCode"] == 1011, wrong_place  # and the code is not spent by it
    done = rp.call("/signing/file/authorize", {"agreementUUID": agreement, "billCode": bill, "authorizeCode": code})
    assert done["responseCode"] == 0, done
    signed = done["multipleSignedFileData"]
    assert [f["signedFileName"] for f in signed] == ["a.pdf", "invoice.xml"]
    pdf = base64.b64decode(signed[0]["signedFileData"])
    assert pdfsig_signatures(pdf, tmp_path) == ["Signature is Valid."]
    xml = tmp_path / "invoice.xml"
    xml.write_bytes(base64.b64decode(signed[1]["signedFileData"]))
    proc = subprocess.run(["xmlsec1", "--verify", "--trusted-pem", str(ca["dir"] / "root.pem"), "--untrusted-pem",
                           str(ca["dir"] / "issuing.pem"), "--id-attr:Id",
                           "http://uri.etsi.org/01903/v1.3.2#:SignedProperties", str(xml)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and re.search(r"^OK$", proc.stdout + proc.stderr, re.M), proc.stdout + proc.stderr
    downloaded = rp.http.get(f"/signing/download/file/{bill}").json()
    assert [f["base64"] for f in downloaded["signedFiles"]] == [f["signedFileData"] for f in signed]


def test_file_refusals(rp: Rs, svc: Service) -> None:
    agreement, passcode = fresh(rp)
    base = {"agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": passcode,
            "signingFileData": base64.b64encode(pdf_bytes()).decode(), "mimeType": "application/pdf"}
    assert rp.call("/signing/file", {**base, "mimeType": "application/vnd.ms-excel"})["responseCode"] == 1011
    assert rp.call("/signing/file", {**base, "signingFileData": "%%%"})["responseCode"] == 1002
    bad = rp.call("/signing/file", {**base, "signCloudMetaData": meta(COORDINATE="10,10,5,5")})
    assert bad["responseCode"] == 1002, bad
    beyond = rp.call("/signing/file", {**base, "signCloudMetaData": meta(VISIBLESIGNATURE="true", PAGENO="9")})
    assert beyond["responseCode"] == 1002 and "page" in beyond["detail"], beyond
    not_pdf = rp.call("/signing/file", {**base, "signingFileData": base64.b64encode(b"not a pdf").decode()})
    assert not_pdf["responseCode"] == 1002, not_pdf
    assert rp.http.get("/signing/download/file/no-such-bill").json()["responseCode"] == 1025
    other = Rs(svc, "Someone Else")
    done = rp.call("/signing/file", base)
    assert done["responseCode"] == 0, done
    assert other.http.get(f"/signing/download/file/{done['billCode']}").json()["responseCode"] == 1025


def test_lock_after_signing(rp: Rs, ca: dict[str, Any], tmp_path: Path) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import fields

    agreement, passcode = fresh(rp)

    def sign(pdf: bytes, **pairs: str) -> dict[str, Any]:
        return rp.call("/signing/file", {"agreementUUID": agreement, "authMode": "EXPLICIT/PIN",
                                         "authorizeCode": passcode, "mimeType": "application/pdf",
                                         "signingFileData": base64.b64encode(pdf).decode(),
                                         "signCloudMetaData": meta(**pairs)})

    open_one = base64.b64decode(sign(pdf_bytes(), LOCATION="Đà Nẵng")["signedFileData"])
    twice = sign(open_one)  # an unlocked signature takes another after it
    assert twice["responseCode"] == 0, twice
    assert pdfsig_signatures(base64.b64decode(twice["signedFileData"]), tmp_path) == ["Signature is Valid."] * 2

    locked = sign(pdf_bytes(), LOCKAFTERSIGNING="true", VISIBLESIGNATURE="true", COORDINATE="40,40,260,110")
    assert locked["responseCode"] == 0, locked
    pdf = base64.b64decode(locked["signedFileData"])
    reader = PdfFileReader(io.BytesIO(pdf))
    [(name, _, field_ref)] = list(fields.enumerate_sig_fields(reader, filled_status=True))
    lock = field_ref.get_object()["/Lock"]
    assert lock["/Action"] == "/All" and lock["/P"] == 1
    assert pyhanko_check(pdf, ca["root"]) == (1, 0, True)
    assert pdfsig_signatures(pdf, tmp_path) == ["Signature is Valid."]
    from pyhanko.sign.fields import FieldMDPAction, MDPPerm

    [embedded] = reader.embedded_regular_signatures
    assert embedded.docmdp_level == MDPPerm.NO_CHANGES and embedded.fieldmdp.action == FieldMDPAction.ALL
    refused = sign(pdf)
    assert refused["responseCode"] == 1011 and "locked" in refused["detail"], refused
    signed_open = PdfFileReader(io.BytesIO(open_one)).embedded_regular_signatures[0]
    assert signed_open.sig_object["/Location"] == "Đà Nẵng"
    # a signature added by another tool anyway: the locked signature no longer passes
    later = sign_elsewhere(pdf, tmp_path)
    reports = validate(rp.svc, "later.pdf", later)
    locked_report = next(r for r in reports if r["signedBy"] == "Nguyễn Văn An")
    assert locked_report["indication"] == "TOTAL-FAILED", reports


def sign_elsewhere(pdf: bytes, tmp: Path) -> bytes:
    """``pdf`` with one more signature by a throw-away self-signed key (pyHanko, outside the service)."""
    from datetime import datetime, timedelta, timezone

    from cryptography import x509 as cx509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    key = ec.generate_private_key(ec.SECP256R1())
    name = cx509.Name([cx509.NameAttribute(NameOID.COMMON_NAME, "Someone Else")])
    now = datetime.now(timezone.utc)
    cert = (cx509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(cx509.random_serial_number()).not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    (tmp / "other.key").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                      serialization.NoEncryption()))
    (tmp / "other.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    signer = signers.SimpleSigner.load(str(tmp / "other.key"), str(tmp / "other.pem"))
    out = io.BytesIO()
    signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)), signers.PdfSignatureMetadata(field_name="Later"),
                     signer=signer, output=out)
    return out.getvalue()


def rasterise(pdf: bytes, tmp: Path, page: int) -> Image.Image:
    """The page at 72 dpi: one pixel per point, y from the top."""
    path = tmp / f"r-{secrets.token_hex(3)}.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "72", "-f", str(page), "-l", str(page), "-png", "-singlefile", str(path),
                    str(path.with_suffix(""))], check=True, timeout=60)
    return Image.open(path.with_suffix(".png")).convert("RGB")


def test_an_anchor_text_places_the_stamp(rp: Rs, tmp_path: Path) -> None:
    agreement, passcode = fresh(rp)
    answer = rp.call("/signing/file", {
        "agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": passcode,
        "mimeType": "application/pdf", "signingFileData": base64.b64encode(pdf_bytes(pages=3)).decode(),
        "signCloudMetaData": meta(POSITIONIDENTIFIER="page 2", RECTANGLEOFFSET="0,-120", RECTANGLESIZE="240,90",
                                  SIGNATUREIMAGE=png((0, 160, 0)), IMAGEANDTEXT="true", TEXTDIRECTION="LEFTTORIGHT",
                                  TEXTCOLOR="red", SHOWSIGNERINFO="true", SHOWDATETIME="true")})
    assert answer["responseCode"] == 0, answer.get("detail")
    pdf = base64.b64decode(answer["signedFileData"])
    assert pdfsig_signatures(pdf, tmp_path) == ["Signature is Valid."]
    assert "Signed by" not in pdftotext(pdf, tmp_path, 1) and "Signed by" not in pdftotext(pdf, tmp_path, 3)
    assert "Signed by: Nguyễn Văn An" in pdftotext(pdf, tmp_path, 2)
    page = rasterise(pdf, tmp_path, 2)
    # where poppler sees the anchor: the word "page" of "... - page 2" (its left edge, points)
    original = tmp_path / "original.pdf"
    original.write_bytes(pdf_bytes(pages=3))
    words = subprocess.run(["pdftotext", "-bbox", "-f", "2", "-l", "2", str(original), "-"], capture_output=True,
                           text=True, check=True).stdout
    anchor_x = float(re.search(r'<word xMin="([\d.]+)"[^>]*>page</word>', words).group(1))  # type: ignore[union-attr]

    def columns(test: Any) -> list[int]:
        return [x for x in range(page.width) if any(test(page.getpixel((x, y))) for y in range(0, page.height, 2))]

    def rows(test: Any) -> list[int]:
        return [y for y in range(page.height) if any(test(page.getpixel((x, y))) for x in range(0, page.width, 2))]

    red = lambda p: p[0] > 180 and p[1] < 90 and p[2] < 90  # noqa: E731
    green = lambda p: p[1] > 120 and p[0] < 80 and p[2] < 80  # noqa: E731
    red_x, green_x = columns(red), columns(green)
    assert red_x and green_x, "red text and the green image are drawn"
    # the stamp (240 x 90) starts at the anchor's left edge: red text on its left, the image right of it
    assert anchor_x - 1 <= min(red_x) and max(red_x) < min(green_x) and max(green_x) <= anchor_x + 241, \
        (anchor_x, min(red_x), max(red_x), min(green_x), max(green_x))
    # 120 points below the anchor line (baseline 720 -> the stamp's top near 842 - 600 - 90 = 152 from the top)
    assert 140 <= min(rows(red) + rows(green)) and max(rows(red) + rows(green)) <= 260

    missing = rp.call("/signing/file", {
        "agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": passcode,
        "mimeType": "application/pdf", "signingFileData": base64.b64encode(pdf_bytes(pages=3)).decode(),
        "signCloudMetaData": meta(POSITIONIDENTIFIER="Chữ ký người bán", PAGENO="2")})
    assert missing["responseCode"] == 1002 and "not on page 2" in missing["detail"], missing


@pytest.fixture(scope="module")
def signer(rp: Rs) -> tuple[str, str]:
    return fresh(rp)


@pytest.mark.parametrize("hostile", [
    b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
    b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><l>&d;&d;&d;</l>',
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/x">]><r>&x;</r>',
    b"<a>" * 5000 + b"</a>" * 5000,
    b"<unclosed><tag>",
    b"\xff\xfe<a/>",
])
def test_hostile_xml_is_refused(rp: Rs, signer: tuple[str, str], hostile: bytes) -> None:
    agreement, passcode = signer
    answer = rp.call("/signing/file", {"agreementUUID": agreement, "authMode": "EXPLICIT/PIN",
                                       "authorizeCode": passcode, "mimeType": "application/xml",
                                       "signingFileData": base64.b64encode(hostile).decode()})
    assert answer["_status"] == 400 and answer["responseCode"] == 1002, answer
    assert "root:" not in str(answer)  # nothing of /etc/passwd


INVOICE = ('<?xml version="1.0" encoding="UTF-8"?><HDon><DLHDon Id="SigningData"><TTChung><PBan>2.0.1</PBan>'
           '<THDon>HÓA ĐƠN GIÁ TRỊ GIA TĂNG</THDon><SHDon>12</SHDon><NLap>2026-12-06</NLap></TTChung>'
           '<NDHDon><NBan><Ten>Công ty EFY Việt Nam</Ten><MST>0102519041</MST></NBan></NDHDon></DLHDon>'
           '<DSCKS><NBan/><NMua/></DSCKS></HDon>').encode()


def xmlsec_verify(ca: dict[str, Any], tmp: Path, xml: bytes, *id_attrs: str, ok: bool = True) -> str:
    """``xmlsec1 --verify`` with the service's CA; asserts it accepts (``ok``) or refuses the document."""
    path = tmp / f"x-{secrets.token_hex(3)}.xml"
    path.write_bytes(xml)
    args = ["xmlsec1", "--verify", "--trusted-pem", str(ca["dir"] / "root.pem"), "--untrusted-pem",
            str(ca["dir"] / "issuing.pem")]
    for attr in id_attrs:
        args += ["--id-attr:Id", attr]
    proc = subprocess.run([*args, str(path)], capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    accepted = proc.returncode == 0 and re.search(r"^OK$", out, re.M) is not None
    assert accepted == ok, out
    return out


def sign_xml(rp: Rs, signer: tuple[str, str], document: bytes, **pairs: str) -> dict[str, Any]:
    """``document`` signed through /signing/file with the passcode and these metadata keys."""
    agreement, passcode = signer
    return rp.call("/signing/file", {"agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": passcode,
                                     "mimeType": "application/xml",
                                     "signingFileData": base64.b64encode(document).decode(),
                                     "signCloudMetaData": meta(**pairs)})


@pytest.mark.parametrize("form", ["DSIG", "DSIG_SINGLE_NODE", "TAX-211120"])
def test_xml_signature_formats(rp: Rs, ca: dict[str, Any], signer: tuple[str, str], tmp_path: Path,
                               form: str) -> None:
    from lxml import etree

    pairs = {"SIGNATUREFORMAT": form, "ALGORITHM": "SHA-256", "CANONICALIZATIONMETHOD": "INCLUSIVE"}
    if form != "DSIG":
        pairs |= {"NODETOBESIGNED": "SigningData", "SIGNATURELOCATION": "DSCKS/NBan", "SIGNATUREID": "seller",
                  "ATTRIBUTENAME": "Id"}
    answer = sign_xml(rp, signer, INVOICE, **pairs)
    assert answer["responseCode"] == 0 and "ignoredMetaData" not in answer, answer
    xml = base64.b64decode(answer["signedFileData"])
    tree = etree.fromstring(xml)
    ds = "http://www.w3.org/2000/09/xmldsig#"
    [sig] = tree.iter(f"{{{ds}}}Signature")
    assert not list(sig.iter("{http://uri.etsi.org/01903/v1.3.2#}QualifyingProperties"))  # plain XMLDSig
    refs = [r.get("URI") for r in sig.iter(f"{{{ds}}}Reference")]
    [report] = validate(rp.svc, "invoice.xml", xml)  # remotesign's own validator: plain XMLDSig, intact
    assert (report["indication"], report["signatureFormat"], report["signedBy"]) == \
        ("TOTAL-PASSED", "XML_NOT_ETSI", "Nguyễn Văn An"), report
    assert (form == "DSIG") != any("covers element 'SigningData' only" in w["content"] for w in report["warnings"])
    if form == "DSIG":
        assert sig.getparent() is tree and refs == [""]
        xmlsec_verify(ca, tmp_path, xml)
        return
    assert sig.getparent().tag == "NBan" and sig.getparent().getparent().tag == "DSCKS" and sig.get("Id") == "seller"
    assert refs[0] == "#SigningData"
    if form == "TAX-211120":
        assert sig.prefix is None  # <Signature xmlns="http://www.w3.org/2000/09/xmldsig#">
        [obj] = [o for o in sig.iter(f"{{{ds}}}Object") if o.get("Id") == "SigningTime"]
        [time_el] = obj.iter(f"{{{ds}}}SigningTime")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", time_el.text or ""), time_el.text
        prop = time_el.getparent()
        assert prop.get("Target") == "#seller" and refs[1] == f"#{prop.get('Id')}"
        xmlsec_verify(ca, tmp_path, xml, "DLHDon", f"{ds}:SignatureProperty")
        # the signed time cannot be changed: xmlsec1 refuses the document then
        forged = xml.replace(time_el.text.encode(), b"2020-01-01T00:00:00")
        xmlsec_verify(ca, tmp_path, forged, "DLHDon", f"{ds}:SignatureProperty", ok=False)
        [forged_report] = validate(rp.svc, "forged.xml", forged)
        assert forged_report["indication"] == "TOTAL-FAILED", forged_report
    else:
        xmlsec_verify(ca, tmp_path, xml, "DLHDon")


def test_xml_formats_not_made_yet_and_sha1(rp: Rs, signer: tuple[str, str]) -> None:
    for pairs, code in (({"SIGNATUREFORMAT": "DSIG_XPATH", "NODETOBESIGNED": "/HDon/DLHDon"}, 1002),
                        ({"SIGNATUREFORMAT": "DSIG_NOT_A_FORM"}, 1011), ({"ALGORITHM": "SHA-1"}, 1011),
                        ({"SIGNATUREFORMAT": "TAX-211120"}, 1002), ({"SIGNATURELOCATION": "not a name!"}, 1002),
                        ({"SIGNATUREFORMAT": "DSIG_SINGLE_NODE", "NODETOBESIGNED": "missing"}, 1002)):
        answer = sign_xml(rp, signer, INVOICE, **pairs)
        assert answer["responseCode"] == code, (pairs, answer)


def test_xml_dsig_xpath(rp: Rs, ca: dict[str, Any], signer: tuple[str, str], tmp_path: Path) -> None:
    from lxml import etree

    answer = sign_xml(rp, signer, INVOICE, SIGNATUREFORMAT="DSIG_XPATH", NODETOBESIGNED="id('SigningData')",
                      SIGNATURELOCATION="DSCKS/NBan")
    assert answer["responseCode"] == 0, answer
    xml = base64.b64decode(answer["signedFileData"])
    ds, filter2 = "http://www.w3.org/2000/09/xmldsig#", "http://www.w3.org/2002/06/xmldsig-filter2"
    [sig] = etree.fromstring(xml).iter(f"{{{ds}}}Signature")
    [ref] = sig.iter(f"{{{ds}}}Reference")
    [xpath] = ref.iter(f"{{{filter2}}}XPath")
    assert ref.get("URI") == "" and (xpath.get("Filter"), xpath.text) == ("intersect", "id('SigningData')")
    xmlsec_verify(ca, tmp_path, xml, "DLHDon")
    assert validate(rp.svc, "xpath.xml", xml)[0]["indication"] == "TOTAL-PASSED"
    forged = xml.replace(b"<SHDon>12</SHDon>", b"<SHDon>13</SHDon>")
    assert validate(rp.svc, "forged.xml", forged)[0]["indication"] == "TOTAL-FAILED"


def test_xml_multiple_nodes(rp: Rs, ca: dict[str, Any], signer: tuple[str, str], tmp_path: Path) -> None:
    from lxml import etree

    document = INVOICE.replace(b"<DSCKS>", b'<MCCQT Id="tax-code">M1-23-ABCDE</MCCQT><DSCKS>')
    answer = sign_xml(rp, signer, document, SIGNATUREFORMAT="DSIG_MULTIPLE_NODES",
                      NODETOBESIGNED="SigningData,tax-code", SIGNATURELOCATION="DSCKS/NMua",
                      CANONICALIZATIONMETHOD="EXCLUSIVE")
    assert answer["responseCode"] == 0, answer.get("detail")
    xml = base64.b64decode(answer["signedFileData"])
    ds = "http://www.w3.org/2000/09/xmldsig#"
    [sig] = etree.fromstring(xml).iter(f"{{{ds}}}Signature")
    assert [r.get("URI") for r in sig.iter(f"{{{ds}}}Reference")] == ["#SigningData", "#tax-code"]
    assert sig.find(f"{{{ds}}}SignedInfo/{{{ds}}}CanonicalizationMethod").get("Algorithm") == \
        "http://www.w3.org/2001/10/xml-exc-c14n#"
    xmlsec_verify(ca, tmp_path, xml, "DLHDon", "MCCQT")
    forged = xml.replace(b"M1-23-ABCDE", b"M1-23-FORGE")
    assert validate(rp.svc, "forged.xml", forged)[0]["indication"] == "TOTAL-FAILED"


def test_xades_epes_carries_the_operators_policy(rp: Rs, ca: dict[str, Any], signer: tuple[str, str],
                                                 tmp_path: Path) -> None:
    from lxml import etree

    answer = sign_xml(rp, signer, INVOICE, SIGNATUREFORMAT="XADES_EPES", NODETOBESIGNED="SigningData",
                      SIGNATURELOCATION="DSCKS/NBan")
    assert answer["responseCode"] == 0, answer.get("detail")
    xml = base64.b64decode(answer["signedFileData"])
    xades = "http://uri.etsi.org/01903/v1.3.2#"
    tree = etree.fromstring(xml)
    [policy] = tree.iter(f"{{{xades}}}SignaturePolicyId")
    assert policy.findtext(f".//{{{xades}}}Identifier") == f"urn:oid:{POLICY_ID}"  # an OID as a URN (XAdES 7.2.3)
    digest = policy.findtext(".//{http://www.w3.org/2000/09/xmldsig#}DigestValue")
    assert digest == base64.b64encode(hashlib.sha256(POLICY).digest()).decode()
    xmlsec_verify(ca, tmp_path, xml, "DLHDon", f"{xades}:SignedProperties")
    [report] = validate(rp.svc, "epes.xml", xml)
    assert report["indication"] == "TOTAL-PASSED", report


def test_counter_signing_with_the_relying_partys_seal(svc: Service, rp: Rs, ca: dict[str, Any],
                                                      tmp_path: Path) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    agreement, passcode = fresh(rp)
    body = {"agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": passcode,
            "mimeType": "application/pdf", "signingFileData": base64.b64encode(pdf_bytes()).decode(),
            "signCloudMetaData": {
                "singletonSigning": {"entry": [{"key": "COORDINATE", "value": "40,40,240,100"}]},
                "counterSigning": {"entry": [{"key": "COORDINATE", "value": "320,40,560,100"},
                                             {"key": "SHOWSIGNERINFO", "value": "true"},
                                             {"key": "SIGNERINFOPREFIX", "value": "Đóng dấu bởi"}]}}}
    assert rp.call("/signing/file", body)["responseCode"] == 1011  # no seal chosen yet: nothing signed
    token = svc.token(rp.client["client_id"], rp.client["client_secret"])
    auth = {"Authorization": f"Bearer {token}"}
    key = httpx.post(svc.url + "/v1/keys", json={"algorithm": "ec-p256", "label": "seal"}, headers=auth).json()
    cert = httpx.post(svc.url + "/v1/certificates", headers=auth, json={
        "profile": "qualified-seal", "key_id": key["id"],
        "subject": "CN=Invoice Platform JSC,O=Invoice Platform JSC,ORGANIZATIONIDENTIFIER=VATVN-0109999999,C=VN"})
    assert cert.status_code == 201, cert.text
    svc.cli("client", "counter-signer", rp.client["client_id"], key["id"])
    answer = rp.call("/signing/file", body)
    assert answer["responseCode"] == 0, answer.get("detail")
    pdf = base64.b64decode(answer["signedFileData"])
    assert pdfsig_signatures(pdf, tmp_path) == ["Signature is Valid."] * 2
    signatures = PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures
    names = [s.signer_cert.subject.native["common_name"] for s in signatures]
    assert names == ["Nguyễn Văn An", "Invoice Platform JSC"]  # the signer's first, then the seal
    assert "Đóng dấu bởi: Invoice Platform JSC" in pdftotext(pdf, tmp_path, 1)
    locked = {**body, "signCloudMetaData": {**body["signCloudMetaData"],
                                            "singletonSigning": {"LOCKAFTERSIGNING": "true"}}}
    assert rp.call("/signing/file", locked)["responseCode"] == 1002


def test_signed_files_are_kept_for_the_retention_time(svc: Service, rp: Rs, signer: tuple[str, str]) -> None:
    """The sweep removes the documents of finished transactions past the retention time (here,
    run in this process with a retention of 0: everything finished goes) and the download says so."""
    from remotesign.config import load_settings
    from remotesign.service import Services

    agreement, passcode = signer
    answer = rp.call("/signing/file", {"agreementUUID": agreement, "authMode": "EXPLICIT/PIN",
                                       "authorizeCode": passcode, "mimeType": "application/pdf",
                                       "signingFileData": base64.b64encode(pdf_bytes()).decode()})
    assert answer["responseCode"] == 0, answer.get("detail")
    bill = answer["billCode"]
    assert rp.http.get(f"/signing/download/file/{bill}").json()["responseCode"] == 0
    blobs = svc.home / "blobs" / f"txn-{bill}"
    assert blobs.exists()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("REMOTESIGN_HOME", str(svc.home))
        mp.setenv("REMOTESIGN_SIGNED_FILE_RETENTION", "0")
        local = Services(load_settings())
        try:
            assert local.signing_transactions.sweep() >= 1
        finally:
            local.close()
    assert not blobs.exists()
    gone = rp.http.get(f"/signing/download/file/{bill}").json()
    assert gone["responseCode"] == 1025 and "no longer kept" in gone["detail"], gone


def test_a_jpeg_image_alone_fills_its_box(rp: Rs, signer: tuple[str, str], tmp_path: Path) -> None:
    agreement, passcode = signer
    answer = rp.call("/signing/file", {
        "agreementUUID": agreement, "authMode": "EXPLICIT/PIN", "authorizeCode": passcode,
        "mimeType": "application/pdf", "signingFileData": base64.b64encode(pdf_bytes()).decode(),
        "signCloudMetaData": meta(COORDINATE="100,100,300,160", SIGNATUREIMAGE=png((0, 160, 0), "JPEG"),
                                  PAGENO="First")})
    assert answer["responseCode"] == 0, answer.get("detail")
    pdf = base64.b64decode(answer["signedFileData"])
    assert pdfsig_signatures(pdf, tmp_path) == ["Signature is Valid."]
    assert "Signed by" not in pdftotext(pdf, tmp_path, 1)  # no text with the image alone
    page = rasterise(pdf, tmp_path, 1)
    green = [(x, y) for x in range(0, page.width, 2) for y in range(0, page.height, 2)
             if (p := page.getpixel((x, y)))[1] > 120 and p[0] < 80 and p[2] < 80]
    xs, ys = [x for x, _ in green], [y for _, y in green]
    # the box 100..300 x 100..160 points from the bottom: 682..742 from the top of the 842-point page
    assert 98 <= min(xs) and max(xs) <= 302 and 680 <= min(ys) and max(ys) <= 744, (min(xs), max(xs), min(ys), max(ys))
    assert max(xs) - min(xs) > 150  # the image fills most of the box's width


# -- Office documents -------------------------------------------------------------------------------
W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"


def zipped(parts: dict[str, str]) -> bytes:
    """An OPC package of these parts (name -> XML text)."""
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in parts.items():
            z.writestr(name, data.encode())
    return buf.getvalue()


def docx_bytes(text: str = "Hợp đồng số 42") -> bytes:
    """A small Word document, as a word processor writes one."""
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/word/document.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
            '<Override PartName="/docProps/core.xml" '
            'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="word/document.xml"/>'
            '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/relationships/'
            'metadata/core-properties" Target="docProps/core.xml"/></Relationships>'),
        "word/document.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W}"><w:body>'
            f'<w:p><w:r><w:t>{text}</w:t></w:r></w:p></w:body></w:document>'),
        "word/_rels/document.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"/>'),
        "docProps/core.xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?><cp:coreProperties '
            'xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/core-properties" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title>Hợp đồng</dc:title></cp:coreProperties>'),
    }
    return zipped(parts)


def xlsx_bytes() -> bytes:
    """A small Excel workbook: one sheet, one cell."""
    rel = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    parts = {
        "[Content_Types].xml": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            '<Override PartName="/xl/workbook.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
            '<Override PartName="/xl/worksheets/sheet1.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>'),
        "_rels/.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/officeDocument" Target="xl/workbook.xml"/></Relationships>'),
        "xl/workbook.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><workbook xmlns="{main}" xmlns:r="{rel}">'
            '<sheets><sheet name="Hóa đơn" sheetId="1" r:id="rId1"/></sheets></workbook>'),
        "xl/_rels/workbook.xml.rels": (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{rel}/worksheet" Target="worksheets/sheet1.xml"/></Relationships>'),
        "xl/worksheets/sheet1.xml": (
            f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><worksheet xmlns="{main}"><sheetData>'
            '<row r="1"><c r="A1" t="inlineStr"><is><t>Tổng cộng: 42</t></is></c></row></sheetData></worksheet>'),
    }
    return zipped(parts)


def pptx_bytes() -> bytes:
    """A small PowerPoint presentation (python-pptx, from its default template)."""
    from pptx import Presentation

    deck = Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[0])
    slide.shapes.title.text = "Báo cáo số 42"
    buf = io.BytesIO()
    deck.save(buf)
    return buf.getvalue()


def libreoffice_states(ca: dict[str, Any], tmp: Path, documents: dict[str, bytes]) -> dict[str, int | None]:
    """LibreOffice's signature state of each document (tests/ooxml/lo_signature_state.py), with the
    service's root CA trusted in its NSS database."""
    nss = tmp / "nss"
    nss.mkdir()
    subprocess.run(["certutil", "-N", "-d", f"sql:{nss}", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-A", "-n", "remotesign root", "-t", "CT,C,C", "-d", f"sql:{nss}", "-i",
                    str(ca["dir"] / "root.pem")], check=True, capture_output=True)
    paths = []
    for name, data in documents.items():
        (tmp / name).write_bytes(data)
        paths.append(str(tmp / name))
    proc = subprocess.run(["/usr/bin/python3", str(Path(__file__).parent / "ooxml" / "lo_signature_state.py"),
                           str(nss), *paths], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    states: dict[str, int | None] = {}
    for line in proc.stdout.splitlines():
        path, _, value = line.rpartition(" ")
        states[Path(path).name] = None if value == "None" else int(value)
    return states


OFFICE_TYPES = {
    "hop-dong.docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", docx_bytes,
                      "word/document.xml"),
    "hoa-don.xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", xlsx_bytes,
                     "xl/worksheets/sheet1.xml"),
    "bao-cao.pptx": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", pptx_bytes,
                     "ppt/slides/slide1.xml"),
}


def test_office_documents_are_signed_as_office_signs_them(rp: Rs, ca: dict[str, Any], signer: tuple[str, str],
                                                         tmp_path: Path) -> None:
    """Word, Excel and PowerPoint documents signed in one request; LibreOffice opens each as signed
    with a valid, trusted signature (5: OOXML never signs every part), and a changed part as broken."""
    import zipfile

    agreement, passcode = signer
    files = [{"signingFileName": name, "mimeType": mime, "signingFileData": base64.b64encode(make()).decode()}
             for name, (mime, make, _) in OFFICE_TYPES.items()]
    answer = rp.call("/signing/file", {"agreementUUID": agreement, "authMode": "EXPLICIT/PIN",
                                       "authorizeCode": passcode, "multipleSigningFileData": files})
    assert answer["responseCode"] == 0, answer.get("detail")
    signed = {f["signedFileName"]: base64.b64decode(f["signedFileData"]) for f in answer["multipleSignedFileData"]}
    assert list(signed) == list(OFFICE_TYPES)
    documents = dict(signed)
    for name, data in signed.items():
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            assert {"_xmlsignatures/sig1.xml", "_xmlsignatures/origin.sigs"} <= set(z.namelist())
            part = OFFICE_TYPES[name][2]
            with io.BytesIO() as out:  # one changed part of the signed package
                with zipfile.ZipFile(out, "w") as w:
                    for entry in z.namelist():
                        content = z.read(entry)
                        w.writestr(entry, content.replace(b"42", b"43") if entry == part else content)
                documents[f"forged-{name}"] = out.getvalue()
    states = libreoffice_states(ca, tmp_path, documents)
    assert {name: states[name] for name in signed} == {name: 5 for name in signed}, states
    assert {name: states[f"forged-{name}"] for name in signed} == {name: 2 for name in signed}, states
    r = httpx.post(rp.svc.url + "/v1/validations", files=[("file", ("hop-dong.docx", signed["hop-dong.docx"]))],
                   headers={"Authorization": "Bearer " + rp.svc.token(rp.client["client_id"], rp.client["client_secret"])},
                   timeout=120)
    # remotesign's own validator says clearly that it does not validate these (yet)
    assert r.status_code == 422 and r.json()["error"]["code"] == "unsupported_signature_format", r.text


def test_office_refusals(rp: Rs, signer: tuple[str, str]) -> None:
    import zipfile

    agreement, passcode = signer
    mime = OFFICE_TYPES["hop-dong.docx"][0]
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        for n in range(3):
            z.writestr(f"word/big{n}.bin", b"\0" * (200 << 20))  # 600 MB uncompressed, a few hundred KB packed
    for data, why in ((b"not a zip", "ZIP"), (bomb.getvalue(), "uncompressed"),
                      (docx_bytes().replace(b"[Content_Types].xml", b"[Content_Typez].xml"), "Content_Types")):
        answer = rp.call("/signing/file", {"agreementUUID": agreement, "authMode": "EXPLICIT/PIN",
                                           "authorizeCode": passcode, "mimeType": mime,
                                           "signingFileData": base64.b64encode(data).decode()})
        assert answer["responseCode"] == 1002 and why in answer["detail"], (why, answer)
