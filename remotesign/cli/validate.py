"""``remotesign validate``: validate a signed file from the command line, with this instance's
trust configuration (built-in CA, configured anchors and trusted lists) when one is set up."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

from remotesign.config import load_settings


def _service_options(args: argparse.Namespace, extra, at, detached):  # type: ignore[no-untyped-def]
    """Options from the local instance when its database exists, else None."""
    settings = load_settings()
    if args.standalone:
        return None, None
    if settings.database_url.startswith("sqlite:///") and not (settings.home / "remotesign.db").exists():
        return None, None
    from remotesign.service import Services

    svc = Services(settings)
    return svc, svc.validation.options(None, extra_anchors=extra, at=at, detached=detached)


def cmd_validate(args: argparse.Namespace) -> int:
    from remotesign.api.validation import parse_time
    from remotesign.api.errors import ApiError
    from remotesign.trust.revocation import load_certificates
    from remotesign.validation.engine import validate_path
    from remotesign.validation.model import ValidationInputError
    from remotesign.validation.options import DetachedDocument, ValidationOptions
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
    detached = [DetachedDocument(name=Path(d).name, path=Path(d)) for d in args.detached]
    svc, options = _service_options(args, extra, at, detached)
    if options is None:
        options = ValidationOptions(trust_anchors=tuple(extra), validation_time=at, detached=tuple(detached),
                                    allow_fetching=args.online)
    try:
        document = asyncio.run(validate_path(path, options, filename=path.name))
    except ValidationInputError as exc:
        print(f"remotesign validate: {path.name}: {exc.message} ({exc.code})", file=sys.stderr)
        return 2
    finally:
        if svc is not None:
            svc.close()
    if args.etsi:
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
                    "Trust: this instance's built-in CA, REMOTESIGN_TRUST_ANCHORS and REMOTESIGN_TRUSTED_LISTS "
                    "when $REMOTESIGN_HOME is initialised, plus every --trust certificate.\n"
                    "Exit status: 0 when every signature is TOTAL-PASSED, 1 otherwise, 2 when FILE "
                    "cannot be validated (not signed, unreadable).",
        epilog="examples:\n  remotesign validate contract.pdf\n"
               "  remotesign validate --trust partner-root.pem --at 2024-01-31T12:00:00Z invoice.asice\n"
               "  remotesign validate --json --detached data.xml data.xml.p7s")
    p.add_argument("file", help="the signed file")
    p.add_argument("--trust", action="append", default=[], metavar="CERT",
                   help="an extra trust anchor, PEM or DER (repeatable)")
    p.add_argument("--at", metavar="TIME", help="validate at this past time (ISO 8601, e.g. 2024-01-31T12:00:00Z)")
    p.add_argument("--detached", action="append", default=[], metavar="FILE",
                   help="content of a detached signature (repeatable; matched by file name)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (eParaksts v1 'data' shape)")
    p.add_argument("--detailed", action="store_true", help="with --json: the detailed report instead")
    p.add_argument("--etsi", action="store_true", help="print the ETSI TS 119 102-2 XML report")
    p.add_argument("--online", action="store_true",
                   help="without an initialised instance: fetch missing OCSP/CRL data over the network")
    p.add_argument("--standalone", action="store_true",
                   help="ignore this instance's trust configuration; trust only --trust certificates")
    p.set_defaults(func=cmd_validate)
