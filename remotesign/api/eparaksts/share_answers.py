"""The shapes of the Share API's answers (share.py), for the description only: the handlers build
their JSON themselves (``_entry``), and these models say what it holds."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

_FIXED = ConfigDict(extra="forbid")


class ShareEntry(BaseModel):
    model_config = _FIXED
    sessionId: str
    personId: str = Field(description="personal code XXXXXX-YYYYY")
    accessRights: Any = Field(description="as the relying party sent it (any JSON, null when not sent)")
    note: str
    created: datetime


class SharedSession(BaseModel):
    model_config = _FIXED
    sessionId: str
    persons: list[ShareEntry]


class SharedAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"data": {
        "sessionId": "8d3c1f0e2b7a4c59", "persons": [{"sessionId": "8d3c1f0e2b7a4c59", "personId": "010180-15097",
                                                      "accessRights": "sign", "note": "Contract 7",
                                                      "created": "2025-01-01T08:00:00.000000+00:00"}]}}]})
    data: SharedSession


class SharesAnswer(BaseModel):
    model_config = _FIXED
    data: list[ShareEntry]


class UnsharedAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"data": "Session 8d3c1f0e2b7a4c59 is no longer shared with 010180-15097"}]})
    data: str
