"""``remotesign tsa-credential``: TLS client certificates the service presents to time-stamping
authorities that demand one (a relying party names one by ``certificateCode`` in its ``tsa``
choice). The key is sealed in the key store like every software key."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EPILOG = """Keys are kept encrypted under the master key (software key backend). A key in an HSM
(REMOTESIGN_KEY_BACKEND=pkcs11) cannot be used by Python's TLS, so registration is refused there."""


def _read(path: str, what: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise SystemExit(f"error: cannot read {what} {path}: {exc.strerror}") from exc


def _secret_file(path: str | None, what: str) -> str | None:
    if path is None:
        return None
    value = _read(path, what).decode("utf-8").rstrip("\r\n")
    if not value:
        raise SystemExit(f"error: {what} {path} is empty")
    return value


def _store():  # type: ignore[no-untyped-def]
    from remotesign.cli.home import open_services
    from remotesign.trust.tsa_clients import TsaCredentialStore

    svc = open_services()
    return svc, TsaCredentialStore(svc.db, svc.keystore, svc.audit, kdf_log2_n=svc.settings.kdf_log2_n)


def cmd_add(args: argparse.Namespace) -> int:
    from remotesign.trust.tsa_clients import CredentialError

    cert = _read(args.cert, "certificate")
    key = _read(args.key, "key")
    chain = b"".join(_read(p, "chain") for p in args.chain or ())
    key_password = _secret_file(args.key_password_file, "key password file")
    password = _secret_file(args.password_file, "password file")
    svc, store = _store()
    try:
        tenant_id = None
        if args.client:
            tenant = svc.tenants.by_client_id(args.client)
            if tenant is None:
                print(f"error: no client {args.client}", file=sys.stderr)
                return 2
            tenant_id = tenant.id
        cred = store.add(args.code, cert, key, chain, key_password=key_password.encode() if key_password else None,
                         password=password, tenant_id=tenant_id)
    except CredentialError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        svc.close()
    print(f"added TSA credential {cred.code}: {cred.subject} (serial {cred.serial_hex}, until "
          f"{cred.not_after:%Y-%m-%d}), for {args.client or 'every client'}"
          f"{', password required' if cred.has_password else ''}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    svc, store = _store()
    try:
        creds = store.list()
        owners = {t.id: t.client_id for t in svc.tenants.list()}
    finally:
        svc.close()
    if args.json:
        print(json.dumps([{"code": c.code, "client": owners.get(c.tenant_id or "") if c.tenant_id else None,
                           "subject": c.subject, "issuer": c.issuer, "serial": c.serial_hex,
                           "not_after": c.not_after.isoformat(), "chain": c.chain_length,
                           "password": c.has_password, "key_backend": c.key_backend,
                           "created_at": c.created_at.isoformat()} for c in creds], indent=2))
        return 0
    from remotesign.cli.tables import print_table

    print_table(("CODE", "NOT_AFTER", "CLIENT", "PASSWORD", "SUBJECT"),
                ((c.code, f"{c.not_after:%Y-%m-%d}", owners.get(c.tenant_id or "", "?") if c.tenant_id
                  else "every client", "yes" if c.has_password else "no", c.subject) for c in creds))
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    svc, store = _store()
    try:
        removed = store.remove(args.code)
    finally:
        svc.close()
    if not removed:
        print(f"error: no TSA credential {args.code}", file=sys.stderr)
        return 2
    print(f"removed TSA credential {args.code} and destroyed its key")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    cred = sub.add_parser("tsa-credential", help="TLS client certificates for time-stamping authorities",
                          description="TLS client certificates the service presents to a TSA that demands one, "
                                      "named by a code (the tsa object's certificateCode).", epilog=EPILOG)
    csub = cred.add_subparsers(dest="tsa_credential_command", required=True, metavar="ACTION")
    p = csub.add_parser("add", help="register a certificate and its key under a code", epilog=EPILOG,
                        description="Register a TLS client certificate. The key is sealed in the key store; the "
                                    "files can be deleted afterwards.")
    p.add_argument("--code", required=True, help="the name relying parties use (certificateCode)")
    p.add_argument("--cert", required=True, help="certificate, PEM or DER (a PEM may carry the chain after it)")
    p.add_argument("--key", required=True, help="its private key, PEM or DER, PKCS#8 or traditional")
    p.add_argument("--chain", action="append", help="intermediate CA certificates to send too (repeatable)")
    p.add_argument("--key-password-file", help="file holding the password of an encrypted key")
    p.add_argument("--password-file", help="file holding a password the request's tsa.password must match "
                                           "(stored hashed); without it the request's password is ignored")
    p.add_argument("--client", help="client_id of the only relying party that may use it (default: every one)")
    p.set_defaults(func=cmd_add)
    p = csub.add_parser("list", help="list registered TSA client certificates")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_list)
    p = csub.add_parser("remove", help="forget a TSA client certificate and destroy its key")
    p.add_argument("code")
    p.set_defaults(func=cmd_remove)
