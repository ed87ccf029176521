"""Headers every answer carries unless its route set its own: ``X-Content-Type-Options: nosniff``
(a browser never guesses a type the service did not state), and for a file sent as an attachment
(a document a relying party uploaded, with the media type it declared) a sandboxing
``Content-Security-Policy``, so that even an HTML "document" opened on the service's origin runs
nothing there. Added in the outermost middleware (request_context), one pass over the headers."""

from __future__ import annotations

NOSNIFF = (b"x-content-type-options", b"nosniff")
ATTACHMENT_CSP = (b"content-security-policy", b"default-src 'none'; sandbox")


def with_baseline(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    names = {k.lower() for k, _ in headers}
    added = []
    if NOSNIFF[0] not in names:
        added.append(NOSNIFF)
    if ATTACHMENT_CSP[0] not in names and any(
            k.lower() == b"content-disposition" and v.lower().startswith(b"attachment") for k, v in headers):
        added.append(ATTACHMENT_CSP)
    return [*headers, *added] if added else headers
