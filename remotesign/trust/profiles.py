"""Certificate profiles: which extensions a certificate gets and what its subject must contain.

Key usages follow ETSI EN 319 412-2 (natural persons) and -3 (legal persons): signing and seal
certificates carry nonRepudiation (contentCommitment) only, authentication certificates
digitalSignature only. Qualified profiles carry the EN 319 412-5 QCStatements and the
EN 319 411-2 policy OIDs (QCP-n-qscd, QCP-l-qscd).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from asn1crypto import x509

from remotesign.trust import qc

ORG_IDENTIFIER = "2.5.4.97"
SERIAL_NUMBER = "serial_number"
POLICY_QCP_N_QSCD = "0.4.0.194112.1.2"
POLICY_QCP_L_QSCD = "0.4.0.194112.1.3"
POLICY_NCP_PLUS = "0.4.0.2042.1.2"
POLICY_SERVICE = "1.3.6.1.4.1.59999.1.1"  # remotesign's own certificate policy arc


class ProfileError(ValueError):
    """A request does not fit the profile (e.g. subject lacks a required attribute)."""


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    key_usage: frozenset[str]
    validity: timedelta
    extended_key_usage: tuple[str, ...] = ()
    eku_critical: bool = False
    policies: tuple[str, ...] = ()
    qc_type: str | None = None
    qc_semantics: str | None = None
    required_subject: tuple[str, ...] = ()
    ocsp_no_check: bool = False
    is_ca: bool = False
    path_length: int | None = None
    end_entity: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    def check_subject(self, subject: x509.Name) -> None:
        present = set()
        for rdn in subject.chosen:
            for attr in rdn:
                present.add(attr["type"].native)
                present.add(attr["type"].dotted)
        missing = [a for a in self.required_subject if a not in present]
        if missing:
            names = {SERIAL_NUMBER: "SERIALNUMBER (2.5.4.5)", ORG_IDENTIFIER: "organizationIdentifier (2.5.4.97)",
                     "common_name": "CN", "country_name": "C", "organization_name": "O"}
            raise ProfileError(
                f"profile {self.name} needs subject attribute(s): " + ", ".join(names.get(m, m) for m in missing)
            )


YEAR = timedelta(days=365)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="qualified-person",
            description="qualified certificate for electronic signatures of a natural person (QcType esign, QSCD)",
            key_usage=frozenset({"non_repudiation"}),
            validity=2 * YEAR,
            policies=(POLICY_QCP_N_QSCD, POLICY_SERVICE + ".1"),
            qc_type=qc.QCT_ESIGN,
            qc_semantics=qc.SEMANTICS_NATURAL,
            required_subject=("common_name", "country_name", SERIAL_NUMBER),
        ),
        Profile(
            name="qualified-seal",
            description="qualified certificate for electronic seals of a legal person (QcType eseal, QSCD)",
            key_usage=frozenset({"non_repudiation"}),
            validity=2 * YEAR,
            policies=(POLICY_QCP_L_QSCD, POLICY_SERVICE + ".2"),
            qc_type=qc.QCT_ESEAL,
            qc_semantics=qc.SEMANTICS_LEGAL,
            required_subject=("common_name", "country_name", "organization_name", ORG_IDENTIFIER),
        ),
        Profile(
            name="person-auth",
            description="authentication certificate of a natural person (digitalSignature, clientAuth)",
            key_usage=frozenset({"digital_signature"}),
            validity=2 * YEAR,
            extended_key_usage=("client_auth",),
            policies=(POLICY_NCP_PLUS, POLICY_SERVICE + ".3"),
            required_subject=("common_name",),
        ),
        Profile(
            name="tsa",
            description="time-stamping unit (critical EKU timeStamping)",
            key_usage=frozenset({"digital_signature", "non_repudiation"}),
            validity=10 * YEAR,
            extended_key_usage=("time_stamping",),
            eku_critical=True,
            policies=(POLICY_SERVICE + ".4",),
            required_subject=("common_name",),
        ),
        Profile(
            name="ocsp",
            description="OCSP responder (OCSPSigning, id-pkix-ocsp-nocheck)",
            key_usage=frozenset({"digital_signature"}),
            validity=2 * YEAR,
            extended_key_usage=("ocsp_signing",),
            ocsp_no_check=True,
            policies=(POLICY_SERVICE + ".5",),
            required_subject=("common_name",),
        ),
        Profile(
            name="issuing-ca",
            description="subordinate CA issuing end-entity certificates",
            key_usage=frozenset({"key_cert_sign", "crl_sign"}),
            validity=10 * YEAR,
            is_ca=True,
            path_length=0,
            end_entity=False,
            required_subject=("common_name",),
        ),
        Profile(
            name="root-ca",
            description="self-signed root CA",
            key_usage=frozenset({"key_cert_sign", "crl_sign"}),
            validity=20 * YEAR,
            is_ca=True,
            end_entity=False,
            required_subject=("common_name",),
        ),
    )
}

# Profiles an operator or relying party may request; CA, TSA and OCSP certificates are made by init.
ISSUABLE_PROFILES = ("qualified-person", "qualified-seal", "person-auth", "tsa", "ocsp")


def get_profile(name: str) -> Profile:
    try:
        return PROFILES[name]
    except KeyError as exc:
        raise ProfileError(f"unknown profile {name!r}; choose one of {', '.join(ISSUABLE_PROFILES)}") from exc
