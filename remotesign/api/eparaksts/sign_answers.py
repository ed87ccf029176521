"""The shapes of the Signing API's answers, for the description only: the handlers build their JSON
themselves (signing.py), and these models say what it holds so a generated client can read it."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ErrorEntry(BaseModel):
    code: str
    message: str


class SessionDigest(BaseModel):
    """One session's digest to sign, or why it has none."""

    sessionId: str
    digest: str | None = Field(default=None, description="base64 of the digest (absent on error)")
    error: ErrorEntry | None = Field(default=None, description="absent on success")


class CalculateDigestData(BaseModel):
    sessionDigests: list[SessionDigest]
    digests_summary: str = Field(description="summary of every digest, as the consent page shows it")
    algorithm: str = Field(description="digest algorithm")
    signature_algorithm: str = Field(description="signature algorithm the certificate's key signs with")


class CalculateDigestAnswer(BaseModel):
    """200 when every session has a digest; otherwise the first failed session's status, every
    session still listed."""

    data: CalculateDigestData


class SessionResult(BaseModel):
    sessionId: str
    error: ErrorEntry | None = Field(default=None, description="absent on success")


class SessionResults(BaseModel):
    results: list[SessionResult]


class SessionResultsAnswer(BaseModel):
    """200 when every session succeeded; otherwise the first failed session's status, every
    session still listed."""

    data: SessionResults
