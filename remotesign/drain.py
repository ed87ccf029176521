"""Draining a node before it is stopped (rolling restarts behind a load balancer).

``remotesign drain`` leaves a marker file in the node's own home; while it is there, ``/health``
answers 503 ``"status": "draining"``, so the balancer's health check takes the node out of the
rotation while the requests it is running finish, and the node can then be stopped without a
request arriving at a closing socket. ``remotesign serve`` removes a marker left from before, so a
restarted node serves again.

Why a file in the home and not a row in the database: several nodes share one database, and the
drain is one node's state; every serving process of the node (``serve --workers N``) shares the
home, and checking a file's existence on each ``/health`` call costs one stat(2), no query.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

MARKER_NAME = "draining"


def marker(home: Path) -> Path:
    """Where the drain marker of the node whose home is ``home`` lives."""
    return home / MARKER_NAME


def is_draining(home: Path) -> bool:
    """Whether the node is draining (cheap: called on every ``/health``)."""
    return os.path.exists(marker(home))


def drain_info(home: Path) -> dict[str, object] | None:
    """What the marker records (since when, by whom), or None when the node is not draining."""
    try:
        text = marker(home).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def start_draining(home: Path, by: str) -> bool:
    """Put the marker down (idempotent); False when the node was draining already."""
    record = {"since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "by": by}
    try:
        with open(marker(home), "x", encoding="utf-8") as out:  # its existence is what counts
            out.write(json.dumps(record) + "\n")
    except FileExistsError:
        return False
    return True


def stop_draining(home: Path) -> bool:
    """Remove the marker; False when there was none."""
    try:
        marker(home).unlink()
    except FileNotFoundError:
        return False
    return True
