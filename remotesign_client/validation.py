"""Validation: any signed file through ``POST /v1/validations`` (scope ``remotesign:validate``),
a session's document through the eParaksts Validation API, and the relying party's own trust
anchors. Reports follow ETSI EN 319 102-1: each signature is ``TOTAL-PASSED``, ``TOTAL-FAILED``
or ``INDETERMINATE``, with its format level (``PAdES_BASELINE_LT``, ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from remotesign_client._base import ApiClient, Content, der_of, open_content, parse_time

PASSED = "TOTAL-PASSED"


@dataclass(frozen=True)
class SignatureVerdict:
    """One signature's result."""

    id: str
    indication: str
    sub_indication: str | None
    signature_format: str
    signature_level: str
    signed_by: str
    errors: tuple[str, ...]
    warnings: tuple[str, ...]
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def passed(self) -> bool:
        return self.indication == PASSED

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "SignatureVerdict":
        signer = data.get("signerExt") or {}
        return cls(id=str(data.get("id", "")), indication=str(data["indication"]),
                   sub_indication=data.get("subIndication"), signature_format=str(data.get("signatureFormat", "")),
                   signature_level=str(data.get("signatureLevel", "")),
                   signed_by=str(data.get("signedBy") or signer.get("commonName") or ""),
                   errors=tuple(str(e.get("content", e)) for e in data.get("errors") or ()),
                   warnings=tuple(str(w.get("content", w)) for w in data.get("warnings") or ()), raw=data)


@dataclass(frozen=True)
class ValidationReport:
    """The simple report: every signature's verdict and the document's summary. ``detailed``:
    the detailed report, when asked for."""

    signatures: tuple[SignatureVerdict, ...]
    signature_form: str | None
    signatures_count: int
    valid_signatures_count: int
    validation_level: str | None
    included_files: tuple[str, ...]
    validation_time: str | None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)
    detailed: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def all_passed(self) -> bool:
        """At least one signature, and every one TOTAL-PASSED."""
        return bool(self.signatures) and all(s.passed for s in self.signatures)

    @classmethod
    def from_json(cls, data: Mapping[str, Any], detailed: Mapping[str, Any] | None = None) -> "ValidationReport":
        return cls(signatures=tuple(SignatureVerdict.from_json(s) for s in data.get("signaturesExt") or ()),
                   signature_form=data.get("signatureForm"), signatures_count=int(data.get("signaturesCount") or 0),
                   valid_signatures_count=int(data.get("validSignaturesCount") or 0),
                   validation_level=data.get("validationLevel"),
                   included_files=tuple(str(f.get("filename", f)) for f in data.get("includedFiles") or ()),
                   validation_time=data.get("validationTime"), raw=data, detailed=detailed)


@dataclass(frozen=True)
class TrustAnchor:
    id: str
    subject: str
    sha256: str
    created_at: datetime | None


class ValidationClient(ApiClient):
    """Client of ``/v1/validations``, ``/v1/trust-anchors`` and the eParaksts Validation API."""

    def _form(self, detached: Sequence[tuple[str, bytes]], trust: Sequence[Any], at: datetime | str | None,
              policy: str | None, report: str) -> tuple[list[tuple[str, Any]], dict[str, str]]:
        files: list[tuple[str, Any]] = [("detached", (name, data)) for name, data in detached]
        files += [("trust", (f"anchor{n}.der", der_of(c))) for n, c in enumerate(trust)]
        data = {"report": report}
        if at is not None:
            data["at"] = at.isoformat() if isinstance(at, datetime) else at
        if policy is not None:
            data["policy"] = policy
        return files, data

    def validate(self, content: Content, name: str | None = None, *, detached: Sequence[tuple[str, bytes]] = (),
                 trust: Sequence[Any] = (), at: datetime | str | None = None, policy: str | None = None,
                 detailed: bool = False) -> ValidationReport:
        """Validate a signed file (bytes with ``name``, a path or a file object). ``detached``:
        (name, content) of a detached signature's data; ``trust``: extra anchors for this call;
        ``at``: a past validation time; ``policy``: a built-in policy's name."""
        files, data = self._form(detached, trust, at, policy, "detailed" if detailed else "simple")
        with open_content(content, name) as (filename, payload):
            r = self.request("POST", "/v1/validations", files=[("file", (filename, payload)), *files], data=data)
        body = r.json()
        return ValidationReport.from_json(body["simpleReport"], body.get("detailedReport"))

    def report(self, content: Content, name: str | None = None, *, kind: str = "pdf",
               detached: Sequence[tuple[str, bytes]] = (), trust: Sequence[Any] = (),
               at: datetime | str | None = None, policy: str | None = None) -> bytes:
        """Another form of the report: ``etsi`` (TS 119 102-2 XML), ``html`` or ``pdf`` (readable)."""
        files, data = self._form(detached, trust, at, policy, kind)
        with open_content(content, name) as (filename, payload):
            return self.request("POST", "/v1/validations", files=[("file", (filename, payload)), *files],
                                data=data).content

    def validate_session_document(self, session_id: str, document_id: str, *, version: int = 1,
                                  policy: str | None = None) -> ValidationReport:
        """The eParaksts Validation API (v1 or v2) on a SignAPI session's document."""
        params = {"policy": policy} if policy else None
        r = self.request("GET", f"/api-validation/v{version}.0/{session_id}/{document_id}/validate", params=params)
        return ValidationReport.from_json(r.json()["data"])

    # -- trust anchors ---------------------------------------------------------------------------
    def add_trust_anchor(self, certificate: Any) -> list[TrustAnchor]:
        """Trust ``certificate`` (DER, PEM or an object) in your validations from now on."""
        from base64 import b64encode

        r = self.request("POST", "/v1/trust-anchors", json={"certificate": b64encode(der_of(certificate)).decode()},
                         expect=(201,))
        return [self._anchor(a) for a in r.json()]

    def trust_anchors(self) -> list[TrustAnchor]:
        return [self._anchor(a) for a in self.request("GET", "/v1/trust-anchors").json()]

    def remove_trust_anchor(self, anchor_id: str) -> None:
        self.request("DELETE", f"/v1/trust-anchors/{anchor_id}", expect=(204,))

    @staticmethod
    def _anchor(a: Mapping[str, Any]) -> TrustAnchor:
        return TrustAnchor(str(a["id"]), str(a["subject"]), str(a["sha256"]), parse_time(a.get("created_at")))


__all__ = ["PASSED", "SignatureVerdict", "TrustAnchor", "ValidationClient", "ValidationReport"]
