"""How the built-in PKI names itself: the common-name prefix of its CA, TSA and OCSP certificates,
their organization, and the country written into them and into users' certificates.

Chosen at ``remotesign init`` and stored with the PKI (system settings), so that every later
certificate and every process agrees. An instance made before the names could be chosen has none
stored and keeps the names it was made with: the defaults below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from asn1crypto import x509
from cryptography import x509 as cx509
from cryptography.x509.oid import NameOID
from sqlalchemy import select

from remotesign.storage.db import Database
from remotesign.storage.models import SystemSetting

SETTINGS = {"name": "ca_name", "organization": "ca_organization", "country": "ca_country"}
LONGEST_SUFFIX = " Time-Stamping Unit"
UB_NAME = 64  # X.520 upper bound of commonName and organizationName


class NamingError(ValueError):
    """A name the PKI cannot carry (too long, a country that is no ISO 3166 code)."""


@dataclass(frozen=True)
class CaNaming:
    name: str = "remotesign"            # "<name> Root CA", "<name> Issuing CA", "<name> OCSP Responder", ...
    organization: str = "remotesign"
    country: str | None = "LV"          # None: certificates carry no C attribute

    def subject(self, common_name: str) -> x509.Name:
        """CN=<common_name>, O=<organization>[, C=<country>] (DER order C, O, CN)."""
        attrs = [cx509.NameAttribute(NameOID.COUNTRY_NAME, self.country)] if self.country else []
        attrs += [cx509.NameAttribute(NameOID.ORGANIZATION_NAME, self.organization),
                  cx509.NameAttribute(NameOID.COMMON_NAME, common_name)]
        return x509.Name.load(cx509.Name(attrs).public_bytes())

    def describe(self) -> str:
        return f"CN={self.name} Root CA, O={self.organization}" + (f", C={self.country}" if self.country else "")


def choose_naming(name: str | None, organization: str | None, country: str | None) -> CaNaming:
    """The naming of ``init`` options (None: not given). The CA name and the organization default
    to each other; ``country`` "none" (or "") means no country at all."""
    default = CaNaming()
    name = (name or "").strip() or None
    organization = (organization or "").strip() or None
    chosen = CaNaming(name=name or organization or default.name,
                      organization=organization or name or default.organization,
                      country=default.country if country is None else _country(country))
    if len(chosen.name) + len(LONGEST_SUFFIX) > UB_NAME:
        raise NamingError(f"the CA name has at most {UB_NAME - len(LONGEST_SUFFIX)} characters "
                          f"('{chosen.name}{LONGEST_SUFFIX}' must fit a {UB_NAME}-character common name)")
    if len(chosen.organization) > UB_NAME:
        raise NamingError(f"the organization has at most {UB_NAME} characters")
    return chosen


def _country(value: str) -> str | None:
    value = value.strip()
    if value.lower() in ("", "none"):
        return None
    if not re.fullmatch(r"[A-Za-z]{2}", value):
        raise NamingError(f"country {value!r} is not a two-letter ISO 3166 code (or 'none')")
    return value.upper()


def load_ca_naming(db: Database) -> CaNaming:
    """The stored naming, or the defaults for an instance that has none stored."""
    with db.session() as s:
        rows = s.scalars(select(SystemSetting).where(SystemSetting.name.in_(SETTINGS.values())))
        stored = {r.name: r.value for r in rows}
    if not stored:
        return CaNaming()
    default = CaNaming()
    return CaNaming(name=stored.get(SETTINGS["name"], default.name),
                    organization=stored.get(SETTINGS["organization"], default.organization),
                    country=stored.get(SETTINGS["country"], default.country) or None)


def save_ca_naming(db: Database, naming: CaNaming) -> None:
    with db.session() as s:
        for field, setting in SETTINGS.items():
            value = getattr(naming, field)
            s.merge(SystemSetting(name=setting, value=value or ""))
