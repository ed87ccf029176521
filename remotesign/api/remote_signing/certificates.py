"""``/certificates/*``: agreements and their certificate lifecycle (core/agreements.py).

Wire mapping (where the spec is silent, remotesign chose, and the README says so):

* ``agreementDetails`` name the certificate subject (``personalName`` the CN; ``personalID`` /
  ``citizenID`` / ``passportID`` / ``taxID`` / ``budgetID`` as UID ``CMND:`` / ``CCCD:`` / ``HC:``
  / ``MST:`` / ``MNS:`` and the ETSI semantics identifier); its scanned documents are kept as the
  registration's evidence. ``certificateProfile`` picks the certificate product (the T2PS* codes
  certify a person, T2SF* a person of an organization, T2OS* an organization; 1, 2 or 3 years).
* ``sharedMode`` 1 PRIVATE_MODE, 2 RP_SHARED_MODE, 3 AGREEMENT_SHARED_MODE; another relying
  party (2) or agreement (3) shares one with ``sharedAgreementUUID`` (and ``sharedRelyingParty``,
  the sharing relying party's code).
* The first passcode goes to ``ownerEmail`` or ``ownerMobileNo`` (``passCodeNotificationMethod``);
  one-time codes to ``email`` / ``mobileNo``, else to the owner's.
* Completed certificate calls answer 1007 REQUEST ACCEPTED, as every example of the spec does.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from remotesign.api.openapi_doc import json_body
from remotesign.api.remote_signing.answers import (Refusal, RsAgreementAnswer, RsBillAnswer, RsDetailAnswer, answer,
                                                   documented)
from remotesign.api.remote_signing.auth import Caller
from remotesign.api.remote_signing.calls import handle
from remotesign.api.remote_signing.wire import (RsAgreementCall, RsAgreementDetails, RsChange, RsChangePin, RsForgetPin,
                                                RsRegister, RsRenew, decode_base64)
from remotesign.core import scopes
from remotesign.core.agreements import Contacts, SignerDetails
from remotesign.core.signing_transactions import new_transaction_id
from remotesign.service import Services

router = APIRouter(prefix="/certificates", tags=["remote-signing"])
SHARED_MODES = {1: "private", 2: "relying_party", 3: "agreement"}
SHARED_NUMBERS = {v: k for k, v in SHARED_MODES.items()}
CHANNELS = {"EMAIL": "email", "SMS": "sms", "1": "email", "2": "sms"}


def _details(d: RsAgreementDetails) -> SignerDetails:
    return SignerDetails(name=d.personalName or "", organization=d.organization or "",
                         organization_unit=d.organizationUnit or "", title=d.title or "", email=d.email or "",
                         phone=d.telephoneNumber or "", locality=d.location or "", state=d.stateOrProvince or "",
                         country=(d.country or "VN").upper(), personal_id=d.personalID or "",
                         passport_id=d.passportID or "", citizen_id=d.citizenID or "", tax_id=d.taxID or "",
                         budget_id=d.budgetID or "")


def _evidence(d: RsAgreementDetails) -> dict[str, bytes]:
    return {name: decode_base64(getattr(d, name), f"agreementDetails.{name}")
            for name in RsAgreementDetails.DOCUMENTS if getattr(d, name)}


def _register(svc: Services, who: Caller, body: RsRegister) -> JSONResponse:
    channel = CHANNELS.get(body.passCodeNotificationMethod.upper())
    if channel is None:
        raise Refusal(1002, "passCodeNotificationMethod is EMAIL or SMS")
    details = _details(body.agreementDetails)
    evidence = _evidence(body.agreementDetails)
    shares = None
    if body.sharedAgreementUUID:
        owner = who.tenant
        if body.sharedRelyingParty and body.sharedRelyingParty != who.tenant.name:
            found = svc.tenants.by_name(body.sharedRelyingParty)
            if found is None:
                raise Refusal(1023, f"no relying party {body.sharedRelyingParty!r} to share an agreement of")
            owner = found
        shares = (body.sharedAgreementUUID, owner.id if owner.id != who.tenant.id else None)
    info = svc.agreements.register(
        who.tenant.id, owner_reference=body.ownerUUID, details=details, product=body.certificateProfile,
        shared_mode=SHARED_MODES[body.sharedMode], accepted_apps=tuple(dict.fromkeys(body.acceptedApps)),
        contacts=Contacts(owner_email=body.ownerEmail or None, owner_phone=body.ownerMobileNo or None,
                          otp_email=body.email or None, otp_phone=body.mobileNo or None, passcode_channel=channel),
        reference=body.agreementUUID or None, shares=shares,
        message=(body.notificationTemplate or body.notificationMessage, body.notificationSubject),
        evidence=evidence, actor=who.actor)
    return answer(1007, billCode=new_transaction_id(), ownerUUID=info.owner_reference, agreementUUID=info.reference)


def _change(svc: Services, who: Caller, body: RsChange) -> JSONResponse:
    info = svc.agreements.change(who.tenant.id, body.agreementUUID, _details(body.agreementDetails), who.actor,
                                 evidence=_evidence(body.agreementDetails))
    return answer(1007, billCode=new_transaction_id(), ownerUUID=info.owner_reference, agreementUUID=info.reference)


def _change_pin(svc: Services, who: Caller, body: RsChangePin) -> JSONResponse:
    outcome = svc.agreements.change_passcode(who.tenant.id, body.agreementUUID, body.currentPasscode,
                                             body.newPasscode, who.actor)
    return answer(1007, billCode=new_transaction_id(), remainingCounter=outcome.remaining)


def _detail(svc: Services, who: Caller, body: RsAgreementCall) -> JSONResponse:
    info = svc.agreements.get(who.tenant.id, body.agreementUUID)
    identity = svc.agreements.identity(info)
    cert = identity.certificate()
    modes = ["EXPLICIT/PIN"]
    if svc.outbox.can_send("sms") and info.contacts.otp_address("sms"):
        modes.append("EXPLICIT/OTP-SMS")
    if svc.outbox.can_send("email") and info.contacts.otp_address("email"):
        modes.append("EXPLICIT/OTP-EMAIL")
    extra: dict[str, Any] = {}
    if info.status != "active":
        extra["agreementStatus"] = info.status.upper()
    return answer(1007, billCode=new_transaction_id(), certificateDN=cert.subject.rfc4514_string(),
                  certificateSerialNumber=format(cert.serial_number, "X"),
                  certificateThumbprint=hashlib.sha1(identity.certificate_der).hexdigest().upper(),  # noqa: S324 - the thumbprint's definition
                  validFrom=cert.not_valid_before_utc.isoformat(timespec="seconds"),
                  validTo=cert.not_valid_after_utc.isoformat(timespec="seconds"),
                  issuerDN=cert.issuer.rfc4514_string(),
                  certificate=base64.b64encode(cert.public_bytes(Encoding.DER)).decode(),
                  certificateChain=[base64.b64encode(c).decode() for c in identity.chain_der],
                  sharedMode=SHARED_NUMBERS[info.shared_mode], authModeSupported=modes,
                  certificateProfile=info.product, ownerUUID=info.owner_reference, agreementUUID=info.reference,
                  **extra)


def _forget_pin(svc: Services, who: Caller, body: RsForgetPin) -> JSONResponse:
    svc.agreements.reset_passcode(who.tenant.id, body.agreementUUID,
                                  (body.notificationMessage or body.notificationTemplate, body.notificationSubject),
                                  who.actor)
    return answer(1007, billCode=new_transaction_id())


def _renew(svc: Services, who: Caller, body: RsRenew) -> JSONResponse:
    svc.agreements.renew(who.tenant.id, body.agreementUUID, body.certificateProfile, who.actor)
    return answer(1007, billCode=new_transaction_id())


def _revoke(svc: Services, who: Caller, body: RsAgreementCall) -> JSONResponse:
    svc.agreements.revoke(who.tenant.id, body.agreementUUID, who.actor)
    return answer(1007, billCode=new_transaction_id())


def _enable(svc: Services, who: Caller, body: RsAgreementCall) -> JSONResponse:
    svc.agreements.set_enabled(who.tenant.id, body.agreementUUID, True, who.actor)
    return answer(1007, billCode=new_transaction_id())


def _disable(svc: Services, who: Caller, body: RsAgreementCall) -> JSONResponse:
    svc.agreements.set_enabled(who.tenant.id, body.agreementUUID, False, who.actor)
    return answer(1007, billCode=new_transaction_id())


@router.post("/register", summary="RsRegister an agreement: a new signer, key and certificate",
             openapi_extra=json_body(RsRegister), responses=documented(RsAgreementAnswer))
async def register(request: Request) -> JSONResponse:
    return await handle(request, RsRegister, scopes.AGREEMENTS, _register)


@router.post("/change", summary="New certificate details (same expiry)",
             openapi_extra=json_body(RsChange), responses=documented(RsAgreementAnswer))
async def change(request: Request) -> JSONResponse:
    return await handle(request, RsChange, scopes.AGREEMENTS, _change)


@router.post("/change-pin", summary="RsChange the owner's passcode",
             openapi_extra=json_body(RsChangePin), responses=documented(RsBillAnswer))
async def change_pin(request: Request) -> JSONResponse:
    return await handle(request, RsChangePin, scopes.AGREEMENTS, _change_pin)


@router.post("/get-detail", summary="The agreement's certificate",
             openapi_extra=json_body(RsAgreementCall), responses=documented(RsDetailAnswer))
async def get_detail(request: Request) -> JSONResponse:
    return await handle(request, RsAgreementCall, scopes.AGREEMENTS, _detail)


@router.post("/forget-pin", summary="A new passcode, sent to the owner",
             openapi_extra=json_body(RsForgetPin), responses=documented(RsBillAnswer))
async def forget_pin(request: Request) -> JSONResponse:
    return await handle(request, RsForgetPin, scopes.AGREEMENTS, _forget_pin)


@router.post("/renew", summary="A new certificate for a new term",
             openapi_extra=json_body(RsRenew), responses=documented(RsBillAnswer))
async def renew(request: Request) -> JSONResponse:
    return await handle(request, RsRenew, scopes.AGREEMENTS, _renew)


@router.post("/revoke", summary="End the agreement: certificate revoked, key destroyed",
             openapi_extra=json_body(RsAgreementCall), responses=documented(RsBillAnswer))
async def revoke(request: Request) -> JSONResponse:
    return await handle(request, RsAgreementCall, scopes.AGREEMENTS, _revoke)


@router.post("/enable", summary="Let the agreement sign again",
             openapi_extra=json_body(RsAgreementCall), responses=documented(RsBillAnswer))
async def enable(request: Request) -> JSONResponse:
    return await handle(request, RsAgreementCall, scopes.AGREEMENTS, _enable)


@router.post("/disable", summary="Stop the agreement from signing until enabled",
             openapi_extra=json_body(RsAgreementCall), responses=documented(RsBillAnswer))
async def disable(request: Request) -> JSONResponse:
    return await handle(request, RsAgreementCall, scopes.AGREEMENTS, _disable)
