"""The Fortress ``padesConfiguration.stamper`` object as a vendor-neutral :class:`StampSpec`.

A pure function: no I/O, so a bad stamper fails the request before anything is signed. Every
problem is a ``ValueError`` with a message naming the field (the facade answers 400
``invalid_request``); a page beyond the document's end can only be seen at signing time and comes
back from PAdES preparation as ``FormatError('invalid_stamp')``.

Types (the vendor documents only the names; these are the plausible meanings, "text" below means
the signer's name, the signing date in ``timeZoneId`` and ``textLine1..3``; "code" means the
verification URL: ``csvPath`` followed by the document's verification code when the caller has
one (the vendor's samples end in ``/v#``, a page that reads the code from the fragment), else
``csvPath`` as given):

================  ==============================================================================
type              shows
================  ==============================================================================
DEFAULT           text; plus a QR code of the code when ``csvPath`` is given
TEXT              text
CUSTOM_TEXT       ``textLine1..3`` only (at least one), no signer or date
QR                QR code of the code + text
QR_NO_TEXT        QR code of the code only
QR_SCALED         QR code of the code + text, the QR code enlarged (96 pt instead of 64 pt)
QR_REDUCED        QR code of the code + text, the QR code reduced (40 pt)
BARCODE128        Code 128 of the code + text
QR_BARCODE128     QR code and Code 128 of the code + text
PDF417            PDF417 of the code + text
CSV               text with a line "CSV: <code>" (the secure verification code, Spanish CSV)
CSV_QR            as CSV, plus a QR code of the code
IMAGE             ``imageB64`` alone, opaque (``imageB64`` required)
IMAGE_TEXT        ``imageB64`` as a watermark behind the text (``imageB64`` required)
================  ==============================================================================

In every type ``logoB64`` adds a logo left of the rest and ``imageB64`` (other than for IMAGE and
IMAGE_TEXT) a watermark behind it. ``rotation`` ROTATE_90 / ROTATE_270 (also ROTATE_0 and
ROTATE_180) turns the stamp counter-clockwise; the turned stamp keeps its lower left corner at
``xAxis``/``yAxis``. ``page`` is
1..n, -1 for the last page, 0 for every page; ``xAxis``/``yAxis`` are PDF points from the lower
left corner of the page.

``imageUrl`` is refused: fetching a client-chosen URL from the server is a server-side request
forgery (internal addresses, cloud metadata endpoints, slow or huge answers). Only ``data:`` URLs
(RFC 2397, base64) are taken, since they carry the image themselves; anything else must come as
``imageB64``. PDF watermarks (the vendor's sample ``imageB64`` is a PDF) are refused as well:
PNG and JPEG only.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from typing import Any

from remotesign.formats.base import FormatError
from remotesign.formats.stamps.spec import MAX_IMAGE_BYTES, StampSpec

TYPES = ("DEFAULT", "TEXT", "CUSTOM_TEXT", "QR", "QR_NO_TEXT", "QR_SCALED", "QR_REDUCED", "BARCODE128",
         "QR_BARCODE128", "PDF417", "CSV", "CSV_QR", "IMAGE", "IMAGE_TEXT")
ROTATIONS = {"ROTATE_0": 0, "ROTATE_90": 90, "ROTATE_180": 180, "ROTATE_270": 270}
QR_SIZES = {"QR_SCALED": 96.0, "QR_REDUCED": 40.0}
_NEEDS_CODE = {"QR", "QR_NO_TEXT", "QR_SCALED", "QR_REDUCED", "BARCODE128", "QR_BARCODE128", "PDF417", "CSV",
               "CSV_QR"}
_MAX_B64 = (MAX_IMAGE_BYTES * 4) // 3 + 8
_DATA_URL = re.compile(r"data:image/(png|jpeg|jpg);base64,(?P<data>.*)", re.IGNORECASE | re.DOTALL)


def _text(stamper: Mapping[str, Any], key: str) -> str | None:
    value = stamper.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"stamper.{key} must be a string")
    return value if value.strip() else None


def _int(stamper: Mapping[str, Any], key: str, default: int | float) -> int | float:
    value = stamper.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"stamper.{key} must be a number")
    return value


def _base64(value: str, key: str) -> bytes:
    compact = "".join(value.split())
    if len(compact) > _MAX_B64:
        raise ValueError(f"stamper.{key} is larger than {MAX_IMAGE_BYTES} bytes")
    try:
        data = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"stamper.{key} is not valid base64") from exc
    if not data:
        raise ValueError(f"stamper.{key} is empty")
    if data.startswith(b"%PDF"):
        raise ValueError(f"stamper.{key} is a PDF; only PNG and JPEG images are accepted")
    return data


def _image(stamper: Mapping[str, Any]) -> bytes | None:
    b64 = _text(stamper, "imageB64")
    url = _text(stamper, "imageUrl")
    if b64 is not None:
        return _base64(b64, "imageB64")
    if url is None:
        return None
    match = _DATA_URL.fullmatch(url.strip())
    if match is None:
        raise ValueError("stamper.imageUrl is not supported: the service does not fetch URLs (server-side "
                         "request forgery); send the image as imageB64 (or a data:image/png;base64 URL)")
    return _base64(match.group("data"), "imageUrl")


def verification_url(csv_path: str, verification_code: str | None) -> str:
    """``csvPath`` followed by the verification code, if there is one."""
    return csv_path + verification_code if verification_code else csv_path


def stamp_from_fortress(stamper: Mapping[str, Any], *, verification_code: str | None = None) -> StampSpec:
    """The :class:`StampSpec` for a Fortress ``stamper`` object (see the module docstring for the
    type table). ``verification_code`` is the document's secure verification code when the caller
    has one. Raises ValueError with a message naming the offending field."""
    if not isinstance(stamper, Mapping):
        raise ValueError("stamper must be a JSON object")
    kind = stamper.get("type") or "DEFAULT"
    if not isinstance(kind, str) or kind.upper() not in TYPES:
        raise ValueError(f"stamper.type {kind!r} is unknown; one of {', '.join(TYPES)}")
    kind = kind.upper()
    rotation_name = stamper.get("rotation") or "ROTATE_0"
    if not isinstance(rotation_name, str) or rotation_name.upper() not in ROTATIONS:
        raise ValueError(f"stamper.rotation {rotation_name!r} is unknown; one of {', '.join(ROTATIONS)}")
    page = _int(stamper, "page", 1)
    if page != int(page):
        raise ValueError("stamper.page must be a whole number")
    lines = tuple(line for line in (_text(stamper, f"textLine{i}") for i in (1, 2, 3)) if line is not None)
    csv_path = _text(stamper, "csvPath")
    code = verification_url(csv_path.strip(), verification_code) if csv_path else None
    if kind in _NEEDS_CODE and code is None:
        raise ValueError(f"stamper.csvPath is required for type {kind}")
    image = _image(stamper)
    if kind in ("IMAGE", "IMAGE_TEXT") and image is None:
        raise ValueError(f"stamper.imageB64 is required for type {kind}")
    if kind == "CUSTOM_TEXT" and not lines:
        raise ValueError("type CUSTOM_TEXT needs at least one of stamper.textLine1..3")
    logo_b64 = _text(stamper, "logoB64")
    text = kind not in ("CUSTOM_TEXT", "QR_NO_TEXT", "IMAGE")
    qr = code if kind in ("QR", "QR_NO_TEXT", "QR_SCALED", "QR_REDUCED", "QR_BARCODE128", "CSV_QR") or (
        kind == "DEFAULT" and code is not None) else None
    csv_line = None
    if kind in ("CSV", "CSV_QR"):
        csv_line = f"CSV: {verification_code}" if verification_code else f"CSV: {code}"
    try:
        return StampSpec(
            text_lines=lines if kind not in ("QR_NO_TEXT", "IMAGE") else (),
            show_signer=text, show_date=text, time_zone=_text(stamper, "timeZoneId") or "UTC",
            verification_text=csv_line,
            image=image, image_opacity=1.0 if kind == "IMAGE" else None,
            logo=_base64(logo_b64, "logoB64") if logo_b64 is not None else None,
            qr=qr, qr_size=QR_SIZES.get(kind, 64.0),
            code128=code if kind in ("BARCODE128", "QR_BARCODE128") else None,
            pdf417=code if kind == "PDF417" else None,
            rotation=ROTATIONS[rotation_name.upper()], page=int(page),
            x=_int(stamper, "xAxis", 36.0), y=_int(stamper, "yAxis", 36.0))
    except FormatError as exc:
        raise ValueError(f"stamper: {exc.message}") from exc
