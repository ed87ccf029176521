"""``remotesign agreements``: the registration officer's desk. With
``REMOTESIGN_AGREEMENT_APPROVAL=operator`` a registered agreement waits here until the operator has
checked the signer's documents (kept in the blob store) and approves it — the certificate is then
issued and the first passcode sent to the owner — or rejects it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from remotesign.cli.tables import print_table
from remotesign.cli.users import command
from remotesign.core.agreements import AgreementInfo


def _row(info: AgreementInfo, client_id: str) -> dict[str, Any]:
    return {"client_id": client_id, "agreement": info.reference, "status": info.status, "owner": info.owner_reference,
            "product": info.product, "name": info.details.name, "created_at": info.created_at.isoformat()}


@command
def cmd_list(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    tenant = svc.tenants.by_client_id_or_id(args.client) if args.client else None
    clients = {t.id: t.client_id for t in svc.tenants.list()}
    rows = [_row(a, clients.get(a.tenant_id, a.tenant_id)) for a in svc.agreements.waiting(tenant.id if tenant else None)]
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    else:
        print_table(("CLIENT_ID", "AGREEMENT", "PRODUCT", "CREATED", "NAME"),
                    ((r["client_id"], r["agreement"], r["product"], r["created_at"][:19], r["name"]) for r in rows))
    return 0


@command
def cmd_show(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    tenant = svc.tenants.by_client_id_or_id(args.client_id)
    info = svc.agreements.get(tenant.id, args.agreement)
    print(json.dumps({**_row(info, tenant.client_id), "details": json.loads(info.details.to_json()),
                      "shared_mode": info.shared_mode, "accepted_apps": list(info.accepted_apps),
                      "passcode_channel": info.contacts.passcode_channel,
                      "evidence": [svc.blobs.location(f"agreement-{info.id}", name)
                                   for name in svc.agreements.evidence(info)]},
                     indent=2, ensure_ascii=False))
    return 0


@command
def cmd_approve(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    tenant = svc.tenants.by_client_id_or_id(args.client_id)
    info = svc.agreements.approve(tenant.id, args.agreement, actor="operator")
    if not svc.outbox.drain(120):  # the passcode leaves from this process: wait for it
        print(f"agreement {info.reference} approved, but the passcode is still being sent; see the audit log "
              "(notification.*) and use forget-pin if it never arrives")
        return 1
    print(f"agreement {info.reference} approved: certificate issued, passcode sent to the owner "
          f"by {info.contacts.passcode_channel}")
    return 0


@command
def cmd_reject(args: argparse.Namespace, svc) -> int:  # type: ignore[no-untyped-def]
    tenant = svc.tenants.by_client_id_or_id(args.client_id)
    info = svc.agreements.reject(tenant.id, args.agreement, args.reason, actor="operator")
    print(f"agreement {info.reference} rejected")
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    agreements = sub.add_parser("agreements", help="registrations of signers' agreements waiting for approval",
                                description=__doc__)
    asub = agreements.add_subparsers(dest="agreements_command", required=True, metavar="ACTION")
    p = asub.add_parser("list", help="agreements waiting for approval")
    p.add_argument("--client", metavar="CLIENT_ID", help="only this relying party's")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = asub.add_parser("show", help="an agreement's details and the paths of its registration documents")
    p.add_argument("client_id")
    p.add_argument("agreement", help="the agreement UUID the relying party knows")
    p.set_defaults(func=cmd_show)
    p = asub.add_parser("approve", help="issue the certificate and send the first passcode to the owner")
    p.add_argument("client_id")
    p.add_argument("agreement")
    p.set_defaults(func=cmd_approve)
    p = asub.add_parser("reject", help="refuse the registration (the agreement ends without a certificate)")
    p.add_argument("client_id")
    p.add_argument("agreement")
    p.add_argument("--reason", required=True)
    p.set_defaults(func=cmd_reject)
