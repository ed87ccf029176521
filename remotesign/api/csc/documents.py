"""``signatures/signDoc`` (v2) and the asynchronous mode of ``signHash`` / ``signDoc``.

``documents[]`` are signed whole: PAdES (``P``, the signature inside the PDF), CAdES (``C``,
attached or detached) or XAdES (``X``, enveloped, enveloping or detached), at ``Ades-B-B`` to
``Ades-B-LTA`` with the service's time-stamping authority and revocation data.
``documentDigests[]`` (documents the service never sees) get detached CAdES signature objects
over their SHA-256. The authorization (a SAD or a credential token) covers the documents' own
digests, with the hash named by ``hashAlgorithmOID`` (SHA-256 by default), in request order.

With ``operationMode: "A"`` the call answers ``202 {"responseID"}`` at once and
``signatures/signPolling`` gives the result (once) when it is ready (api/csc/asynchronous.py).
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.responses import Response

from remotesign.api.csc import asynchronous, wire
from remotesign.api.csc.calls import Caller, answers, no_store
from remotesign.api.csc.credentials import owned, signing_identities
from remotesign.api.errors import OAuthError
from remotesign.core.document_signer import SignatureSpec
from remotesign.core.identities import IdentityInfo
from remotesign.core.signature_activation import Digests
from remotesign.core.sole_control import TypedDigest
from remotesign.core.transaction_files import FileToSign
from remotesign.formats.interface import Level, Packaging
from remotesign.keystore import KeyUseAuthorization
from remotesign.service import Services

FORMATS = {"P": "pades", "C": "cades", "X": "xades"}
MEDIA = {"pades": "application/pdf", "cades": "application/octet-stream", "xades": "text/xml"}
LEVELS = {"ades-b-b": Level.B, "ades-b-t": Level.T, "ades-b-lt": Level.LT, "ades-b-lta": Level.LTA,
          "ades-b": Level.B, "ades-t": Level.T, "ades-lt": Level.LT, "ades-lta": Level.LTA}
ENVELOPES = {"pades": {"revision": Packaging.ENVELOPED},
             "cades": {"attached": Packaging.ENVELOPING, "detached": Packaging.DETACHED},
             "xades": {"enveloped": Packaging.ENVELOPED, "enveloping": Packaging.ENVELOPING,
                       "detached": Packaging.DETACHED}}
DEFAULT_ENVELOPE = {"pades": Packaging.ENVELOPED, "cades": Packaging.ENVELOPING, "xades": Packaging.ENVELOPED}
#: over a digest only a detached signature can be made: the default there
DIGEST_DEFAULT_ENVELOPE = {**DEFAULT_ENVELOPE, "cades": Packaging.DETACHED, "xades": Packaging.DETACHED}
MAX_DOCUMENTS = 20
TokenFor = Callable[[Services, Caller, dict[str, Any], str, Digests], Any]


def _spec(entry: dict[str, Any], where: str, key_is_rsa: bool, default_hash: str | None,
          defaults: dict[str, Packaging] = DEFAULT_ENVELOPE) -> SignatureSpec:
    form = wire.text(entry, "signature_format", max_length=4)
    if form == "J":
        raise wire.bad(f"{where}: JAdES (signature_format J) is not made by this service; use C, X or P")
    if form not in FORMATS:
        raise wire.bad(f"Invalid parameter signature_format in {where}")
    kind = FORMATS[form]
    level_text = (wire.text(entry, "conformance_level", required=False, max_length=20) or "Ades-B-B").lower()
    if level_text not in LEVELS:
        raise wire.bad(f"Invalid parameter conformance_level in {where}")
    envelope = wire.text(entry, "signed_envelope_property", required=False, max_length=20)
    if envelope is None:
        packaging = defaults[kind]
    elif envelope.lower() in ENVELOPES[kind]:
        packaging = ENVELOPES[kind][envelope.lower()]
    else:
        raise wire.bad(f"Invalid parameter signed_envelope_property in {where}: {kind} signatures are "
                       f"{' or '.join(e.capitalize() for e in ENVELOPES[kind])}")
    hash_name = default_hash or "sha256"
    sign_algo = wire.text(entry, "signAlgo", required=False, max_length=100)
    if sign_algo is not None:
        if sign_algo in wire.COMBINED:
            algo_kind, algo_hash = wire.COMBINED[sign_algo]
            if default_hash is not None and default_hash != algo_hash:
                raise wire.bad(f"Invalid parameter signAlgo in {where}: its hash differs from hashAlgorithmOID")
            hash_name = algo_hash
        elif sign_algo in (wire.RSA_ENCRYPTION, wire.EC_PUBLIC_KEY):
            algo_kind = "rsa" if sign_algo == wire.RSA_ENCRYPTION else "ec"
        else:
            raise wire.bad(f"Invalid parameter signAlgo in {where}: documents are signed with PKCS#1 v1.5 or ECDSA")
        if (algo_kind == "rsa") != key_is_rsa:
            raise wire.bad(f"Invalid parameter signAlgo in {where}: the credential's key cannot make it")
    reason = location = None
    roles: list[str] = []
    props = entry.get("signed_props") or []
    if not isinstance(props, list) or len(props) > 10:
        raise wire.bad(f"Invalid parameter signed_props in {where}")
    for prop in props:
        if not isinstance(prop, dict):
            raise wire.bad(f"Invalid parameter signed_props in {where}")
        name = str(prop.get("attribute_name", "")).lower().replace("_", "")
        value = prop.get("attribute_value")
        if not isinstance(value, str) or not value or len(value) > 500:
            raise wire.bad(f"Invalid parameter signed_props in {where}: attribute_value is a string")
        if name in ("reason", "signingreason", "commitmenttype"):
            reason = value
        elif name in ("location", "signatureproductionplace", "signerlocation"):
            location = value
        elif name in ("claimedrole", "signerrole", "role"):
            roles.append(value)
        else:
            raise wire.bad(f"Invalid parameter signed_props in {where}: this service sets reason, location and "
                           "claimedRole")
    return SignatureSpec(kind=kind, level=LEVELS[level_text], packaging=packaging, hash_name=hash_name,
                         reason=reason, location=location, roles=tuple(roles))


def _entries(data: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = data.get(name)
    if not isinstance(items, list) or not items or len(items) > MAX_DOCUMENTS or \
            not all(isinstance(i, dict) for i in items):
        raise wire.bad(f"Missing (or invalid type) array parameter {name}")
    return items


def _specs(data: dict[str, Any], name: str, key_is_rsa: bool,
           top_hash: str | None) -> list[tuple[int, dict[str, Any], SignatureSpec]]:
    """Each entry of ``documents`` / ``documentDigests`` with the signature it asks for (its own
    ``hashAlgorithmOID`` or the call's)."""
    out = []
    for n, entry in enumerate(_entries(data, name)):
        own_hash = wire.hash_name(entry["hashAlgorithmOID"], "hashAlgorithmOID") \
            if "hashAlgorithmOID" in entry else top_hash
        defaults = DIGEST_DEFAULT_ENVELOPE if name == "documentDigests" else DEFAULT_ENVELOPE
        out.append((n, entry, _spec(entry, f"{name}[{n}]", key_is_rsa, own_hash, defaults)))
    return out


def _credential(svc: Services, who: Caller, data: dict[str, Any]) -> IdentityInfo:
    """``credentialID``, or the user's first credential of the ``signatureQualifier`` asked for."""
    if "credentialID" in data or "signatureQualifier" not in data:
        return owned(svc, who, data)
    qualifier = wire.text(data, "signatureQualifier", max_length=40)
    from remotesign.api.csc.credentials import credential_info

    for identity in signing_identities(svc, who):
        if identity.active() and credential_info(svc, who, identity, "v2").get("signatureQualifier") == qualifier:
            return identity
    raise wire.bad("Invalid parameter signatureQualifier: you have no credential of that kind")


def _authorizer(svc: Services, who: Caller, data: dict[str, Any], identity_id: str,
                token_for: TokenFor) -> Callable[[list[TypedDigest]], KeyUseAuthorization]:
    def authorize(typed: list[TypedDigest]) -> KeyUseAuthorization:
        with answers():
            names = {d.hash_name for d in typed}
            if len(names) != 1:
                raise wire.bad("the documents of one call are signed with one hash algorithm")
            token = token_for(svc, who, data, identity_id, Digests(names.pop(), tuple(d.value for d in typed)))
            reference = svc.sole_control.authorize(token, identity_id, typed)
        return KeyUseAuthorization(reference, identity_id, actor=who.signer.user_id, tenant_id=who.signer.tenant_id)

    return authorize


def _validation_info(svc: Services, identity: IdentityInfo) -> dict[str, Any]:
    import asyncio

    from asn1crypto import x509 as asn1_x509

    cert = asn1_x509.Certificate.load(identity.certificate_der)
    extra = [asn1_x509.Certificate.load(c) for c in identity.chain_der]
    data = asyncio.run(svc.signing.context().validation_data(cert, extra))
    b64 = lambda items: [base64.b64encode(i).decode() for i in items]  # noqa: E731
    return {"certificates": b64(data.certificates), "ocsp": b64(data.ocsp_responses), "crl": b64(data.crls)}


def _answer(svc: Services, identity: IdentityInfo, with_info: bool, documents: list[bytes],
            objects: list[bytes]) -> dict[str, Any]:
    out: dict[str, Any] = {"DocumentWithSignature": [base64.b64encode(d).decode() for d in documents],
                           "SignatureObject": [base64.b64encode(o).decode() for o in objects]}
    if with_info:
        out["validationInfo"] = _validation_info(svc, identity)
    return out


def sign_doc(version: str, token_for: TokenFor):  # type: ignore[no-untyped-def]
    def work(svc: Services, who: Caller, data: dict[str, Any]) -> Response:
        if version != "v2":
            raise OAuthError(404, "invalid_request", "signatures/signDoc is a method of the CSC API v2")
        identity = _credential(svc, who, data)
        if ("documents" in data) == ("documentDigests" in data):
            raise wire.bad("give documents or documentDigests")
        key_is_rsa = svc.raw_signing.key_algorithm(identity).is_rsa
        top_hash = wire.hash_name(data["hashAlgorithmOID"], "hashAlgorithmOID") if "hashAlgorithmOID" in data else None
        with_info = wire.flag(data, "returnValidationInfo")
        mode = wire.text(data, "operationMode", required=False, max_length=2) or "S"
        if mode not in ("S", "A"):
            raise wire.bad("Invalid parameter operationMode")
        authorize = _authorizer(svc, who, data, identity.id, token_for)
        files = svc.transaction_files
        if "documents" in data:
            to_sign = []
            for n, entry, spec in _specs(data, "documents", key_is_rsa, top_hash):
                content = wire.decode_b64(wire.text(entry, "document", max_length=1 << 27) or "", "document")
                to_sign.append(FileToSign(f"document-{n + 1}", MEDIA[spec.kind], content, spec))

            def sign() -> dict[str, Any]:
                transaction = f"csc-{uuid.uuid4()}"
                try:
                    items = files.store(transaction, to_sign)
                    done = files.sign(transaction, items, identity, authorize)
                    signed = files.results(transaction, done)
                finally:
                    files.discard(transaction)
                return _answer(svc, identity, with_info, [f.content for f in signed], [])
        else:
            batches = []
            for _, entry, spec in _specs(data, "documentDigests", key_is_rsa, top_hash):
                values = [wire.decode_b64(v) for v in wire.strings(entry, "hashes") or []]
                batches.append((spec, [TypedDigest(spec.hash_name, v) for v in values]))

            def sign() -> dict[str, Any]:
                everything = [d for _, ds in batches for d in ds]
                granted: list[KeyUseAuthorization] = []

                def once(_typed: list[TypedDigest]) -> KeyUseAuthorization:
                    # one authorization for every digest of the call, in request order
                    if not granted:
                        granted.append(authorize(everything))
                    return granted[0]

                objects: list[bytes] = []
                for spec, digests in batches:
                    objects += files.sign_digests(digests, spec, identity, once)
                return _answer(svc, identity, with_info, [], objects)

        if mode == "A":
            return asynchronous.start(svc, who, data, version, "signDoc")
        return no_store(sign())

    return work
