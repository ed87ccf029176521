"""Validation policies: what each check's finding does to a signature, and which algorithms and
key sizes are accepted until when — the service's counterpart of EU DSS's constraint file.

A policy is a TOML file (``policies/default.toml`` documents the format): ``[checks]`` gives
every check a level (FAIL / WARN / INFORM / IGNORE), ``[cryptography]`` a cryptographic suite
with end dates (ETSI TS 119 312). The suite reaches pyHanko and certvalidator as an
``AlgorithmUsagePolicy``, so it decides for signatures, time-stamps, certificates, CRLs and OCSP
answers alike, with proof-of-existence semantics: an algorithm past its date is still accepted
for what is proven to have existed before it. A malformed file is a :class:`PolicyError` naming
the line."""

from __future__ import annotations

import enum
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from asn1crypto import algos, keys
from pyhanko.sign.validation.utils import CMSAlgorithmUsagePolicy
from pyhanko_certvalidator.policy_decl import AlgorithmUsageConstraint

from remotesign.validation.model import Block, Conclusion, Indication, SignatureResult, SubIndication, indication_for

MAX_POLICY_BYTES = 256 << 10
NEVER = "never"


class Level(str, enum.Enum):
    FAIL = "FAIL"
    WARN = "WARN"
    INFORM = "INFORM"
    IGNORE = "IGNORE"


@dataclass(frozen=True)
class Check:
    """One check a validator makes; ``failure`` is the sub-indication of a FAIL."""

    id: str
    description: str
    failure: SubIndication


_FORMAT = SubIndication.FORMAT_FAILURE
#: Every check a policy can set, with what a FAIL means.
CHECKS: dict[str, Check] = {c.id: c for c in (
    Check("pdf.byte_range", "The signature's byte range covers exactly the revision it signed", _FORMAT),
    Check("pdf.unlisted_data", "Every byte written after the signature belongs to a revision", _FORMAT),
    Check("pdf.page_tree", "No page was added, removed or reordered after signing", _FORMAT),
    Check("pdf.disallowed_change", "No change after signing touches what is displayed or done", _FORMAT),
    Check("pdf.certification_exceeded", "Changes stay within the certification's DocMDP level", _FORMAT),
    Check("pdf.locked_field", "No form field the signature locked changed", _FORMAT),
    Check("pdf.visibility_change", "No annotation was shown or hidden after signing", _FORMAT),
    Check("pdf.unanalysable_change", "Every later revision can be analysed", _FORMAT),
    Check("pdf.allowed_change", "Changes the signature permits (validation data, signatures, form filling)", _FORMAT),
    Check("timestamp.content_invalid", "Content time-stamps validate", SubIndication.SIG_CONSTRAINTS_FAILURE),
    Check("timestamp.document_invalid", "Document time-stamps validate", SubIndication.SIG_CONSTRAINTS_FAILURE),
    Check("timestamp.archive_invalid", "ASiC archive time-stamps validate", SubIndication.SIG_CONSTRAINTS_FAILURE),
    Check("asic.file_not_signed", "Every file of the container is covered by the signature", _FORMAT),
    Check("asic.signature_without_file", "An ASiC signature covers at least one file of its container (ASiC-S: "
          "the one data object, at the root)", _FORMAT),
    Check("asic.file_not_in_manifest", "Every signed file is listed in META-INF/manifest.xml", _FORMAT),
    Check("asic.manifest_mismatch", "ASiC manifests match the files they list", _FORMAT),
    Check("asic.media_type_mismatch", "META-INF/manifest.xml gives a signed file the media type its signature "
          "declares (DataObjectFormat)", _FORMAT),
    Check("xades.target_mismatch", "QualifyingProperties/@Target points at the signature", _FORMAT),
    Check("xades.policy_identifier", "SignaturePolicyIdentifier is well formed: one SignaturePolicyId or "
          "SignaturePolicyImplied, an OID URN qualified OIDAsURN", _FORMAT),
    Check("xades.signing_certificate_unprotected", "A SigningCertificate property protects and matches the certificate",
          SubIndication.SIG_CONSTRAINTS_FAILURE),
    Check("signing_time.after_timestamp", "The claimed signing time is not later than the signature time-stamp",
          SubIndication.SIG_CONSTRAINTS_FAILURE),
    Check("revocation.unavailable", "The revocation status of every certificate of the chain is established "
          "(WARN: checked where data is at hand, soft-fail otherwise)", SubIndication.CERTIFICATE_CHAIN_GENERAL_FAILURE),
)}


class PolicyError(ValueError):
    """A policy that cannot be used; the message names the line where it can."""


#: An end of acceptance: None = no end, NEVER, or the first instant no longer accepted (UTC).
Until = datetime | None | str


@dataclass(frozen=True)
class CryptoSuite:
    """Accepted algorithms and key sizes with end dates; what is not listed is refused."""

    digests: Mapping[str, Until]
    rsa: tuple[tuple[int, Until], ...]           # (smallest size, until), ascending
    dsa: tuple[tuple[int, Until], ...]
    curves: Mapping[str, Until]
    certificate_digests: Mapping[str, Until] = field(default_factory=dict)

    def for_certificates(self) -> CryptoSuite:
        merged = {**self.digests, **self.certificate_digests}
        return CryptoSuite(merged, self.rsa, self.dsa, self.curves)

    def algorithm_policy(self) -> SuiteAlgorithmPolicy:
        return SuiteAlgorithmPolicy(self)


@dataclass(frozen=True)
class ValidationPolicy:
    name: str
    description: str
    levels: Mapping[str, Level]
    crypto: CryptoSuite
    source: str = "built-in"

    def level(self, check_id: str) -> Level:
        """The level of a check (policies inherit the default policy's levels when parsed)."""
        found = self.levels.get(check_id)
        if found is not None:
            return found
        return Level.FAIL

    def checks(self) -> list[tuple[Check, Level]]:
        return [(check, self.level(check.id)) for check in CHECKS.values()]


def record(result: SignatureResult, policy: ValidationPolicy, check_id: str, message: str, *,
           block: Block = Block.FORMAT_CHECKING) -> bool:
    """Apply a check's finding to ``result`` at the policy's level; True when it failed the
    signature. A FAIL that means TOTAL-FAILED outranks an INDETERMINATE outcome; otherwise the
    outcome already reached stands and the message is added to it."""
    level = policy.level(check_id)
    if level is Level.FAIL:
        check = CHECKS[check_id]
        current = result.sub_indication
        if current is None or (indication_for(check.failure) is Indication.TOTAL_FAILED
                               and indication_for(current) is not Indication.TOTAL_FAILED):
            result.conclude(check.failure, message)
        elif message not in result.errors:
            result.errors.append(message)
        conclusion = result.blocks.get(block)
        if conclusion is None or conclusion.sub_indication is None:
            result.blocks[block] = Conclusion.of(check.failure, message)
        elif message not in conclusion.messages:
            conclusion.messages.append(message)
        return True
    target = {Level.WARN: result.warnings, Level.INFORM: result.infos}.get(level)
    if target is not None and message not in target:
        target.append(message)
    return False


# --- pyHanko / certvalidator bridge ----------------------------------------------------------------------
class SuiteAlgorithmPolicy(CMSAlgorithmUsagePolicy):
    """A :class:`CryptoSuite` as pyHanko's algorithm usage policy. ``moment`` is the time a
    usage is judged at (the best proof of existence pyHanko has); None means "at all times"."""

    def __init__(self, suite: CryptoSuite) -> None:
        self.suite = suite

    def digest_algorithm_allowed(self, algo: algos.DigestAlgorithm, moment: datetime | None) -> AlgorithmUsageConstraint:
        name = _digest_name(algo["algorithm"].native)
        return _judge(f"the digest algorithm {name}", self.suite.digests.get(name, NEVER), moment)

    def signature_algorithm_allowed(self, algo: algos.SignedDigestAlgorithm, moment: datetime | None,
                                    public_key: keys.PublicKeyInfo | None) -> AlgorithmUsageConstraint:
        try:
            mechanism = algo.signature_algo
        except ValueError:
            mechanism = str(algo["algorithm"].native)
        verdict = self._key_allowed(mechanism, public_key, moment)
        if not verdict:
            return verdict
        try:
            hash_name = algo.hash_algo
        except ValueError:
            hash_name = None
        if hash_name is None and mechanism == "rsassa_pss":
            hash_name = algo["parameters"]["hash_algorithm"]["algorithm"].native
        if hash_name is not None:
            digest = self.digest_algorithm_allowed(algos.DigestAlgorithm({"algorithm": hash_name}), moment)
            if not digest:
                return digest
        return AlgorithmUsageConstraint(allowed=True)

    def _key_allowed(self, mechanism: str, public_key: keys.PublicKeyInfo | None,
                     moment: datetime | None) -> AlgorithmUsageConstraint:
        if public_key is None:
            return AlgorithmUsageConstraint(allowed=True)
        kind = public_key.algorithm
        if kind in ("rsa", "rsassa_pss", "dsa"):
            from remotesign.public_keys import minimal_rsa_key_info

            try:
                bits = (minimal_rsa_key_info(public_key) or public_key).bit_size
            except (ValueError, TypeError, ArithmeticError):  # a zero or negative modulus, garbage
                return AlgorithmUsageConstraint(allowed=False, failure_reason="the public key cannot be read")
            if kind == "dsa":
                return _judge(f"a DSA key of {bits} bits", _sized(self.suite.dsa, bits), moment)
            return _judge(f"an RSA key of {bits} bits", _sized(self.suite.rsa, bits), moment)
        if kind == "ec":
            try:
                curve = str(public_key.curve[1]).lower()
            except (ValueError, KeyError):
                curve = "explicit parameters"
            return _judge(f"the elliptic curve {curve}", self.suite.curves.get(curve, NEVER), moment)
        if kind in ("ed25519", "ed448"):
            return _judge(f"the {kind} key", self.suite.curves.get(kind, NEVER), moment)
        return _judge(f"the {mechanism} algorithm", NEVER, moment)


def _digest_name(name: str) -> str:
    return str(name).lower().replace("-", "_")


def _sized(table: tuple[tuple[int, Until], ...], bits: int) -> Until:
    found: Until = NEVER
    for smallest, until in table:
        if bits >= smallest:
            found = until
    return found


def _judge(what: str, until: Until, moment: datetime | None) -> AlgorithmUsageConstraint:
    if until is None:
        return AlgorithmUsageConstraint(allowed=True)
    if until == NEVER or not isinstance(until, datetime):
        return AlgorithmUsageConstraint(allowed=False, failure_reason=f"{what} is not accepted by the validation policy")
    if moment is not None and moment < until:
        return AlgorithmUsageConstraint(allowed=True)
    last = (until - timedelta(days=1)).date().isoformat()
    return AlgorithmUsageConstraint(allowed=False, not_allowed_after=until,
                                    failure_reason=f"{what} is accepted by the validation policy only for what "
                                                   f"is proven to exist by {last}")


# --- loading ---------------------------------------------------------------------------------------------
def load_policy_file(path: Path) -> ValidationPolicy:
    """A policy from a TOML file; PolicyError (naming the file and line) when it is malformed."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_POLICY_BYTES + 1)
    except OSError as exc:
        raise PolicyError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    return parse_policy(data, source=str(path))


def parse_policy(data: bytes, *, source: str = "policy", base: ValidationPolicy | None = None) -> ValidationPolicy:
    """A policy from TOML text. What it leaves out (checks, cryptography tables) comes from
    ``base``, the built-in default policy unless given."""
    if len(data) > MAX_POLICY_BYTES:
        raise PolicyError(f"{source}: a policy file is at most {MAX_POLICY_BYTES // 1024} KiB")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise PolicyError(f"{source}, line {line}: not UTF-8 text") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from None
    if base is None and source != _DEFAULT_SOURCE:
        base = builtin_policy("default")
    return _Reader(text, source, base).policy(raw)


class _Reader:
    """Turns parsed TOML into a policy; errors name the line of the offending key."""

    def __init__(self, text: str, source: str, base: ValidationPolicy | None) -> None:
        self.lines = text.splitlines()
        self.source = source
        self.base = base

    def fail(self, key: str, message: str, table: str | None = None) -> PolicyError:
        line = self._line(key, table)
        where = f"{self.source}, line {line}" if line else self.source
        return PolicyError(f"{where}: {message}")

    def _line(self, key: str, table: str | None) -> int | None:
        pattern = re.compile(rf"""^\s*(?:"{re.escape(key)}"|'{re.escape(key)}'|{re.escape(key)})\s*=""")
        in_table = table is None
        for number, line in enumerate(self.lines, 1):
            stripped = line.strip()
            if stripped.startswith("["):
                in_table = table is None or stripped.strip("[] ") == table
                continue
            if in_table and pattern.match(line):
                return number
        return None

    def policy(self, raw: dict[str, Any]) -> ValidationPolicy:
        unknown = set(raw) - {"name", "description", "checks", "cryptography"}
        for key in sorted(unknown):
            raise self.fail(key, f"unknown setting {key!r} (expected name, description, [checks], [cryptography])")
        name = raw.get("name", "custom")
        if not isinstance(name, str) or not name.strip() or len(name) > 100:
            raise self.fail("name", "'name' must be a short text")
        description = raw.get("description", "")
        if not isinstance(description, str):
            raise self.fail("description", "'description' must be a text")
        checks = raw.get("checks", {})
        if not isinstance(checks, dict):
            raise self.fail("checks", "[checks] must be a table of check = level")
        levels: dict[str, Level] = {}
        for key, value in checks.items():
            if key not in CHECKS:
                raise self.fail(key, f"unknown check {key!r}; known checks: {', '.join(sorted(CHECKS))}", "checks")
            if not isinstance(value, str) or value.upper() not in Level.__members__:
                raise self.fail(key, f"the level of {key!r} must be one of FAIL, WARN, INFORM, IGNORE", "checks")
            levels[key] = Level(value.upper())
        if self.base is not None:
            levels = {**self.base.levels, **levels}
        crypto = raw.get("cryptography")
        if crypto is None and self.base is None:
            raise self.fail("cryptography", "a policy needs a [cryptography] suite (copy it from default.toml)")
        suite = self.suite(crypto) if crypto is not None else self.base.crypto  # type: ignore[union-attr]
        return ValidationPolicy(name=name.strip(), description=description.strip(), levels=levels, crypto=suite,
                                source=self.source)

    def suite(self, raw: Any) -> CryptoSuite:
        if not isinstance(raw, dict):
            raise self.fail("cryptography", "[cryptography] must be a table")
        unknown = set(raw) - {"digests", "rsa", "dsa", "curves", "certificates"}
        for key in sorted(unknown):
            raise self.fail(key, f"unknown cryptography table {key!r}", "cryptography")
        certificates = raw.get("certificates", {})
        if not isinstance(certificates, dict) or set(certificates) - {"digests"}:
            raise self.fail("certificates", "[cryptography.certificates] may only hold a digests table")
        base = self.base.crypto if self.base is not None else None
        if base is None and not all(k in raw for k in ("digests", "rsa", "curves")):
            raise self.fail("cryptography", "[cryptography] needs digests, rsa and curves tables")
        return CryptoSuite(
            digests=self.dates(raw["digests"], "cryptography.digests", _digest_name) if "digests" in raw
            else base.digests,  # type: ignore[union-attr]
            rsa=self.sizes(raw["rsa"], "cryptography.rsa") if "rsa" in raw else base.rsa,  # type: ignore[union-attr]
            dsa=self.sizes(raw.get("dsa", {}), "cryptography.dsa") if "dsa" in raw or base is None
            else base.dsa,
            curves=self.dates(raw["curves"], "cryptography.curves", str.lower) if "curves" in raw
            else base.curves,  # type: ignore[union-attr]
            certificate_digests=self.dates(certificates.get("digests", {}), "cryptography.certificates.digests",
                                           _digest_name))

    def dates(self, raw: Any, table: str, normalise: Any) -> dict[str, Until]:
        if not isinstance(raw, dict):
            raise self.fail(table.split(".")[-1], f"[{table}] must be a table of name = date")
        return {normalise(key): self.until(value, key, table) for key, value in raw.items()}

    def sizes(self, raw: Any, table: str) -> tuple[tuple[int, Until], ...]:
        out = []
        for key, value in self.dates(raw, table, str).items():
            if not key.isdigit() or not 0 < int(key) <= 65536:
                raise self.fail(key, f"[{table}] keys are key sizes in bits, got {key!r}", table)
            out.append((int(key), value))
        return tuple(sorted(out))

    def until(self, value: Any, key: str, table: str) -> Until:
        if isinstance(value, date) and not isinstance(value, datetime):
            return datetime.combine(value + timedelta(days=1), time(), tzinfo=timezone.utc)
        if not isinstance(value, str):
            raise self.fail(key, f"{key!r}: expected a date (YYYY-MM-DD), \"\" or \"never\"", table)
        text = value.strip().lower()
        if text == "":
            return None
        if text == NEVER:
            return NEVER
        try:
            day = date.fromisoformat(text)
        except ValueError:
            raise self.fail(key, f"{key!r}: {value!r} is not a date (YYYY-MM-DD), \"\" or \"never\"", table) from None
        return datetime.combine(day + timedelta(days=1), time(), tzinfo=timezone.utc)


# --- built-in and configured policies ------------------------------------------------------------------------
BUILTIN = ("default", "dss")
_DEFAULT_SOURCE = "built-in policy default"


@lru_cache(maxsize=8)
def builtin_policy(name: str = "default") -> ValidationPolicy:
    """A policy shipped with the service (``policies/NAME.toml``)."""
    if name not in BUILTIN:
        raise PolicyError(f"no built-in policy {name!r}; built-in policies: {', '.join(BUILTIN)}")
    data = resources.files("remotesign.validation.policies").joinpath(f"{name}.toml").read_bytes()
    return parse_policy(data, source=_DEFAULT_SOURCE if name == "default" else f"built-in policy {name}")


def resolve_policy(spec: str) -> ValidationPolicy:
    """A built-in policy by name, or a policy file by path."""
    if spec in BUILTIN:
        return builtin_policy(spec)
    return load_policy_file(Path(spec))


__all__ = ["BUILTIN", "CHECKS", "Check", "CryptoSuite", "Level", "PolicyError", "SuiteAlgorithmPolicy",
           "ValidationPolicy", "builtin_policy", "load_policy_file", "parse_policy", "record", "resolve_policy"]
