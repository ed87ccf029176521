"""CAdES (ETSI EN 319 122-1 baseline B, T, LT, LTA): two-step creation of attached and detached
CMS signatures, and extension of any CMS signature, streamed and without re-encoding anything
that is signed."""
