"""The shapes of the Session and Storage APIs' answers, for the description only: the handlers build
their JSON themselves (session.py, storage.py ``_entry``), and these models say what it holds."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from remotesign.api.openapi_doc import absent


class StartedSessions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    sessionId: str = absent("the session, when one was started")
    sessionIds: list[str] = absent("every session started, when amount was given")


class StartAnswer(BaseModel):
    """``amount`` absent: ``sessionId``; ``amount=1``: both names; ``amount=N``: ``sessionIds``."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"data": {"sessionId": "8d3c1f0e2b7a4c59"}}, {"data": {"sessionIds": ["8d3c1f0e2b7a4c59", "a41e0c7d9f2b3e68"]}}]})
    data: StartedSessions


class StoredFile(BaseModel):
    """A document of a session (or, in ``includedDocuments``, a file inside a container)."""

    model_config = ConfigDict(extra="forbid")
    id: str
    name: str
    size: int = Field(description="bytes")
    type: Literal["file", "hash"] = Field(description="hash: a digest-only entry (addDocumentDigest)")


class StoredDocument(StoredFile):
    model_config = ConfigDict(extra="forbid")
    includedDocuments: list[StoredFile] = absent("the files inside a container (ASiC-E / eDoc)")


class UploadAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"data": {"id": "3f2a9c", "name": "contract.pdf", "size": 48213, "type": "file"}}]})
    data: StoredDocument


class DigestEntriesAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"data": [{"id": "77b0d1", "name": "invoice.xml", "size": 0, "type": "hash"}]}]})
    data: list[StoredFile]


class ClosedAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"data": "Session 8d3c1f0e2b7a4c59 closed"}]})
    data: str = Field(description="Session {sessionId} closed")


class ListAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"data": [{"id": "3f2a9c", "name": "contract.pdf", "size": 48213, "type": "file"}]}]})
    data: list[StoredDocument] = Field(description="the session's documents (a container with its files)")


class DeletedDocument(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    deleted: Literal[True]


class DeletedAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"data": {"id": "3f2a9c", "deleted": True}}]})
    data: DeletedDocument
