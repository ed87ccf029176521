"""The Fortress-style JSON bodies (field names as the vendor's documentation spells them).
Unknown members are ignored, as the vendor's own clients send more than the documented set."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FortressDocument(_Wire):
    bytesB64: str = Field(min_length=1, description="the document, Base64")
    name: str | None = Field(default=None, max_length=255)


class TsaConfiguration(_Wire):
    type: str = Field(default="URL", description="URL | USER | CERTIFICATE | CERTIFICATE_TLS")
    url: str | None = Field(default=None, max_length=2000)
    user: str | None = Field(default=None, max_length=200)
    password: str | None = Field(default=None, max_length=500)
    certificateCode: str | None = Field(default=None, max_length=200)
    timestampAlgorithm: str | None = Field(default=None, description="SHA1 | SHA256 | SHA384 | SHA512")


class PolicyConfiguration(_Wire):
    id: str | None = Field(default=None, max_length=500)
    description: str | None = Field(default=None, max_length=2000)
    digestAlgorithm: str | None = None
    digestValueB64: str | None = Field(default=None, max_length=1000)
    contentHintsDescription: str | None = Field(default=None, max_length=2000)
    contentHintsType: str | None = Field(default=None, max_length=500)


class PadesConfiguration(_Wire):
    stamper: dict[str, Any] | None = None


class XadesConfiguration(_Wire):
    signedInfoCanonicalizationMethod: str | None = None
    signedPropertiesCanonicalizationMethod: str | None = None
    xPathLocationString: str | None = Field(default=None, max_length=2000)
    claimedSignerRoles: list[str] | None = Field(default=None, max_length=20)
    transformAlgorithms: list[str] | None = Field(default=None, max_length=10)
    dssReferenceUri: str | None = Field(default=None, max_length=2000)


class ExtendConfiguration(_Wire):
    document: FortressDocument
    signatureType: str = Field(description="CADES_T|CADES_LT|CADES_LTA|PADES_T|…|XADES_LTA|PKCS1")
    signatureAlgorithm: str | None = Field(default=None, description="RSA_SHA1 … RSA_SHA512")
    packaging: str | None = Field(default=None, description="ENVELOPED | ENVELOPING | DETACHED")
    userCode: str | None = Field(default=None, max_length=200)
    padesConfiguration: PadesConfiguration | None = None
    xadesConfiguration: XadesConfiguration | None = None
    tsa: TsaConfiguration | None = None
    policy: PolicyConfiguration | None = None


class ExtendRequest(_Wire):
    extendSignatureConfigurations: list[ExtendConfiguration] = Field(min_length=1, max_length=20)


class SignedDocument(BaseModel):
    ref: str
    bytesB64: str


class SignatureConfiguration(ExtendConfiguration):
    """One document of a signature request and the signature to make over it."""

    ref: str | None = Field(default=None, max_length=100, description="echoed back with the signed document")
    reason: str | None = Field(default=None, max_length=500)
    signatureType: str = Field(description="PADES_B|PADES_T|PADES_LT|PADES_LTA|CADES_B|…|XADES_LTA|PKCS1")


class SignatureRequestBody(_Wire):
    """``POST {fortress}/api/v1/signature``."""

    userCode: str | None = Field(default=None, max_length=200, description="the signer (interactive signing)")
    certificateCode: str | None = Field(default=None, max_length=100,
                                        description="a certificate of the user, or an e-seal for unattended signing")
    certificatePassword: str | None = Field(default=None, max_length=200, description="unattended only")
    multifactorAuth: bool | str | None = None
    certificateFilter: dict[str, list[str]] | None = Field(
        default=None, description='{"issuer.cn": [...], "subject.cn": [...], "oid": [...]}')
    async_: bool | str | None = Field(default=None, alias="async", description='"true": run in the background')
    callbackUrl: str | None = Field(default=None, max_length=2000)
    signatureConfigurations: list[SignatureConfiguration] = Field(min_length=1, max_length=40)


class SignatureRequestCreated(BaseModel):
    exeCode: str
    authCode: str | None
