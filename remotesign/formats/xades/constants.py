"""Namespaces and algorithm identifiers of XMLDSig / XAdES, in one place so that the builder,
the extenders and the readers can never disagree on a URI."""

from __future__ import annotations

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
XADES141 = "http://uri.etsi.org/01903/v1.4.1#"
#: Older XAdES namespaces: read (validation, level detection), never written or extended.
XADES111 = "http://uri.etsi.org/01903/v1.1.1#"
XADES122 = "http://uri.etsi.org/01903/v1.2.2#"
ASIC = "http://uri.etsi.org/02918/v1.2.1#"
XML_NS = "http://www.w3.org/XML/1998/namespace"

#: Prefixes used when this package creates elements (readers accept any prefix).
PREFIXES = {"ds": DS, "xades": XADES, "xadesv141": XADES141, "asic": ASIC}

SIGNED_PROPERTIES_TYPE = "http://uri.etsi.org/01903#SignedProperties"

# -- canonicalization -------------------------------------------------------------------------------
C14N_10 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_10_COMMENTS = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments"
C14N_11 = "http://www.w3.org/2006/12/xml-c14n11"
C14N_11_COMMENTS = "http://www.w3.org/2006/12/xml-c14n11#WithComments"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
EXC_C14N_COMMENTS = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"

#: SignedInfo and the SignedProperties reference: inclusive C14N 1.0. Exclusive c14n there makes
#: xmlsec1 (and some other verifiers) disagree about the SignedProperties digest; C14N 1.0 is what
#: lxml implements exactly (1.1 only differs for inherited xml:id / xml:base, which we never write).
SIGNED_INFO_C14N = C14N_10
#: Time-stamp inputs: exclusive c14n, so the stamped octets do not depend on where the
#: signature is later embedded.
TIMESTAMP_C14N = EXC_C14N

# -- digests ------------------------------------------------------------------------------------------
DIGEST_URIS = {
    "sha256": "http://www.w3.org/2001/04/xmlenc#sha256",
    "sha384": "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "sha512": "http://www.w3.org/2001/04/xmlenc#sha512",
}
DIGEST_NAMES = {uri: name for name, uri in DIGEST_URIS.items()}

# -- signature methods --------------------------------------------------------------------------------
SIGNATURE_URIS = {
    ("rsa", "sha256"): "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    ("rsa", "sha384"): "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    ("rsa", "sha512"): "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    ("ecdsa", "sha256"): "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    ("ecdsa", "sha384"): "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    ("ecdsa", "sha512"): "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
}
#: URI -> (mechanism, digest name)
SIGNATURE_METHODS = {uri: key for key, uri in SIGNATURE_URIS.items()}


def q(ns: str, local: str) -> str:
    """Clark notation ``{ns}local`` as lxml expects."""
    return f"{{{ns}}}{local}"
