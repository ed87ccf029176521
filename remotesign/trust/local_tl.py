"""An operator-local ETSI TS 119 612 (v2) trusted list declaring the built-in CA qualified.

eIDAS qualification is decided by trusted lists, never by a certificate's own QC statements. An
operator who runs this service as (or for) a QTSP publishes its CA here and configures the file in
``REMOTESIGN_TRUSTED_LISTS``; validators (this one, or EU DSS with the file as a custom list) then
grant QES/QESeal. The list is schema-shaped and minimal: one TSP, one ``CA/QC`` service per CA
certificate, status granted, with the Qualifications extension and additional service information
that EU tools read (TS 119 612 §5.5.9).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone

from asn1crypto import pem, x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from remotesign.trust.profiles import POLICY_QCP_L_QSCD, POLICY_QCP_N_QSCD

TSL_NS = "http://uri.etsi.org/02231/v2#"
ECC_NS = "http://uri.etsi.org/TrstSvc/SvcInfoExt/eSigDir-1999-93-EC-TrustedList/#"
XADES_NS = "http://uri.etsi.org/01903/v1.3.2#"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_NSMAP = {None: TSL_NS, "ecc": ECC_NS, "xades": XADES_NS}

_TRSTSVC = "http://uri.etsi.org/TrstSvc"
_TL = f"{_TRSTSVC}/TrustedList"
_SVCINFOEXT = f"{_TL}/SvcInfoExt"
CA_QC = f"{_TRSTSVC}/Svctype/CA/QC"
STATUS_GRANTED = f"{_TL}/Svcstatus/granted"
POLICY_QCP_N = "0.4.0.194112.1.0"
POLICY_QCP_L = "0.4.0.194112.1.1"

#: What each certificate type is recognised by (EN 319 411-2 policies, the built-in profiles carry
#: the -qscd ones), its TL qualifier and its additional-service-information URI.
_TYPES = {
    "esig": ((POLICY_QCP_N_QSCD, POLICY_QCP_N), "QCForESig", "ForeSignatures"),
    "eseal": ((POLICY_QCP_L_QSCD, POLICY_QCP_L), "QCForESeal", "ForeSeals"),
}

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def build_local_trusted_list(ca_certificates: Sequence[bytes], *, territory: str = "XX", operator_name: str,
                             qualified_for: Sequence[str] = ("esig", "eseal"), qscd: bool = True,
                             sequence_number: int = 1, issued: datetime | None = None,
                             validity: timedelta = timedelta(days=180), operator_uri: str | None = None,
                             signing_key: SigningKey | None = None,
                             signing_certificate: bytes | None = None) -> bytes:
    """The trusted list XML (UTF-8) declaring ``ca_certificates`` (DER or PEM) qualified CAs.

    Certificates they issue under the QCP-n(-qscd) / QCP-l(-qscd) policies are qualified for
    e-signatures / e-seals (as chosen by ``qualified_for``), on a QSCD when ``qscd``. Unsigned
    unless ``signing_key`` and ``signing_certificate`` are given (XAdES enveloped signature)."""
    kinds = tuple(dict.fromkeys(qualified_for))
    unknown = [k for k in kinds if k not in _TYPES]
    if not kinds or unknown:
        raise ValueError(f"qualified_for must name some of {', '.join(_TYPES)}; got {list(qualified_for)}")
    if (signing_key is None) != (signing_certificate is None):
        raise ValueError("signing needs both signing_key and signing_certificate")
    certs = [_load_cert(c) for c in ca_certificates]
    if not certs:
        raise ValueError("at least one CA certificate is needed")
    territory = territory.strip().upper()
    if not territory.replace("_", "").isalnum():
        raise ValueError(f"territory must be a country code such as XX, got {territory!r}")
    issued = (issued or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    uri = operator_uri or "https://localhost/"

    root = etree.Element(_t("TrustServiceStatusList"), nsmap=_NSMAP,
                         attrib={"Id": f"tsl-{territory}", "TSLTag": "http://uri.etsi.org/19612/TSLTag"})
    info = _sub(root, "SchemeInformation")
    _sub(info, "TSLVersionIdentifier", "5")
    _sub(info, "TSLSequenceNumber", str(sequence_number))
    _sub(info, "TSLType", f"{_TL}/TSLType/EUgeneric")
    _names(_sub(info, "SchemeOperatorName"), operator_name)
    _address(_sub(info, "SchemeOperatorAddress"), territory, uri)
    _names(_sub(info, "SchemeName"), f"{territory}: trusted list of {operator_name} (operator-local)")
    _uris(_sub(info, "SchemeInformationURI"), uri)
    _sub(info, "StatusDeterminationApproach", f"{_TL}/StatusDetn/EUappropriate")
    _uris(_sub(info, "SchemeTypeCommunityRules"), f"{_TL}/schemerules/EUcommon")
    _sub(info, "SchemeTerritory", territory)
    notice = _sub(_sub(info, "PolicyOrLegalNotice"), "TSLLegalNotice",
                  "Operator-local trusted list; not part of the EU list of trusted lists.")
    notice.set(XML_LANG, "en")
    _sub(info, "HistoricalInformationPeriod", "65535")
    _sub(info, "ListIssueDateTime", _xml_time(issued))
    _sub(_sub(info, "NextUpdate"), "dateTime", _xml_time(issued + validity))

    provider = _sub(_sub(root, "TrustServiceProviderList"), "TrustServiceProvider")
    tsp_info = _sub(provider, "TSPInformation")
    _names(_sub(tsp_info, "TSPName"), operator_name)
    _address(_sub(tsp_info, "TSPAddress"), territory, uri)
    _uris(_sub(tsp_info, "TSPInformationURI"), uri)
    services = _sub(provider, "TSPServices")
    for cert in certs:
        _ca_service(_sub(services, "TSPService"), cert, kinds, qscd)

    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    if signing_key is not None and signing_certificate is not None:
        return sign_trusted_list(xml, signing_key, signing_certificate)
    return xml


def sign_trusted_list(xml: bytes, key: SigningKey, certificate: bytes) -> bytes:
    """``xml`` with an enveloped XAdES signature by ``key``, as TS 119 612 §5.7 asks of lists
    (verifiable with pyHanko's ``trust_list_to_registry`` given ``certificate``)."""
    from signxml import DigestAlgorithm, SignatureMethod
    from signxml.xades import XAdESSigner

    method = SignatureMethod.RSA_SHA256 if isinstance(key, rsa.RSAPrivateKey) else SignatureMethod.ECDSA_SHA256
    cert_pem = pem.armor("CERTIFICATE", _load_cert(certificate).dump())
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(xml, parser)
    signer = XAdESSigner(signature_algorithm=method, digest_algorithm=DigestAlgorithm.SHA256)
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    signed = signer.sign(root, key=key_pem, cert=[cert_pem])
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def _ca_service(service: etree._Element, cert: x509.Certificate, kinds: tuple[str, ...], qscd: bool) -> None:
    si = _sub(service, "ServiceInformation")
    _sub(si, "ServiceTypeIdentifier", CA_QC)
    _names(_sub(si, "ServiceName"), cert.subject.native.get("common_name") or cert.subject.human_friendly)
    identity = _sub(si, "ServiceDigitalIdentity")
    _sub(_sub(identity, "DigitalId"), "X509Certificate", base64.b64encode(cert.dump()).decode())
    _sub(si, "ServiceStatus", STATUS_GRANTED)
    started = cert.not_valid_before.astimezone(timezone.utc)
    _sub(si, "StatusStartingTime", _xml_time(started))
    extensions = _sub(si, "ServiceInformationExtensions")
    qualifications = _sub(_extension(extensions), f"{{{ECC_NS}}}Qualifications")
    for kind in kinds:
        policies, type_qualifier, _ = _TYPES[kind]
        element = _sub(qualifications, f"{{{ECC_NS}}}QualificationElement")
        qualifiers = _sub(element, f"{{{ECC_NS}}}Qualifiers")
        for name in ("QCStatement", type_qualifier, "QCWithQSCD" if qscd else "QCNoQSCD"):
            _sub(qualifiers, f"{{{ECC_NS}}}Qualifier").set("uri", f"{_SVCINFOEXT}/{name}")
        criteria = _sub(element, f"{{{ECC_NS}}}CriteriaList", attrib={"assert": "atLeastOne"})
        for oid in policies:
            policy = _sub(_sub(criteria, f"{{{ECC_NS}}}PolicySet"), f"{{{ECC_NS}}}PolicyIdentifier")
            _sub(policy, f"{{{XADES_NS}}}Identifier", oid)
    for kind in kinds:
        asi = _sub(_extension(extensions), "AdditionalServiceInformation")
        _uris(asi, f"{_SVCINFOEXT}/{_TYPES[kind][2]}")


def _extension(parent: etree._Element) -> etree._Element:
    return _sub(parent, "Extension", attrib={"Critical": "true"})


def _t(name: str) -> str:
    return name if name.startswith("{") else f"{{{TSL_NS}}}{name}"


def _sub(parent: etree._Element, name: str, text: str | None = None,
         attrib: dict[str, str] | None = None) -> etree._Element:
    element = etree.SubElement(parent, _t(name), attrib=attrib or {})
    if text is not None:
        element.text = text
    return element


def _names(parent: etree._Element, value: str) -> None:
    _sub(parent, "Name", value).set(XML_LANG, "en")


def _uris(parent: etree._Element, value: str) -> None:
    _sub(parent, "URI", value).set(XML_LANG, "en")


def _address(parent: etree._Element, territory: str, uri: str) -> None:
    postal = _sub(_sub(parent, "PostalAddresses"), "PostalAddress")
    postal.set(XML_LANG, "en")
    _sub(postal, "StreetAddress", "-")
    _sub(postal, "Locality", "-")
    _sub(postal, "CountryName", territory[:2])
    _uris(_sub(parent, "ElectronicAddress"), uri)


def _xml_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load_cert(data: bytes) -> x509.Certificate:
    if pem.detect(data):
        _, _, data = pem.unarmor(data)
    return x509.Certificate.load(data)
