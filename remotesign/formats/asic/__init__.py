"""ASiC-E containers (ETSI EN 319 162-1): a validating, streaming reader for untrusted uploads and
a writer for new containers and for containers with a signature added or replaced."""

from .names import MIMETYPE, guess_mime_type
from .reader import AsicContainer, Entry, is_asic_e
from .writer import write_new, write_replacing, write_with_signature

__all__ = [
    "MIMETYPE",
    "AsicContainer",
    "Entry",
    "guess_mime_type",
    "is_asic_e",
    "write_new",
    "write_replacing",
    "write_with_signature",
]
