"""``remotesign drain [--off]``: take this node out of the load balancer before stopping it.

Acts on the node's home, found as every command finds it (remotesign/cli/home.py), and on nothing
else: no database, no settings beyond the home. A node is drained when something is wrong, so this
must work while the database or the blob store is down (remotesign/drain.py says why a file).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from remotesign.drain import drain_info, marker, start_draining, stop_draining

EPILOG = """Rolling restart, one node at a time: `remotesign drain` on the node; wait until the balancer
has taken it out (its health check fails: with deploy/haproxy/haproxy.cfg within about 7 s) and
its requests in flight are done; restart it (`remotesign serve` removes the marker at start);
wait until its /health answers 200 again. deploy/README.md, "Rolling restart"."""


def _home() -> Path:
    """The node's home; InstanceError (one line, exit 1) when the lookup leads nowhere."""
    from remotesign.cli.home import locate_home, missing, remedy
    from remotesign.instance import InstanceError

    choice = locate_home()
    if not choice.home.is_dir():
        raise InstanceError(f"{missing(choice, 'absent')}: {remedy(choice)}")
    return choice.home


def _actor() -> str:
    return f"cli:{os.environ.get('SUDO_USER') or os.environ.get('USER') or 'unknown'}"


def cmd_drain(args: argparse.Namespace) -> int:
    home = _home()
    if args.off:
        if stop_draining(home):
            print(f"{home}: not draining any more; /health answers as before (200 when ready)")
        else:
            print(f"{home}: was not draining")
        return 0
    if start_draining(home, _actor()):
        print(f"{home}: draining. /health answers 503 \"draining\" from now on, so the load balancer takes this "
              f"node out; requests in flight go on. Stop the node once the balancer shows it down and idle; "
              f"`remotesign serve` (a restart) or `remotesign drain --off` ends it. Marker: {marker(home)}")
    else:
        since = (drain_info(home) or {}).get("since")
        print(f"{home}: draining already" + (f" (since {since})" if since else ""))
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("drain", help="take this node out of the load balancer (/health answers 503) before a stop",
                       description="Make this node's /health answer 503 with \"status\": \"draining\" (its other "
                                   "fields as usual) until `remotesign drain --off` or the next `remotesign "
                                   "serve`, which removes the marker at start. Requests keep being served: only "
                                   "the balancer's health check sees the difference. The marker is a file in the "
                                   "node's home, so it drains this node, not the others sharing the database.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--off", action="store_true", help="serve again: /health answers as before")
    p.set_defaults(func=cmd_drain)
