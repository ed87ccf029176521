"""asn1crypto objects that several threads read at once: parsed whole before they are shared.

asn1crypto parses lazily and fills its structures in place: a sequence's ``children`` list is
set empty and then appended to, a certificate's table of extensions is reset and refilled on the
first look. A thread that reads an object while another thread parses it for the first time sees
it half-built -- a KeyError ("No field numbered 2 is present in this Extension", met under
concurrent finalizations with one signer's cached certificate) or, worse, a critical extension
missing from the set a check reads. Objects that outlive a request (caches, a service's CA chain,
trust anchors) therefore go through ``shareable`` before any other thread can see them: after it,
every read is a read of finished state.
"""

from __future__ import annotations

from typing import TypeVar

from asn1crypto import core, x509

T = TypeVar("T", bound=core.Asn1Value)


def shareable(value: T) -> T:
    """``value`` with every lazily parsed part parsed now (returns it, for chaining)."""
    value.native  # noqa: B018 - parses every child, recursively, including the extension values
    if isinstance(value, x509.Certificate):
        value.critical_extensions  # noqa: B018 - fills the named-extension attributes, once
    return value


def shared_certificate(der: bytes) -> x509.Certificate:
    """A certificate to keep and read from several threads."""
    return shareable(x509.Certificate.load(der))
