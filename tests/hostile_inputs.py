"""Hostile inputs made from scratch for the HTTP attack tests: nesting far deeper than any parser's
stack, sizes past every limit, and malformed structure, in each format the service reads (JSON,
PDF, XML, ZIP/ASiC, ASN.1 DER)."""

from __future__ import annotations

import io
import zipfile

DEEP = 100_000


# --- JSON -------------------------------------------------------------------------------------

def deep_json_array(depth: int = DEEP) -> bytes:
    return b"[" * depth + b"]" * depth


def deep_json_object(depth: int = DEEP) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


def unclosed_json(depth: int = DEEP) -> bytes:
    return b"[" * depth


def deep_json_in_member(member: str, depth: int = DEEP) -> bytes:
    """A plausible body whose one member nests ``depth`` levels deep."""
    return b'{"%s": ' % member.encode() + deep_json_array(depth) + b"}"


# --- PDF --------------------------------------------------------------------------------------

def pdf_with(page_extra: bytes = b"", extra_objects: list[bytes] | None = None, catalog_extra: bytes = b"") -> bytes:
    """A one-page PDF with correct xref offsets; ``page_extra`` goes into the page dictionary,
    ``extra_objects`` become objects 5, 6, ..."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []

    def obj(num: int, body: bytes) -> None:
        offsets.append(len(out))
        out.extend(b"%d 0 obj\n" % num + body + b"\nendobj\n")

    content = b"BT /F1 18 Tf 72 720 Td (hostile) Tj ET"
    obj(1, b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>")
    obj(2, b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>")
    obj(3, b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R " + page_extra + b">>")
    obj(4, b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    for i, body in enumerate(extra_objects or []):
        obj(5 + i, body)
    xref = len(out)
    count = len(offsets) + 1
    out.extend(b"xref\n0 %d\n0000000000 65535 f \n" % count)
    for off in offsets:
        out.extend(b"%010d 00000 n \n" % off)
    out.extend(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (count, xref))
    return bytes(out)


def pdf_nested_arrays(depth: int = DEEP) -> bytes:
    return pdf_with(b"/Deep " + b"[" * depth + b"]" * depth + b" ")


def pdf_nested_dicts(depth: int = DEEP) -> bytes:
    return pdf_with(b"/Deep " + b"<< /A " * depth + b"1" + b" >>" * depth + b" ")


def pdf_unclosed_arrays(depth: int = DEEP) -> bytes:
    return pdf_with(b"/Deep " + b"[" * depth + b" ")


def pdf_reference_chain(length: int = 5_000) -> bytes:
    """Objects that each point to the next through an indirect reference, resolved recursively by a
    naive reader: 5 0 R -> 6 0 R -> ..."""
    objects = [b"<< /Next %d 0 R >>" % (6 + i) for i in range(length - 1)] + [b"<< /End true >>"]
    return pdf_with(b"/Chain 5 0 R ", objects)


def pdf_page_tree_loop() -> bytes:
    """The page tree's Kids names the Pages node itself."""
    data = pdf_with()
    return data.replace(b"/Kids [3 0 R]", b"/Kids [2 0 R]")


def pdf_huge_xref_size() -> bytes:
    return pdf_with().replace(b"/Size 5 /Root", b"/Size 2147483647 /Root")


def pdf_truncated() -> bytes:
    data = pdf_with()
    return data[: len(data) // 2]


# --- XML --------------------------------------------------------------------------------------

def xml_nested(depth: int = DEEP) -> bytes:
    return b"<?xml version='1.0'?>" + b"<a>" * depth + b"</a>" * depth


def xml_billion_laughs() -> bytes:
    entities = [b'<!ENTITY l0 "lol">'] + [b'<!ENTITY l%d "%s">' % (i, b"&l%d;" % (i - 1) * 10) for i in range(1, 10)]
    return b"<?xml version='1.0'?><!DOCTYPE r [" + b"".join(entities) + b"]><r>&l9;</r>"


def xml_external_entity() -> bytes:
    return b"<?xml version='1.0'?><!DOCTYPE r [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><r>&x;</r>"


def xml_huge_text(size: int = 12 << 20) -> bytes:
    """One text node past libxml2's 10 MB limit without huge_tree."""
    return b"<?xml version='1.0'?><r>" + b"A" * size + b"</r>"


# --- ZIP / ASiC-E ------------------------------------------------------------------------------

MIMETYPE = b"application/vnd.etsi.asic-e+zip"


def asice(entries: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(zipfile.ZipInfo("mimetype"), MIMETYPE, compress_type=zipfile.ZIP_STORED)
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name), data, compress_type=zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def manifest(extra: bytes = b"") -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
            b'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
            b'<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.etsi.asic-e+zip"/>'
            b'<manifest:file-entry manifest:full-path="doc.txt" manifest:media-type="text/plain"/>'
            + extra + b"</manifest:manifest>")


def asice_nested_manifest(depth: int = 20_000) -> bytes:
    return asice([("META-INF/manifest.xml", manifest(b"<x>" * depth + b"</x>" * depth)), ("doc.txt", b"hello")])


def asice_billion_laughs_manifest() -> bytes:
    return asice([("META-INF/manifest.xml", xml_billion_laughs()), ("doc.txt", b"hello")])


def asice_nested_signature(depth: int = 20_000) -> bytes:
    sig = (b'<?xml version="1.0"?><asic:XAdESSignatures xmlns:asic="http://uri.etsi.org/02918/v1.2.1#">'
           + b"<x>" * depth + b"</x>" * depth + b"</asic:XAdESSignatures>")
    return asice([("META-INF/manifest.xml", manifest()), ("META-INF/signatures0.xml", sig), ("doc.txt", b"hello")])


def zip_many_entries(count: int = 20_000) -> bytes:
    return asice([(f"f{i}.txt", b"") for i in range(count)])


# --- ASN.1 DER --------------------------------------------------------------------------------

def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def der_nested_sequences(depth: int, inner: bytes = b"\x05\x00") -> bytes:
    """SEQUENCE { SEQUENCE { ... NULL } } with definite lengths."""
    data = inner
    for _ in range(depth):
        data = b"\x30" + _der_length(len(data)) + data
    return data


def ber_nested_indefinite(depth: int) -> bytes:
    """The same with BER indefinite lengths: two bytes per level on each side."""
    return b"\x30\x80" * depth + b"\x05\x00" + b"\x00\x00" * depth


def der_huge_length() -> bytes:
    """A SEQUENCE claiming 2^56 bytes of content."""
    return b"\x30\x88" + (1 << 56).to_bytes(8, "big") + b"\x05\x00"


def der_truncated_certificate(cert_der: bytes) -> bytes:
    return cert_der[: len(cert_der) // 2]


def nested_in_sequence(depth: int) -> bytes:
    """A plausible outer SEQUENCE whose first member is a deep nest, for parsers that read the top
    level strictly and recurse into members later."""
    return der_nested_sequences(1, der_nested_sequences(depth))



def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _der_length(len(content)) + content


def seq(*items: bytes) -> bytes:
    return tlv(0x30, b"".join(items))


SHA1_OID = bytes.fromhex("06052b0e03021a")
SHA256_OID = bytes.fromhex("0609608648016503040201")


def ocsp_request_deep_parameters(depth: int = 12_000) -> bytes:
    """A well-formed OCSPRequest whose CertID hash algorithm carries ``depth`` nested SEQUENCEs as
    its parameters (an ``ANY`` field, parsed only when something reads it)."""
    cert_id = seq(seq(SHA1_OID, der_nested_sequences(depth)), tlv(0x04, b"\0" * 20), tlv(0x04, b"\0" * 20),
                  tlv(0x02, b"\x01"))
    return seq(seq(seq(seq(cert_id))))


def tsa_request_deep_parameters(depth: int = 12_000) -> bytes:
    imprint = seq(seq(SHA256_OID, der_nested_sequences(depth)), tlv(0x04, b"\0" * 32))
    return seq(tlv(0x02, b"\x01"), imprint, tlv(0x01, b"\xff"))


def certificate_deep_parameters(cert_der: bytes, depth: int = 12_000) -> bytes:
    """A real certificate with its signature algorithm parameters replaced by a deep nest."""
    from asn1crypto import x509

    cert = x509.Certificate.load(cert_der)
    alg = seq(cert["signature_algorithm"]["algorithm"].dump(), der_nested_sequences(depth))
    tbs = cert["tbs_certificate"]
    members = [tbs[name].dump() for name in ("version", "serial_number")] + [alg] + [
        tbs[name].dump() for name in ("issuer", "validity", "subject", "subject_public_key_info", "extensions")]
    return seq(seq(*members), alg, cert["signature_value"].dump())


def certificate_deep_extension(cert_der: bytes, depth: int = 12_000) -> bytes:
    """A real certificate with one more, unknown extension whose value is a deep nest."""
    from asn1crypto import x509

    cert = x509.Certificate.load(cert_der)
    tbs = cert["tbs_certificate"]
    unknown = seq(tlv(0x06, bytes.fromhex("2b0601040183d41f6301")), tlv(0x04, der_nested_sequences(depth)))
    extensions = tlv(0xA3, seq(*[e.dump() for e in tbs["extensions"]], unknown))
    members = [tbs[name].dump() for name in ("version", "serial_number", "signature", "issuer", "validity", "subject",
                                               "subject_public_key_info")] + [extensions]
    return seq(seq(*members), cert["signature_algorithm"].dump(), cert["signature_value"].dump())
