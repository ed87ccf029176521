"""QR, Code 128 and PDF417 as pyHanko content, each drawn by a library made for that symbology:
``qrcode`` (through pyHanko's vector QR image), ``python-barcode`` (through pyHanko's vector
barcode writer) and ``pdf417gen``. Every code gets a white backing with its quiet zone so it
stays readable over a watermark; sizes are in PDF points at a printable module size."""

from __future__ import annotations

import math

import barcode
import pdf417gen
import qrcode
from PIL import Image
from pyhanko.pdf_utils.barcodes import PdfStreamBarcodeWriter
from pyhanko.pdf_utils.content import PdfContent
from pyhanko.pdf_utils.images import PdfImage
from pyhanko.pdf_utils.layout import BoxConstraints
from pyhanko.pdf_utils.qr import PdfStreamQRImage

from remotesign.formats.stamps.spec import stamp_error

#: One module of a linear code: 1 pt = 0.35 mm, well above the 0.19 mm smallest X dimension that
#: printers and scanners handle, and 2 pixels at 150 dpi.
MODULE_PT = 1.0
MM_PER_PT = 25.4 / 72
CODE128_HEIGHT_PT = 28.0
CODE128_QUIET_MODULES = 10
PDF417_ROW_RATIO = 3  # row height in modules (the specification's minimum)
PDF417_QUIET_MODULES = 2


def _white_backing(width: float, height: float) -> bytes:
    return b"q 1 1 1 rg 0 0 %g %g re f Q" % (width, height)


class QRContent(PdfContent):
    """A QR code (level M, 4-module quiet zone) of ``side`` points, as vector rectangles."""

    def __init__(self, data: str, side: float) -> None:
        qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=1, border=4)
        qr.add_data(data)
        qr.make(fit=True)
        self._commands = qr.make_image(image_factory=PdfStreamQRImage).render_command_stream()
        self._units = qr.modules_count + 2 * qr.border
        super().__init__(box=BoxConstraints(width=side, height=side))

    def render(self) -> bytes:
        scale = self.box.width / self._units
        return b"%s q %g 0 0 %g 0 0 cm %s Q" % (_white_backing(self.box.width, self.box.height), scale, scale,
                                                self._commands)


class Code128Content(PdfContent):
    """A Code 128 barcode (python-barcode picks the code sets) with 1 pt modules, no human text:
    the stamp's own text lines carry what a person reads."""

    def __init__(self, data: str) -> None:
        writer = PdfStreamBarcodeWriter()
        try:
            code = barcode.get_barcode("code128", code=data, writer=writer)
            self._commands = code.render({
                "module_width": MODULE_PT * MM_PER_PT, "module_height": CODE128_HEIGHT_PT * MM_PER_PT,
                "quiet_zone": CODE128_QUIET_MODULES * MODULE_PT * MM_PER_PT, "write_text": False,
                "margin_top": 0, "margin_bottom": 0})
        except (barcode.errors.BarcodeError, ValueError, KeyError) as exc:
            raise stamp_error(f"the Code 128 content cannot be encoded: {exc}") from exc
        width, height = writer.size
        super().__init__(box=BoxConstraints(width=width, height=height))

    def render(self) -> bytes:
        # clipped: python-barcode paints its white spaces a little taller than the bars
        return b"%s q 0 0 %g %g re W n %s Q" % (_white_backing(self.box.width, self.box.height), self.box.width,
                                                self.box.height, self._commands)


def _pdf417_columns(data: str) -> int:
    """Data columns for a symbol about three times wider than high at 3-module rows."""
    codewords = len(data.encode("utf-8")) / 1.8 + 8  # text compaction ~2 chars a codeword + level 2 ECC
    return max(2, min(16, math.ceil(math.sqrt(codewords / 1.2))))


class PDF417Content(PdfImage):
    """A PDF417 symbol (error correction level 2 or more, as pdf417gen chooses) rendered by
    pdf417gen one pixel per module and embedded as an image scaled to 1 pt modules."""

    def __init__(self, data: str) -> None:
        try:
            codes = pdf417gen.encode(data, columns=_pdf417_columns(data), security_level=2)
            img: Image.Image = pdf417gen.render_image(codes, scale=1, ratio=PDF417_ROW_RATIO,
                                                      padding=PDF417_QUIET_MODULES)
        except ValueError as exc:
            raise stamp_error(f"the PDF417 content cannot be encoded: {exc}") from exc
        img = img.convert("L")
        super().__init__(img, box=BoxConstraints(width=img.width * MODULE_PT, height=img.height * MODULE_PT))
