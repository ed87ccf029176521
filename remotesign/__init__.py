"""remotesign: a self-hostable remote electronic-signature service.

Layout: ``core`` (domain: tenants, audit), ``keystore`` (software and PKCS#11 keys),
``trust`` (built-in CA, CRL, OCSP responder, RFC 3161 TSA), ``storage`` (database, migrations,
blobs), ``api`` (HTTP facades), ``cli`` (operator commands).
"""

__version__ = "0.1.0"

from remotesign import asn1fix as _asn1fix
from remotesign import pdf_hexfix as _pdf_hexfix

_asn1fix.install()  # before anything serialises ASN.1 (see remotesign/asn1fix.py)
_pdf_hexfix.install()  # before any PDF is read (see remotesign/pdf_hexfix.py)
