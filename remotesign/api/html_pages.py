"""Server-rendered HTML of the end user's pages (login, consent, waiting for the device, errors,
the demo client's callback). Plain forms, no JavaScript, a little inline CSS; every value that is
not a literal of this module goes through ``html.escape``, and every untrusted string shown to the
person (names, labels, documents, descriptions, messages) through ``shown``, which also makes
control and bidi characters visible and bounds the length. Readable in a text browser."""

from __future__ import annotations

import base64
import binascii
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import quote

from cryptography import x509
from cryptography.x509.oid import NameOID

from remotesign.api.branding import Branding
from remotesign.api.display import visible
from remotesign.api.page_text import ENGLISH, PageText
from remotesign.core.consent import PendingConsent
from remotesign.core.identities import IdentityInfo
from remotesign.core.scopes import USE_DEVICE, USE_SERVER

PREFIX = "/trustedx-authserver/oauth"

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;background:#f4f5f7;color:#1d1f23}
main{max-width:40rem;margin:2rem auto;background:#fff;padding:1.5rem 2rem;border:1px solid #d8dbe0;border-radius:6px}
h1{font-size:1.35rem;margin-top:0}
h2{font-size:1.05rem;margin-bottom:.4rem}
label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.45rem;font-size:1rem;
 border:1px solid #9aa0a8;border-radius:4px}
fieldset{border:1px solid #d8dbe0;border-radius:4px;margin:.8rem 0}
fieldset label{font-weight:normal;display:inline}
.choice{margin:.4rem 0}
button,.button{font-size:1rem;padding:.45rem 1.1rem;margin:1rem .5rem 0 0;border-radius:4px;border:1px solid #1f5fbf;
 background:#1f5fbf;color:#fff;cursor:pointer;text-decoration:none;display:inline-block}
button.secondary,.button.secondary{background:#fff;color:#1f5fbf}
.error{background:#fdecea;border:1px solid #d93025;color:#8c1d18;padding:.6rem .8rem;border-radius:4px}
.notice{background:#eef4fd;border:1px solid #9bbcf0;padding:.6rem .8rem;border-radius:4px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:.4rem 0}
dt{font-weight:600}
dd{margin:0;overflow-wrap:anywhere}
code{overflow-wrap:anywhere}
.muted{color:#5f6368;font-size:.9rem}
header{max-width:40rem;margin:1.2rem auto 0;padding:0 .5rem;display:flex;align-items:center;gap:.6rem;
 font-weight:600;color:#3c4043}
header+main{margin-top:.6rem}
header img{max-height:2.5rem;max-width:10rem}
.code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:1.25rem;letter-spacing:.08em;white-space:nowrap}
details{margin:.4rem 0}
@media (max-width:30rem){main{margin:1rem .4rem;padding:1rem}dl{grid-template-columns:1fr}dt{margin-top:.4rem}}
"""


def e(value: object) -> str:
    """Escape a value for text and double-quoted attribute positions."""
    return html.escape("" if value is None else str(value), quote=True)


def shown(value: object, limit: int = 120) -> str:
    """An untrusted string for a person to read: invisible and reordering characters made visible
    (``⟨U+202E⟩``), at most ``limit`` characters, HTML-escaped."""
    return e(visible(value, limit))


@dataclass(frozen=True)
class PageContext:
    """What every page of one request shares: its language and the operator's branding."""

    text: PageText = ENGLISH
    brand: Branding = field(default_factory=Branding)


DEFAULT = PageContext()


def layout(title: str, body: str, head: str = "", ctx: PageContext = DEFAULT) -> str:
    """A whole document; ``title`` is escaped, ``body`` and ``head`` are HTML built from escaped parts."""
    brand = ctx.brand
    logo = f'<img src="{e(brand.logo_uri)}" alt="">' if brand.logo_uri else ""
    header = f"<header>{logo}<span>{shown(brand.name, 100)}</span></header>\n"
    return (f"<!DOCTYPE html>\n<html lang=\"{e(ctx.text.locale)}\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            "<meta name=\"referrer\" content=\"no-referrer\">\n"
            f"{head}<title>{e(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n{header}<main>\n"
            f"<h1>{e(title)}</h1>\n{body}\n</main>\n</body>\n</html>\n")


def _error_box(error: str | None) -> str:
    return f'<p class="error" role="alert">{shown(error, 500)}</p>\n' if error else ""


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{e(name)}" value="{e(value)}">\n'


def _action(auth_server: str, step: str) -> str:
    return f"{PREFIX}/{quote(auth_server, safe='')}/{step}"


def _list(items: Iterable[str]) -> str:
    return "<ul>\n" + "".join(f"<li>{shown(i)}</li>\n" for i in items) + "</ul>\n"


def date_text(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _cn(name: x509.Name) -> str:
    cns = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else name.rfc4514_string()


def identity_details(identity: IdentityInfo, ctx: PageContext = DEFAULT) -> str:
    """Subject, issuer, serial, labels and validity of a sign identity's certificate."""
    t = ctx.text
    try:
        cert = identity.certificate()
        rows = [(t("name"), _cn(cert.subject)), (t("issued_by"), _cn(cert.issuer)),
                (t("serial_number"), format(cert.serial_number, "x")),
                (t("valid"), t("valid_range", start=date_text(cert.not_valid_before_utc),
                               end=date_text(cert.not_valid_after_utc)))]
    except ValueError:
        rows = [(t("certificate"), t("unreadable"))]
    rows.append((t("labels"), ", ".join(identity.labels) or t("none")))
    if identity.description:
        rows.append((t("description"), identity.description))
    if identity.status != "enabled":
        rows.append((t("status"), identity.status + (f" ({identity.status_reason})" if identity.status_reason else "")))
    return "<dl>\n" + "".join(f"<dt>{e(k)}</dt><dd>{shown(v, 200)}</dd>\n" for k, v in rows) + "</dl>\n"


def verification_code(digests_summary: str) -> str | None:
    """The first 8 octets of the digests summary as four groups of four hex digits: what a person
    can compare with what the application shows (the whole base64 value is for machines)."""
    try:
        raw = base64.b64decode(digests_summary, validate=True)
    except (binascii.Error, ValueError):
        try:
            raw = base64.urlsafe_b64decode(digests_summary + "=" * (-len(digests_summary) % 4))
        except (binascii.Error, ValueError):
            return None
    if len(raw) < 8:
        return None
    hex_digits = raw[:8].hex().upper()
    return " ".join(hex_digits[i:i + 4] for i in range(0, 16, 4))


def _request_summary(view: PendingConsent, ctx: PageContext, *, documents: bool = True) -> str:
    """Who asks for what; the documents' names only once the user has signed in."""
    t = ctx.text
    out = [f"<p>{t('asks_to', client=f'<strong>{shown(view.client.name)}</strong>')}</p>\n",
           _list(t.scope(s) for s in view.scopes)]
    if view.digests_summary:
        if documents and view.documents:
            out.append(f"<h2>{e(t('documents'))}</h2>\n" + _list(view.documents))
        code = verification_code(view.digests_summary)
        if code:
            out.append(f"<p>{e(t('verification_code'))}: <span class=\"code\">{e(code)}</span><br>"
                       f"<span class=\"muted\">{e(t('verification_hint'))}</span></p>\n")
        out.append(f"<details><summary>{e(t('digests_summary'))}</summary>\n<dl>\n"
                   f"<dt>{e(t('digests_summary'))}</dt><dd><code>{shown(view.digests_summary, 200)}</code></dd>\n"
                   f"<dt>{e(t('algorithm'))}</dt><dd>{shown(view.digests_summary_algorithm or '')}</dd>\n"
                   "</dl>\n</details>\n")
    return "".join(out)


def login_page(auth_server: str, view: PendingConsent, *, error: str | None = None, username: str = "",
               ctx: PageContext = DEFAULT) -> str:
    t = ctx.text
    body = (
        _request_summary(view, ctx, documents=False)
        + _error_box(error)
        + f'<form method="post" action="{e(_action(auth_server, "login"))}">\n'
        + _hidden("request_id", view.id)
        + f'<label for="username">{e(t("user_name"))}</label>\n'
        + f'<input type="text" id="username" name="username" value="{e(username)}" autocomplete="username" '
          'autocapitalize="none" spellcheck="false" required autofocus>\n'
        + f'<label for="password">{e(t("password"))}</label>\n'
        + '<input type="password" id="password" name="password" autocomplete="current-password" required>\n'
        + f'<button type="submit" name="action" value="login">{e(t("sign_in"))}</button>\n'
        + f'<button type="submit" name="action" value="cancel" class="secondary" formnovalidate>{e(t("cancel"))}'
          '</button>\n'
        + "</form>\n")
    return layout(t("sign_in"), body, ctx=ctx)


def _identity_choice(view: PendingConsent, ctx: PageContext) -> str:
    t = ctx.text
    if view.identity is not None:
        return f"<h2>{e(t('sign_identity'))}</h2>\n" + identity_details(view.identity, ctx)
    if USE_SERVER not in view.scopes and USE_DEVICE not in view.scopes:
        return ""
    if not view.candidates:
        return f'<p class="error" role="alert">{e(t("no_identity"))}</p>\n'
    single = len(view.candidates) == 1
    items = []
    for n, identity in enumerate(view.candidates):
        checked = " checked" if single else ""
        items.append(f'<div class="choice"><input type="radio" id="identity-{n}" name="sign_identity_id" '
                     f'value="{e(identity.id)}"{checked} required> '
                     f'<label for="identity-{n}">{shown(_identity_title(identity), 200)}</label>\n'
                     f"{identity_details(identity, ctx)}</div>\n")
    return (f"<fieldset>\n<legend>{e(t('choose_identity'))}</legend>\n" + "".join(items) + "</fieldset>\n")


def _identity_title(identity: IdentityInfo) -> str:
    try:
        return _cn(identity.certificate().subject) + (f" ({identity.description})" if identity.description else "")
    except ValueError:
        return identity.description or identity.id


def consent_page(auth_server: str, view: PendingConsent, *, error: str | None = None,
                 ctx: PageContext = DEFAULT) -> str:
    t = ctx.text
    user = view.user
    who = (f"<p>{t('signed_in_as', name=f'<strong>{shown(user.display_name)}</strong>', username=shown(user.username))}"
           "</p>\n" if user is not None else "")
    pin = ""
    if view.needs_pin:
        required = " required" if view.pin_required else ""
        pin = (f'<label for="pin">{e(t("signing_pin"))}</label>\n'
               f'<input type="password" id="pin" name="pin" autocomplete="off" inputmode="numeric"{required}>\n')
    if view.offers_otp:
        how = t("pin_and_otp") if view.pin_required else t("pin_or_otp")
        sent = (f'<p class="notice">{t("otp_sent", to=shown(view.otp_sent_to, 200))}</p>\n'
                if view.otp_sent_to else "")
        pin = (f"<p>{e(how)}</p>\n" + pin + sent
               + f'<label for="otp">{e(t("otp"))}</label>\n'
               '<input type="text" id="otp" name="otp" autocomplete="one-time-code" inputmode="numeric" '
               'pattern="[0-9]{8}" maxlength="8">\n'
               '<button type="submit" name="action" value="otp" class="secondary" formnovalidate>'
               + e(t("send_new_code") if view.otp_sent_to else t("send_code")) + "</button>\n")
    device = ('<button type="submit" name="action" value="device" class="secondary" formnovalidate>'
              f"{e(t('approve_on_device'))}</button>\n") if view.has_device else ""
    body = (
        who
        + _request_summary(view, ctx)
        + _error_box(error)
        + f'<form method="post" action="{e(_action(auth_server, "consent"))}">\n'
        + _hidden("request_id", view.id)
        + _identity_choice(view, ctx)
        + pin
        + f'<button type="submit" name="action" value="approve">{e(t("approve"))}</button>\n'
        + device
        + f'<button type="submit" name="action" value="cancel" class="secondary" formnovalidate>{e(t("cancel"))}'
          '</button>\n'
        + "</form>\n")
    return layout(t("consent"), body, ctx=ctx)


def wait_url(auth_server: str, request_id: str) -> str:
    return f"{_action(auth_server, 'wait')}?request_id={quote(request_id, safe='')}"


def waiting_head(auth_server: str, request_id: str) -> str:
    return f'<meta http-equiv="refresh" content="2;url={e(wait_url(auth_server, request_id))}">\n'


def waiting_page(auth_server: str, view: PendingConsent, ctx: PageContext = DEFAULT) -> str:
    t = ctx.text
    body = (
        f'<p class="notice">{e(t("open_app"))}</p>\n'
        + _request_summary(view, ctx)
        + ((f"<h2>{e(t('sign_identity'))}</h2>\n" + identity_details(view.identity, ctx)) if view.identity else "")
        + f"<p>{e(t('checks_again'))}</p>\n"
        + f'<p><a class="button" href="{e(wait_url(auth_server, view.id))}">{e(t("check_now"))}</a></p>\n'
        + f'<form method="post" action="{e(_action(auth_server, "consent"))}">\n'
        + _hidden("request_id", view.id)
        + f'<button type="submit" name="action" value="cancel" class="secondary">{e(t("cancel"))}</button>\n'
        + "</form>\n")
    return layout(t("waiting_title"), body, head=waiting_head(auth_server, view.id), ctx=ctx)


def error_page(message: str, *, title: str | None = None, ctx: PageContext = DEFAULT) -> str:
    body = (_error_box(message)
            + f'<p class="muted">{e(ctx.text("start_again"))}</p>\n')
    return layout(title or ctx.text("cannot_go_on"), body, ctx=ctx)


def signed_out_page(next_url: str | None, ctx: PageContext = DEFAULT) -> str:
    link = (f'<p><a class="button" href="{e(next_url)}">{e(ctx.text("continue"))}</a></p>\n' if next_url else
            f'<p class="muted">{e(ctx.text("close_window"))}</p>\n')
    return layout(ctx.text("signed_out"), f"<p>{e(ctx.text('pages_closed'))}</p>\n" + link, ctx=ctx)


def callback_page(params: Sequence[tuple[str, str]], token_url: str, redirect_uri: str) -> str:
    """What the demo client received on its redirect URI."""
    values = dict(params)
    rows = "".join(f"<dt>{shown(k, 60)}</dt><dd><code>{shown(v, 300)}</code></dd>\n" for k, v in params)
    if "code" in values:
        intro = '<p class="notice">The authorization server sent an authorization code.</p>\n'
        hint = ("<p>Exchange it within a minute (add <code>-d code_verifier=...</code> when the request used PKCE):</p>\n"
                f"<pre><code>curl -u CLIENT_ID:CLIENT_SECRET -d grant_type=authorization_code "
                f"-d code={e(quote(values['code'], safe=''))} "
                f"--data-urlencode redirect_uri={e(redirect_uri)} {e(token_url)}</code></pre>\n")
    elif "error" in values:
        intro = f'<p class="error" role="alert">The authorization ended with the error {shown(values["error"])}.</p>\n'
        hint = ""
    else:
        intro, hint = "<p>No authorization response parameters were received.</p>\n", ""
    body = intro + (f"<dl>\n{rows}</dl>\n" if rows else "") + hint
    return layout("Demo client: authorization response", body)
