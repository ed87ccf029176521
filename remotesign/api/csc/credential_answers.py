"""The shapes of the CSC ``credentials/*`` answers (v1.0.4.0 and v2.0.0.2), for the description
only; see answers.py."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from remotesign.api.csc.answers import Absent, Answer, absent, examples


# -- credentials ------------------------------------------------------------------------------------


class CscKey(Answer):
    status: Literal["enabled", "disabled"]
    algo: list[str] = Field(description="signAlgo OIDs the key makes")
    len: int = Field(description="key length in bits")
    curve: str | Absent = absent("EC keys only: the OID of the curve")


class CscCert(Answer):
    status: Literal["valid", "expired", "revoked"] = Field(description="expired also while not yet valid")
    certificates: list[str] | Absent = absent("base64 DER, the signer's first (left out with certificates none; "
                                              "the CA certificates too with certificates chain)")
    issuerDN: str | Absent = absent("with certInfo true")
    serialNumber: str | Absent = absent("with certInfo true: hexadecimal")
    subjectDN: str | Absent = absent("with certInfo true")
    validFrom: str | Absent = absent("with certInfo true: GeneralizedTime, 20240101120000Z (v2) or "
                                     "20240101120000+0000 (v1)")
    validTo: str | Absent = absent("with certInfo true, as validFrom")


class CscPin(Answer):
    """v1 ``PIN``."""

    presence: Literal["true", "false", "optional"]
    format: str
    label: str
    description: str


class CscOtp(Answer):
    """v1 ``OTP``: only ``presence`` ("false") where the credential takes no one-time code."""

    presence: Literal["true", "false", "optional"]
    type: Literal["offline", "online"] | Absent = absent("where a code is taken")
    ID: str | Absent = absent("where a code is taken")
    provider: str | Absent = absent("where a code is taken")
    format: str | Absent = absent("where a code is taken")
    label: str | Absent = absent("where a code is taken")
    description: str | Absent = absent("where a code is taken")


class CscAuthObject(Answer):
    type: Literal["Password"]
    id: Literal["PIN", "OTP"]
    format: str
    label: str
    description: str
    generator: str | Absent = absent("OTP only: who sends the code (credentials/getChallenge)")


class CscAuth(Answer):
    """v2 ``auth``: the factors credentials/authorize takes in ``authData``."""

    mode: Literal["explicit"]
    expression: str = Field(description="PIN, PIN AND OTP or PIN OR OTP")
    objects: list[CscAuthObject]


_INFO_V2 = {"description": "Qualified signature", "signatureQualifier": "eu_eidas_qes",
            "key": {"status": "enabled", "algo": ["1.2.840.113549.1.1.1", "1.2.840.113549.1.1.11"], "len": 3072},
            "cert": {"status": "valid", "certificates": ["MIIF…"]},
            "auth": {"mode": "explicit", "expression": "PIN",
                     "objects": [{"type": "Password", "id": "PIN", "format": "A", "label": "PIN",
                                  "description": "Your signing PIN"}]},
            "SCAL": "2", "multisign": 100, "lang": "en-US"}


class CscCredentialInfo(Answer):
    """``credentials/info``: the credential's key, certificate and authorization."""

    model_config = examples(_INFO_V2)

    description: str
    key: CscKey
    cert: CscCert
    authMode: Literal["explicit"] | Absent = absent("v1 only")
    PIN: CscPin | Absent = absent("v1 only (sent whatever authInfo asks)")
    OTP: CscOtp | Absent = absent("v1 only (sent whatever authInfo asks)")
    auth: CscAuth | Absent = absent("v2 only (sent whatever authInfo asks)")
    signatureQualifier: Literal["eu_eidas_qes", "eu_eidas_qeseal", "eu_eidas_aesqc", "eu_eidas_aesealqc",
                                "eu_eidas_aes", "eu_eidas_aeseal"] | Absent = absent(
        "v2 only; from the certificate's QCStatements (QcCompliance, QcSSCD, QcType)")
    SCAL: Literal["1", "2"]
    multisign: int = Field(description="how many hashes one authorization may cover")
    lang: str = Field(description="the language asked for (lang), or en-US")


class CscListedCredential(CscCredentialInfo):
    """One of ``credentialInfos`` (v2 credentials/list): a credential's info with its id."""

    model_config = examples({"credentialID": "6b0c…", **_INFO_V2})

    credentialID: str


class CscCredentialList(Answer):
    """``credentials/list``: the user's signing credentials, a page at a time."""

    model_config = examples({"credentialIDs": ["6b0c…"], "onlyValid": False})

    credentialIDs: list[str]
    nextPageToken: str | Absent = absent("where more credentials follow: pageToken of the next page")
    credentialInfos: list[CscListedCredential] | Absent = absent("v2 only, with credentialInfo true")
    onlyValid: bool | Absent = absent("v2 only (always): whether only valid credentials are listed")


class CscSad(Answer):
    """A signature activation data for exactly the hashes authorized."""

    model_config = examples({"SAD": "kT3…", "expiresIn": 300})

    SAD: str
    expiresIn: int = Field(description="seconds")


class CscAuthorizationPending(Answer):
    """v2: the user approves on their paired device; credentials/authorizeCheck with ``handle`` gives the SAD."""

    model_config = examples({"handle": "0c5e…", "responseID": "0c5e…", "expiresIn": 300})

    handle: str
    responseID: str = Field(description="the handle again")
    expiresIn: int = Field(description="seconds the approval is awaited")
