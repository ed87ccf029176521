"""Visible PDF signature stamps (issue 14 item 4): a vendor-neutral :class:`StampSpec`, rendered
with pyHanko's stamp machinery, qrcode, python-barcode and pdf417gen, and placed as the
appearance of a signature or document time-stamp field."""

from remotesign.formats.stamps.appearance import StampAppearance, StampStyle, make_style, natural_size
from remotesign.formats.stamps.placement import StampPlacement, add_stamp_field, resolve_pages, stamped_field
from remotesign.formats.stamps.spec import ERROR_CODE, StampSpec, load_image, stamp_error

__all__ = ["ERROR_CODE", "StampAppearance", "StampPlacement", "StampSpec", "StampStyle", "add_stamp_field",
           "load_image", "make_style", "natural_size", "resolve_pages", "stamp_error", "stamped_field"]
