"""The shapes of the Config API's answers (config.py), for the description only. Each answer holds
its fields twice: under ``data`` (the vendor's documented envelope) and at the top level (where the
PHP client reads them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

_FIXED = ConfigDict(extra="forbid")


class ConfigFields(BaseModel):
    model_config = _FIXED
    oauthClientId: str
    name: str = Field(description="the relying party's name")
    created: str | None = Field(description="UTC without a zone, as the vendor writes it (2019-10-22T10:34:10.666528)")
    changed: str | None = Field(description="as created")
    fileMaxLength: int = Field(description="the largest document accepted, in bytes")
    sessionExpirationTimeout: int = Field(description="seconds")


class ConfigAnswer(ConfigFields):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "data": {"oauthClientId": "demo", "name": "demo relying party", "created": "2025-01-01T08:00:00.000000",
                 "changed": "2025-01-01T08:00:00.000000", "fileMaxLength": 52428800, "sessionExpirationTimeout": 3600},
        "oauthClientId": "demo", "name": "demo relying party", "created": "2025-01-01T08:00:00.000000",
        "changed": "2025-01-01T08:00:00.000000", "fileMaxLength": 52428800, "sessionExpirationTimeout": 3600}]})
    data: ConfigFields


class PublicKeyFields(BaseModel):
    model_config = _FIXED
    publicKey: str = Field(description="PEM: the key e-seal passwords are encrypted with")
    algorithm: Literal["RSA"]
    padding: str = Field(description="the default padding: PKCS1-v1_5")
    paddings: list[str] = Field(description="every padding accepted")


class PublicKeyAnswer(PublicKeyFields):
    model_config = _FIXED
    data: PublicKeyFields
