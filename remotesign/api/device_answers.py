"""The shapes of the approval-device API's answers (api/devices.py), for the description only: the
handlers build their JSON themselves, and these models say what it holds."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.openapi_doc import absent

_FIXED = ConfigDict(extra="forbid")


class DeviceRegistered(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"device_id": "5f0c2a9e-3b1d-4e8f-9a6c-7d2e1b0f4c33", "device_token": "dv_Qm9…"}]})
    device_id: str
    device_token: str = Field(description="the device's Bearer token for the calls below (shown once)")


class DeviceRequestIdentity(BaseModel):
    model_config = _FIXED
    id: str
    subject: str | None = Field(description="the certificate's subject (RFC 4514); null when the identity is gone")


class DeviceRequestDataInfo(BaseModel):
    model_config = _FIXED
    html: str | None = Field(description="what the relying party asked to show, as sent")


class DeviceRequest(BaseModel):
    """A signature request waiting for the device's user."""

    model_config = _FIXED
    id: str
    operation_type: str = Field(description="sign:raw")
    created_at: datetime
    expires_at: datetime
    client: str = absent("the relying party's name")
    identity: DeviceRequestIdentity
    digest_value: str = Field(description="base64")
    digest_algorithm: str
    data_info: DeviceRequestDataInfo
    approve_text: str = Field(description="base64 of the text the device key signs to approve")
    reject_text: str = Field(description="base64 of the text the device key signs to reject")


class DeviceRequests(BaseModel):
    model_config = _FIXED
    requests: list[DeviceRequest]


class DeviceAnswered(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"id": "9e1d4c2b-0a7f-4b3e-8c5d-6f2a1e0b9d77", "status": "finished"}]})
    id: str
    status: Literal["pending", "finished", "failed", "canceled"] = Field(
        description="finished: approved and signed; canceled: rejected; failed: the signature could not be made")
