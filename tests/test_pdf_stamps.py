"""Visible signature stamps, checked with real tools only: the PDF is signed through
pades.prepare/embed, rasterised with poppler's pdftoppm, QR and Code 128 read back with zbarimg,
PDF417 with zxing-cpp, text with pdftotext; signatures checked with pdfsig and pyHanko's validator
(intact, valid, and no change worse than form filling after an earlier signature)."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import zxingcpp
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from PIL import Image, ImageChops
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.fields import MDPPerm
from pyhanko.sign.diff_analysis import ModificationLevel
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko.sign.timestamps import DummyTimeStamper
from pyhanko.sign.validation import async_validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from remotesign.api.fortress.stamper import TYPES, stamp_from_fortress
from remotesign.formats import pades
from remotesign.formats.base import FormatError, SignerSpec
from remotesign.formats.stamps import StampSpec
from tests.pdfgen import pdf_bytes

DPI = 150
SIGNED_AT = datetime(2024, 1, 15, 12, 0, 0, tzinfo=timezone.utc)
URL = "https://v.example/v#"
CODE = "AB12CD"


# ---------------------------------------------------------------- throwaway PKI and signing


@dataclass
class Pki:
    root: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    spec: SignerSpec
    unicode_spec: SignerSpec
    unicode_key: ec.EllipticCurvePrivateKey
    tsa: DummyTimeStamper

    def context(self) -> ValidationContext:
        return ValidationContext(trust_roots=[asn1_x509.Certificate.load(_der(self.root))], allow_fetching=False)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _cert(subject: str, issuer: x509.Name, public_key, signing_key, serial: int, *, ca: bool = False,
          tsa: bool = False) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer).public_key(public_key).serial_number(serial)
               .not_valid_before(datetime(2020, 1, 1, tzinfo=timezone.utc)).not_valid_after(now + timedelta(days=30)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
    elif tsa:
        builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    else:
        builder = builder.add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                                        critical=True)
    return builder.sign(signing_key, hashes.SHA256())


@pytest.fixture(scope="module")
def pki() -> Pki:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Stamp Test Root")])
    root = _cert("Stamp Test Root", root_name, root_key.public_key(), root_key, 1, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("Alice Example", root_name, key.public_key(), root_key, 2)
    unicode_key = ec.generate_private_key(ec.SECP256R1())
    unicode_leaf = _cert("Jānis Bērziņš", root_name, unicode_key.public_key(), root_key, 3)
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # pyHanko's dummy TSA is RSA-only
    tsa_cert = _cert("Stamp Test TSA", root_name, tsa_key.public_key(), root_key, 4, tsa=True)
    pkcs8 = tsa_key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption())
    tsa = DummyTimeStamper(tsa_cert=asn1_x509.Certificate.load(_der(tsa_cert)),
                           tsa_key=asn1_keys.PrivateKeyInfo.load(pkcs8),
                           certs_to_embed=[asn1_x509.Certificate.load(_der(root))])

    def spec(cert: x509.Certificate) -> SignerSpec:
        return SignerSpec(certificate=_der(cert), chain=(_der(root),), digest_algorithm="sha256", mechanism="ecdsa")

    return Pki(root, key, spec(leaf), spec(unicode_leaf), unicode_key, tsa)


async def _sign(pki: Pki, source: bytes, stamp: StampSpec | None, *, unicode_signer: bool = False) -> bytes:
    signer, key = (pki.unicode_spec, pki.unicode_key) if unicode_signer else (pki.spec, pki.key)
    with io.BytesIO() as out:
        prepared = await pades.prepare(io.BytesIO(source), out, signer, SIGNED_AT, stamp=stamp)
        value = key.sign(prepared.signed_attrs, ec.ECDSA(hashes.SHA256()))
        await pades.embed(out, prepared, signer, value, None)
        return out.getvalue()


def sign(pki: Pki, stamp: StampSpec | None, *, pages: int = 1, source: bytes | None = None,
         unicode_signer: bool = False) -> bytes:
    return asyncio.run(_sign(pki, source if source is not None else pdf_bytes(pages=pages), stamp,
                             unicode_signer=unicode_signer))


def document_timestamp(pki: Pki, source: bytes, stamp: StampSpec) -> bytes:
    async def run() -> bytes:
        with io.BytesIO() as out:
            await pades.add_document_timestamp(io.BytesIO(source), out, pki.tsa, pki.context(), stamp=stamp)
            return out.getvalue()

    return asyncio.run(run())


# ---------------------------------------------------------------- independent readers


def rasterise(pdf: bytes, tmp: Path, name: str = "doc", dpi: int = DPI) -> list[Image.Image]:
    path = tmp / f"{name}.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", path, tmp / name], check=True, capture_output=True)
    pngs = sorted(tmp.glob(f"{name}-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
    return [Image.open(p).convert("RGB") for p in pngs]


def zbar(image: Image.Image, tmp: Path) -> list[tuple[str, str]]:
    """(symbology, data) of every QR / Code 128 zbarimg finds."""
    path = tmp / "zbar.png"
    image.save(path)
    proc = subprocess.run(["zbarimg", "-q", "--nodbus", path], capture_output=True, text=True)
    assert proc.returncode in (0, 4), proc.stderr  # 4: no symbol found
    found = []
    for line in proc.stdout.splitlines():
        kind, _, data = line.partition(":")
        found.append((kind, data))
    return found


def zxing(image: Image.Image) -> list[zxingcpp.Barcode]:
    return list(zxingcpp.read_barcodes(image))


def pdf417(image: Image.Image) -> list[str]:
    return [b.text for b in zxing(image) if b.format == zxingcpp.BarcodeFormat.PDF417]


def text_of(pdf: bytes, tmp: Path) -> str:
    path = tmp / "text.pdf"
    path.write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", path, "-"], check=True, capture_output=True, text=True).stdout


def pdfsig_valid(pdf: bytes, tmp: Path) -> list[bool]:
    """Per regular signature, whether poppler says 'Signature is Valid' (document time-stamps,
    which pdfsig does not verify, are left out)."""
    path = tmp / "sig.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdfsig", path], capture_output=True, text=True).stdout
    blocks = re.split(r"^Signature #\d+:", out, flags=re.M)[1:]
    return ["Signature is Valid." in b for b in blocks if "ETSI.CAdES.detached" in b]


def pyhanko_status(pki: Pki, pdf: bytes, index: int = 0):
    sig = PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures[index]
    return asyncio.run(async_validate_pdf_signature(sig, pki.context()))


def ink_box(image: Image.Image, blank: Image.Image) -> tuple[int, int, int, int] | None:
    """Bounding box of what the stamp changed on the page (pixels differing from ``blank``)."""
    return ImageChops.difference(image, blank).convert("L").point(lambda v: 255 if v > 40 else 0).getbbox()


def png(color: tuple[int, int, int], size: tuple[int, int] = (120, 60), fmt: str = "PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def has_color(image: Image.Image, box: tuple[int, int, int, int], predicate) -> bool:
    data = image.crop(box).tobytes()
    return any(predicate(data[i:i + 3]) for i in range(0, len(data), 3))


def pt(v: float, dpi: int = DPI) -> int:
    return round(v * dpi / 72)


# ---------------------------------------------------------------- each element kind


def test_text_lines_signer_and_date_in_time_zone_and_signature_valid(pki: Pki, tmp_path: Path) -> None:
    stamp = StampSpec(text_lines=("Contract 2024/17", "Approved"), show_signer=True, show_date=True,
                      time_zone="America/New_York", x=72, y=72)
    pdf = sign(pki, stamp)
    text = text_of(pdf, tmp_path)
    assert "Digitally signed by Alice Example" in text
    assert "Date: 2024-01-15 07:00:00 EST" in text  # 12:00 UTC in New York
    assert "Contract 2024/17" in text and "Approved" in text
    assert pdfsig_valid(pdf, tmp_path) == [True]
    status = pyhanko_status(pki, pdf)
    assert status.intact and status.valid and status.trusted and status.bottom_line
    assert status.modification_level == ModificationLevel.NONE
    x1, y1, _, _ = _widget_rect(pdf)
    assert (x1, y1) == (72, 72)


def _widget_rect(pdf: bytes) -> list[float]:
    field = PdfFileReader(io.BytesIO(pdf)).embedded_regular_signatures[0].sig_field
    annot = field if "/Rect" in field else field["/Kids"][0].get_object()
    return [float(v) for v in annot["/Rect"]]


def test_signer_name_outside_latin1_is_printed_with_an_embedded_font(pki: Pki, tmp_path: Path) -> None:
    pdf = sign(pki, StampSpec(show_signer=True, time_zone="Europe/Riga", show_date=True, x=72, y=72),
               unicode_signer=True)
    text = text_of(pdf, tmp_path)
    assert "Digitally signed by Jānis Bērziņš" in text
    assert "Date: 2024-01-15 14:00:00 EET" in text
    assert pdfsig_valid(pdf, tmp_path) == [True]
    # glyph widths in the right units: the line ends inside the stamp (a 2048-unit font taken as
    # 1000-unit, pyHanko's assumption, doubles every advance and runs the line out of the box)
    (tmp_path / "bbox.pdf").write_bytes(pdf)
    html = subprocess.run(["pdftotext", "-bbox", tmp_path / "bbox.pdf", "-"], check=True, capture_output=True,
                          text=True).stdout
    (x_max,) = [float(m.group(1)) for m in re.finditer(r'xMax="([\d.]+)"[^>]*>([^<]*Bērziņš[^<]*)<', html)]
    assert x_max <= _widget_rect(pdf)[2]


def test_qr_code_decodes_to_its_content(pki: Pki, tmp_path: Path) -> None:
    content = "https://verify.example/doc/7f3a9c?lang=lv"
    pdf = sign(pki, StampSpec(qr=content, text_lines=("Scan to verify",)))
    (page,) = rasterise(pdf, tmp_path)
    assert ("QR-Code", content) in zbar(page, tmp_path)


def test_code128_decodes_to_its_content(pki: Pki, tmp_path: Path) -> None:
    content = "RS-2024-000417"
    pdf = sign(pki, StampSpec(code128=content))
    (page,) = rasterise(pdf, tmp_path)
    assert ("CODE-128", content) in zbar(page, tmp_path)


def test_pdf417_decodes_to_its_content(pki: Pki, tmp_path: Path) -> None:
    content = "https://verify.example/doc/7f3a9c 2024-01-15 Alice Example"
    pdf = sign(pki, StampSpec(pdf417=content))
    (page,) = rasterise(pdf, tmp_path)
    assert pdf417(page) == [content]


def test_all_elements_together(pki: Pki, tmp_path: Path) -> None:
    stamp = StampSpec(text_lines=("One", "Two", "Three"), show_signer=True, show_date=True, qr="QR-CONTENT-1",
                      code128="C128-CONTENT", pdf417="PDF417 CONTENT", logo=png((0, 0, 255), (40, 40)),
                      image=png((255, 0, 0)), x=60, y=80)
    pdf = sign(pki, stamp)
    (page,) = rasterise(pdf, tmp_path)
    found = zbar(page, tmp_path)
    assert ("QR-Code", "QR-CONTENT-1") in found and ("CODE-128", "C128-CONTENT") in found
    assert pdf417(page) == ["PDF417 CONTENT"]
    text = text_of(pdf, tmp_path)
    assert all(s in text for s in ("One", "Two", "Three", "Alice Example"))
    stamp_area = (pt(60), page.height - pt(80) - pt(400), pt(60) + pt(400), page.height - pt(80))
    assert has_color(page, stamp_area, lambda p: p[2] > 200 and p[0] < 60 and p[1] < 60)  # the blue logo
    # the red watermark at 30 % opacity: pale red, not red
    assert has_color(page, stamp_area, lambda p: p[0] > 240 and 150 < p[1] < 200 and 150 < p[2] < 200)
    assert not has_color(page, stamp_area, lambda p: p[0] > 200 and p[1] < 60 and p[2] < 60)
    assert pdfsig_valid(pdf, tmp_path) == [True]


def test_image_alone_is_opaque_and_sized_by_its_aspect(pki: Pki, tmp_path: Path) -> None:
    blank = rasterise(sign(pki, None), tmp_path, "blank")[0]
    pdf = sign(pki, StampSpec(image=png((255, 0, 0), (200, 100), "JPEG"), x=100, y=100, width=200))
    (page,) = rasterise(pdf, tmp_path)
    box = ink_box(page, blank)
    assert box is not None
    width, height = box[2] - box[0], box[3] - box[1]
    assert abs(width - pt(200)) <= 12 and abs(height - pt(100)) <= 12  # 2:1 kept
    center = page.getpixel(((box[0] + box[2]) // 2, (box[1] + box[3]) // 2))
    assert center[0] > 200 and center[1] < 60 and center[2] < 60


# ---------------------------------------------------------------- rotation


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rotation_turns_the_stamp(pki: Pki, tmp_path: Path, rotation: int) -> None:
    # 200 dpi: at 150 dpi a 1 pt module is 2.08 pixels, and turned symbols land at a pixel phase
    # where zbar's Code 128 reader gives up (zxing still reads them)
    dpi = 200
    blank = rasterise(sign(pki, None), tmp_path, "blank", dpi)[0]
    stamp = StampSpec(code128="ROT-128", text_lines=("Rotated",), rotation=rotation, x=100, y=100)
    pdf = sign(pki, stamp)
    (page,) = rasterise(pdf, tmp_path, dpi=dpi)
    assert ("CODE-128", "ROT-128") in zbar(page, tmp_path)
    (code,) = [b for b in zxing(page) if b.format == zxingcpp.BarcodeFormat.Code128]
    assert code.text == "ROT-128"
    # zxing reports the clockwise angle of the symbol; ours turn counter-clockwise
    assert code.orientation % 360 == (-rotation) % 360
    box = ink_box(page, blank)
    assert box is not None
    wide = (box[2] - box[0]) > (box[3] - box[1])
    assert wide == (rotation in (0, 180))  # the barcode strip makes the stamp wider than high
    # the turned stamp keeps its lower left corner at x, y
    assert abs(box[0] - pt(100, dpi)) <= 4 and abs(box[3] - (page.height - pt(100, dpi))) <= 4
    assert pdfsig_valid(pdf, tmp_path) == [True]


# ---------------------------------------------------------------- page selection


@pytest.mark.parametrize(("page", "expected"), [(2, [False, True, False]), (-1, [False, False, True]),
                                               (0, [True, True, True]), (1, [True, False, False])])
def test_page_selection(pki: Pki, tmp_path: Path, page: int, expected: list[bool]) -> None:
    pdf = sign(pki, StampSpec(qr=f"PAGE-{page}", page=page), pages=3)
    pages = rasterise(pdf, tmp_path)
    assert len(pages) == 3
    assert [("QR-Code", f"PAGE-{page}") in zbar(p, tmp_path) for p in pages] == expected
    assert pdfsig_valid(pdf, tmp_path) == [True]
    status = pyhanko_status(pki, pdf)
    assert status.intact and status.valid and status.modification_level == ModificationLevel.NONE


def test_every_page_stamps_are_in_the_signed_revision(pki: Pki, tmp_path: Path) -> None:
    pdf = sign(pki, StampSpec(text_lines=("All pages",), page=0), pages=2)
    assert pyhanko_status(pki, pdf).coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert text_of(pdf, tmp_path).count("All pages") == 2


# ---------------------------------------------------------------- already-signed PDFs


def test_stamp_on_already_signed_pdf_as_document_timestamp_keeps_the_signature(pki: Pki, tmp_path: Path) -> None:
    signed = sign(pki, None, pages=2)
    stamped = document_timestamp(pki, signed, StampSpec(qr="ARCHIVED-1", text_lines=("Archived copy",),
                                                        show_date=True, page=-1, x=300, y=300))
    reader = PdfFileReader(io.BytesIO(stamped))
    assert len(reader.embedded_timestamp_signatures) == 1
    pages = rasterise(stamped, tmp_path)
    assert ("QR-Code", "ARCHIVED-1") in zbar(pages[1], tmp_path)
    assert "Archived copy" in text_of(stamped, tmp_path)
    assert pdfsig_valid(stamped, tmp_path) == [True]
    status = pyhanko_status(pki, stamped)
    assert status.intact and status.valid and status.bottom_line and status.docmdp_ok
    assert status.modification_level is not None and status.modification_level <= ModificationLevel.FORM_FILLING


def test_stamp_of_a_second_signature_keeps_the_first_valid(pki: Pki, tmp_path: Path) -> None:
    first = sign(pki, StampSpec(text_lines=("First signer",), show_signer=True, x=50, y=50), pages=2)
    second = sign(pki, StampSpec(code128="SECOND-2", show_signer=True, page=2, x=300, y=500, rotation=90),
                  source=first)
    assert pdfsig_valid(second, tmp_path) == [True, True]
    earlier = pyhanko_status(pki, second, 0)
    assert earlier.intact and earlier.valid and earlier.bottom_line
    assert earlier.modification_level <= ModificationLevel.FORM_FILLING
    later = pyhanko_status(pki, second, 1)
    assert later.intact and later.valid and later.modification_level == ModificationLevel.NONE
    assert ("CODE-128", "SECOND-2") in zbar(rasterise(second, tmp_path)[1], tmp_path)


def test_every_page_on_an_already_signed_pdf_is_refused(pki: Pki) -> None:
    signed = sign(pki, None, pages=2)
    with pytest.raises(FormatError) as err:
        sign(pki, StampSpec(text_lines=("x",), page=0), source=signed)
    assert err.value.code == "invalid_stamp" and "already signed" in err.value.message


def test_certified_pdf_refuses_a_stamp(pki: Pki) -> None:
    # pyHanko rates a new visible field after a certification signature ILLEGAL_MODIFICATIONS
    key = asn1_keys.PrivateKeyInfo.load(pki.key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    signer = signers.SimpleSigner(signing_cert=asn1_x509.Certificate.load(pki.spec.certificate), signing_key=key,
                                  cert_registry=SimpleCertificateStore.from_certs(
                                      [asn1_x509.Certificate.load(pki.spec.chain[0])]))
    meta = signers.PdfSignatureMetadata(field_name="Certification", certify=True,
                                        docmdp_permissions=MDPPerm.FILL_FORMS,
                                        subfilter=fields.SigSeedSubFilter.PADES)
    out = io.BytesIO()
    signers.PdfSigner(meta, signer=signer).sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf_bytes())), output=out)
    for attempt in (lambda: sign(pki, StampSpec(text_lines=("x",)), source=out.getvalue()),
                    lambda: document_timestamp(pki, out.getvalue(), StampSpec(text_lines=("x",)))):
        with pytest.raises(FormatError) as err:
            attempt()
        assert err.value.code == "invalid_stamp" and "certified" in err.value.message


# ---------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"image": b"\x89PNG\r\n\x1a\nnot really"}, "not a readable PNG or JPEG"),
    ({"logo": b"GIF89a" + b"\0" * 40}, "not a readable PNG or JPEG"),
    ({"image": png((0, 0, 0), (5000, 1))}, "5000x1 pixels"),
    ({"qr": "x" * 5000}, "QR code content has 5000 characters"),
    ({"code128": "x" * 65}, "Code 128 content has 65 characters"),
    ({"code128": "Bērziņš"}, "ASCII"),
    ({"pdf417": "x" * 100_000}, "PDF417 content has 100000 characters"),
    ({"pdf417": "𝄞" * 500}, "PDF417 content cannot be encoded"),
    ({"qr": "𝄞" * 1000}, "QR code content cannot be encoded"),
    ({"text_lines": ("a", "b", "c", "d")}, "at most 3 text lines"),
    ({"text_lines": ("two\nlines",)}, "control characters"),
    ({"show_date": True, "time_zone": "Mars/Olympus"}, "unknown time zone"),
    ({"text_lines": ("x",), "rotation": 45}, "rotation"),
    ({"text_lines": ("x",), "page": -2}, "page"),
    ({"text_lines": ("x",), "x": -5}, "x position"),
    ({}, "shows nothing"),
])
def test_bad_stamp_specs_fail_with_invalid_stamp(kwargs: dict, message: str) -> None:
    with pytest.raises(FormatError) as err:
        StampSpec(**kwargs)
    assert err.value.code == "invalid_stamp"
    assert message in err.value.message


def test_page_out_of_range_and_off_page_fail_with_invalid_stamp(pki: Pki) -> None:
    with pytest.raises(FormatError) as err:
        sign(pki, StampSpec(text_lines=("x",), page=3), pages=2)
    assert err.value.code == "invalid_stamp" and "page 3 is out of range" in err.value.message
    with pytest.raises(FormatError) as err:
        sign(pki, StampSpec(text_lines=("x",), x=580, y=100))
    assert err.value.code == "invalid_stamp" and "does not fit" in err.value.message


# ---------------------------------------------------------------- Fortress stamper mapping


def _fortress(kind: str, **extra: object) -> dict:
    return {"type": kind, "csvPath": URL, "page": 1, "xAxis": 60, "yAxis": 120, "textLine1": "Fortress line one",
            "textLine2": "Fortress line two", "timeZoneId": "Europe/Madrid", **extra}


FORTRESS_EXPECTED = {
    # type: (QR, Code 128, PDF417, signer text, CSV line, red image opaque, red watermark)
    "DEFAULT": (True, False, False, True, False, False, False),
    "TEXT": (False, False, False, True, False, False, False),
    "CUSTOM_TEXT": (False, False, False, False, False, False, False),
    "QR": (True, False, False, True, False, False, False),
    "QR_NO_TEXT": (True, False, False, False, False, False, False),
    "QR_SCALED": (True, False, False, True, False, False, False),
    "QR_REDUCED": (True, False, False, True, False, False, False),
    "BARCODE128": (False, True, False, True, False, False, False),
    "QR_BARCODE128": (True, True, False, True, False, False, False),
    "PDF417": (False, False, True, True, False, False, False),
    "CSV": (False, False, False, True, True, False, False),
    "CSV_QR": (True, False, False, True, True, False, False),
    "IMAGE": (False, False, False, False, False, True, False),
    "IMAGE_TEXT": (False, False, False, True, False, False, True),
}


def test_fortress_table_covers_every_type() -> None:
    assert set(FORTRESS_EXPECTED) == set(TYPES)


@pytest.mark.parametrize("kind", sorted(FORTRESS_EXPECTED))
def test_fortress_type_renders_what_it_promises(pki: Pki, tmp_path: Path, kind: str) -> None:
    qr, c128, p417, signer, csv, opaque, watermark = FORTRESS_EXPECTED[kind]
    extra = {"imageB64": base64.b64encode(png((255, 0, 0))).decode()} if kind.startswith("IMAGE") else {}
    stamp = stamp_from_fortress(_fortress(kind, **extra), verification_code=CODE)
    pdf = sign(pki, stamp)
    (page,) = rasterise(pdf, tmp_path)
    found = zbar(page, tmp_path)
    url = URL + CODE
    assert (("QR-Code", url) in found) == qr
    assert (("CODE-128", url) in found) == c128
    assert (pdf417(page) == [url]) == p417
    text = text_of(pdf, tmp_path)
    assert ("Digitally signed by Alice Example" in text) == signer
    assert ("Date: 2024-01-15 13:00:00 CET" in text) == signer  # timeZoneId Europe/Madrid
    assert (f"CSV: {CODE}" in text) == csv
    assert ("Fortress line one" in text) == (kind not in ("QR_NO_TEXT", "IMAGE"))
    area = (pt(60), page.height - pt(120) - pt(300), pt(60) + pt(450), page.height - pt(120))
    assert has_color(page, area, lambda p: p[0] > 200 and p[1] < 60 and p[2] < 60) == opaque
    assert has_color(page, area, lambda p: p[0] > 240 and 150 < p[1] < 200 and 150 < p[2] < 200) == watermark
    assert pdfsig_valid(pdf, tmp_path) == [True]


def test_fortress_qr_scaled_and_reduced_change_the_qr_size(pki: Pki, tmp_path: Path) -> None:
    sizes = {}
    for kind in ("QR_REDUCED", "QR", "QR_SCALED"):
        (page,) = rasterise(sign(pki, stamp_from_fortress(_fortress(kind))), tmp_path, kind)
        (qr,) = [b for b in zxing(page) if b.format == zxingcpp.BarcodeFormat.QRCode]
        assert qr.text == URL
        sizes[kind] = qr.position.top_right.x - qr.position.top_left.x
    assert sizes["QR_REDUCED"] < sizes["QR"] < sizes["QR_SCALED"]


def test_fortress_rotation_page_and_logo(pki: Pki, tmp_path: Path) -> None:
    stamper = _fortress("QR_BARCODE128", rotation="ROTATE_270", page=-1, xAxis=200, yAxis=200,
                        logoB64=base64.b64encode(png((0, 0, 255), (30, 30))).decode())
    stamp = stamp_from_fortress(stamper)
    assert (stamp.rotation, stamp.page, stamp.x, stamp.y) == (270, -1, 200, 200)
    pages = rasterise(sign(pki, stamp, pages=2), tmp_path)
    assert zbar(pages[0], tmp_path) == []
    (code,) = [b for b in zxing(pages[1]) if b.format == zxingcpp.BarcodeFormat.Code128]
    assert code.text == URL and code.orientation % 360 == 90
    assert has_color(pages[1], (0, 0, pages[1].width, pages[1].height),
                     lambda p: p[2] > 200 and p[0] < 60 and p[1] < 60)


@pytest.mark.parametrize(("stamper", "message"), [
    ({"type": "HOLOGRAM"}, "stamper.type 'HOLOGRAM' is unknown"),
    ({"type": "TEXT", "rotation": "ROTATE_45"}, "stamper.rotation 'ROTATE_45' is unknown"),
    ({"type": "IMAGE", "imageB64": "not base64!"}, "stamper.imageB64 is not valid base64"),
    ({"type": "IMAGE", "imageB64": base64.b64encode(b"%PDF-1.3 ...").decode()}, "is a PDF"),
    ({"type": "IMAGE", "imageB64": base64.b64encode(b"junk" * 10).decode()}, "not a readable PNG or JPEG"),
    ({"type": "IMAGE", "imageUrl": "http://169.254.169.254/latest/meta-data/"}, "imageUrl is not supported"),
    ({"type": "IMAGE"}, "stamper.imageB64 is required for type IMAGE"),
    ({"type": "QR"}, "stamper.csvPath is required for type QR"),
    ({"type": "CUSTOM_TEXT"}, "CUSTOM_TEXT needs at least one"),
    ({"type": "BARCODE128", "csvPath": "https://v.example/" + "x" * 100}, "Code 128 content has"),
    ({"type": "QR", "csvPath": "https://v.example/" + "x" * 5000}, "QR code content has"),
    ({"type": "TEXT", "textLine1": "x" * 1000}, "text line 1 has 1000 characters"),
    ({"type": "TEXT", "timeZoneId": "Nowhere/Town"}, "unknown time zone"),
    ({"type": "TEXT", "page": "first"}, "stamper.page must be a number"),
    ({"type": "TEXT", "xAxis": True}, "stamper.xAxis must be a number"),
    ({"type": "TEXT", "logoB64": "A" * 4_000_000}, "stamper.logoB64 is larger than"),
])
def test_fortress_bad_stampers_raise_value_error(stamper: dict, message: str) -> None:
    with pytest.raises(ValueError) as err:
        stamp_from_fortress(stamper)
    assert message in str(err.value)


def test_fortress_image_as_data_url_is_taken_without_fetching() -> None:
    url = "data:image/png;base64," + base64.b64encode(png((255, 0, 0))).decode()
    stamp = stamp_from_fortress({"type": "IMAGE", "imageUrl": url})
    assert stamp.image_only and stamp.decoded("image") is not None
