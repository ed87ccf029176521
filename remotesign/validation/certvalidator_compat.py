"""Two corrections to pyhanko-certvalidator (pinned in pyproject), installed once when the
validation package is imported:

* A signature checked with a key of another kind (an RSA signature against an EC key, as
  happens when two CAs share a name) raised a bare ``AssertionError``, and a public key that
  cannot be loaded a ``ValueError``, either of which ended the whole validation; both are
  signatures that do not verify, and are reported as such. An RSA key whose modulus is not
  minimally encoded is read by its numbers (remotesign/public_keys.py).
* RFC 6960 §4.2.2.2 lets a relying party accept OCSP responses signed by a responder that
  "matches a local configuration of OCSP signing authority". The library accepts only the CA
  itself or a responder it delegated. Here a responder certificate that the validation's own
  trust configuration names as a trust anchor, or a trusted list names as an OCSP service,
  *and* that is an OCSP signing certificate
  (extended key usage id-kp-OCSPSigning) is accepted as well: how the Estonian trusted list and
  EU DSS trust SK's OCSP responders. A trust anchor without that key usage is never an OCSP
  signer for anything.
* An OCSP response about a certificate that declares revocation information (a CRL
  distribution point) is revocation information even when the certificate names no OCSP
  responder: the library consulted OCSP responses only for certificates with an OCSP URL, so an
  LT signature of such a certificate (Estonian ID cards of 2016-2019, BDOC time-marks) had "no
  revocation information" although its OCSP response was embedded. Whether revocation data is
  expected is unchanged: a certificate that declares none is treated as before.
"""

from __future__ import annotations

from typing import Any

from cryptography.exceptions import InvalidSignature

_INSTALLED = False


def _is_local_ocsp_authority(responder_cert: Any, validation_context: Any) -> bool:
    try:
        trust = getattr(validation_context, "trust_manager", None) or validation_context.path_builder.trust_manager
        usage = responder_cert.extended_key_usage_value
        purposes = set(usage.native) if usage is not None else set()
        listed = getattr(trust, "is_ocsp_authority", None)
        named = bool(trust.is_root(responder_cert)) or bool(listed and listed(responder_cert))
        return "ocsp_signing" in purposes and named
    except Exception:  # noqa: BLE001 - a certificate that cannot say so is not one
        return False


def install() -> None:
    global _INSTALLED
    if _INSTALLED:
        return
    from pyhanko_certvalidator import sig_validate
    from pyhanko_certvalidator.revinfo import validate_ocsp

    raw = sig_validate._validate_raw

    def validate_raw(signature: bytes, signed_data: bytes, public_key_info: Any, *args: Any, **kwargs: Any) -> None:
        from remotesign.public_keys import minimal_rsa_key_info

        public_key_info = minimal_rsa_key_info(public_key_info) or public_key_info
        try:
            raw(signature, signed_data, public_key_info, *args, **kwargs)
        except AssertionError as exc:  # the key is not of the signature's kind
            raise InvalidSignature("the signature's algorithm does not fit the public key") from exc
        except ValueError as exc:  # a public key that cannot be loaded (a zero modulus, garbage)
            raise InvalidSignature(f"the public key cannot be used ({exc})") from exc

    sig_validate._validate_raw = validate_raw

    authorisation = validate_ocsp._check_ocsp_authorisation

    async def check_ocsp_authorisation(responder_cert: Any, issuer: Any, cert_path: Any, ocsp_response: Any,
                                       validation_context: Any, *args: Any, **kwargs: Any) -> bool:
        if _is_local_ocsp_authority(responder_cert, validation_context):
            return True
        return await authorisation(responder_cert, issuer, cert_path, ocsp_response, validation_context,
                                   *args, **kwargs)

    validate_ocsp._check_ocsp_authorisation = check_ocsp_authorisation

    from pyhanko_certvalidator import validate

    declared = validate.get_declared_revinfo

    def get_declared_revinfo(cert: Any) -> tuple[bool, bool]:
        has_crl, has_ocsp = declared(cert)
        return has_crl, has_ocsp or has_crl

    validate.get_declared_revinfo = get_declared_revinfo
    _INSTALLED = True
