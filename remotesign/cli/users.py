"""Operator commands for end users, their sign identities and approval devices, and the redirect
URIs of relying parties.

The operator sees every user: users added without ``--client`` are service-wide, with
``--client CLIENT_ID`` they belong to that relying party. Secrets (passwords, PINs) are never
taken as arguments: they come from stdin (``--password-stdin``, ``--pin-stdin``; a prompt without
echo when stdin is a terminal) or from a file (``--pin-file``).

Failures print ``error: ...`` on stderr and exit with status 1; usage errors exit with 2.
"""

from __future__ import annotations

import argparse
import functools
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from remotesign.cli.home import open_services
from remotesign.cli.tables import print_table

EPILOG = """Secrets are read from stdin (one line) with --password-stdin / --pin-stdin, or from a file with
--pin-file; never give them as arguments. See `remotesign --help` for how the instance is found."""


class UsageError(Exception):
    """A wrong combination of options (exit status 2)."""


class CliError(Exception):
    """A failure with a message for the operator (exit status 1)."""


def _services():  # type: ignore[no-untyped-def]
    return open_services()


def _errors() -> tuple[type[BaseException], ...]:
    from remotesign.core.activation import ActivationError
    from remotesign.core.devices import DeviceError
    from remotesign.core.errors import CoreError
    from remotesign.core.identities import IdentityError
    from remotesign.core.tenants import TenantError
    from remotesign.core.users import UserError
    from remotesign.keystore.base import KeyStoreError
    from remotesign.trust.ca import CertificateError
    from remotesign.trust.profiles import ProfileError

    return (ActivationError, UserError, IdentityError, TenantError, KeyStoreError, DeviceError, CertificateError, ProfileError,
            CoreError, CliError)


def command(func: Callable[..., int]) -> Callable[[argparse.Namespace], int]:
    """Runs ``func(args, svc)`` with the services opened and closed around it, and turns the
    domain errors into a message on stderr and an exit status."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        try:
            secrets = _read_secrets(args)
        except UsageError as exc:
            print(f"remotesign: error: {exc}", file=sys.stderr)
            return 2
        except CliError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        svc = _services()
        try:
            return int(func(args, svc, **secrets) or 0)
        except UsageError as exc:
            print(f"remotesign: error: {exc}", file=sys.stderr)
            return 2
        except _errors() as exc:
            print(f"error: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
            return 1
        finally:
            svc.close()

    return run


# -- secrets ----------------------------------------------------------------------------------------
def _stdin_line(what: str) -> str:
    if sys.stdin is None:
        raise CliError(f"no stdin to read the {what} from")
    if sys.stdin.isatty():
        return getpass.getpass(f"{what}: ")
    line = sys.stdin.readline()
    return line[:-1].rstrip("\r") if line.endswith("\n") else line


def _file_secret(path: str, what: str) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read the {what} from {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    return text.splitlines()[0] if text else ""


def _read_secrets(args: argparse.Namespace) -> dict[str, Any]:
    """Reads what the options ask for before the database is touched: ``password`` and ``pin``."""
    out: dict[str, Any] = {}
    password_stdin = getattr(args, "password_stdin", False)
    pin_stdin = getattr(args, "pin_stdin", False)
    pin_file = getattr(args, "pin_file", None)
    if password_stdin and pin_stdin:
        raise UsageError("stdin holds one secret: give the PIN with --pin-file")
    if pin_stdin and pin_file:
        raise UsageError("--pin-stdin and --pin-file exclude each other")
    if password_stdin:
        out["password"] = _stdin_line("password")
    if pin_stdin:
        out["pin"] = _stdin_line("PIN")
    elif pin_file:
        out["pin"] = _file_secret(pin_file, "PIN")
    elif getattr(args, "no_pin", None) is False:  # a new identity: its PIN, or an explicit --no-pin
        out["pin"] = _prompted_pin()
    return out


def _prompted_pin() -> str:
    """A new identity's signing PIN typed at the terminal (twice); without a terminal, the operator
    must say where the PIN comes from, or that there is none."""
    if sys.stdin is None or not sys.stdin.isatty():
        raise UsageError("give the signing PIN with --pin-stdin or --pin-file F, or create the identity without one "
                         "with --no-pin")
    pin = getpass.getpass("signing PIN: ")
    if getpass.getpass("signing PIN again: ") != pin:
        raise CliError("the two PINs differ")
    return pin


def _warn_no_pin(identity_id: str) -> None:
    print(f"warning: sign identity {identity_id} has no signing PIN: signing with it needs no activation factor "
          f"of its owner; set one with `remotesign identities set-pin {identity_id} --pin-stdin`", file=sys.stderr)


# -- helpers --------------------------------------------------------------------------------------
def _print_json(data: object) -> None:
    print(json.dumps(data, indent=2))


def _client_ids(svc) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return {t.id: t.client_id for t in svc.tenants.list()}


def _tenant_id(svc, client_id: str | None) -> str | None:  # type: ignore[no-untyped-def]
    if client_id is None:
        return None
    tenant = svc.tenants.by_client_id(client_id)
    if tenant is None:
        raise CliError(f"no client {client_id!r}")
    return str(tenant.id)


def _user_json(user, clients: dict[str, str]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    out = user.as_json()
    out["client_id"] = clients.get(user.tenant_id) if user.tenant_id else None
    return out


def _identity_json(svc, identity, username: str | None = None) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    out = identity.esigp_json(svc.base_url, details=True)
    out["user"] = {"id": identity.user_id, "username": username}
    out["pin_failures"] = identity.pin_failures
    out["pin_locked_until"] = identity.pin_locked_until.isoformat() if identity.pin_locked_until else None
    out["created_at"] = identity.created_at.isoformat()
    return out


def _username(svc, user_id: str) -> str | None:  # type: ignore[no-untyped-def]
    from remotesign.core.users import UserError

    try:
        return str(svc.users.get(user_id, None).username)
    except UserError:
        return None


def _common_name(identity) -> str:  # type: ignore[no-untyped-def]
    from cryptography.x509.oid import NameOID

    try:
        names = identity.certificate().subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return "?"
    return str(names[0].value) if names else identity.certificate().subject.rfc4514_string()


# -- users ----------------------------------------------------------------------------------------
@command
def cmd_users_add(args: argparse.Namespace, svc, password: str | None = None) -> int:  # type: ignore[no-untyped-def]
    tenant_id = _tenant_id(svc, args.client)
    user = svc.users.create(tenant_id=tenant_id, username=args.username, display_name=args.name, kind=args.kind,
                            password=password, email=args.email, phone=args.phone,
                            serial_number=args.serial_number)
    _print_json(_user_json(user, _client_ids(svc)))
    if not args.serial_number:
        print(f"note: {user.username} has no --serial-number, so no qualified certificate can be made for them "
              f"(the {'organization identifier' if args.kind == 'legal' else 'SERIALNUMBER'} is not invented)",
              file=sys.stderr)
    return 0


@command
def cmd_users_list(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    clients = _client_ids(svc)
    if args.client:
        users = svc.users.list(_tenant_id(svc, args.client))
    elif args.service_wide:
        users = svc.users.list(None)
    else:
        users = svc.users.list(None, all_users=True)
    if args.json:
        _print_json([_user_json(u, clients) for u in users])
        return 0
    print_table(("ID", "USERNAME", "KIND", "STATE", "OWNER", "NAME"),
                ((u.id, u.username, u.kind, "enabled" if u.enabled else "disabled",
                  clients.get(u.tenant_id, u.tenant_id) if u.tenant_id else "service-wide", u.display_name)
                 for u in users))
    return 0


@command
def cmd_users_show(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    from remotesign.core.identities import Viewer

    user = svc.users.find(args.user)
    out = _user_json(user, _client_ids(svc))
    out["identities"] = [{"id": i.id, "status": i.status, "labels": list(i.labels), "subject_cn": _common_name(i)}
                         for i in svc.identities.list(Viewer(None), user_id=user.id)]
    out["devices"] = [{"id": d.id, "name": d.name, "status": d.status} for d in svc.devices.list(user.id)]
    _print_json(out)
    return 0


def _users_enable(args: argparse.Namespace, svc, enabled: bool) -> int:  # type: ignore[no-untyped-def]
    user = svc.users.find(args.user)
    svc.users.update(user.id, None, enabled=enabled)
    print(f"user {user.username} ({user.id}) {'enabled' if enabled else 'disabled'}")
    return 0


@command
def cmd_users_disable(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    return _users_enable(args, svc, False)


@command
def cmd_users_enable(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    return _users_enable(args, svc, True)


@command
def cmd_users_set_password(args: argparse.Namespace, svc, password: str) -> int:  # type: ignore[no-untyped-def]
    user = svc.users.find(args.user)
    svc.users.update(user.id, None, password=password)
    print(f"password of user {user.username} ({user.id}) set; the account is unlocked")
    return 0


@command
def cmd_users_activation_code(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    user = svc.users.find(args.user)
    if args.email:
        channel = svc.activation.send(user, args.purpose, actor="operator")
        print(f"{args.purpose} code sent to user {user.username} ({user.id}) by {channel}")
        return 0
    code = svc.activation.issue_for_operator(user, args.purpose)
    print(code)
    if args.purpose != "device":
        print(f"give it to {user.username} in person; they open {svc.base_url}/account/activate", file=sys.stderr)
    return 0


@command
def cmd_users_delete(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    from remotesign.core.identities import Viewer

    user = svc.users.find(args.user)
    identities = svc.identities.list(Viewer(None), user_id=user.id)
    for identity in identities:  # one audit event each, as the identities' own deletion would give
        svc.identities.delete(identity.id, Viewer(None))
    svc.users.delete(user.id, user.tenant_id)
    print(f"user {user.username} ({user.id}) deleted with {len(identities)} sign identit"
          f"{'y' if len(identities) == 1 else 'ies'}")
    return 0


# -- identities -----------------------------------------------------------------------------------
@command
def cmd_identities_create(args: argparse.Namespace, svc, pin: str | None = None) -> int:  # type: ignore[no-untyped-def]
    from remotesign.core.identities import Viewer
    from remotesign.keystore.base import KeyAlgorithm

    user = svc.users.find(args.user)
    before = {i.id for i in svc.identities.list(Viewer(None), user_id=user.id)}
    identity = svc.identities.create(user, algorithm=KeyAlgorithm(args.algorithm), labels=args.label or None,
                                     pin=pin, description=args.description, profile=args.profile)
    also = [i for i in svc.identities.list(Viewer(None), user_id=user.id) if i.id not in before | {identity.id}]
    _show_new_identity(args, svc, identity, user.username, also)
    return 0


def _show_new_identity(args: argparse.Namespace, svc, identity, username: str,  # type: ignore[no-untyped-def]
                       also: Sequence[Any] = ()) -> None:
    """A short summary, the full JSON (--json) or the certificate (--pem, --out); a warning when
    the identity has no PIN."""
    from remotesign.cli.identity_output import certificate_pem, summary

    if args.out:
        try:
            Path(args.out).write_text(certificate_pem(identity))
        except OSError as exc:
            raise CliError(f"cannot write {args.out}: {exc.strerror}") from exc
    if args.json:
        _print_json(_identity_json(svc, identity, username))
    elif args.pem:
        sys.stdout.write(certificate_pem(identity))
        print(summary(identity, username, also, args.out or "stdout"), file=sys.stderr)
    else:
        print(summary(identity, username, also, args.out))
    if not identity.has_pin:
        _warn_no_pin(identity.id)


@command
def cmd_identities_import(args: argparse.Namespace, svc, password: str | None = None,  # type: ignore[no-untyped-def]
                          pin: str | None = None) -> int:
    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror}") from exc
    user = svc.users.find(args.user)
    identity = svc.identities.import_pkcs12(user, data, password.encode() if password else None,
                                            labels=args.label or None, pin=pin, description=args.description)
    _show_new_identity(args, svc, identity, user.username)
    return 0


@command
def cmd_identities_list(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    from remotesign.core.identities import Viewer

    user_id = svc.users.find(args.user).id if args.user else None
    found = svc.identities.list(Viewer(None), user_id=user_id, labels=args.label or None)
    names = {u.id: u.username for u in svc.users.list(None, all_users=True)}
    if args.json:
        _print_json([_identity_json(svc, i, names.get(i.user_id)) for i in found])
        return 0
    print_table(("ID", "USER", "STATUS", "COMMON_NAME", "LABELS"),
                ((i.id, names.get(i.user_id, i.user_id), i.status, _common_name(i), " ".join(i.labels))
                 for i in found))
    return 0


@command
def cmd_identities_show(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    from remotesign.core.identities import Viewer

    identity = svc.identities.get(args.identity, Viewer(None))
    _print_json(_identity_json(svc, identity, _username(svc, identity.user_id)))
    if args.pem:
        for der in (identity.certificate_der, *identity.chain_der):
            sys.stdout.write(x509.load_der_x509_certificate(der).public_bytes(Encoding.PEM).decode())
    return 0


def _identity_status(args: argparse.Namespace, svc, status: str) -> int:  # type: ignore[no-untyped-def]
    from remotesign.core.identities import Viewer

    identity = svc.identities.update(args.identity, Viewer(None), status=status,
                                     reason=getattr(args, "reason", None))
    print(f"sign identity {identity.id} {identity.status}"
          + (f" ({identity.status_reason})" if identity.status_reason else ""))
    return 0


@command
def cmd_identities_disable(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    return _identity_status(args, svc, "disabled")


@command
def cmd_identities_enable(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    return _identity_status(args, svc, "enabled")


@command
def cmd_identities_set_pin(args: argparse.Namespace, svc, pin: str) -> int:  # type: ignore[no-untyped-def]
    from remotesign.core.identities import Viewer

    identity = svc.identities.update(args.identity, Viewer(None), pin=pin)
    print(f"PIN of sign identity {identity.id} set; any PIN lock is lifted")
    return 0


@command
def cmd_identities_delete(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    from remotesign.core.identities import Viewer

    svc.identities.delete(args.identity, Viewer(None))
    print(f"sign identity {args.identity} deleted")
    return 0


# -- devices ----------------------------------------------------------------------------------------
@command
def cmd_devices_list(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    user = svc.users.find(args.user)
    devices = svc.devices.list(user.id)
    if args.json:
        _print_json([d.as_json() for d in devices])
        return 0
    print_table(("ID", "STATUS", "CREATED", "NAME"),
                ((d.id, d.status, f"{d.created_at:%Y-%m-%d}", d.name) for d in devices))
    return 0


@command
def cmd_devices_remove(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    user = svc.users.find(args.user)
    svc.devices.remove(args.device_id, user.id, actor="operator")
    print(f"device {args.device_id} of user {user.username} removed")
    return 0


# -- client redirect URIs ---------------------------------------------------------------------------
@command
def cmd_client_redirect_uris(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    from remotesign.core.tenants import TenantError

    if args.clear and args.uris:
        raise UsageError("give redirect URIs or --clear, not both")
    if args.uris or args.clear:
        tenant = svc.tenants.set_redirect_uris(args.client_id, list(args.uris))
    else:
        tenant = svc.tenants.by_client_id(args.client_id)
        if tenant is None:
            raise TenantError(f"no client {args.client_id!r}")
    _print_json({"client_id": tenant.client_id, "redirect_uris": list(tenant.redirect_uris)})
    return 0


# -- parsers ----------------------------------------------------------------------------------------
@command
def cmd_client_pkce(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    tenant = svc.tenants.set_pkce_required(args.client_id, args.setting == "required")
    print(f"PKCE S256 is {'required' if tenant.pkce_required else 'optional'} for {tenant.client_id}")
    return 0


@command
def cmd_client_networks(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    if args.networks or args.clear:
        tenant = svc.tenants.set_allowed_networks(args.client_id, [] if args.clear else args.networks)
    else:
        tenant = svc.tenants.by_client_id_or_id(args.client_id)
    print("\n".join(tenant.allowed_networks) if tenant.allowed_networks else "(any address)")
    return 0


@command
def cmd_client_counter_signer(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    tenant = svc.tenants.by_client_id_or_id(args.client_id)
    if args.clear:
        svc.tenants.set_counter_signer(tenant.client_id, None)
        print(f"{tenant.client_id} counter-signs nothing")
        return 0
    if not args.key_id:
        print(tenant.counter_signer_key or "(none)")
        return 0
    from remotesign.core.relying_party_seal import RelyingPartySeals

    seal = RelyingPartySeals(svc.keystore, svc.ca).seal(tenant.id, args.key_id)  # the key and a valid certificate
    svc.tenants.set_counter_signer(tenant.client_id, args.key_id)
    print(f"{tenant.client_id} counter-signs with key {args.key_id} ({seal.certificate.subject.rfc4514_string()})")
    return 0


def add_client_parsers(csub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``client redirect-uris``, ``client pkce`` and ``client networks``, added to the ``client``
    command's actions."""
    p = csub.add_parser("networks", help="limit (or show) the networks a relying party may call from",
                        description="Replace the IP networks (CIDR) or addresses this client may call the APIs "
                                    "from, and print the list; calls from elsewhere are refused (the Remote "
                                    "Signing API answers 1000 INVALID IP ADDRESS). Without networks the list is "
                                    "shown; --clear lifts the limit.")
    p.add_argument("client_id")
    p.add_argument("networks", nargs="*", metavar="CIDR")
    p.add_argument("--clear", action="store_true", help="allow every address again")
    p.set_defaults(func=cmd_client_networks)
    p = csub.add_parser("counter-signer", help="choose (or show) the client's own key that counter-signs its users' "
                                               "documents",
                        description="The key (one of the client's own, /v1/keys, with a valid certificate of the "
                                    "built-in CA for it) that adds the client's seal after its users' signatures "
                                    "when a request asks for it (Remote Signing counterSigning).")
    p.add_argument("client_id")
    p.add_argument("key_id", nargs="?")
    p.add_argument("--clear", action="store_true", help="counter-sign nothing")
    p.set_defaults(func=cmd_client_counter_signer)
    p = csub.add_parser("pkce", help="require PKCE S256 (the default) or let a legacy client go without",
                        description="PKCE S256 is required on the authorization-code flow. 'optional' lets this "
                                    "one confidential client omit it (plain is never accepted); audited.")
    p.add_argument("client_id")
    p.add_argument("setting", choices=("required", "optional"))
    p.set_defaults(func=cmd_client_pkce)
    p = csub.add_parser("redirect-uris", help="set (or show) a relying party's OAuth2 redirect URIs",
                        description="Replace the exact redirect URIs the authorization endpoint may send this "
                                    "client's users back to, and print the list. Absolute https URIs without a "
                                    "fragment; plain http only for loopback hosts (localhost, 127.0.0.1, ::1). "
                                    "Without URIs the current list is shown; --clear empties it.")
    p.add_argument("client_id")
    p.add_argument("uris", nargs="*", metavar="URI")
    p.add_argument("--clear", action="store_true", help="remove every redirect URI")
    p.set_defaults(func=cmd_client_redirect_uris)


def _new_identity_options(p: argparse.ArgumentParser) -> None:
    """Where a new identity's PIN comes from (one of them, or a prompt at a terminal) and what is
    printed about it."""
    pins = p.add_mutually_exclusive_group()
    pins.add_argument("--pin-stdin", action="store_true", help="read the signing PIN from stdin (one line)")
    pins.add_argument("--pin-file", metavar="F", help="read the signing PIN from the first line of F")
    pins.add_argument("--no-pin", action="store_true", help="no signing PIN (then signing needs no factor of the "
                                                            "owner; a warning is printed); without any of these "
                                                            "options the PIN is asked for at the terminal")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the identity as JSON (with the certificate, "
                                                           "base64) instead of a summary")
    shown.add_argument("--pem", action="store_true", help="print the certificate as PEM (the summary goes to stderr)")
    p.add_argument("--out", metavar="FILE", help="also write the certificate (PEM) to FILE")


def add_parsers(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``users``, ``identities`` and ``devices``."""
    from remotesign.keystore.base import KeyAlgorithm
    from remotesign.trust.profiles import ISSUABLE_PROFILES

    # users
    users = sub.add_parser("users", help="end users (signers)", epilog=EPILOG,
                           description="End users who sign. Without --client a user is service-wide (any relying "
                                       "party may send them to sign); with --client CLIENT_ID the user belongs "
                                       "to that relying party. USER is an id or a user name.")
    usub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    p = usub.add_parser("add", help="add a user; prints it as JSON", epilog=EPILOG,
                        description="Add a user. The password (8 to 1024 characters) is read from stdin with "
                                    "--password-stdin; without it the user cannot log in until set-password.")
    p.add_argument("username", help="login name: letters, digits and . _ @ + -")
    p.add_argument("--name", required=True, help="display name (the certificate's common name)")
    p.add_argument("--kind", default="natural", choices=("natural", "legal"),
                   help="natural person or legal person (e-seals); default natural")
    p.add_argument("--client", metavar="CLIENT_ID", help="the relying party that owns the user")
    p.add_argument("--email")
    p.add_argument("--phone")
    p.add_argument("--serial-number", help="ETSI semantic identifier for the certificate, e.g. PNOLV-010101-12345 "
                                          "(organisation identifier for legal persons)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin (one line)")
    p.set_defaults(func=cmd_users_add)

    p = usub.add_parser("list", help="list users")
    owner = p.add_mutually_exclusive_group()
    owner.add_argument("--client", metavar="CLIENT_ID", help="only this relying party's users")
    owner.add_argument("--service-wide", action="store_true", help="only service-wide users")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_users_list)

    p = usub.add_parser("show", help="show a user with their identities and devices (JSON)")
    p.add_argument("user", metavar="USER")
    p.set_defaults(func=cmd_users_show)
    p = usub.add_parser("disable", help="disable a user (no login, no signing)")
    p.add_argument("user", metavar="USER")
    p.set_defaults(func=cmd_users_disable)
    p = usub.add_parser("enable", help="enable a disabled user again")
    p.add_argument("user", metavar="USER")
    p.set_defaults(func=cmd_users_enable)
    p = usub.add_parser("set-password", help="set a new password (also lifts a login lock)", epilog=EPILOG)
    p.add_argument("user", metavar="USER")
    p.add_argument("--password-stdin", action="store_true", required=True,
                   help="read the password from stdin (one line)")
    p.set_defaults(func=cmd_users_set_password)
    p = usub.add_parser("activation-code", help="a one-time code for the user: activate, reset or pair a device",
                        description="Print a one-time code (shown once, stored hashed) with which the user chooses "
                                    "password and PIN on /account/activate (activate, reset: lifts every lock) or "
                                    "pairs an approval app (device). --email sends it to the user's own address "
                                    "instead. Audited; a newer code replaces an older one of the same purpose.")
    p.add_argument("user", metavar="USER")
    p.add_argument("--purpose", choices=("activate", "reset", "device"), default="activate")
    p.add_argument("--email", action="store_true", help="send it by e-mail instead of printing it")
    p.set_defaults(func=cmd_users_activation_code)
    p = usub.add_parser("delete", help="delete a user with their sign identities and devices")
    p.add_argument("user", metavar="USER")
    p.set_defaults(func=cmd_users_delete)

    # identities
    idents = sub.add_parser("identities", help="sign identities (key + certificate + signing PIN)", epilog=EPILOG,
                            description="Sign identities of end users: a key in the key store, its certificate "
                                        "and the signing PIN that protects it. ID is a sign identity id.")
    isub = idents.add_subparsers(dest="identities_command", required=True, metavar="ACTION")
    p = isub.add_parser("create", help="new key and certificate from the built-in CA; prints the identity",
                        epilog=EPILOG,
                        description="Create a key in the key store and a certificate for it from the built-in "
                                    "CA (qualified-person for natural persons, qualified-seal for legal ones).")
    p.add_argument("user", metavar="USER")
    p.add_argument("--algorithm", default="rsa-2048", choices=[a.value for a in KeyAlgorithm])
    p.add_argument("--label", action="append", metavar="L",
                   help="label (repeatable; default serverid / qsealc and x509:keyUsage:contentCommitment)")
    p.add_argument("--description", help="description (default eparaksts:serverid:sign or eparaksts:qsealc:sign)")
    p.add_argument("--profile", choices=ISSUABLE_PROFILES, help="certificate profile (default by the user's kind; "
                                                                "the qualified ones need the user's --serial-number)")
    _new_identity_options(p)
    p.set_defaults(func=cmd_identities_create)

    p = isub.add_parser("import", help="import a PKCS#12 (key + certificate [+ chain]); prints the identity",
                        epilog=EPILOG,
                        description="Import a private key and its certificate from a PKCS#12 file; the key "
                                    "moves into the key store. When both the PKCS#12 password and a PIN are "
                                    "needed, give the password on stdin and the PIN with --pin-file.")
    p.add_argument("user", metavar="USER")
    p.add_argument("file", metavar="FILE.p12")
    p.add_argument("--password-stdin", action="store_true", help="read the PKCS#12 password from stdin")
    p.add_argument("--label", action="append", metavar="L", help="label (repeatable)")
    p.add_argument("--description", help="description (default 'imported')")
    _new_identity_options(p)
    p.set_defaults(func=cmd_identities_import)

    p = isub.add_parser("list", help="list sign identities (of one user)")
    p.add_argument("user", metavar="USER", nargs="?")
    p.add_argument("--label", action="append", metavar="L", help="only identities with this label (repeatable)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_identities_list)
    p = isub.add_parser("show", help="show a sign identity (JSON)")
    p.add_argument("identity", metavar="ID")
    p.add_argument("--pem", action="store_true", help="also print the certificate and its chain as PEM")
    p.set_defaults(func=cmd_identities_show)
    p = isub.add_parser("disable", help="disable a sign identity (it cannot sign)")
    p.add_argument("identity", metavar="ID")
    p.add_argument("--reason", help="why (shown in the identity's status)")
    p.set_defaults(func=cmd_identities_disable)
    p = isub.add_parser("enable", help="enable a disabled sign identity again")
    p.add_argument("identity", metavar="ID")
    p.set_defaults(func=cmd_identities_enable)
    p = isub.add_parser("set-pin", help="set a new signing PIN (also lifts a PIN lock)", epilog=EPILOG)
    p.add_argument("identity", metavar="ID")
    pins = p.add_mutually_exclusive_group(required=True)
    pins.add_argument("--pin-stdin", action="store_true", help="read the PIN from stdin (one line)")
    pins.add_argument("--pin-file", metavar="F", help="read the PIN from the first line of F")
    p.set_defaults(func=cmd_identities_set_pin)
    p = isub.add_parser("delete", help="delete a sign identity")
    p.add_argument("identity", metavar="ID")
    p.set_defaults(func=cmd_identities_delete)

    # devices
    devices = sub.add_parser("devices", help="users' approval devices",
                             description="Approval devices (app instances) that users registered.")
    dsub = devices.add_subparsers(dest="devices_command", required=True, metavar="ACTION")
    p = dsub.add_parser("list", help="list a user's devices")
    p.add_argument("user", metavar="USER")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_devices_list)
    p = dsub.add_parser("remove", help="remove a device (it can no longer approve)")
    p.add_argument("user", metavar="USER")
    p.add_argument("device_id", metavar="DEVICE_ID")
    p.set_defaults(func=cmd_devices_remove)
