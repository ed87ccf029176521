"""Trust infrastructure: the built-in CA (certificates, CRLs), the OCSP responder and the RFC 3161
time-stamping authority. All of them sign through the key store, so their keys can sit in an HSM."""
