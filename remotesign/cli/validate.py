"""``remotesign validate``: validate a signed file from the command line, with this instance's
trust configuration (built-in CA, configured anchors and trusted lists) when one is set up."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path


def _service_options(args: argparse.Namespace, extra, at, detached, policy):  # type: ignore[no-untyped-def]
    """Options from the instance (remotesign/cli/home.py finds it), or None without one: then say
    so, since a signature its CA issued would fail as untrusted for no visible reason."""
    if args.standalone:
        return None, None
    from remotesign.cli.home import find_instance, missing
    from remotesign.service import Services

    choice, settings, problem = find_instance()
    if problem is not None:
        print(f"remotesign validate: {missing(choice, problem)}; validating without an instance's trust anchors "
              "(built-in CA, REMOTESIGN_TRUST_ANCHORS, REMOTESIGN_TRUSTED_LISTS): add anchors with --trust CERT, "
              "or set REMOTESIGN_HOME to an instance (--standalone: no such note)", file=sys.stderr)
        return None, None
    svc = Services(settings, create=False)
    return svc, svc.validation.options(None, extra_anchors=extra, at=at, detached=detached, policy=policy)


def cmd_validate(args: argparse.Namespace) -> int:
    from remotesign.api.validation import parse_time
    from remotesign.api.errors import ApiError
    from remotesign.trust.revocation import load_certificates
    from remotesign.validation.engine import validate_path
    from remotesign.validation.model import ValidationInputError
    from remotesign.validation.options import DetachedDocument, ValidationOptions
    from remotesign.validation.policy import PolicyError, builtin_policy, resolve_policy
    from remotesign.validation.reports import detailed_report, report_v1, text_report

    path = Path(args.file)
    if not path.is_file():
        print(f"remotesign validate: {path}: no such file", file=sys.stderr)
        return 2
    try:
        at = parse_time(args.at)
        extra = [c for t in args.trust for c in load_certificates(Path(t).read_bytes())]
    except ApiError as exc:
        print(f"remotesign validate: {exc.message}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"remotesign validate: cannot read a --trust certificate: {exc}", file=sys.stderr)
        return 2
    try:
        policy = resolve_policy(args.policy) if args.policy else None
    except PolicyError as exc:
        print(f"remotesign validate: invalid policy: {exc}", file=sys.stderr)
        return 2
    detached = [DetachedDocument(name=Path(d).name, path=Path(d)) for d in args.detached]
    svc, options = _service_options(args, extra, at, detached, policy)
    if options is None:
        options = ValidationOptions(trust_anchors=tuple(extra), validation_time=at, detached=tuple(detached),
                                    allow_fetching=args.online, policy=policy or builtin_policy())
    try:
        document = asyncio.run(validate_path(path, options, filename=path.name))
    except ValidationInputError as exc:
        print(f"remotesign validate: {path.name}: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    finally:
        if svc is not None:
            svc.close()
    if args.pdf:
        from remotesign.validation.html_report import render_pdf
        Path(args.pdf).write_bytes(render_pdf(document))
        print(f"{path.name}: PDF report written to {args.pdf}", file=sys.stderr)
    if args.html and args.html != "-":
        from remotesign.validation.html_report import render_html
        Path(args.html).write_text(render_html(document), encoding="utf-8")
        print(f"{path.name}: HTML report written to {args.html}", file=sys.stderr)
    if args.html == "-":
        from remotesign.validation.html_report import render_html
        sys.stdout.write(render_html(document))
    elif args.etsi:
        from remotesign.validation.etsi_report import etsi_validation_report
        sys.stdout.buffer.write(etsi_validation_report(document))
    elif args.json:
        data = detailed_report(document) if args.detailed else report_v1(document)
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(text_report(document), end="")
    return 0 if document.all_passed else 1


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "validate", help="validate the signatures of a PDF, XML, CMS/PKCS#7 or ASiC file",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Validate every signature in FILE per ETSI EN 319 102-1 and print a report.\n"
                    "Trust: the instance's built-in CA, REMOTESIGN_TRUST_ANCHORS and REMOTESIGN_TRUSTED_LISTS "
                    "when an instance is found\n(see `remotesign --help`; without one a note on stderr says so), "
                    "plus every --trust certificate.\n"
                    "Exit status: 0 when every signature is TOTAL-PASSED, 1 otherwise, 2 when FILE "
                    "cannot be validated (not signed, unreadable).",
        epilog="examples:\n  remotesign validate contract.pdf\n"
               "  remotesign validate --trust partner-root.pem --at 2024-01-31T12:00:00Z invoice.asice\n"
               "  remotesign validate --json --detached data.xml data.xml.p7s\n"
               "  remotesign validate --policy my-policy.toml contract.pdf")
    p.add_argument("file", help="the signed file")
    p.add_argument("--trust", action="append", default=[], metavar="CERT",
                   help="an extra trust anchor, PEM or DER (repeatable)")
    p.add_argument("--at", metavar="TIME", help="validate at this past time (ISO 8601, e.g. 2024-01-31T12:00:00Z)")
    p.add_argument("--detached", action="append", default=[], metavar="FILE",
                   help="content of a detached signature (repeatable; matched by file name)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (eParaksts v1 'data' shape)")
    p.add_argument("--detailed", action="store_true", help="with --json: the detailed report instead")
    p.add_argument("--etsi", action="store_true", help="print the ETSI TS 119 102-2 XML report")
    p.add_argument("--html", metavar="OUT", help="write the readable HTML report to OUT ('-': print it instead of "
                                                 "the text report)")
    p.add_argument("--pdf", metavar="OUT", help="write the readable report as PDF to OUT")
    p.add_argument("--policy", metavar="FILE|NAME",
                   help="validation policy: a TOML policy file or a built-in one (default, dss); "
                        "default: the instance's (REMOTESIGN_VALIDATION_POLICY); see 'remotesign policy show'")
    p.add_argument("--online", action="store_true",
                   help="without an initialised instance: fetch missing OCSP/CRL data over the network")
    p.add_argument("--standalone", action="store_true",
                   help="ignore this instance's trust configuration; trust only --trust certificates")
    p.set_defaults(func=cmd_validate)

    policy = sub.add_parser("policy", help="validation policies",
                            description="Validation policies: the level of every check and the cryptographic suite.")
    psub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    p = psub.add_parser("show", help="check a policy file and print its checks and cryptographic suite",
                        epilog="examples:\n  remotesign policy show\n  remotesign policy show dss\n"
                               "  remotesign policy show my-policy.toml",
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("policy", nargs="?", default="default", metavar="FILE|NAME",
                   help="a TOML policy file or a built-in policy (default, dss); default: default")
    p.set_defaults(func=cmd_policy_show)
    p = psub.add_parser("template", help="print the default policy file, to copy and edit")
    p.set_defaults(func=cmd_policy_template)


def cmd_policy_show(args: argparse.Namespace) -> int:
    from remotesign.validation.policy import PolicyError, resolve_policy

    try:
        policy = resolve_policy(args.policy)
    except PolicyError as exc:
        print(f"remotesign policy: {exc}", file=sys.stderr)
        return 2
    print(f"{policy.name}: {policy.description}" if policy.description else policy.name)
    print()
    for check, level in policy.checks():
        print(f"  {level.value:7} {check.id:40} {check.description} (FAIL: {check.failure.value})")
    print()
    suite = policy.crypto
    print("cryptographic suite (accepted for what is proven to exist until the date):")
    for label, table in (("digest", suite.digests), ("curve", suite.curves),
                         ("certificate digest", suite.certificate_digests)):
        for name, until in sorted(table.items()):
            print(f"  {label} {name}: {_until(until)}")
    for label, sizes in (("RSA", suite.rsa), ("DSA", suite.dsa)):
        for bits, until in sizes:
            print(f"  {label} >= {bits} bits: {_until(until)}")
    return 0


def _until(until: object) -> str:
    from datetime import datetime, timedelta

    if until is None:
        return "no end date"
    if isinstance(until, datetime):
        return f"until {(until - timedelta(days=1)).date().isoformat()}"
    return "never"


def cmd_policy_template(args: argparse.Namespace) -> int:
    from importlib import resources

    sys.stdout.write(resources.files("remotesign.validation.policies").joinpath("default.toml").read_text("utf-8"))
    return 0
