"""The eParaksts-style SignAPI: sessions, storage, CalculateDigest, finalizeSigning, addArchive.

Two-step signing with a key the integrator holds (a smart card, a USB token, an HSM of its own)::

    api = SignApiClient("https://sign.example.com", ClientCredentials(url, client_id, secret))
    sid = api.start()
    api.upload(sid, "contract.pdf")                       # a path, bytes or a binary file object
    prepared = api.calculate_digest([sid], certificate_der, sign_as_pdf=True)
    value = card.sign(prepared.digests[0].digest)         # PKCS#1 v1.5 or ECDSA over the digest
    api.finalize_signing({sid: value})                    # PAdES B-LT
    signed = api.download(sid, api.list(sid)[0].id)

or in one call, :meth:`SignApiClient.sign` with a function that signs a digest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from remotesign_client._base import ApiClient, Content, b64, der_of, open_content, unb64

SESSION = "/api-session/v1.0"
STORAGE = "/api-storage/v1.0"
SIGN = "/api-sign/v1.0"
CONFIG = "/api-config/v1.0"


@dataclass(frozen=True)
class StoredDocument:
    """A document of a session: an upload, or the signed result."""

    id: str
    name: str
    size: int | None
    type: str
    included_documents: tuple[str, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "StoredDocument":
        included = data.get("includedDocuments") or ()
        names = tuple(str(d.get("name", d) if isinstance(d, Mapping) else d) for d in included)
        return cls(id=str(data["id"]), name=str(data.get("name", "")), size=data.get("size"),
                   type=str(data.get("type", "file")), included_documents=names, raw=data)


@dataclass(frozen=True)
class SessionDigest:
    """The digest one session's signature signs."""

    session_id: str
    digest: bytes


@dataclass(frozen=True)
class PreparedSignature:
    """CalculateDigest's answer: a digest per session, their summary (what a user's consent to a
    server signature is bound to), the digest algorithm (``SHA256``) and the signature algorithm
    the certificate's key signs with (``rsa-sha256`` / ``ecdsa``)."""

    digests: tuple[SessionDigest, ...]
    digests_summary: str
    algorithm: str
    signature_algorithm: str

    def digest_of(self, session_id: str) -> bytes:
        for d in self.digests:
            if d.session_id == session_id:
                return d.digest
        raise KeyError(session_id)


@dataclass(frozen=True)
class ServiceConfig:
    file_max_length: int
    session_expiration_timeout: int
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)


#: signs a digest: (digest, digest algorithm such as "SHA256") -> signature value
DigestSigner = Callable[[bytes, str], bytes]


class SignApiClient(ApiClient):
    """Client of the eParaksts-style SignAPI (scope ``urn:safelayer:eidas:oauth:token:introspect``)."""

    # -- sessions --------------------------------------------------------------------------------
    def start(self) -> str:
        """A new session's id."""
        return str(self.request("GET", f"{SESSION}/start", expect=(201,)).json()["data"]["sessionId"])

    def start_many(self, amount: int) -> list[str]:
        """``amount`` (1-100) new sessions."""
        data = self.request("GET", f"{SESSION}/start", params={"amount": amount}, expect=(201,)).json()["data"]
        return [str(s) for s in data["sessionIds"]]

    def close_session(self, session_id: str) -> None:
        """Close the session; its files are deleted at once."""
        self.request("GET", f"{SESSION}/{session_id}/close")

    def config(self) -> ServiceConfig:
        data = self.request("GET", f"{CONFIG}/").json()["data"]
        return ServiceConfig(int(data["fileMaxLength"]), int(data["sessionExpirationTimeout"]), data)

    # -- storage ---------------------------------------------------------------------------------
    def upload(self, session_id: str, content: Content, name: str | None = None) -> StoredDocument:
        """Add a file to the session: bytes (``name`` then names it), a path or a binary file
        object (streamed)."""
        with open_content(content, name) as (filename, payload):
            r = self.request("PUT", f"{STORAGE}/{session_id}/upload", files={"file": (filename, payload)},
                             expect=(201,))
        return StoredDocument.from_json(r.json()["data"])

    def add_document_digest(self, session_id: str, files: Iterable[tuple[str, bytes]],
                            signature_index: int = 0) -> None:
        """Digest-only entries (name, SHA-256) to sign into ``META-INF/signatures{index}.xml``."""
        self.request("POST", f"{STORAGE}/{session_id}/addDocumentDigest", json={
            "files": [{"name": n, "digest": b64(d), "digest_algorithm": "SHA256"} for n, d in files],
            "signatureIndex": str(signature_index)})

    def list(self, session_id: str) -> list[StoredDocument]:
        """The session's documents: the inputs or, once signed, the result."""
        return [StoredDocument.from_json(d) for d in self.request("GET", f"{STORAGE}/{session_id}/list").json()["data"]]

    def download(self, session_id: str, document_id: str, *, asice: bool = False) -> bytes:
        """A document's bytes (the newest signed version of it, once signed)."""
        params = {"type": "asice"} if asice else None
        return self.request("GET", f"{STORAGE}/{session_id}/{document_id}", params=params).content

    def download_to(self, session_id: str, document_id: str, out: str | Path | IO[bytes]) -> int:
        """Stream a document into a file (a path or a binary file object); bytes written."""
        if isinstance(out, (str, Path)):
            with open(out, "wb") as fh:
                return self.stream_to(f"{STORAGE}/{session_id}/{document_id}", fh)
        return self.stream_to(f"{STORAGE}/{session_id}/{document_id}", out)

    def result(self, session_id: str) -> tuple[StoredDocument, bytes]:
        """The session's one document (the signed result) and its bytes."""
        docs = self.list(session_id)
        if len(docs) != 1:
            raise ValueError(f"session {session_id} holds {len(docs)} documents, not one result")
        return docs[0], self.download(session_id, docs[0].id)

    def delete(self, session_id: str, document_id: str) -> None:
        self.request("DELETE", f"{STORAGE}/{session_id}/{document_id}")

    # -- signing ---------------------------------------------------------------------------------
    def calculate_digest(self, session_ids: Sequence[str], certificate: Any, *, sign_as_pdf: bool,
                         create_new_edoc: bool = False) -> PreparedSignature:
        """Prepare each session's signature for ``certificate`` (DER, PEM or a certificate
        object): PAdES with ``sign_as_pdf``, else XAdES in an ASiC-E container."""
        r = self.request("POST", f"{SIGN}/CalculateDigest", json={
            "sessions": [{"sessionId": s} for s in session_ids], "certificate": b64(der_of(certificate)),
            "signAsPdf": sign_as_pdf, "createNewEdoc": create_new_edoc})
        data = r.json()["data"]
        return PreparedSignature(
            digests=tuple(SessionDigest(str(d["sessionId"]), unb64(d["digest"])) for d in data["sessionDigests"]),
            digests_summary=str(data["digests_summary"]), algorithm=str(data["algorithm"]),
            signature_algorithm=str(data["signature_algorithm"]))

    def finalize_signing(self, values: Mapping[str, bytes] | Iterable[tuple[str, bytes]],
                         auth_certificate: Any = None) -> list[str]:
        """Embed each session's signature value (ECDSA as DER or raw r||s) and raise the signature
        to B-LT; the sessions signed. Repeating the same call returns the same result."""
        pairs = list(values.items()) if isinstance(values, Mapping) else list(values)
        body: dict[str, Any] = {"sessionSignatureValues": [{"sessionId": s, "signatureValue": b64(v)}
                                                           for s, v in pairs]}
        if auth_certificate is not None:
            body["authCertificate"] = b64(der_of(auth_certificate))
        return [str(x["sessionId"]) for x in self.request("POST", f"{SIGN}/finalizeSigning", json=body)
                .json()["data"]["results"]]

    def add_archive(self, session_ids: Sequence[str]) -> list[str]:
        """Raise the sessions' signatures to B-LTA (again: renew the archive time-stamp)."""
        return [str(x["sessionId"]) for x in self.request("POST", f"{SIGN}/addArchive", json={
            "sessions": [{"sessionId": s} for s in session_ids]}).json()["data"]["results"]]

    def sign(self, session_ids: Sequence[str], certificate: Any, signer: DigestSigner, *, sign_as_pdf: bool,
             create_new_edoc: bool = False, archive: bool = False) -> PreparedSignature:
        """The whole two-step flow: CalculateDigest, ``signer(digest, algorithm)`` for each session,
        finalizeSigning (B-LT), and with ``archive`` addArchive (B-LTA). Returns what was signed."""
        prepared = self.calculate_digest(session_ids, certificate, sign_as_pdf=sign_as_pdf,
                                         create_new_edoc=create_new_edoc)
        self.finalize_signing({d.session_id: signer(d.digest, prepared.algorithm) for d in prepared.digests})
        if archive:
            self.add_archive(session_ids)
        return prepared


__all__ = ["DigestSigner", "PreparedSignature", "ServiceConfig", "SessionDigest", "SignApiClient", "StoredDocument"]
