"""LibreOffice's verdict on the signatures of Office documents: an independent verifier for the
tests (Debian's LibreOffice, driven headless over UNO; run with the system python3, which has
python3-uno).

    /usr/bin/python3 lo_signature_state.py NSS_DIR FILE...

Each document is opened hidden and read-only, as a user would open it, and the state LibreOffice
shows in its status bar (the ``.uno:Signature`` slot) is printed: ``FILE STATE`` per line, where
STATE is sfx2's SignatureState: 0 no signatures, 1 OK, 2 BROKEN (a signed part changed), 3 the
signature is OK but the certificate invalid, 4 OK but the certificate not validated, 5 OK and
trusted but only part of the document is signed, 6 as 5 with the certificate not validated. An
OOXML signature never signs [Content_Types].xml and the metadata LibreOffice counts, so a good
one is 5 (trusted) or 6. NSS_DIR is the NSS database LibreOffice trusts (MOZILLA_CERTIFICATE_FOLDER).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import uno  # type: ignore[import-not-found]
import unohelper  # type: ignore[import-not-found]
from com.sun.star.beans import PropertyValue  # type: ignore[import-not-found]
from com.sun.star.frame import XStatusListener  # type: ignore[import-not-found]


def _prop(name: str, value: object) -> PropertyValue:
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


class _State(unohelper.Base, XStatusListener):  # type: ignore[misc]
    def __init__(self) -> None:
        self.value: int | None = None

    def statusChanged(self, event: object) -> None:  # noqa: N802 - UNO's name
        self.value = int(event.State)  # type: ignore[attr-defined]

    def disposing(self, source: object) -> None:
        pass


def main(nss_dir: str, paths: list[str]) -> int:
    profile = tempfile.mkdtemp(prefix="lo-profile-")
    pipe = f"remotesign-tests-{os.getpid()}"
    proc = subprocess.Popen(["soffice", "--headless", "--invisible", "--norestore", "--nologo",
                             f"-env:UserInstallation=file://{profile}", f"--accept=pipe,name={pipe};urp;"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "MOZILLA_CERTIFICATE_FOLDER": nss_dir})
    try:
        local = uno.getComponentContext()
        resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
        ctx = None
        deadline = time.monotonic() + 120
        while ctx is None and time.monotonic() < deadline:
            try:
                ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.3)
        if ctx is None:
            print("LibreOffice did not start", file=sys.stderr)
            return 2
        smgr = ctx.ServiceManager
        desktop = smgr.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
        parser = smgr.createInstanceWithContext("com.sun.star.util.URLTransformer", ctx)
        for path in paths:
            doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(os.path.abspath(path)), "_blank", 0,
                                               (_prop("Hidden", True), _prop("ReadOnly", True)))
            url = uno.createUnoStruct("com.sun.star.util.URL")
            url.Complete = ".uno:Signature"
            _, url = parser.parseStrict(url)
            dispatch = doc.getCurrentController().getFrame().queryDispatch(url, "", 0)
            state = _State()
            dispatch.addStatusListener(state, url)
            wait = time.monotonic() + 30
            while state.value is None and time.monotonic() < wait:
                time.sleep(0.05)
            dispatch.removeStatusListener(state, url)
            print(path, state.value)
            doc.close(True)
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
