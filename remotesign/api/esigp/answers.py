"""The shapes of the eSigP resources' answers, for the description only: the handlers
(identities.py, signatures.py, processes.py) build their JSON themselves, and these models say what
it holds. Sign identities are described in api/identity_answers.py."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.identity_answers import DetailedSignIdentity
from remotesign.api.openapi_doc import absent

_FIXED = ConfigDict(extra="forbid")


class UsersMe(BaseModel):
    """The signed-in user. The identification scopes (``urn:lvrtc:fpeil:aa``, ``…:age``,
    ``…:age_NN``) add the OpenID claims; ``…:age_NN`` adds ``age_over_NN`` (null when the personal
    code does not tell the birth date). The profile scope adds the user's sign identities."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "patternProperties": {"^age_over_[0-9]{1,3}$": {"type": ["boolean", "null"]}},
        "examples": [{"id": "0b6c1f3e", "name": "Anna Paraksta", "sub": "0b6c1f3e", "domain": "citizen",
                      "acr": "urn:eparaksts:authentication:flow:mobileid", "amr": ["pwd"], "given_name": "Anna",
                      "family_name": "Paraksta", "serial_number": "PNOLV-010101-12345", "eips": "remotesign",
                      "age_over_18": True}]})
    id: str
    name: str = Field(description="the user's display name")
    sub: str = absent("identification: the user's id")
    domain: Literal["citizen", "organization"] = absent("identification")
    acr: str = absent("identification")
    amr: list[str] = absent("identification")
    given_name: str = absent("identification")
    family_name: str = absent("identification")
    serial_number: str = absent("identification: the personal code (empty when unknown)")
    eips: str = absent("identification")
    age: int = absent("with …:age, when the personal code tells the birth date")
    sign_identities: list[DetailedSignIdentity] = absent("with the profile scope")


class RawSignatures(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"signatures": ["MEUCIQ…", "MEQCIF…"]}]})
    signatures: list[str] = Field(description="base64 signature values (PKCS#1 v1.5 or DER ECDSA), in request order")


class ProcessRef(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    id: str
    self_: str = Field(alias="self", description="the process's URL (also in Location)")


class ProcessCreated(BaseModel):
    model_config = _FIXED
    signature: ProcessRef


class DeviceApplication(BaseModel):
    model_config = _FIXED
    id: str
    version: str


class DeviceType(BaseModel):
    model_config = _FIXED
    id: str
    verification_policy: str
    application: DeviceApplication


class ProcessResult(BaseModel):
    """A final process's outcome."""

    model_config = _FIXED
    status: Literal["finished", "failed", "canceled"]
    value: str = absent("finished: the base64 signature value; failed or canceled: why")
    signature_algorithm: str = Field(description="e.g. rsa-sha256, ecdsa-sha256")
    sign_identity: str = Field(description="the identity's id")
    device_type: DeviceType = absent("finished: the approving device")


class ProcessDataInfo(BaseModel):
    model_config = _FIXED
    html: str = absent("as the relying party sent it")


class ProcessInput(BaseModel):
    model_config = _FIXED
    digest_value: str = Field(description="base64")
    digest_algorithm: str = Field(description="sha256, sha384, …")
    data_info: ProcessDataInfo


class ProcessSelector(BaseModel):
    model_config = _FIXED
    id: str
    labels: list[str]
    type: Literal["pki:x509"]


class ProcessLink(BaseModel):
    model_config = _FIXED
    href: str


class ProcessLinks(BaseModel):
    model_config = _FIXED
    cancel: ProcessLink
    result: ProcessLink


class SignatureProcess(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    id: str
    self_: str = Field(alias="self")
    input: ProcessInput
    operation_type: str = Field(description="sign:raw")
    creation_time: datetime
    expiration_time: datetime
    sign_identity_selectors: list[ProcessSelector]
    domain: str | None = Field(description="the identity's domain; null when it no longer exists")
    status: Literal["pending", "finished", "failed", "canceled"]
    links: ProcessLinks
    result: ProcessResult = absent("once final")
