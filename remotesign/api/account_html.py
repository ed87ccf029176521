"""HTML of the signer's own account pages: activation / reset (choose password and PIN) and the
result page with a one-time device-pairing code. Built from ``html_pages``' layout and escaping."""

from __future__ import annotations

from remotesign.api.html_pages import e, layout, shown

__all__ = ["activate_page", "activated_page", "layout"]

ACTIVATE_PATH = "/account/activate"


def _error_box(error: str | None) -> str:
    return f'<p class="error" role="alert">{shown(error, 500)}</p>\n' if error else ""


def activate_page(code: str = "", *, purpose: str | None = None, error: str | None = None,
                  pin_min: int = 4, password_min: int = 8) -> str:
    title = "Reset your signing account" if purpose == "reset" else "Activate your signing account"
    body = (
        _error_box(error)
        + "<p>Enter the code you received and choose your own password and signing PIN. Nobody else, "
          "not even the service that enrolled you, learns them.</p>\n"
        + f'<form method="post" action="{ACTIVATE_PATH}" autocomplete="off">\n'
        + '<label for="code">Code</label>\n'
        + f'<input type="text" id="code" name="code" value="{e(code)}" required autocapitalize="characters" '
          'spellcheck="false">\n'
        + f'<label for="password">New password (at least {password_min} characters)</label>\n'
        + '<input type="password" id="password" name="password" autocomplete="new-password" required>\n'
        + '<label for="password2">New password again</label>\n'
        + '<input type="password" id="password2" name="password2" autocomplete="new-password" required>\n'
        + f'<label for="pin">Signing PIN (at least {pin_min} characters)</label>\n'
        + '<input type="password" id="pin" name="pin" inputmode="numeric" autocomplete="off" required>\n'
        + '<label for="pin2">Signing PIN again</label>\n'
        + '<input type="password" id="pin2" name="pin2" inputmode="numeric" autocomplete="off" required>\n'
        + '<button type="submit">Save</button>\n</form>\n'
    )
    return layout(title, body)


def activated_page(username: str, purpose: str, device_code: str, device_minutes: int) -> str:
    done = "is active" if purpose == "activate" else "has a new password and signing PIN; every lock is lifted"
    body = (
        f'<p class="notice">Your account <strong>{shown(username)}</strong> {done}.</p>\n'
        "<h2>Approval app</h2>\n"
        "<p>To approve signatures on your phone, enter this pairing code in the approval app. It is valid for "
        f"{device_minutes} minutes and works once:</p>\n"
        f'<p><code style="font-size:1.4rem">{e(device_code)}</code></p>\n'
        '<p class="muted">You can close this page.</p>\n'
    )
    return layout("Done", body)
