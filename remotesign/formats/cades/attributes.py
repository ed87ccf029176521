"""Signed attributes of a CAdES baseline B signature (EN 319 122-1 §5.2) through pyHanko's CMS
machinery: content-type, message-digest, signing-time and signing-certificate-v2 (ESSCertIDv2
with issuerSerial) from ``ExternalSigner.signed_attrs``; signature-policy-identifier and
signer-attributes-v2 (claimed roles) from its CAdES attribute spec; content-hints added here,
pyHanko having no provider for it."""

from __future__ import annotations

from typing import ClassVar

from asn1crypto import algos, cms, core, x509
from pyhanko.sign import signers
from pyhanko.sign.ades.api import CAdESSignedAttrSpec, SignerAttrSpec
from pyhanko.sign.ades.cades_asn1 import SignaturePolicyIdentifier
from pyhanko_certvalidator.registry import SimpleCertificateStore

from remotesign.formats.base import FormatError, SignerSpec
from remotesign.formats.interface import SignaturePolicy, SignParameters

CONTENT_HINTS = "1.2.840.113549.1.9.16.2.4"
#: Claimed roles are written as DSS writes them: id-at-name attributes with a UTF8String each.
ID_AT_NAME = "2.5.4.41"


class ContentHints(core.Sequence):
    """RFC 2634 §2.9 ContentHints."""

    _fields: ClassVar[list] = [
        ("content_description", core.UTF8String, {"optional": True}),
        ("content_type", cms.ContentType),
    ]


def mechanism(signer: SignerSpec) -> algos.SignedDigestAlgorithm:
    kind = {"rsa": "rsa", "ecdsa": "ecdsa"}.get(signer.mechanism)
    if kind is None:
        raise FormatError("unsupported_mechanism", f"signature mechanism {signer.mechanism!r} is not supported")
    return algos.SignedDigestAlgorithm({"algorithm": f"{signer.digest_algorithm}_{kind}"})


def external_signer(signer: SignerSpec, value: bytes | int) -> signers.ExternalSigner:
    try:
        certificate = x509.Certificate.load(signer.certificate)
        chain = [x509.Certificate.load(c) for c in signer.chain]
        certificate.subject  # noqa: B018 - parse now
    except ValueError as exc:
        raise FormatError("invalid_certificate", f"the signer's certificate cannot be read: {exc}") from exc
    return signers.ExternalSigner(signing_cert=certificate, cert_registry=SimpleCertificateStore.from_certs(chain),
                                  signature_value=value, signature_mechanism=mechanism(signer), embed_roots=True)


def _policy(policy: SignaturePolicy) -> SignaturePolicyIdentifier:
    identifier = policy.identifier.removeprefix("urn:oid:")
    value: dict[str, object] = {
        "sig_policy_id": identifier,
        "sig_policy_hash": {"digest_algorithm": {"algorithm": policy.digest_algorithm}, "digest": policy.digest},
    }
    if policy.uri:
        value["sig_policy_qualifiers"] = [{"sig_policy_qualifier_id": "sp_uri", "sig_qualifier": core.IA5String(policy.uri)}]
    try:
        return SignaturePolicyIdentifier({"signature_policy_id": value})
    except (ValueError, TypeError) as exc:
        raise FormatError("invalid_policy", f"the signature policy cannot be encoded: {exc}") from exc


def _roles(roles: tuple[str, ...]) -> SignerAttrSpec:
    claimed = [cms.AttCertAttribute({"type": ID_AT_NAME, "values": [core.UTF8String(role)]}) for role in roles]
    return SignerAttrSpec(claimed_attrs=claimed, certified_attrs=[])


async def signed_attributes(parameters: SignParameters, content_digest: bytes) -> bytes:
    """The DER of the signed attributes (the SET OF, as signed) for content with ``content_digest``."""
    signer = parameters.signer
    spec = CAdESSignedAttrSpec(
        signature_policy_identifier=_policy(parameters.policy) if parameters.policy else None,
        signer_attributes=_roles(parameters.claimed_roles) if parameters.claimed_roles else None)
    settings = signers.pdf_cms.CMSSignedAttributes(signing_time=parameters.signing_time, cades_signed_attrs=spec)
    attrs = await external_signer(signer, 0).signed_attrs(
        content_digest, signer.digest_algorithm, attr_settings=settings, use_pades=True, is_pdf_sig=False)
    if parameters.content_hint:
        hints = ContentHints({"content_description": parameters.content_hint, "content_type": "data"})
        attrs = cms.CMSAttributes([*attrs, cms.CMSAttribute({"type": CONTENT_HINTS, "values": [hints]})])
    return attrs.dump()
