"""``remotesign`` operator commands. They act on one instance: the state directory that
remotesign/cli/home.py finds ($REMOTESIGN_HOME, a config file, or ./var) and the database named by
``$REMOTESIGN_DATABASE_URL``; only ``init`` and ``serve`` create one."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from remotesign.cli.home import HELP as HOME_HELP, open_services
from remotesign.config import load_settings

EPILOG = f"""State lives in the instance's home directory: the SQLite database, blobs, the master key
of software keys, demo-client.json. See the README for every setting.
{HOME_HELP}"""


def _services(default_public_url: str | None = None, create: bool = False):  # type: ignore[no-untyped-def]
    return open_services(default_public_url, create=create)


def cmd_init(args: argparse.Namespace) -> int:
    from remotesign.trust.ca import CertificateError
    from remotesign.trust.ca_naming import NamingError, choose_naming

    try:
        naming = choose_naming(args.ca_name, args.organization, args.country)
    except NamingError as exc:
        print(f"remotesign init: error: {exc}", file=sys.stderr)
        return 2
    svc = _services(args.public_url, create=True)
    try:
        if (args.ca_name, args.organization, args.country) != (None, None, None):
            svc.ca.choose_naming(naming)
        result = svc.initialize()
        print(f"home:         {svc.settings.home}")
        print(f"database:     {svc.db.engine.url.render_as_string(hide_password=True)}")
        print(f"key backend:  {svc.keystore.backend.name}")
        print(f"public URL:   {svc.base_url}")
        print(f"PKI:          {'created' if result['pki_created'] else 'already initialised'} "
              f"({svc.ca.naming.describe()})")
        if result["demo_client_created"]:
            print(f"demo client:  written to {svc.demo_client_file}")
        if not os.environ.get("REMOTESIGN_HOME"):
            print(f"from elsewhere: export REMOTESIGN_HOME={svc.settings.home}  "
                  f"(or home = \"{svc.settings.home}\" in remotesign.toml; see remotesign --help)")
    except CertificateError as exc:
        print(f"remotesign init: error: {exc}", file=sys.stderr)
        return 2
    finally:
        svc.close()
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from remotesign.api.app import create_app

    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    from remotesign.validation.policy import PolicyError, resolve_policy

    try:
        resolve_policy(load_settings().validation_policy)   # a broken policy file stops the start, not a request
    except PolicyError as exc:
        print(f"remotesign serve: REMOTESIGN_VALIDATION_POLICY: {exc}", file=sys.stderr)
        return 2
    default_url = f"http://{shown_host}:{args.port}"
    svc = _services(default_url, create=True)
    from remotesign.drain import stop_draining

    if stop_draining(svc.settings.home):  # a restarted node serves again (remotesign/drain.py)
        print("remotesign serve: removed the drain marker left from before this start (remotesign drain): "
              "/health answers 200 once ready", file=sys.stderr)
    if svc.db.engine.dialect.name != "sqlite" and not svc.settings.public_url:
        print("remotesign serve: warning: REMOTESIGN_PUBLIC_URL is not set; every node sharing this database must "
              "set it to the same URL (the load balancer's), which certificates and tokens name", file=sys.stderr)
    svc.initialize()
    os.environ["REMOTESIGN_HOME"] = str(svc.settings.home)  # worker processes: the same instance
    if args.forwarded_allow_ips:  # uvicorn reads it in this process and in every worker
        os.environ["FORWARDED_ALLOW_IPS"] = args.forwarded_allow_ips
    print(f"remotesign listening on http://{args.host}:{args.port} (public URL {svc.base_url}); "
          f"demo client: {svc.demo_client_file}; {args.workers} worker process(es)", flush=True)
    if args.workers > 1:
        # Each worker builds its own services (database pool, key store sessions) after the fork;
        # initialisation (migrations, PKI, demo client) ran once, here.
        svc.close()
        os.environ[WORKER_URL_ENV] = default_url
        from remotesign.cli.workers import serve_workers

        return serve_workers(args.workers, args.host, args.port, args.log_level, args.access_log)
    uvicorn.run(create_app(svc), host=args.host, port=args.port, log_level=args.log_level,
                access_log=args.access_log)
    return 0


WORKER_URL_ENV = "REMOTESIGN_WORKER_DEFAULT_URL"


def worker_app():  # type: ignore[no-untyped-def]
    """The application of one ``serve --workers N`` process (uvicorn calls this after forking)."""
    from remotesign.api.app import create_app

    return create_app(_services(os.environ.get(WORKER_URL_ENV), create=True))


def cmd_client_create(args: argparse.Namespace) -> int:
    from remotesign.core.tenants import TenantError

    svc = _services()
    try:
        tenant, secret = svc.tenants.create(args.name, args.scope or None, client_id=args.client_id,
                                            pkce_required=args.pkce == "required")
    except TenantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        svc.close()
    print(json.dumps({"client_id": tenant.client_id, "client_secret": secret, "base_url": svc.base_url,
                      "scopes": list(tenant.allowed_scopes)}, indent=2))
    return 0


def cmd_client_list(_args: argparse.Namespace) -> int:
    from remotesign.cli.tables import print_table

    svc = _services()
    try:
        print_table(("CLIENT_ID", "STATE", "CREATED", "NAME"),
                    ((t.client_id, "enabled" if t.enabled else "disabled", f"{t.created_at:%Y-%m-%d}", t.name)
                     for t in svc.tenants.list()))
    finally:
        svc.close()
    return 0


def cmd_client_enable(args: argparse.Namespace, enabled: bool) -> int:
    from remotesign.core.tenants import TenantError

    svc = _services()
    try:
        svc.tenants.set_enabled(args.client_id, enabled)
    except TenantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        svc.close()
    print(f"client {args.client_id} {'enabled' if enabled else 'disabled'}")
    return 0


def cmd_pki_issue(args: argparse.Namespace) -> int:
    from datetime import timedelta

    from remotesign.trust.ca import CertificateError
    from remotesign.trust.profiles import ProfileError

    try:
        csr = Path(args.csr).read_bytes() if args.csr != "-" else sys.stdin.buffer.read()
    except OSError as exc:
        print(f"error: cannot read {args.csr}: {exc.strerror}", file=sys.stderr)
        return 2
    svc = _services()
    try:
        tenant_id = None
        if args.client:
            tenant = svc.tenants.by_client_id(args.client)
            if tenant is None:
                print(f"error: no client {args.client}", file=sys.stderr)
                return 2
            tenant_id = tenant.id
        validity = timedelta(days=args.days) if args.days else None
        cert = svc.ca.issue_from_csr(csr, args.profile, tenant_id=tenant_id, validity=validity)
        chain = "".join(c.pem() for c in svc.ca.chain()) if args.chain else ""
    except (CertificateError, ProfileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        svc.close()
    sys.stdout.write(cert.pem() + chain)
    print(f"issued {cert.profile} certificate id={cert.id} serial={cert.serial_hex}", file=sys.stderr)
    return 0


def _find_cert(svc, ident: str):  # type: ignore[no-untyped-def]
    cert = svc.ca.get_any(ident)
    if cert is not None:
        return cert
    try:
        matches = svc.ca.find_by_serial(int(ident, 16))
    except ValueError:
        matches = []
    return matches[0] if len(matches) == 1 else None


def cmd_pki_revoke(args: argparse.Namespace) -> int:
    from remotesign.trust.ca import CertificateError

    svc = _services()
    try:
        cert = _find_cert(svc, args.certificate)
        if cert is None:
            print(f"error: no certificate with id or serial {args.certificate}", file=sys.stderr)
            return 2
        revoked = svc.ca.revoke(cert, args.reason)
    except CertificateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        svc.close()
    print(f"revoked {revoked.id} serial={revoked.serial_hex} reason={revoked.revocation_reason} "
          f"at {revoked.revoked_at:%Y-%m-%dT%H:%M:%SZ}")
    return 0


def cmd_pki_list(args: argparse.Namespace) -> int:
    svc = _services()
    try:
        certs = svc.ca.list(all_tenants=True)
        owners = {t.id: t.client_id for t in svc.tenants.list()}
    finally:
        svc.close()
    if args.json:
        print(json.dumps([{"id": c.id, "serial": c.serial_hex, "profile": c.profile, "subject": c.subject,
                           "status": c.status, "owner": owners.get(c.tenant_id or "", "operator"),
                           "not_after": c.not_after.isoformat()} for c in certs], indent=2))
        return 0
    from remotesign.cli.tables import print_table

    print_table(("ID", "SERIAL", "PROFILE", "STATUS", "OWNER", "NOT_AFTER", "SUBJECT"),
                ((c.id, c.serial_hex, c.profile, c.status, owners.get(c.tenant_id or "", "operator"),
                  f"{c.not_after:%Y-%m-%d}", c.subject) for c in certs))
    return 0


def cmd_audit_verify(_args: argparse.Namespace) -> int:
    svc = _services()
    try:
        report = svc.verify_audit()
    finally:
        svc.close()
    if not report.problems:
        stamped = (f", last time-stamp {report.last_timestamp:%Y-%m-%dT%H:%M:%SZ}" if report.last_timestamp else "")
        print(f"audit log OK: {report.events} events, hash chain intact; {report.checkpoints} signed checkpoint(s) "
              f"({report.timestamped} time-stamped{stamped}), sealed up to event {report.last_sealed}; "
              f"{report.unsealed} event(s) after the last checkpoint not yet sealed")
        if report.anchor_file_missing and report.checkpoints:
            print(f"note: this node keeps no anchor file ({svc.settings.audit_anchor_path}): the checkpoints were "
                  "checked against the database's anchor table only; run verify on a node that seals too")
        elif report.database_only:
            print(f"note: {report.database_only} checkpoint(s) are in the database but not in this node's anchor "
                  f"file {svc.settings.audit_anchor_path} (made by another node, or just before a crash)")
        return 0
    print(f"audit log BROKEN: {len(report.problems)} problem(s) in {report.events} events", file=sys.stderr)
    for p in report.problems[:AUDIT_PROBLEMS_SHOWN]:
        where = f"event {p.seq}" if p.seq is not None else "chain"
        print(f"  {where}: {p.message}", file=sys.stderr)
    if len(report.problems) > AUDIT_PROBLEMS_SHOWN:
        print(f"  ... and {len(report.problems) - AUDIT_PROBLEMS_SHOWN} more", file=sys.stderr)
    return 1


AUDIT_PROBLEMS_SHOWN = 50


def cmd_audit_seal(_args: argparse.Namespace) -> int:
    from remotesign.trust.ca import CertificateError

    svc = _services()
    try:
        svc.initialize_audit_seal()  # the audit key and the anchor file's pins (made at first start)
        cp = svc.audit_sealer.seal()
    except CertificateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        svc.close()
    if cp is None:
        print("nothing to seal: the last event is already sealed")
    else:
        print(f"sealed the audit log up to event {cp.seq} ({'time-stamped' if cp.timestamp_token else 'no time-stamp'})")
    return 0


# --- trust: declare the built-in CA qualified in an operator-local trusted list ----------------------
def cmd_trust_local_tl(args: argparse.Namespace) -> int:
    from remotesign.trust.ca import CertificateError
    from remotesign.trust.local_tl import build_local_trusted_list

    svc = _services()
    try:
        issuing = svc.ca.issuing
        xml = build_local_trusted_list([issuing.der], territory=args.territory,
                                       operator_name=args.operator_name or svc.ca.organization,
                                       qualified_for=args.qualified_for or ("esig", "eseal"),
                                       qscd=not args.no_qscd, sequence_number=args.sequence,
                                       operator_uri=svc.base_url)
    except (CertificateError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        svc.close()
    try:
        Path(args.out).write_bytes(xml)
    except OSError as exc:
        print(f"error: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote trusted list {args.out} (territory {args.territory.upper()}, CA/QC service "
          f"'{issuing.subject}'); add it to REMOTESIGN_TRUSTED_LISTS", file=sys.stderr)
    return 0


def add_trust_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    trust = sub.add_parser("trust", help="trusted lists (eIDAS qualification)",
                           description="Trusted lists decide which signatures are qualified (QES).")
    tsub = trust.add_subparsers(dest="trust_command", required=True, metavar="ACTION")
    p = tsub.add_parser("local-tl", help="write a trusted list declaring the built-in CA qualified",
                        description="Write an unsigned ETSI TS 119 612 trusted list with the issuing CA as a "
                                    "granted CA/QC service: its qualified-person certificates count as qualified "
                                    "for e-signatures, qualified-seal ones for e-seals. Configure the file in "
                                    "REMOTESIGN_TRUSTED_LISTS. Only an operator who is (or acts for) a "
                                    "qualified trust service provider should do this.", epilog=EPILOG)
    p.add_argument("--out", required=True, help="file to write")
    p.add_argument("--territory", default="XX", help="SchemeTerritory (default XX, not an EU country, so "
                                                     "it never collides with a LOTL pointer)")
    p.add_argument("--no-qscd", action="store_true", help="declare keys not on a QSCD (AdES-QC, not QES)")
    p.add_argument("--qualified-for", action="append", choices=("esig", "eseal"),
                   help="certificate type to declare (repeatable; default both)")
    p.add_argument("--operator-name", help="scheme operator / TSP name (default the CA's organisation)")
    p.add_argument("--sequence", type=int, default=1, help="TSLSequenceNumber; raise it when you replace a list")
    p.set_defaults(func=cmd_trust_local_tl)
# --- end trust ---------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from remotesign.trust.ca import REVOCATION_REASONS
    from remotesign.trust.profiles import ISSUABLE_PROFILES, PROFILES

    parser = argparse.ArgumentParser(prog="remotesign", description="Remote electronic-signature service.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"remotesign {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="create the database, the built-in PKI and the demo client",
                       description="Initialise the instance (creating it where the lookup below leads): apply "
                                   "database migrations, create the root CA, issuing CA, TSA and OCSP certificates "
                                   "and a demo relying party whose credentials go to demo-client.json. Safe to "
                                   "run again. The PKI's names are chosen here, once; users' certificates carry "
                                   "its country.", epilog=EPILOG)
    p.add_argument("--public-url", help="base URL written into certificates (AIA, CRL), default "
                                        "$REMOTESIGN_PUBLIC_URL or http://127.0.0.1:8080")
    p.add_argument("--ca-name", metavar="NAME", help="name in the CA, TSA and OCSP certificates' common names "
                                                     "('NAME Root CA', ...); default the organization, else remotesign")
    p.add_argument("--organization", metavar="ORG", help="organization (O) of those certificates; default the CA "
                                                         "name, else remotesign")
    p.add_argument("--country", metavar="CC", help="country (C, ISO 3166 two letters) of those certificates and "
                                                   "of users' certificates; 'none' for no country; default LV")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("serve", help="run the HTTP service", epilog=EPILOG,
                       description="Initialise if needed, then serve the HTTP API. OpenAPI at /docs.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True,
                   help="log every request, one line each (default on; --no-access-log for none)")
    p.add_argument("--forwarded-allow-ips", metavar="ADDRESSES",
                   help="comma-separated addresses (or *) of the load balancers whose X-Forwarded-For and "
                        "-Proto are believed: the client address that throttles and logs see (default: "
                        "$FORWARDED_ALLOW_IPS, else 127.0.0.1)")
    p.add_argument("--workers", type=int, default=1, choices=range(1, 65), metavar="N",
                   help="serving processes sharing the port (default 1); background sweeps and audit "
                        "checkpoints run in one of them")
    p.set_defaults(func=cmd_serve)
    from remotesign.cli.drain import add_parser as add_drain_parser

    add_drain_parser(sub)

    client = sub.add_parser("client", help="manage relying parties (OAuth2 clients)",
                            description="Relying parties authenticate with OAuth2 client credentials.")
    csub = client.add_subparsers(dest="client_command", required=True, metavar="ACTION")
    p = csub.add_parser("create", help="create a relying party; prints its client_id and client_secret",
                        description="Create a relying party. The secret is printed once and stored only hashed.")
    p.add_argument("name", help="a human-readable name, e.g. 'Example Bank'")
    p.add_argument("--scope", action="append", help="allowed scope (repeatable; default: all known scopes)")
    p.add_argument("--client-id", help="choose the client id (default: random)")
    p.add_argument("--pkce", choices=("optional", "required"), default="optional",
                   help="PKCE S256 in the authorization-code flow: checked whenever sent; 'required' refuses "
                        "requests without it (default: optional, as eParaksts clients send none)")
    p.set_defaults(func=cmd_client_create)
    p = csub.add_parser("list", help="list relying parties")
    p.set_defaults(func=cmd_client_list)
    p = csub.add_parser("disable", help="disable a relying party and revoke its tokens")
    p.add_argument("client_id")
    p.set_defaults(func=lambda a: cmd_client_enable(a, False))
    p = csub.add_parser("enable", help="enable a disabled relying party again")
    p.add_argument("client_id")
    p.set_defaults(func=lambda a: cmd_client_enable(a, True))
    from remotesign.cli.users import add_client_parsers, add_parsers as add_users_parsers

    add_client_parsers(csub)
    add_users_parsers(sub)

    pki = sub.add_parser("pki", help="built-in certification authority",
                         description="Issue, revoke and list certificates of the built-in CA.")
    psub = pki.add_subparsers(dest="pki_command", required=True, metavar="ACTION")
    profiles = "\n".join(f"  {n:<17} {PROFILES[n].description}" for n in ISSUABLE_PROFILES)
    p = psub.add_parser("issue", help="issue a certificate for a CSR; prints the PEM on stdout",
                        formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Issue a certificate from the issuing CA. The CSR's subject and key are used; "
                                    "the profile sets the extensions.\n\nprofiles:\n" + profiles +
                                    "\n\nexample:\n  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
                                    "-nodes -keyout k.pem \\\n    -subj '/CN=Alice/serialNumber=PNOLV-010101-12345/C=LV'"
                                    " -out a.csr\n  remotesign pki issue --csr a.csr --profile qualified-person > a.pem")
    p.add_argument("--csr", required=True, help="PKCS#10 request file, PEM or DER ('-' for stdin)")
    p.add_argument("--profile", required=True, choices=ISSUABLE_PROFILES, metavar="PROFILE",
                   help="one of: " + ", ".join(ISSUABLE_PROFILES))
    p.add_argument("--client", help="client_id of the relying party that owns the certificate")
    p.add_argument("--days", type=int, help="validity in days (default: the profile's)")
    p.add_argument("--chain", action="store_true", help="also print the issuing and root CA certificates")
    p.set_defaults(func=cmd_pki_issue)
    p = psub.add_parser("revoke", help="revoke a certificate (shows at once in OCSP and the next CRL)")
    p.add_argument("certificate", help="certificate id or serial number (hex)")
    p.add_argument("--reason", default="unspecified", choices=REVOCATION_REASONS)
    p.set_defaults(func=cmd_pki_revoke)
    p = psub.add_parser("list", help="list every certificate with its status and owner")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_pki_list)

    from remotesign.cli.validate import add_parser as add_validate_parser

    add_validate_parser(sub)

    audit = sub.add_parser("audit", help="audit log", description="The hash-chained audit log, sealed by signed, time-stamped checkpoints.")
    asub = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    p = asub.add_parser("verify", help="check the hash chain, the signed checkpoints and the anchors (the database's "
                        "anchor table and this node's anchor file); exit 1 and say where if the log was tampered with")
    p.set_defaults(func=cmd_audit_verify)
    p = asub.add_parser("seal", help="write a signed, time-stamped checkpoint of the log now (the service "
                        "does this by itself)")
    p.set_defaults(func=cmd_audit_seal)

    add_trust_parser(sub)
    from remotesign.cli.operators import add_parser as add_operator_parser

    add_operator_parser(sub)

    from remotesign.cli.tsa_credentials import add_parser as add_tsa_credential_parser

    add_tsa_credential_parser(sub)
    from remotesign.cli.agreements import add_parser as add_agreements_parser

    add_agreements_parser(sub)
    from remotesign.cli.sign import add_parser as add_sign_parser

    add_sign_parser(sub)
    from remotesign.cli.batch import add_parser as add_batch_parser

    add_batch_parser(sub)
    return parser


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("remotesign")
    except PackageNotFoundError:  # run from a checkout that is not installed
        from remotesign import __version__

        return __version__


def main(argv: list[str] | None = None) -> int:
    from remotesign.instance import InstanceError
    from remotesign.storage.faults import StorageUnavailable
    from remotesign.storage.private import private_umask

    args = build_parser().parse_args(argv)
    previous = private_umask()  # whatever the command writes under the state directory is the service's alone
    try:
        status = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return status
    except InstanceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except StorageUnavailable as exc:  # e.g. the S3 store or the database cannot be reached
        print(f"error: {exc.message} ({exc})", file=sys.stderr)
        return 1
    except BrokenPipeError:
        # `remotesign ... | head`: the reader has all it wanted. Quietly, as `cat` killed by SIGPIPE
        # would; stdout goes to /dev/null so that the interpreter's own final flush fails no more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 128 + 13
    finally:
        os.umask(previous)


if __name__ == "__main__":
    sys.exit(main())
