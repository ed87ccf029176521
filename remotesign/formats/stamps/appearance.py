"""The stamp's appearance as a pyHanko stamp style, so the same object serves as a signature
field's appearance (``PdfSigner(stamp_style=...)``) and as a plain stamp on other pages
(``BaseStamp.apply``). The layout is computed at a natural size (1 pt barcode modules, the QR at
``qr_size``, text at 8 pt) and pyHanko's layout rules scale it into the box; rotation is a form
XObject /Matrix, which viewers apply both to widget appearances and to painted XObjects."""

from __future__ import annotations

import io
import math
import os
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pyhanko.pdf_utils import generic, layout
from pyhanko.pdf_utils.content import PdfContent
from pyhanko.pdf_utils.font.api import FontEngine, FontEngineFactory
from pyhanko.pdf_utils.font.basic import SimpleFontEngineFactory
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.text import TextBox, TextBoxStyle
from pyhanko.pdf_utils.writer import BasePdfFileWriter, PdfFileWriter
from pyhanko.stamp import TextStamp, TextStampStyle

from remotesign.formats.stamps.codes import Code128Content, PDF417Content, QRContent
from remotesign.formats.stamps.spec import StampSpec

PAD = 4.0            # between the parts and around them, points
FONT_SIZE = 8
LOGO_HEIGHT = 40.0   # a logo alone (no QR or text to match)
LOGO_MAX_ASPECT = 3.0
IMAGE_DEFAULT_SIDE = 150.0
WATERMARK_OPACITY = 0.3

#: TrueType fonts tried for text outside Windows-1252 (Latvian, Lithuanian, Polish, Cyrillic,
#: Greek names): Debian's fonts-freefont-ttf (1000 units per em, what pyHanko assumes), then
#: fonts-dejavu-core and fonts-liberation (rescaled once). REMOTESIGN_STAMP_FONT names another.
FONT_CANDIDATES = ("/usr/share/fonts/truetype/freefont/FreeSans.ttf",
                   "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
                   "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf")

_FIT = layout.SimpleBoxLayoutRule(x_align=layout.AxisAlignment.ALIGN_MID, y_align=layout.AxisAlignment.ALIGN_MID,
                                  margins=layout.Margins.uniform(2),
                                  inner_content_scaling=layout.InnerScaling.STRETCH_TO_FIT)
_FILL = layout.SimpleBoxLayoutRule(x_align=layout.AxisAlignment.ALIGN_MID, y_align=layout.AxisAlignment.ALIGN_MID,
                                   inner_content_scaling=layout.InnerScaling.STRETCH_TO_FIT)


@lru_cache(maxsize=1)
def unicode_font_file() -> str | None:
    """The TrueType font for non-Latin-1 text, or None (then such text is transliterated)."""
    configured = os.environ.get("REMOTESIGN_STAMP_FONT")
    for path in ((configured,) if configured else ()) + FONT_CANDIDATES:
        if path and os.path.isfile(path):
            return path
    return None


@lru_cache(maxsize=2)
def _thousand_unit_font(path: str) -> bytes:
    """``path`` at 1000 units per em. pyHanko 0.38 writes glyph widths, TJ offsets and the font
    descriptor in the font's own units while PDF reads them as 1/1000 em, so a 2048-unit font
    (DejaVu, Liberation) would print with double letter spacing; such a font is rescaled, once
    per process (one to a few seconds), a 1000-unit one (FreeSans) only loaded (0.1 s)."""
    from fontTools.ttLib import TTFont
    from fontTools.ttLib.scaleUpem import scale_upem

    font = TTFont(path)
    if "FFTM" in font:
        del font["FFTM"]  # FontForge's timestamps: the subsetter would warn on every stamp
    if font["head"].unitsPerEm != 1000:
        scale_upem(font, 1000)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@dataclass(frozen=True)
class _UnicodeFontFactory(FontEngineFactory):
    """pyHanko's glyph accumulator (embedded subset, ToUnicode map) over the rescaled font."""

    font_file: str

    def create_font_engine(self, writer: BasePdfFileWriter, obj_stream: Any = None) -> FontEngine:
        from pyhanko.pdf_utils.font.opentype import GlyphAccumulator

        if obj_stream is None and writer.stream_xrefs:
            obj_stream = writer.prepare_object_stream()
        return GlyphAccumulator(writer=writer, font_handle=io.BytesIO(_thousand_unit_font(self.font_file)),
                                font_size=FONT_SIZE, obj_stream=obj_stream)


def _needs_unicode(text: str) -> bool:
    try:
        text.encode("cp1252")
        return False
    except UnicodeEncodeError:
        return True


def _transliterate(text: str) -> str:
    """'Jānis Bērziņš' -> 'Janis Berzins' for the standard Courier font (WinAnsi only)."""
    out = []
    for ch in text:
        if not _needs_unicode(ch):
            out.append(ch)
            continue
        base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
        out.append(base if base and not _needs_unicode(base) else "?")
    return "".join(out)


def text_font(lines: list[str]) -> tuple[FontEngineFactory, list[str]]:
    """Courier (a standard font, nothing embedded) for Windows-1252 text; otherwise an embedded
    subset of a Unicode TrueType font, or Courier with the text transliterated if there is none."""
    if not any(_needs_unicode(line) for line in lines):
        return SimpleFontEngineFactory.default_factory(), lines
    font_file = unicode_font_file()
    if font_file is None:
        return SimpleFontEngineFactory.default_factory(), [_transliterate(line) for line in lines]
    return _UnicodeFontFactory(font_file), lines


def _rotation_matrix(rotation: int, width: float, height: float) -> list[float]:
    """Counter-clockwise rotation that keeps the rotated box at the origin."""
    return {90: [0, 1, -1, 0, height, 0], 180: [-1, 0, 0, -1, width, height],
            270: [0, -1, 1, 0, 0, width]}[rotation]


@dataclass(frozen=True)
class StampStyle(TextStampStyle):
    """A pyHanko stamp style carrying the whole stamp: the spec and the text to print (fixed when
    the style is made, so pyHanko's own %-templates never see user text)."""

    spec: StampSpec | None = None
    lines: tuple[str, ...] = ()

    def create_stamp(self, writer: BasePdfFileWriter, box: layout.BoxConstraints,
                     text_params: dict) -> "StampAppearance":
        return StampAppearance(writer, self, box)


def make_style(spec: StampSpec, lines: list[str]) -> StampStyle:
    """The pyHanko style of ``spec`` printing ``lines``."""
    font, lines = text_font(lines)
    image = spec.decoded("image")
    opacity = spec.image_opacity if spec.image_opacity is not None else (
        1.0 if spec.image_only else WATERMARK_OPACITY)
    return StampStyle(
        spec=spec, lines=tuple(lines), stamp_text="", border_width=1 if spec.border and not spec.image_only else 0,
        background=PdfImage(image) if image is not None else None, background_opacity=opacity,
        background_layout=_FILL if spec.image_only else _FIT, inner_content_layout=_FIT,
        text_box_style=TextBoxStyle(font=font, font_size=FONT_SIZE, leading=FONT_SIZE + 2))


class StampAppearance(TextStamp):
    """Lays out logo, QR code and text in a row, Code 128 and PDF417 below, over the watermark."""

    style: StampStyle

    def __init__(self, writer: BasePdfFileWriter, style: StampStyle, box: layout.BoxConstraints | None) -> None:
        assert style.spec is not None
        self.rotation = style.spec.rotation
        if box is not None and box.width_defined and box.height_defined and self.rotation in (90, 270):
            box = layout.BoxConstraints(width=box.height, height=box.width)  # the box before rotation
        super().__init__(writer, style, text_params={}, box=box)

    def _text_layout(self) -> bytes:
        self.text_box = tb = TextBox(self.style.text_box_style, writer=self.writer, resources=self.resources,
                                     box=None)
        tb.content = "\n".join(self.style.lines)
        return tb.render()

    def _place(self, content: PdfContent, x: float, y: float, width: float, height: float) -> bytes:
        content.set_writer(self.writer)
        commands = content.render()
        self.import_resources(content.resources)
        return b"q %g 0 0 %g %g %g cm %s Q" % (width / content.box.width, height / content.box.height, x, y,
                                                commands)

    def _inner_layout_natural_size(self) -> tuple[list[bytes], tuple[float, float]]:
        spec = self.style.spec
        assert spec is not None
        text: tuple[bytes, float, float] | None = None
        if self.style.lines:
            commands = self._text_layout()
            assert self.text_box is not None
            text = (commands, self.text_box.box.width, self.text_box.box.height)
        qr = QRContent(spec.qr, spec.qr_size) if spec.qr else None
        row_height = max(spec.qr_size if qr else 0.0, text[2] if text else 0.0)
        logo: tuple[PdfImage, float, float] | None = None
        logo_img = spec.decoded("logo")
        if logo_img is not None:
            lh = row_height or LOGO_HEIGHT
            row_height = row_height or lh
            aspect = logo_img.width / logo_img.height
            lw = lh * aspect
            if aspect > LOGO_MAX_ASPECT:
                lw, lh = lh * LOGO_MAX_ASPECT, lh * LOGO_MAX_ASPECT / aspect
            logo = (PdfImage(logo_img), lw, lh)
        row: list[tuple[PdfContent | bytes, float, float]] = []
        if logo and spec.logo_side == "left":
            row.append(logo)
        if qr:
            row.append((qr, spec.qr_size, spec.qr_size))
        if text:
            row.append(text)
        if logo and spec.logo_side == "right":
            row.append(logo)
        colour = b"%g %g %g rg " % spec.text_color if spec.text_color else b""
        strips: list[PdfContent] = []
        if spec.code128:
            strips.append(Code128Content(spec.code128))
        if spec.pdf417:
            strips.append(PDF417Content(spec.pdf417))

        row_width = sum(w for _, w, _ in row) + PAD * max(0, len(row) - 1)
        width = max([row_width] + [s.box.width for s in strips])
        strips_height = sum(s.box.height + PAD for s in strips) - (PAD if strips and not row else 0)
        height = (row_height if row else 0.0) + strips_height
        out: list[bytes] = []
        # top row, left to right, each part centred vertically in the row
        x = (width - row_width) / 2
        row_bottom = height - row_height
        for part, w, h in row:
            y = row_bottom + (row_height - h) / 2
            if isinstance(part, bytes):
                out.append(b"q %s1 0 0 1 %g %g cm %s Q" % (colour, x, y, part))
            else:
                out.append(self._place(part, x, y, w, h))
            x += w + PAD
        # barcodes below, centred
        y = row_bottom - (PAD if row else 0.0)
        for strip in strips:
            y -= strip.box.height
            out.append(self._place(strip, (width - strip.box.width) / 2, y, strip.box.width, strip.box.height))
            y -= PAD
        return out, (width, height)

    def as_form_xobject(self) -> generic.StreamObject:
        xobj = super().as_form_xobject()
        if self.rotation:
            xobj[pdf_name("/Matrix")] = generic.ArrayObject(
                generic.FloatObject(v) for v in _rotation_matrix(self.rotation, self.box.width, self.box.height))
        return xobj


def natural_size(style: StampStyle) -> tuple[float, float]:
    """Width and height of the stamp on the page (after rotation) at its natural layout size, or
    fitted to the spec's width/height (one of them given: the other keeps the aspect ratio)."""
    spec = style.spec
    assert spec is not None
    if spec.image_only:
        img = spec.decoded("image")
        assert img is not None
        scale = IMAGE_DEFAULT_SIDE / max(img.width, img.height)
        width, height = img.width * scale, img.height * scale
    else:
        stamp = StampAppearance(PdfFileWriter(), style, None)
        _, (inner_w, inner_h) = stamp._inner_layout_natural_size()
        margin = 2 * 2 + 2 * style.border_width
        # whole points, rounded up: pyHanko warns when content overflows its box by a rounding error
        width, height = math.ceil(inner_w + margin), math.ceil(inner_h + margin)
    if spec.width is not None and spec.height is not None:
        width, height = spec.width, spec.height
    elif spec.width is not None:
        width, height = spec.width, height * spec.width / width
    elif spec.height is not None:
        width, height = width * spec.height / height, spec.height
    if spec.rotation in (90, 270):
        width, height = height, width
    return width, height
