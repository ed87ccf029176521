"""Signature formats (PAdES, XAdES, ASiC, CAdES), each behind the same three steps:
data to be signed -> embed the signature value -> extend (T, LT, LTA)."""
