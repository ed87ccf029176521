"""``signCloudMetaData`` as the signature to make: a pure mapping (no I/O), so a bad value fails
the request before anything is stored or signed.

Both shapes the vendor's clients send are read: ``{"singletonSigning": {"entry": [{"key", "value"}]}}``
(the spec) and ``{"singletonSigning": {"KEY": "value"}}`` (SignCloud), with or without the quotes
the spec prints around the member names. Keys are case-insensitive. Keys this service does not
act on are returned so the answer can list them (``ignoredMetaData``).

PDF keys (PAdES, a visible stamp when ``VISIBLESIGNATURE`` is true, or when it is absent and a
position or image is given): ``PAGENO`` (a number, ``First``, ``Last``), ``COORDINATE``
(``x1,y1,x2,y2`` in points from the lower left corner), ``RECTANGLESIZE`` (``width,height``),
``SIGNATUREIMAGE`` (PNG or JPEG, base64) with ``IMAGEANDTEXT``, ``SHOWSIGNERINFO`` /
``SIGNERINFOPREFIX`` (the certificate's CN), ``SHOWDATETIME`` / ``DATETIMEPREFIX``,
``SHOWREASON`` / ``SIGNREASONPREFIX`` / ``SIGNREASON`` (also the signature's reason),
``SHOWLOCATION`` / ``LOCATIONPREFIX`` / ``LOCATION`` (also the signature's location),
``SHOWEMAIL`` / ``EMAILPREFIX``, ``LOCKAFTERSIGNING`` (the signature locks the document: a later
signature is refused, as it would invalidate this one), ``POSITIONIDENTIFIER`` (an anchor text:
the stamp's lower left corner is the text's, moved by ``RECTANGLEOFFSET`` ``dx,dy``; sized by
``RECTANGLESIZE``, 170 x 70 points by default; on ``PAGENO``, else the first page that has it),
``TEXTCOLOR`` (a name, ``#RRGGBB`` or ``r,g,b``), ``TEXTDIRECTION`` (``LEFTTORIGHT``: text left,
image right; ``RIGHTTOLEFT``: image left; else the image stands behind the text).
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from remotesign.api.remote_signing.answers import Refusal
from remotesign.core.document_signer import SignatureSpec
from remotesign.formats.base import FormatError
from remotesign.formats.interface import Packaging, SignaturePolicy, XmlOptions
from remotesign.formats.xades import constants as xml_c14n
from remotesign.formats.stamps.spec import StampSpec

PDF = "application/pdf"
XML = ("application/xml", "text/xml")
OFFICE = ("application/vnd.openxmlformats-officedocument.wordprocessingml.document",
          "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
          "application/vnd.openxmlformats-officedocument.presentationml.presentation",
          "application/docx", "application/xlsx", "application/pptx")
PDF_KEYS = {"VISIBLESIGNATURE", "PAGENO", "COORDINATE", "RECTANGLESIZE", "SIGNATUREIMAGE", "IMAGEANDTEXT",
            "SHOWSIGNERINFO", "SIGNERINFOPREFIX", "SHOWDATETIME", "DATETIMEPREFIX", "SHOWREASON", "SIGNREASONPREFIX",
            "SIGNREASON", "SHOWLOCATION", "LOCATIONPREFIX", "LOCATION", "SHOWEMAIL", "EMAILPREFIX", "LOCKAFTERSIGNING",
            "POSITIONIDENTIFIER", "RECTANGLEOFFSET", "TEXTCOLOR", "TEXTDIRECTION", "DATETIMEFORMAT", "FORMATTIME"}
# .NET-style date patterns the vendor's clients send (DATETIMEFORMAT / FORMATTIME) as strftime
DOTNET_DATE = (("yyyy", "%Y"), ("yy", "%y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("hh", "%I"), ("mm", "%M"),
               ("ss", "%S"), ("tt", "%p"))
COLOURS = {"black": (0, 0, 0), "red": (255, 0, 0), "green": (0, 128, 0), "blue": (0, 0, 255), "white": (255, 255, 255),
           "gray": (128, 128, 128), "grey": (128, 128, 128), "orange": (255, 165, 0), "yellow": (255, 215, 0),
           "purple": (128, 0, 128), "brown": (139, 69, 19), "navy": (0, 0, 128), "darkblue": (0, 0, 139),
           "darkred": (139, 0, 0), "darkgreen": (0, 100, 0)}
MAX_ENTRIES = 100
XML_KEYS = {"SIGNATUREFORMAT", "ALGORITHM", "CANONICALIZATIONMETHOD", "ATTRIBUTENAME", "NODETOBESIGNED",
            "SIGNATURELOCATION", "SIGNATUREID", "DATETIMEFORMAT"}
C14N = {"INCLUSIVE": xml_c14n.C14N_10, "INCLUSIVE_WITH_COMMENTS": xml_c14n.C14N_10_COMMENTS,
        "EXCLUSIVE": xml_c14n.EXC_C14N, "EXCLUSIVE_WITH_COMMENTS": xml_c14n.EXC_C14N_COMMENTS}


@dataclass(frozen=True)
class Chosen:
    """The signature of one file and the metadata keys it did not use."""

    spec: SignatureSpec
    ignored: tuple[str, ...]


def entries(metadata: Any, member: str = "singletonSigning") -> dict[str, str]:
    """The key/value pairs of one member of ``signCloudMetaData`` (upper-cased keys)."""
    if metadata is None:
        return {}
    if not isinstance(metadata, dict):
        raise Refusal(1002, "signCloudMetaData is an object")
    part = metadata.get(member, metadata.get(f"'{member}'"))
    if part is None:
        return {}
    if not isinstance(part, dict):
        raise Refusal(1002, f"signCloudMetaData.{member} is an object")
    pairs = part.get("entry") if "entry" in part else [{"key": k, "value": v} for k, v in part.items()]
    if not isinstance(pairs, list) or len(pairs) > MAX_ENTRIES:
        raise Refusal(1002, f"signCloudMetaData.{member}.entry is a list of at most {MAX_ENTRIES} entries")
    out: dict[str, str] = {}
    for pair in pairs:
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str) or \
                not isinstance(pair.get("value"), (str, int, float, bool)):
            raise Refusal(1002, f"signCloudMetaData.{member}.entry items are {{key, value}} strings")
        value = pair["value"]
        out[pair["key"].strip().upper()] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


def _flag(meta: dict[str, str], key: str) -> bool:
    return meta.get(key, "").strip().lower() in ("true", "1", "yes")


def _numbers(meta: dict[str, str], key: str, count: int) -> list[float] | None:
    if key not in meta:
        return None
    parts = [p.strip().strip("'") for p in meta[key].strip().strip("'").split(",")]
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(numbers) != count:
        raise Refusal(1002, f"{key} is {count} comma-separated numbers, not {meta[key]!r}")
    return numbers


def _page(meta: dict[str, str]) -> int:
    value = meta.get("PAGENO", "1").strip().strip("'").lower()
    if value == "first":
        return 1
    if value == "last":
        return -1
    if not value.isdigit() or not 1 <= int(value) <= 100_000:
        raise Refusal(1002, f"PAGENO is a page number, First or Last, not {meta['PAGENO']!r}")
    return int(value)


def _date_format(meta: dict[str, str]) -> str:
    """The date line's format: DD/MM/YYYY and the time by default (the spec's ``Sign Date: {DD /
    MM / YYYY}``), or the client's .NET-style ``DATETIMEFORMAT`` / ``FORMATTIME``."""
    pattern = (meta.get("DATETIMEFORMAT") or meta.get("FORMATTIME") or "").strip()
    if not pattern:
        return "%d/%m/%Y %H:%M:%S"
    if "%" in pattern or len(pattern) > 40:
        raise Refusal(1002, f"DATETIMEFORMAT is a pattern such as dd/MM/yyyy HH:mm:ss, not {pattern!r}")
    for dotnet, directive in DOTNET_DATE:
        pattern = pattern.replace(dotnet, directive)
    return pattern


def _colour(meta: dict[str, str]) -> tuple[float, float, float] | None:
    """TEXTCOLOR as a colour name, ``#RRGGBB`` or ``r,g,b`` (0-255)."""
    value = meta.get("TEXTCOLOR", "").strip().strip("'").lower()
    if not value:
        return None
    rgb: tuple[int, ...] | None = COLOURS.get(value.replace(" ", ""))
    if rgb is None and re.fullmatch(r"#?[0-9a-f]{6}", value):
        rgb = tuple(int(value.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4))
    if rgb is None and re.fullmatch(r"\d{1,3},\d{1,3},\d{1,3}", value.replace(" ", "")):
        rgb = tuple(int(v) for v in value.replace(" ", "").split(","))
    if rgb is None or any(v > 255 for v in rgb):
        raise Refusal(1002, f"TEXTCOLOR is a colour name, #RRGGBB or r,g,b, not {meta['TEXTCOLOR']!r}")
    return (rgb[0] / 255, rgb[1] / 255, rgb[2] / 255)


def _line(meta: dict[str, str], prefix_key: str, default_prefix: str, value: str) -> str:
    prefix = meta.get(prefix_key, default_prefix).strip()
    return f"{prefix.rstrip(':')}: {value}" if prefix else value


def pdf_signature(meta: dict[str, str], *, email: str | None) -> Chosen:
    """The PAdES signature the metadata describes."""
    reason = meta.get("SIGNREASON", "").strip() or None
    image = None
    if meta.get("SIGNATUREIMAGE"):
        try:
            image = base64.b64decode(re.sub(r"\s+", "", meta["SIGNATUREIMAGE"]), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise Refusal(1002, "SIGNATUREIMAGE is not base64") from exc
    placed = any(k in meta for k in ("COORDINATE", "SIGNATUREIMAGE", "RECTANGLESIZE", "POSITIONIDENTIFIER"))
    visible = _flag(meta, "VISIBLESIGNATURE") if "VISIBLESIGNATURE" in meta else placed
    stamp = None
    if visible:
        lines = []
        if _flag(meta, "SHOWREASON") and reason:
            lines.append(_line(meta, "SIGNREASONPREFIX", "Reason", reason))
        if _flag(meta, "SHOWLOCATION") and meta.get("LOCATION", "").strip():
            lines.append(_line(meta, "LOCATIONPREFIX", "Location", meta["LOCATION"].strip()))
        if _flag(meta, "SHOWEMAIL") and email:
            lines.append(_line(meta, "EMAILPREFIX", "Email", email))
        with_text = image is None or _flag(meta, "IMAGEANDTEXT")
        box = _numbers(meta, "COORDINATE", 4)
        size = _numbers(meta, "RECTANGLESIZE", 2)
        x, y, width, height = 36.0, 36.0, None, None
        anchor = meta.get("POSITIONIDENTIFIER", "").strip() or None
        offset = _numbers(meta, "RECTANGLEOFFSET", 2) or [0.0, 0.0]
        if anchor is not None:
            box = None  # placed by the anchor; RECTANGLESIZE gives the size
            width, height = size if size is not None else (170.0, 70.0)
        if box is not None:
            x, y, width, height = box[0], box[1], box[2] - box[0], box[3] - box[1]
            if width <= 0 or height <= 0:
                raise Refusal(1002, "COORDINATE is x1,y1,x2,y2 with x2 > x1 and y2 > y1")
        elif size is not None and anchor is None:
            width, height = size
        direction = meta.get("TEXTDIRECTION", "").strip().upper()
        if direction and direction not in ("LEFTTORIGHT", "RIGHTTOLEFT", "IMAGE_CENTER"):
            raise Refusal(1002, f"TEXTDIRECTION is LEFTTORIGHT, RIGHTTOLEFT or IMAGE_CENTER, not {meta['TEXTDIRECTION']!r}")
        # image and text side by side when a direction is given, else the image behind the text
        beside = image is not None and with_text and direction in ("LEFTTORIGHT", "RIGHTTOLEFT")
        show_signer = with_text and (_flag(meta, "SHOWSIGNERINFO") or not any(
            k in meta for k in ("SHOWSIGNERINFO", "SHOWDATETIME", "SHOWREASON", "SHOWLOCATION", "SHOWEMAIL")))
        try:
            stamp = StampSpec(
                text_lines=tuple(lines) if with_text else (), show_signer=show_signer,
                signer_label=(meta.get("SIGNERINFOPREFIX", "Signed by").strip().rstrip(":") or "Signed by") + ":",
                show_date=with_text and _flag(meta, "SHOWDATETIME"),
                date_label=meta.get("DATETIMEPREFIX", "Sign date").strip().rstrip(":") or "Sign date",
                time_zone="Asia/Ho_Chi_Minh", date_format=_date_format(meta), image=None if beside else image, logo=image if beside else None,
                logo_side="right" if direction == "LEFTTORIGHT" else "left", text_color=_colour(meta),
                page=_page(meta) if "PAGENO" in meta or anchor is None else 0, x=x, y=y, width=width,
                height=height, anchor=anchor, anchor_dx=offset[0], anchor_dy=offset[1])
        except FormatError as exc:
            raise Refusal(1002, exc.message) from exc
    spec = SignatureSpec(kind="pades", reason=reason, stamp=stamp, location=meta.get("LOCATION", "").strip() or None,
                         lock=_flag(meta, "LOCKAFTERSIGNING"))
    return Chosen(spec, tuple(sorted(k for k in meta if k not in PDF_KEYS)))


def _location_xpath(value: str) -> str:
    """SIGNATURELOCATION as XPath: an XPath as given when it starts with ``/``, else element names
    (prefixes ignored), ``/``-separated, matched anywhere in the document."""
    value = value.strip()
    if value.startswith("/"):
        return value
    steps = [part.split(":")[-1] for part in value.split("/") if part.strip()]
    if not steps or any(not re.fullmatch(r"[A-Za-z_][\w.-]{0,100}", step) for step in steps):
        raise Refusal(1002, f"SIGNATURELOCATION is an element name, a path of names or an XPath, not {value!r}")
    return "//" + "/".join(f"*[local-name()='{step}']" for step in steps)


def xml_signature(meta: dict[str, str], policy: SignaturePolicy | None = None) -> Chosen:
    """The XML signature the metadata describes (``SIGNATUREFORMAT``): XAdES-B (the default) or
    XAdES-EPES, XMLDSig of the whole document (``DSIG``), of one element (``DSIG_SINGLE_NODE``, or
    ``DSIG_XPATH`` through an XPath Filter 2.0 ``id()``), of several (``DSIG_MULTIPLE_NODES``), or the
    Vietnamese tax form ``TAX-211120`` (XMLDSig in the default namespace over NODETOBESIGNED and a
    signed SigningTime property, put at SIGNATURELOCATION)."""
    form = meta.get("SIGNATUREFORMAT", "XADES").strip().upper().replace("_", "-")
    hash_name = {"SHA-256": "sha256", "SHA256": "sha256", "SHA-384": "sha384", "SHA384": "sha384",
                 "SHA-512": "sha512", "SHA512": "sha512"}.get(meta.get("ALGORITHM", "SHA-256").strip().upper())
    if hash_name is None:
        raise Refusal(1011, f"ALGORITHM {meta.get('ALGORITHM')!r} is not used here (SHA-256, SHA-384, SHA-512 are; "
                      "SHA-1 signatures are no longer safe)")
    c14n = meta.get("CANONICALIZATIONMETHOD", "").strip().upper()
    if c14n and c14n not in C14N:
        raise Refusal(1002, f"CANONICALIZATIONMETHOD is one of {', '.join(C14N)}")
    if meta.get("ATTRIBUTENAME", "Id").strip().lower() != "id":
        raise Refusal(1011, "the signed element is named by an Id attribute (Id, ID or id)")
    raw_node = meta.get("NODETOBESIGNED", "").strip()
    nodes = [raw_node] if form == "DSIG-XPATH" and raw_node else \
        [n.strip().lstrip("#") for n in raw_node.split(",") if n.strip()]
    node = nodes[0] if nodes else None
    if len(nodes) > 1 and form != "DSIG-MULTIPLE-NODES":
        raise Refusal(1002, "several NODETOBESIGNED are signed with SIGNATUREFORMAT DSIG_MULTIPLE_NODES")
    location = meta.get("SIGNATURELOCATION", "").strip()
    xpath = _location_xpath(location) if location else None
    signature_id = meta.get("SIGNATUREID", "").strip() or None
    if form in ("XADES", "XADES-BES", "XADES-B", "XADES-EPES"):
        if form == "XADES-EPES" and policy is None:
            raise Refusal(1011, "XADES_EPES needs the service's signature policy, which the operator has not set")
        options = XmlOptions(signed_info_c14n=C14N.get(c14n), xpath=xpath, signature_id=signature_id,
                             reference_uri=f"#{node}" if node else None)
        spec = SignatureSpec(kind="xades", packaging=Packaging.ENVELOPED, hash_name=hash_name, xml=options,
                             policy=policy if form == "XADES-EPES" else None)
        return Chosen(spec, tuple(sorted(k for k in meta if k not in XML_KEYS)))
    elif form in ("DSIG", "DSIG-SINGLE-NODE", "DSIG-MULTIPLE-NODES", "TAX-211120"):
        if form != "DSIG" and node is None:
            raise Refusal(1002, f"SIGNATUREFORMAT {meta['SIGNATUREFORMAT']} needs NODETOBESIGNED (the Id of the element)")
        tax = form == "TAX-211120"
        options = XmlOptions(signed_info_c14n=C14N.get(c14n), transforms=(C14N[c14n],) if c14n else (), xpath=xpath,
                             reference_uri=None if form == "DSIG" else f"#{node}", plain=True,
                             more_reference_uris=tuple(f"#{n}" for n in nodes[1:]),
                             default_namespace=tax, signature_id=signature_id,
                             signing_time_format=_tax_time_format(meta) if tax else None,
                             signing_time_zone="Asia/Ho_Chi_Minh")
    elif form == "DSIG-XPATH":
        # the element is selected by an XPath Filter 2.0 over the document, in the one form
        # verifiers can trust: id('...') (a caller-chosen XPath is the wrapping attacks' tool)
        target = re.fullmatch(r"""id\(\s*['"]([^'"]{1,64})['"]\s*\)""", node or "") if node else None
        ident = target.group(1) if target else node
        if not ident or not re.fullmatch(r"[A-Za-z_][\w.-]{0,63}", ident):
            raise Refusal(1002, "DSIG_XPATH signs the element NODETOBESIGNED names by its Id (or id('...')); "
                          "other XPath expressions are not signed")
        options = XmlOptions(signed_info_c14n=C14N.get(c14n), transforms=(C14N[c14n],) if c14n else (), xpath=xpath,
                             plain=True, signature_id=signature_id, xpath_filter_id=ident)
    else:
        raise Refusal(1011, f"SIGNATUREFORMAT {meta.get('SIGNATUREFORMAT')!r} is not made here (XADES, XADES_EPES, "
                      "DSIG, DSIG_SINGLE_NODE, DSIG_MULTIPLE_NODES, DSIG_XPATH and TAX-211120 are)")
    spec = SignatureSpec(kind="xades", packaging=Packaging.ENVELOPED, hash_name=hash_name, xml=options)
    return Chosen(spec, tuple(sorted(k for k in meta if k not in XML_KEYS)))


def _tax_time_format(meta: dict[str, str]) -> str:
    pattern = (meta.get("DATETIMEFORMAT") or "").strip()
    if not pattern:
        return "%Y-%m-%dT%H:%M:%S"
    for dotnet, directive in DOTNET_DATE:
        pattern = pattern.replace(dotnet, directive)
    return pattern


def signature_for(mime_type: str, meta: dict[str, str], *, email: str | None,
                  policy: SignaturePolicy | None = None) -> Chosen:
    """The signature a file of ``mime_type`` gets; 1011 for the types this service does not sign."""
    kind = mime_type.split(";")[0].strip().lower()
    if kind == PDF:
        return pdf_signature(meta, email=email)
    if kind in XML:
        return xml_signature(meta, policy)
    if kind in OFFICE:
        hash_name = {"SHA-384": "sha384", "SHA-512": "sha512"}.get(meta.get("ALGORITHM", "").strip().upper(), "sha256")
        return Chosen(SignatureSpec(kind="ooxml", hash_name=hash_name),
                      tuple(sorted(k for k in meta if k != "ALGORITHM")))
    raise Refusal(1011, f"files of type {mime_type!r} are not signed by this service (PDF, XML, Word, Excel and "
                  "PowerPoint are)")
