"""The documents of a signing transaction (core/signing_transactions.py): kept in the blob store
from the request until they are signed, signed in two steps around one use of the key, and kept
signed for the relying party to download.

What the signer authorizes is bound the way signature requests bind it (core/signature_requests.py):
the typed list of the documents' own digests, each hashed with its signature's hash, recomputed from
the stored files when the key is used; the key then signs the data to be signed computed from those
very files. Nothing of a document is held in memory but its scratch file's pages as the format
writes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from asn1crypto import x509 as asn1_x509

from remotesign.core.document_signer import DocumentSigner, DocumentSigningError, Prepared, SignatureSpec, document
from remotesign.core.identities import IdentityInfo
from remotesign.core.relying_party_seal import RelyingPartySeals, Seal, SealError
from remotesign.core.sole_control import TypedDigest
from remotesign.formats.interface import Document
from remotesign.keystore import KeyStore, KeyUseAuthorization
from remotesign.storage.blobs import BlobStore

MAX_FILES = 20


@dataclass(frozen=True)
class FileToSign:
    """A document and its signature; ``counter``: the relying party's own seal added after it."""

    name: str
    mime_type: str
    content: bytes
    spec: SignatureSpec
    counter: SignatureSpec | None = None


@dataclass(frozen=True)
class SignedFile:
    name: str
    mime_type: str
    content: bytes


def namespace(transaction_id: str) -> str:
    return f"txn-{transaction_id}"


class TransactionFiles:
    def __init__(self, blobs: BlobStore, signer: DocumentSigner, keystore: KeyStore,
                 signer_path: Callable[[IdentityInfo], list[asn1_x509.Certificate]],
                 context: Callable[[], Any], seals: RelyingPartySeals | None = None,
                 seal_path: Callable[[Seal], list[asn1_x509.Certificate]] | None = None) -> None:
        self.seals = seals
        self.seal_path = seal_path or (lambda seal: [RelyingPartySeals.asn1(seal)])
        self.blobs = blobs
        self.signer = signer
        self.keystore = keystore
        self.signer_path = signer_path
        self.context = context

    def store(self, transaction_id: str, files: list[FileToSign]) -> list[dict[str, Any]]:
        """Keep the documents of a new transaction; the items its row records."""
        items = []
        for n, f in enumerate(files):
            blob = f"in-{n}"
            self.blobs.put_bytes(namespace(transaction_id), blob, f.content)
            items.append({"name": f.name, "mime": f.mime_type, "blob": blob, "spec": f.spec.to_json(),
                          "sha256": hashlib.sha256(f.content).hexdigest(),
                          "counter": f.counter.to_json() if f.counter else None})
        return items

    def digests(self, transaction_id: str, items: list[dict[str, Any]]) -> list[TypedDigest]:
        """Each stored document's digest with its signature's hash, read from the store."""
        out = []
        for item in items:
            spec = SignatureSpec.from_json(item["spec"])
            h = hashlib.new(spec.hash_name)
            with self.blobs.open(namespace(transaction_id), item["blob"]) as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            out.append(TypedDigest(spec.hash_name, h.digest()))
        return out

    def sign(self, transaction_id: str, items: list[dict[str, Any]], identity: IdentityInfo,
             authorize: Callable[[list[TypedDigest]], KeyUseAuthorization],
             seal: Seal | None = None) -> list[dict[str, Any]]:
        """Sign every document with the identity's key, under the authorization ``authorize``
        gives for the documents' digests, then add the relying party's ``seal`` where an item
        asks for a counter-signature; returns the items with their results."""
        done = asyncio.run(self._sign(transaction_id, items, identity, authorize))
        if any(item.get("counter") for item in done):
            if seal is None or self.seals is None:
                raise SealError("no_seal", "a counter-signature needs the relying party's seal", 409)
            done = asyncio.run(self._counter_sign(transaction_id, done, seal))
        return done

    async def _counter_sign(self, transaction_id: str, items: list[dict[str, Any]], seal: Seal) -> list[dict[str, Any]]:
        """The relying party's seal over each signed document that asks for it, with its own
        appearance: an approval signature added after the signer's, which stays valid."""
        assert self.seals is not None
        space = namespace(transaction_id)
        path = self.seal_path(seal)
        out = []
        for n, item in enumerate(items):
            if not item.get("counter"):
                out.append(item)
                continue
            spec = SignatureSpec.from_json(item["counter"])
            with contextlib.ExitStack() as stack:
                doc = document(item["name"], _opener(self.blobs, space, item["result"]), spec.kind)
                prepared = await self.signer.prepare(spec, doc, path, seal.key.algorithm, stack)
                value = self.seals.sign(seal, prepared.digest, spec.hash_name)
                ctx = dataclasses.replace(self.context(), digest_algorithm=spec.hash_name)
                with self.blobs.writer(space, f"out-{n}-sealed") as sealed:
                    await self.signer.finish(prepared, value, sealed, ctx)
            out.append({**item, "result": f"out-{n}-sealed"})
        return out

    async def _sign(self, transaction_id: str, items: list[dict[str, Any]], identity: IdentityInfo,
                    authorize: Callable[[list[TypedDigest]], KeyUseAuthorization]) -> list[dict[str, Any]]:
        space = namespace(transaction_id)
        path = self.signer_path(identity)
        key = self.keystore.identity_key(identity.key_id, identity.user_tenant_id)
        signing_time = datetime.now(timezone.utc).replace(microsecond=0)
        typed = self.digests(transaction_id, items)
        with contextlib.ExitStack() as stack:
            prepared: list[Prepared] = []
            for item, digest in zip(items, typed):
                spec = SignatureSpec.from_json(item["spec"])
                doc = document(item["name"], _opener(self.blobs, space, item["blob"]), spec.kind,
                               bytes.fromhex(item["sha256"]))
                prepared.append(await self.signer.prepare(spec, doc, path, key.algorithm, stack, signing_time,
                                                          document_digest=digest.value))
            auth = authorize(typed)
            values = self.keystore.sign_with_identity_key(
                key, [(p.digest, p.spec.hash_name, key.default_scheme) for p in prepared], auth)
            context = self.context()
            done = []
            for n, (item, p, value) in enumerate(zip(items, prepared, values)):
                ctx = dataclasses.replace(context, digest_algorithm=p.spec.hash_name)
                with self.blobs.writer(space, f"out-{n}") as out:
                    await self.signer.finish(p, value, out, ctx)
                done.append({**item, "result": f"out-{n}"})
        return done

    def sign_digests(self, digests: list[TypedDigest], spec: SignatureSpec, identity: IdentityInfo,
                     authorize: Callable[[list[TypedDigest]], KeyUseAuthorization]) -> list[bytes]:
        """Detached CAdES signatures over documents known only by their SHA-256 (the service never
        sees them), under the authorization ``authorize`` gives for those digests."""
        if spec.kind != "cades" or spec.hash_name != "sha256" or \
                any(d.hash_name != "sha256" or len(d.value) != 32 for d in digests):
            raise DocumentSigningError("invalid_request", "a document known only by its digest is signed as a "
                                                          "detached CAdES signature over its SHA-256")
        return asyncio.run(self._sign_digests(digests, spec, identity, authorize))

    async def _sign_digests(self, digests: list[TypedDigest], spec: SignatureSpec, identity: IdentityInfo,
                            authorize: Callable[[list[TypedDigest]], KeyUseAuthorization]) -> list[bytes]:
        path = self.signer_path(identity)
        key = self.keystore.identity_key(identity.key_id, identity.user_tenant_id)
        signing_time = datetime.now(timezone.utc).replace(microsecond=0)
        with contextlib.ExitStack() as stack:
            prepared = [await self.signer.prepare(spec, Document(f"digest-{n}", "application/octet-stream", None, d.value),
                                                  path, key.algorithm, stack, signing_time)
                        for n, d in enumerate(digests)]
            values = self.keystore.sign_with_identity_key(
                key, [(p.digest, spec.hash_name, key.default_scheme) for p in prepared], authorize(digests))
            context = dataclasses.replace(self.context(), digest_algorithm=spec.hash_name)
            out = []
            for p, value in zip(prepared, values):
                buffer = io.BytesIO()
                await self.signer.finish(p, value, buffer, context)
                out.append(buffer.getvalue())
        return out

    def results(self, transaction_id: str, items: list[dict[str, Any]]) -> list[SignedFile]:
        out = []
        for item in items:
            with self.blobs.open(namespace(transaction_id), item["result"]) as f:
                out.append(SignedFile(item["name"], item["mime"], f.read()))
        return out

    def discard(self, transaction_id: str) -> None:
        self.blobs.delete_namespace(namespace(transaction_id))


def _opener(blobs: BlobStore, space: str, name: str) -> Any:
    return lambda: blobs.open(space, name)
