"""The operator console: server-rendered pages under ``/console`` for the people who run the
service (relying parties and their secrets, users, identities, devices, certificates, the audit
log and the service's health). Operators sign in with an account made by ``remotesign operator
create``; they are not OAuth clients. See routes.py for the pages, auth.py for the session."""

from remotesign.api.console.routes import router

__all__ = ["router"]
