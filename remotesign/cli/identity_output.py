"""What ``identities create`` / ``import`` print about a new identity: a few lines an operator
reads (the certificate itself only on request, as PEM), rather than the API's JSON with ~80 lines
of base64."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

NAMES = {x509.NameOID.SERIAL_NUMBER: "SERIALNUMBER", x509.ObjectIdentifier("2.5.4.97"): "organizationIdentifier"}


def certificate_pem(identity: Any) -> str:
    """The identity's own certificate (its chain: ``remotesign identities show ID --pem``)."""
    return str(identity.certificate().public_bytes(Encoding.PEM).decode())


def summary(identity: Any, username: str, also: Sequence[Any] = (), written_to: str | None = None) -> str:
    """id, owner, subject, serial, end of validity, SHA-256 fingerprint and PIN of the identity,
    plus the other identities made with it (a natural person's authentication identity)."""
    cert = identity.certificate()
    rows = [("sign identity", identity.id), ("user", username), ("subject", cert.subject.rfc4514_string(NAMES)),
            ("serial", format(cert.serial_number, "x")),
            ("not after", f"{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"),
            ("sha-256", cert.fingerprint(hashes.SHA256()).hex(":").upper()),
            ("PIN", "set" if identity.has_pin else "none"), ("labels", " ".join(identity.labels))]
    rows += [("also created", f"{other.id} ({other.description})") for other in also]
    rows.append(("certificate", f"written to {written_to}" if written_to else
                 f"--pem / --out FILE, or `remotesign identities show {identity.id} --pem` (with its chain)"))
    return "\n".join(f"{label + ':':<14} {value}" for label, value in rows)
