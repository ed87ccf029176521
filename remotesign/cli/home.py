"""Which instance a command acts on, found the same way from any directory.

1. ``$REMOTESIGN_HOME``;
2. else ``home`` in a config file: ``remotesign.toml`` in the current directory or the nearest
   parent holding one, else ``$XDG_CONFIG_HOME/remotesign/config.toml`` (``~/.config/...``);
3. else ``./var``: for ``init`` and ``serve`` always (they create it), for every other command
   only when it already holds an instance.

Only ``init`` and ``serve`` create state. Any other command that finds no instance stops with one
line naming each place it looked, instead of making a new database and master key in whatever
directory it was run from (and leading the operator to ``init`` a second CA there).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remotesign.config import Settings, load_settings
from remotesign.instance import InstanceError, instance_problem

CONFIG_NAME = "remotesign.toml"
HELP = f"""Instance: $REMOTESIGN_HOME; else `home = "DIR"` in ./{CONFIG_NAME} (or the nearest parent
directory's), else in ~/.config/remotesign/config.toml (a relative DIR is relative to the file);
else ./var. Only init and serve create an instance; other commands stop when they find none."""


class NoInstance(InstanceError):
    """No initialised instance where the lookup led (the message names every place looked at)."""


@dataclass(frozen=True)
class HomeChoice:
    home: Path                  # where the instance is, or where init / serve would create it
    origin: str | None          # "$REMOTESIGN_HOME" or a config file; None: the ./var fallback
    looked: tuple[str, ...]     # the places looked at before the choice, for the message


def user_config(env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "remotesign" / "config.toml"


def read_config(path: Path) -> Path:
    """The ``home`` a config file names (relative to the file's directory)."""
    try:
        data: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InstanceError(f"cannot read {path}: {exc}") from exc
    unknown = sorted(set(data) - {"home"})
    if unknown or not isinstance(data.get("home"), str) or not data["home"].strip():
        raise InstanceError(f'{path} must hold one setting, home = "DIR" (found {", ".join(unknown) or "no home"})')
    return (path.parent / Path(data["home"].strip()).expanduser()).resolve()


def locate_home(env: Mapping[str, str] | None = None, cwd: Path | None = None) -> HomeChoice:
    """Where the instance is (or would be created): see the module docstring for the order."""
    env = os.environ if env is None else env
    cwd = (cwd or Path.cwd()).resolve()
    if env.get("REMOTESIGN_HOME"):
        return HomeChoice(Path(env["REMOTESIGN_HOME"]).expanduser().resolve(), "$REMOTESIGN_HOME", ())
    looked = ["$REMOTESIGN_HOME unset"]
    for directory in (cwd, *cwd.parents):
        if (directory / CONFIG_NAME).is_file():
            return HomeChoice(read_config(directory / CONFIG_NAME), str(directory / CONFIG_NAME), tuple(looked))
    looked.append(f"{CONFIG_NAME} in {cwd} or its parents: none")
    config = user_config(env)
    if config.is_file():
        return HomeChoice(read_config(config), str(config), tuple(looked))
    looked.append(f"{config}: none")
    return HomeChoice(cwd / "var", None, tuple(looked))


def missing(choice: HomeChoice, problem: str) -> str:
    """'no remotesign instance found (looked at ...)' for ``choice`` whose home has ``problem``."""
    where = {None: str(choice.home), "$REMOTESIGN_HOME": f"$REMOTESIGN_HOME={choice.home}"}.get(
        choice.origin, f"{choice.origin} -> {choice.home}")
    return f"no remotesign instance found (looked at {'; '.join((*choice.looked, f'{where}: {problem}'))})"


def remedy(choice: HomeChoice) -> str:
    if choice.origin is None:
        return "run `remotesign init` or set REMOTESIGN_HOME"
    if choice.origin == "$REMOTESIGN_HOME":
        return "run `remotesign init` to create one there, or set REMOTESIGN_HOME to an existing instance"
    return f"run `remotesign init` to create one there, or change home in {choice.origin}"


def find_instance() -> tuple[HomeChoice, Settings, str | None]:
    """The lookup, the settings of the home it led to, and why that home holds no instance (None
    when it does)."""
    choice = locate_home()
    settings = load_settings(choice.home)
    return choice, settings, instance_problem(settings)


def instance_settings(*, create: bool) -> Settings:
    """The settings of the instance to act on; without ``create``, NoInstance when there is none."""
    choice, settings, problem = find_instance()
    if problem is not None and not create:
        raise NoInstance(f"{missing(choice, problem)}: {remedy(choice)}")
    return settings


def open_services(default_public_url: str | None = None, *, create: bool = False):  # type: ignore[no-untyped-def]
    """The services of the instance; only ``init`` and ``serve`` pass ``create=True``."""
    from remotesign.service import Services

    return Services(instance_settings(create=create), default_public_url, create=create)
