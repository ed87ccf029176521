"""``remotesign batch``: many documents validated, or extended to T / LT / LTA, by a running
service over HTTP -- as a relying party does, with the service's URL and a client's credentials,
not with the local instance the operator commands open. The work runs on the service's job queue;
these commands submit, draw the progress and collect the results, so Ctrl-C stops the watching,
not the batch (``remotesign batch wait ID`` picks it up again)."""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the client (httpx) is imported when a batch command runs, not for `remotesign --help`
    from remotesign_client import Remotesign
    from remotesign_client.batches import Batch, BatchItem
    from remotesign_client.errors import RemotesignError

DEFAULT_URL = "http://127.0.0.1:8080"
INTERRUPTED = 130  # as a shell reports a command ended by Ctrl-C
SCOPES = {"validation": "remotesign:validate", "extension": "remotesign:signatures"}

EPILOG = f"""The service: --url, else $REMOTESIGN_URL, else {DEFAULT_URL}. The relying party: --client-id
or $REMOTESIGN_CLIENT_ID, and its secret from $REMOTESIGN_CLIENT_SECRET, --client-secret-file F
or --client-secret-stdin (never as an argument: other users see arguments in ps). Validation needs
the scope remotesign:validate, extension remotesign:signatures.

Progress goes to stderr: one line redrawn in place on a terminal, else a line whenever the numbers
change. Ctrl-C stops waiting; the batch goes on at the service and `remotesign batch wait ID`
follows it again (a service keeps a batch and its results 7 days by default).

examples:
  export REMOTESIGN_CLIENT_ID=... REMOTESIGN_CLIENT_SECRET=...
  remotesign batch validate invoices/*.pdf --reports reports/
  remotesign batch extend signed/*.pdf --level LTA --out archive/
  remotesign batch wait b0c1... --out archive/

Exit status: 0 when every document is done (validate: and every signature TOTAL-PASSED), 1 when
one is not or the service refused, 2 for a usage error, 130 when Ctrl-C stopped the waiting."""


class CliError(Exception):
    """A problem told in one line; ``status``: 2 for usage, 1 for a refusal."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


# -- the service ---------------------------------------------------------------------------------------
def _url(args: argparse.Namespace) -> str:
    return str(args.url or os.environ.get("REMOTESIGN_URL") or DEFAULT_URL).rstrip("/")


def _secret(args: argparse.Namespace) -> str | None:
    from remotesign.cli.users import CliError as SecretError, _file_secret, _stdin_line

    try:
        if args.client_secret_stdin:
            return _stdin_line("client secret")
        if args.client_secret_file:
            return _file_secret(args.client_secret_file, "client secret")
    except SecretError as exc:
        raise CliError(str(exc)) from exc
    return os.environ.get("REMOTESIGN_CLIENT_SECRET")


def _connect(args: argparse.Namespace, scope: str | None = None) -> "Remotesign":
    """The client of the service named by the options; ``scope``: the one scope the command needs
    (None: every scope the client has, for commands that do not know the batch's kind yet)."""
    from remotesign_client import Remotesign

    client_id = args.client_id or os.environ.get("REMOTESIGN_CLIENT_ID")
    secret = _secret(args)
    if not client_id or not secret:
        raise CliError("no client credentials: give --client-id (or REMOTESIGN_CLIENT_ID) and the secret in "
                       "REMOTESIGN_CLIENT_SECRET, --client-secret-file F or --client-secret-stdin")
    return Remotesign(_url(args), client_id, secret, scope=scope)


def _explain(exc: "RemotesignError", url: str) -> str:
    """One line that says what to do, for the failures a command line meets most."""
    from remotesign_client.errors import AuthenticationError, NotFound, PermissionDenied, TransportError

    detail = exc.message or exc.code or "no detail"
    if isinstance(exc, TransportError):
        return f"cannot reach the service at {url}: {detail} (is it running? --url or REMOTESIGN_URL names it)"
    if isinstance(exc, AuthenticationError):
        return (f"the service at {url} refused the client credentials ({exc.code or 'HTTP 401'}: {detail}); check "
                "--client-id and the secret (REMOTESIGN_CLIENT_ID / REMOTESIGN_CLIENT_SECRET)")
    if isinstance(exc, PermissionDenied):
        return f"not allowed: {detail} ({exc.code or 'HTTP 403'})"
    if isinstance(exc, NotFound):
        return f"not found at {url}: {detail} ({exc.code or 'HTTP 404'})"
    return str(exc)


def command(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turns the failures of a batch command into one line on stderr and its exit status."""

    @functools.wraps(func)
    def run(args: argparse.Namespace) -> int:
        from remotesign_client.errors import RemotesignError

        try:
            return func(args)
        except CliError as exc:
            print(f"remotesign batch: error: {exc}", file=sys.stderr)
            return exc.status
        except RemotesignError as exc:
            print(f"remotesign batch: error: {_explain(exc, _url(args))}", file=sys.stderr)
            return 1
        except KeyboardInterrupt:  # before anything was submitted, or while only reading
            print("remotesign batch: interrupted", file=sys.stderr)
            return INTERRUPTED

    return run


# -- local files ---------------------------------------------------------------------------------------
def _inputs(names: Sequence[str], *, saved: bool) -> list[Path]:
    """The documents to submit. The service knows each by its file name; when results are
    ``saved`` under it, two documents of one name would collide, so that stops here."""
    paths = [Path(n) for n in names]
    for p in paths:
        if not p.is_file():
            raise CliError(f"{p}: no such file")
    seen: dict[str, Path] = {}
    for p in paths if saved else ():
        if p.name in seen:
            raise CliError(f"{seen[p.name]} and {p} have the same name, under which the results are saved: "
                           "rename one or submit them in separate batches")
        seen[p.name] = p
    return paths


def _directory(path: str) -> Path:
    out = Path(path)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise CliError(f"cannot create {out}: {exc.strerror or exc}", 1) from exc
    return out


def _refuse_existing(out: Path, names: Sequence[str], force: bool) -> None:
    """Before any work: existing outputs stop the command unless --force (checked again when written)."""
    taken = [out / n for n in names if (out / n).exists()]
    if taken and not force:
        shown = ", ".join(str(t) for t in taken[:3]) + (f" and {len(taken) - 3} more" if len(taken) > 3 else "")
        raise CliError(f"{shown} exist{'s' if len(taken) == 1 else ''} (--force replaces)", 1)


def _file_names(items: Sequence["BatchItem"]) -> dict[int, str]:
    """A safe local name per document: the service's name without any directory part, made unique
    (a batch submitted elsewhere may hold two documents of one name)."""
    names: dict[int, str] = {}
    used: set[str] = set()
    for item in items:
        base = item.name.replace("\\", "/").rsplit("/", 1)[-1]
        if base in ("", ".", ".."):
            base = f"document-{item.position}"
        if base in used:
            stem, dot, suffix = base.rpartition(".")
            base = f"{stem}-{item.position}.{suffix}" if dot and stem else f"{base}-{item.position}"
        used.add(base)
        names[item.position] = base
    return names


# -- waiting -------------------------------------------------------------------------------------------
def _hint(args: argparse.Namespace, batch: "Batch") -> str:
    """The command that follows this batch again, with the options that matter for collecting."""
    words = ["remotesign", "batch", "wait", batch.id]
    if args.url:
        words += ["--url", args.url]
    if batch.kind == "extension":
        words += ["--out", args.out or "DIR"] + (["--force"] if getattr(args, "force", False) else [])
    elif getattr(args, "reports", None):
        words += ["--reports", args.reports]
    return " ".join(words)


def _follow(rs: "Remotesign", batch: "Batch", args: argparse.Namespace) -> int:
    """Draw the progress until the batch is finished, then collect; Ctrl-C: say how to go on."""
    from remotesign.cli.progress import ProgressBar

    bar = ProgressBar(sys.stderr)
    outage = [False]  # a note once per outage, not once per poll

    def show(b: "Batch") -> None:
        outage[0] = False
        bar.update(b.total, b.done, b.failed, b.running)

    def retry(exc: "RemotesignError") -> None:
        if not outage[0]:
            outage[0] = True
            bar.close()
            print(f"note: the service does not answer ({exc}); asking again", file=sys.stderr)

    try:
        show(batch)
        if not batch.finished:
            batch = rs.batches.wait(batch.id, interval=args.interval, on_progress=show, on_retry=retry)
        bar.close()
        return _collect(rs, batch, args)
    except KeyboardInterrupt:
        bar.close()
        print(f"stopped waiting: batch {batch.id} goes on at the service; follow it with\n  {_hint(args, batch)}",
              file=sys.stderr)
        return INTERRUPTED


# -- results -------------------------------------------------------------------------------------------
def _validation_row(item: "BatchItem") -> tuple[str, str, str, str]:
    if item.state == "failed":
        return item.name, item.state, "-", f"{item.error_code}: {item.error_message}"
    if item.state != "done":
        return item.name, item.state, "-", ""
    outcome = item.outcome or {}
    verdicts = ", ".join(outcome.get("indications") or ()) or "no signature"
    form = outcome.get("signature_form")
    return item.name, item.state, f"{item.passed}/{item.signatures}", f"{form}: {verdicts}" if form else verdicts


def _extension_row(item: "BatchItem", detail: str = "") -> tuple[str, str, str, str]:
    if item.state == "failed":
        return item.name, item.state, "-", f"{item.error_code}: {item.error_message}"
    outcome = item.outcome or {}
    if item.state != "done":
        return item.name, item.state, "-", detail
    levels = f"{','.join(outcome.get('levels_before') or ()) or '?'} -> {','.join(outcome.get('levels_after') or ())}"
    return item.name, item.state, levels, detail


def _print_items(kind: str, items: Sequence["BatchItem"], details: dict[int, str] | None = None) -> None:
    from remotesign.cli.tables import print_table

    if kind == "validation":
        print_table(("NAME", "STATE", "PASSED", "RESULT"), (_validation_row(i) for i in items))
    else:
        print_table(("NAME", "STATE", "LEVELS", "RESULT"),
                    (_extension_row(i, (details or {}).get(i.position, "")) for i in items))


def _collect(rs: "Remotesign", batch: "Batch", args: argparse.Namespace) -> int:
    """The finished batch's outcome per document, its results saved where asked; the exit status."""
    items = rs.batches.items(batch.id)
    names = _file_names(items)
    if batch.kind == "validation":
        if args.reports:
            reports = _directory(args.reports)
            for item in items:
                if item.state == "done":
                    target = reports / f"{names[item.position]}.json"
                    try:
                        rs.batches.download_result(batch.id, item.position, target)
                    except OSError as exc:
                        raise CliError(f"cannot write {target}: {exc.strerror or exc}", 1) from exc
            print(f"reports of {sum(i.state == 'done' for i in items)} document(s) saved in {reports}", file=sys.stderr)
        if args.json:
            print(json.dumps([dict(i.raw) for i in items], indent=2, ensure_ascii=False))
        else:
            _print_items(batch.kind, items)
        return 0 if all(i.all_passed for i in items) else 1
    saved, details = _save_extended(rs, batch, items, names, args)
    if args.json:
        print(json.dumps([dict(i.raw) for i in items], indent=2, ensure_ascii=False))
    else:
        _print_items(batch.kind, items, details)
    return 0 if all(i.state == "done" for i in items) and saved else 1


def _save_extended(rs: "Remotesign", batch: "Batch", items: Sequence["BatchItem"], names: dict[int, str],
                   args: argparse.Namespace) -> tuple[bool, dict[int, str]]:
    """Each extended document into --out under its name, never over a file unless --force."""
    details: dict[int, str] = {}
    if not args.out:
        for item in items:
            if item.state == "done":
                details[item.position] = "not saved (give --out DIR)"
        return True, details
    out = _directory(args.out)
    saved = True
    for item in items:
        if item.state != "done":
            continue
        target = out / names[item.position]
        try:
            rs.batches.download_result(batch.id, item.position, target, overwrite=args.force)
            details[item.position] = str(target)
        except FileExistsError:
            details[item.position] = f"not saved: {target} exists (--force replaces)"
            saved = False
        except OSError as exc:
            details[item.position] = f"not saved: {target}: {exc.strerror or exc}"
            saved = False
    return saved, details


# -- commands ------------------------------------------------------------------------------------------
def _submitted(submit: Callable[[], "Batch"]) -> "Batch | None":
    """Send the batch; None when Ctrl-C cut the upload short (told on stderr)."""
    try:
        batch = submit()
    except KeyboardInterrupt:
        print("remotesign batch: interrupted while submitting; if the service had received everything the batch "
              "runs anyway: `remotesign batch list` shows it", file=sys.stderr)
        return None
    noun = "validation" if batch.kind == "validation" else f"extension to {batch.level}"
    print(f"batch {batch.id}: {batch.total} document(s) submitted for {noun}", file=sys.stderr)
    return batch


@command
def cmd_validate(args: argparse.Namespace) -> int:
    files = _inputs(args.files, saved=bool(args.reports))
    if args.reports:
        _directory(args.reports)
    with _connect(args, SCOPES["validation"]) as rs:
        batch = _submitted(lambda: rs.batches.submit_validations(files, policy=args.policy))
        return INTERRUPTED if batch is None else _follow(rs, batch, args)


@command
def cmd_extend(args: argparse.Namespace) -> int:
    files = _inputs(args.files, saved=True)
    _refuse_existing(_directory(args.out), [f.name for f in files], args.force)
    with _connect(args, SCOPES["extension"]) as rs:
        batch = _submitted(lambda: rs.batches.submit_extensions(files, args.level))
        return INTERRUPTED if batch is None else _follow(rs, batch, args)


def _check_kind_options(args: argparse.Namespace, batch: "Batch") -> None:
    if batch.kind == "validation" and (args.out or args.force):
        raise CliError(f"batch {batch.id} is a validation: --out and --force are for extensions (--reports DIR "
                       "saves the reports)")
    if batch.kind == "extension" and args.reports:
        raise CliError(f"batch {batch.id} is an extension: --reports is for validations (--out DIR saves the "
                       "extended documents)")


@command
def cmd_wait(args: argparse.Namespace) -> int:
    with _connect(args) as rs:
        batch = rs.batches.batch(args.batch_id)
        _check_kind_options(args, batch)
        return _follow(rs, batch, args)


@command
def cmd_status(args: argparse.Namespace) -> int:
    from remotesign.cli.progress import render

    with _connect(args) as rs:
        batch = rs.batches.batch(args.batch_id)
        items = rs.batches.items(batch.id)
    if args.json:
        print(json.dumps({"batch": dict(batch.raw), "items": [dict(i.raw) for i in items]}, indent=2,
                         ensure_ascii=False))
        return 0
    what = f"extension to {batch.level}" if batch.kind == "extension" else \
        f"validation (policy {batch.policy or 'of the service'})"
    print(f"batch {batch.id}: {what}, {batch.status}; {render(batch.total, batch.done, batch.failed, batch.running)}")
    times = [f"created {_when(batch.created_at)}"] + ([f"finished {_when(batch.finished_at)}"] if batch.finished_at
                                                       else []) + [f"kept until {_when(batch.expires_at)}"]
    print(", ".join(times))
    print()
    _print_items(batch.kind, items)
    return 0


@command
def cmd_list(args: argparse.Namespace) -> int:
    from remotesign.cli.tables import print_table

    with _connect(args) as rs:
        batches = rs.batches.batches()
    if args.json:
        print(json.dumps([dict(b.raw) for b in batches], indent=2, ensure_ascii=False))
        return 0
    print_table(("ID", "KIND", "STATUS", "TOTAL", "DONE", "FAILED", "CREATED"),
                ((b.id, b.kind, b.status, b.total, b.done, b.failed, _when(b.created_at)) for b in batches))
    return 0


def _when(at: Any) -> str:
    return f"{at:%Y-%m-%d %H:%M:%SZ}" if at is not None else "-"


# -- the parser ----------------------------------------------------------------------------------------
def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0.05 <= value <= 3600:
        raise argparse.ArgumentTypeError("between 0.05 and 3600 seconds")
    return value


def _add_service_options(p: argparse.ArgumentParser) -> None:
    """The options every batch command shares: which service, and as which relying party."""
    g = p.add_argument_group("service (a running remotesign, over HTTP)")
    g.add_argument("--url", help=f"its base URL (default $REMOTESIGN_URL, else {DEFAULT_URL})")
    g.add_argument("--client-id", metavar="ID", help="the relying party's client id (default $REMOTESIGN_CLIENT_ID)")
    secret = g.add_mutually_exclusive_group()
    secret.add_argument("--client-secret-file", metavar="F",
                        help="read the client secret from the first line of F (default $REMOTESIGN_CLIENT_SECRET)")
    secret.add_argument("--client-secret-stdin", action="store_true", help="read the client secret from stdin")


def _add_waiting_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--interval", type=_interval, default=1.0, metavar="SECONDS",
                   help="how often to ask for the progress (default 1)")
    p.add_argument("--json", action="store_true", help="print the documents' outcomes as JSON (the service's "
                                                       "items) instead of the table")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    batch = sub.add_parser("batch", help="validate or extend many documents on a running service, with a progress bar",
                           description="Validate many signed documents, or extend their signatures to T, LT or LTA, "
                                       "on a running remotesign service (its batches API), showing the progress.",
                           formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    bsub = batch.add_subparsers(dest="batch_command", required=True, metavar="ACTION")
    raw = argparse.RawDescriptionHelpFormatter

    p = bsub.add_parser("validate", formatter_class=raw, epilog=EPILOG,
                        help="validate FILEs in one batch; one line per document",
                        description="Submit FILEs for validation, show the progress, then print each document's "
                                    "state and how many of its signatures are TOTAL-PASSED.")
    p.add_argument("files", nargs="+", metavar="FILE", help="a signed document (PDF, XML, CMS, ASiC, ...)")
    p.add_argument("--policy", metavar="NAME", help="a built-in validation policy of the service (default: its own)")
    p.add_argument("--reports", metavar="DIR", help="save each document's JSON report (simpleReport, detailedReport) "
                                                    "as DIR/NAME.json, replacing an older one")
    _add_waiting_options(p)
    _add_service_options(p)
    p.set_defaults(func=cmd_validate)

    p = bsub.add_parser("extend", formatter_class=raw, epilog=EPILOG,
                        help="extend FILEs' signatures to T, LT or LTA; the results into --out",
                        description="Submit FILEs for extension, show the progress, then save each extended "
                                    "document into DIR under its own name.")
    p.add_argument("files", nargs="+", metavar="FILE", help="a signed document (PAdES, CAdES, XAdES, ASiC)")
    p.add_argument("--level", required=True, choices=("T", "LT", "LTA"), help="the level to extend to")
    p.add_argument("--out", required=True, metavar="DIR", help="where the extended documents go (created if missing)")
    p.add_argument("--force", action="store_true", help="replace files of the same name in DIR")
    _add_waiting_options(p)
    _add_service_options(p)
    p.set_defaults(func=cmd_extend)

    p = bsub.add_parser("wait", formatter_class=raw, epilog=EPILOG,
                        help="wait for a batch with the progress bar, then as validate / extend",
                        description="Follow a batch (e.g. after Ctrl-C) until it is finished, then print each "
                                    "document's outcome and save the results as validate or extend would.")
    p.add_argument("batch_id", metavar="ID", help="the batch's id")
    p.add_argument("--reports", metavar="DIR", help="validation: save each JSON report as DIR/NAME.json")
    p.add_argument("--out", metavar="DIR", help="extension: save each extended document into DIR")
    p.add_argument("--force", action="store_true", help="extension: replace files of the same name in DIR")
    _add_waiting_options(p)
    _add_service_options(p)
    p.set_defaults(func=cmd_wait)

    p = bsub.add_parser("status", formatter_class=raw, epilog=EPILOG,
                        help="a batch's progress and its documents, once",
                        description="Print a batch's progress and each document's state and outcome, without "
                                    "waiting.")
    p.add_argument("batch_id", metavar="ID", help="the batch's id")
    p.add_argument("--json", action="store_true", help="the batch and its items as JSON")
    _add_service_options(p)
    p.set_defaults(func=cmd_status)

    p = bsub.add_parser("list", formatter_class=raw, epilog=EPILOG,
                        help="your most recent batches (newest first)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_service_options(p)
    p.set_defaults(func=cmd_list)
