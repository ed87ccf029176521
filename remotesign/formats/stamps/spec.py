"""What a visible signature stamp shows and where: a vendor-neutral description that every API
mapping (Fortress, ...) produces and the PDF code renders. Everything is checked here, once, so a
bad request fails with ``invalid_stamp`` before any PDF is touched, and the renderer can trust its
input (sizes bounded: a stamp is rendered inside a signing request)."""

from __future__ import annotations

import base64
import io
import math
import re
import warnings
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from PIL import Image

from remotesign.formats.base import FormatError

ERROR_CODE = "invalid_stamp"

MAX_TEXT_LINES = 3
MAX_LINE_CHARS = 120
MAX_QR_CHARS = 1024        # QR version ~25 at level M: still readable at stamp sizes
MAX_CODE128_CHARS = 64     # wider codes need more than a page width at a printable module size
MAX_PDF417_CHARS = 512
MAX_IMAGE_BYTES = 2 << 20
MAX_IMAGE_SIDE = 4096
MAX_IMAGE_PIXELS = 8_000_000
IMAGE_FORMATS = ("PNG", "JPEG")
MAX_COORDINATE = 14_400.0  # the largest PDF page side (ISO 32000-1, annex C)
MIN_SIDE = 8.0
ROTATIONS = (0, 90, 180, 270)


def stamp_error(message: str) -> FormatError:
    """The one error of a stamp the caller can fix; its code is stable for the API envelope."""
    return FormatError(ERROR_CODE, message)


def load_image(data: bytes, what: str = "image") -> Image.Image:
    """Decode PNG/JPEG bytes fully (a truncated or hostile file fails here, not in the PDF
    writer), refusing decompression bombs by their declared size before decoding the pixels."""
    if not isinstance(data, bytes | bytearray) or not data:
        raise stamp_error(f"the stamp {what} is empty")
    if len(data) > MAX_IMAGE_BYTES:
        raise stamp_error(f"the stamp {what} is larger than {MAX_IMAGE_BYTES} bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))
            width, height = img.size
            if (width < 1 or height < 1 or max(width, height) > MAX_IMAGE_SIDE
                    or width * height > MAX_IMAGE_PIXELS):
                raise stamp_error(f"the stamp {what} is {width}x{height} pixels; at most {MAX_IMAGE_SIDE} "
                                  f"per side and {MAX_IMAGE_PIXELS} pixels are accepted")
            img.load()
    except FormatError:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Image.DecompressionBombWarning,
            EOFError) as exc:
        raise stamp_error(f"the stamp {what} is not a readable PNG or JPEG image ({exc})") from exc
    # pyHanko embeds L, LA, RGB, RGBA and palette images; CMYK JPEGs and 16-bit PNGs are converted.
    if img.mode not in ("L", "LA", "RGB", "RGBA"):
        img = img.convert("RGBA" if "A" in img.getbands() or "transparency" in img.info else "RGB")
    return img


def _check_text(value: str, what: str, limit: int) -> None:
    if not isinstance(value, str) or not value.strip():
        raise stamp_error(f"the stamp {what} is empty")
    if len(value) > limit:
        raise stamp_error(f"the stamp {what} has {len(value)} characters; at most {limit} are accepted")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in value):
        raise stamp_error(f"the stamp {what} contains control characters (line breaks included)")


def _check_number(value: float, what: str, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or not low <= value <= high:
        raise stamp_error(f"the stamp {what} must be a number from {low:g} to {high:g}")


@dataclass(frozen=True)
class StampSpec:
    """A visible stamp: any combination of up to three text lines (plus the signer's name, the
    signing date in ``time_zone`` and a verification code line), a background/watermark
    ``image``, a ``logo``, a QR code, a Code 128 and a PDF417 barcode. ``page`` is 1..n, -1 for
    the last page or 0 for every page. ``x``/``y`` is the lower left corner of the stamp on the
    page in PDF points (origin bottom left; a turned stamp keeps it there). ``width``/``height``
    are the stamp's own, before rotation, and default to the natural size of the layout (one
    given: the other keeps the aspect ratio). ``rotation`` is counter-clockwise, as a widget's
    /MK /R."""

    text_lines: tuple[str, ...] = ()
    show_signer: bool = False
    show_date: bool = False
    time_zone: str = "UTC"
    signer_label: str = "Digitally signed by"
    date_label: str = "Date"
    verification_text: str | None = None  # e.g. "CSV: 4F2A-..." or a verification URL, its own line
    image: bytes | None = None
    image_opacity: float | None = None  # None: opaque when the image is all there is, else 0.3
    logo: bytes | None = None
    qr: str | None = None
    qr_size: float = 64.0  # side of the QR code (quiet zone included) at natural size, points
    code128: str | None = None
    pdf417: str | None = None
    rotation: int = 0
    page: int = 1
    x: float = 36.0
    y: float = 36.0
    width: float | None = None
    height: float | None = None
    border: bool = True
    date_format: str = "%Y-%m-%d %H:%M:%S"  # strftime directives of the date line
    text_color: tuple[float, float, float] | None = None  # RGB 0..1; None: black
    logo_side: str = "left"  # where the logo stands beside the text: left or right
    # placed by an anchor text on the page instead of x/y: the stamp's lower left corner is the
    # anchor's lower left corner moved by (anchor_dx, anchor_dy) points; ``page`` 0 searches all
    anchor: str | None = None
    anchor_dx: float = 0.0
    anchor_dy: float = 0.0
    _images: dict[str, Image.Image] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.text_lines, tuple):
            object.__setattr__(self, "text_lines", tuple(self.text_lines))
        if len(self.text_lines) > MAX_TEXT_LINES:
            raise stamp_error(f"a stamp has at most {MAX_TEXT_LINES} text lines")
        for i, line in enumerate(self.text_lines, 1):
            _check_text(line, f"text line {i}", MAX_LINE_CHARS)
        for label, what in ((self.signer_label, "signer label"), (self.date_label, "date label")):
            _check_text(label, what, 40)
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
            raise stamp_error(f"unknown time zone {self.time_zone!r} (an IANA name such as Europe/Riga)") from exc
        for value, what, limit in ((self.verification_text, "verification text", MAX_LINE_CHARS),
                                   (self.qr, "QR code content", MAX_QR_CHARS),
                                   (self.code128, "Code 128 content", MAX_CODE128_CHARS),
                                   (self.pdf417, "PDF417 content", MAX_PDF417_CHARS)):
            if value is not None:
                _check_text(value, what, limit)
        if self.code128 is not None and not self.code128.isascii():
            raise stamp_error("Code 128 encodes ASCII only")
        if self.rotation not in ROTATIONS:
            raise stamp_error(f"the stamp rotation must be one of {ROTATIONS}")
        if isinstance(self.page, bool) or not isinstance(self.page, int) or self.page < -1:
            raise stamp_error("the stamp page must be 1..n, -1 (last page) or 0 (every page)")
        _check_number(self.x, "x position", 0, MAX_COORDINATE)
        _check_number(self.y, "y position", 0, MAX_COORDINATE)
        _check_number(self.qr_size, "QR size", 24, 600)
        for side, what in ((self.width, "width"), (self.height, "height")):
            if side is not None:
                _check_number(side, what, MIN_SIDE, MAX_COORDINATE)
        if self.image_opacity is not None:
            _check_number(self.image_opacity, "image opacity", 0.05, 1.0)
        if self.text_color is not None:
            if not isinstance(self.text_color, tuple):
                object.__setattr__(self, "text_color", tuple(self.text_color))
            if len(self.text_color) != 3:
                raise stamp_error("the text colour is three numbers (red, green, blue) from 0 to 1")
            for part in self.text_color:
                _check_number(part, "text colour", 0.0, 1.0)
        if not isinstance(self.date_format, str) or not 1 <= len(self.date_format) <= 40 or \
                set(re.findall(r"%(.)", self.date_format)) - set("dmyYHMSpbBaAIz%"):
            raise stamp_error("the date format uses %d %m %Y %y %H %M %S %I %p %b %B %a %A %z only, in at most "
                              "40 characters")
        if self.logo_side not in ("left", "right"):
            raise stamp_error("the logo stands left or right of the text")
        if self.anchor is not None:
            _check_text(self.anchor, "anchor text", 200)
            _check_number(self.anchor_dx, "anchor offset", -MAX_COORDINATE, MAX_COORDINATE)
            _check_number(self.anchor_dy, "anchor offset", -MAX_COORDINATE, MAX_COORDINATE)
        self._check_encodable()
        if self.image is not None:
            self._images["image"] = load_image(self.image, "image")
        if self.logo is not None:
            self._images["logo"] = load_image(self.logo, "logo")
        if not self.has_text and not any((self.image, self.logo, self.qr, self.code128, self.pdf417)):
            raise stamp_error("the stamp shows nothing: give text, an image, a logo or a code")

    def _check_encodable(self) -> None:
        """Content within the character limits can still overflow a symbol (QR: 2331 bytes at
        level M; PDF417: 90 rows), e.g. with many multi-byte characters: fail here, not at signing."""
        import pdf417gen
        import qrcode
        from qrcode.exceptions import DataOverflowError

        from remotesign.formats.stamps.codes import _pdf417_columns

        if self.qr is not None:
            try:
                code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M)
                code.add_data(self.qr)
                code.make(fit=True)
            except (DataOverflowError, ValueError) as exc:
                raise stamp_error(f"the QR code content cannot be encoded: {exc}") from exc
        if self.pdf417 is not None:
            try:
                pdf417gen.encode(self.pdf417, columns=_pdf417_columns(self.pdf417), security_level=2)
            except ValueError as exc:
                raise stamp_error(f"the PDF417 content cannot be encoded: {exc}") from exc

    def to_json(self) -> dict[str, object]:
        """The stamp as JSON values (images in Base64), for work that runs later or elsewhere."""
        out: dict[str, object] = {}
        for f in fields(self):
            if not f.init:
                continue
            value = getattr(self, f.name)
            if isinstance(value, bytes):
                value = base64.b64encode(value).decode("ascii")
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_json(cls, data: dict[str, object]) -> "StampSpec":
        """The inverse of ``to_json`` (checked again, like any new stamp)."""
        values = dict(data)
        for name in ("image", "logo"):
            if isinstance(values.get(name), str):
                values[name] = base64.b64decode(str(values[name]))
        known = {f.name for f in fields(cls) if f.init}
        return cls(**{k: v for k, v in values.items() if k in known})  # type: ignore[arg-type]

    @property
    def has_text(self) -> bool:
        return bool(self.text_lines or self.show_signer or self.show_date or self.verification_text)

    @property
    def image_only(self) -> bool:
        """Only a picture: it is then the whole stamp, opaque and without a border."""
        return self.image is not None and not self.has_text and not any((self.logo, self.qr, self.code128,
                                                                         self.pdf417))

    def decoded(self, which: str) -> Image.Image | None:
        """The decoded ``image`` or ``logo`` (decoded once, when the spec was made)."""
        return self._images.get(which)

    def lines(self, signer_name: str | None, signing_time: datetime) -> list[str]:
        """The text the stamp prints: signer, date in the stamp's time zone, verification text, then
        the given lines."""
        out: list[str] = []
        if self.show_signer and signer_name:
            out.append(f"{self.signer_label} {signer_name[:MAX_LINE_CHARS]}")
        if self.show_date:
            aware = signing_time if signing_time.tzinfo else signing_time.replace(tzinfo=timezone.utc)
            local = aware.astimezone(ZoneInfo(self.time_zone))
            out.append(f"{self.date_label}: {local.strftime(self.date_format)} {local.tzname() or ''}".rstrip())
        if self.verification_text:
            out.append(self.verification_text)
        out.extend(self.text_lines)
        return out

