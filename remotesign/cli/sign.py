"""``remotesign sign FILE``: sign a file on this machine — a PDF as PAdES, any files in an ASiC-E
container (XAdES), or any file as CAdES — with a server-held sign identity of the instance (its
user's PIN from stdin or a file) or with a PKCS#12 file, at level B, T, LT or LTA with the
instance's time-stamping authority (remotesign/core/file_signing.py does the work)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """examples:
  remotesign sign contract.pdf --p12 me.p12 --password-stdin --level LT < password.txt
  echo 1234 | remotesign sign contract.pdf --identity 6f1c...e2 --pin-stdin -o signed.pdf
  remotesign sign --format asice a.txt b.xml --p12 me.p12 --password-stdin -o bundle.asice
  remotesign sign --format cades --attached data.bin --p12 me.p12 --password-stdin --level T

Secrets come from stdin (one line; a prompt without echo at a terminal) or from a file, never
as arguments. Exit status: 0 signed, 1 refused (wrong PIN, untrusted certificate, ...), 2 usage."""


def _level(text: str):  # type: ignore[no-untyped-def]
    from remotesign.formats.interface import Level

    try:
        return Level.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: one of B, T, LT, LTA") from None


def cmd_sign(args: argparse.Namespace) -> int:
    from remotesign.cli.home import open_services
    from remotesign.cli.users import CliError, _errors, _file_secret, _stdin_line
    from remotesign.core.file_signing import (FileSignature, FileSigningError, default_output, sign_with_identity,
                                              sign_with_pkcs12)
    from remotesign.core.identities import PinRefused
    from remotesign.formats.interface import Packaging

    def usage(message: str) -> int:
        print(f"remotesign sign: error: {message}", file=sys.stderr)
        return 2

    files = [Path(f) for f in args.files]
    kind = args.format
    if kind is None:
        kind = "pades" if len(files) == 1 and _looks_like_pdf(files[0]) else "asice"
    if kind != "cades" and (args.attached or args.detached):
        return usage("--attached and --detached are for --format cades")
    if (args.identity is None) == (args.p12 is None):
        return usage("give --identity ID (a sign identity of this instance) or --p12 FILE")
    if args.identity is not None and not (args.pin_stdin or args.pin_file):
        return usage("signing with an identity needs its PIN: --pin-stdin or --pin-file F")
    if args.p12 is not None and (args.pin_stdin or args.pin_file):
        return usage("a PKCS#12 file takes a password (--password-stdin / --password-file), not a PIN")
    if args.identity is not None and (args.password_stdin or args.password_file):
        return usage("an identity takes its PIN (--pin-stdin / --pin-file), not a password")
    try:
        spec = FileSignature(kind, args.level, Packaging.ENVELOPING if args.attached else None, args.hash,
                             args.reason)
    except FileSigningError as exc:
        return usage(exc.message)
    output = Path(args.output) if args.output else default_output(files[0], spec)
    try:
        if args.identity is not None:
            secret = _stdin_line("PIN") if args.pin_stdin else _file_secret(args.pin_file, "PIN")
        elif args.password_stdin:
            secret = _stdin_line("PKCS#12 password")
        elif args.password_file:
            secret = _file_secret(args.password_file, "PKCS#12 password")
        else:
            secret = None
        p12 = None
        if args.p12 is not None:
            try:
                p12 = Path(args.p12).read_bytes()
            except OSError as exc:
                raise CliError(f"cannot read {args.p12}: {exc.strerror}") from exc
    except CliError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    svc = open_services()
    try:
        if p12 is not None:
            result = sign_with_pkcs12(svc, p12, secret, spec, files, output, force=args.force)
        else:
            assert secret is not None
            result = sign_with_identity(svc, args.identity, secret, spec, files, output, force=args.force)
    except PinRefused as exc:
        print(f"error: {exc.message} (nothing signed)", file=sys.stderr)
        return 1
    except _errors() as exc:
        print(f"error: {getattr(exc, 'message', None) or exc}", file=sys.stderr)
        return 1
    finally:
        svc.close()
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    label = {"pades": "PAdES", "asice": "ASiC-E XAdES", "cades": "CAdES"}[result.kind]
    if result.kind == "cades":
        label += " attached" if spec.effective_packaging is Packaging.ENVELOPING else " detached"
    print(f"signed {', '.join(f.name for f in files)} -> {result.output} ({label} B-{result.level.name}, "
          f"signer {result.signer_subject}, sha256 {result.sha256})")
    return 0


def _looks_like_pdf(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return b"%PDF-" in fh.read(1024)
    except OSError:
        return path.suffix.lower() == ".pdf"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "sign", help="sign a file: PDF as PAdES, or any files as ASiC-E (XAdES) or CAdES",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG,
        description="Sign FILE with a sign identity of this instance (its user's PIN is checked and counts "
                    "towards the lock; the use is audited) or with a PKCS#12 file. A PDF becomes PAdES; other "
                    "files an ASiC-E container with a XAdES signature (several FILEs: one container; an "
                    "ASiC-E given alone gets a further, parallel signature), or with "
                    "--format cades a detached (.p7s) or attached (.p7m) CAdES signature. T and above are "
                    "time-stamped by the instance's TSA; LT adds the certificates and revocation data, LTA an "
                    "archive time-stamp. The output (default FILE-signed.pdf / .asice / .p7s / .p7m) is "
                    "written only when the signature is complete.")
    p.add_argument("files", nargs="+", metavar="FILE", help="the file to sign (ASiC-E: one or more)")
    p.add_argument("-o", "--output", metavar="OUT", help="where to write the signed file")
    p.add_argument("--format", choices=("pades", "asice", "cades"),
                   help="pades (PDF only), asice (XAdES in an ASiC-E container) or cades; default pades for a PDF, "
                        "else asice")
    p.add_argument("--level", type=_level, default="B", metavar="B|T|LT|LTA", help="baseline level (default B)")
    packaging = p.add_mutually_exclusive_group()
    packaging.add_argument("--detached", action="store_true", help="CAdES: the signature beside the file (default)")
    packaging.add_argument("--attached", action="store_true", help="CAdES: the file inside the signature")
    p.add_argument("--hash", choices=("sha256", "sha384", "sha512"),
                   help="digest algorithm (default: SHA-256 for RSA and P-256 keys, SHA-384 for P-384)")
    p.add_argument("--reason", help="the reason for signing (PAdES)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    who = p.add_argument_group("signer (one of)")
    who.add_argument("--identity", metavar="ID", help="a sign identity of this instance (remotesign identities list)")
    who.add_argument("--p12", metavar="FILE", help="a PKCS#12 file with the key and certificate")
    secrets = p.add_argument_group("secrets").add_mutually_exclusive_group()
    secrets.add_argument("--pin-stdin", action="store_true", help="read the identity's signing PIN from stdin")
    secrets.add_argument("--pin-file", metavar="F", help="read the identity's signing PIN from the first line of F")
    secrets.add_argument("--password-stdin", action="store_true", help="read the PKCS#12 password from stdin")
    secrets.add_argument("--password-file", metavar="F", help="read the PKCS#12 password from the first line of F")
    p.set_defaults(func=cmd_sign)
