"""Which hosts a relying party may send the service's time-stamp requests to (SSRF guard).

A per-request TSA URL makes the service itself send a request to an address a client chose, from
inside the operator's network. ``REMOTESIGN_TSA_ALLOWED_HOSTS`` lists what is allowed, comma
separated; each entry is one of

* ``public``   every globally routable address (the default when the setting is unset);
* ``loopback`` 127.0.0.0/8 and ::1;
* an IP address or a CIDR network (``10.1.2.3``, ``192.168.0.0/24``, ``fd00::/8``);
* a host name (``tsa.example.com``) or a domain wildcard (``*.example.com``): that name is allowed
  whatever it resolves to (the operator vouches for it);
* ``none``     no per-request TSA at all (only the service's own).

A host name that no name entry matches is resolved once; the request goes to the first resolved
address that an address entry allows (the connection is pinned to that address, so a second DNS
answer cannot redirect it), and is refused (``tsa_not_allowed``) when no address is allowed.
Loopback, private, link-local, multicast and reserved addresses are never "public".
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from remotesign.trust.tsa_clients.errors import TsaError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
DEFAULT_ALLOWED = ("public",)
_LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


def _plain(address: IpAddress) -> IpAddress:
    """An IPv4-mapped IPv6 address (::ffff:10.0.0.1) judged as the IPv4 address it is."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def is_public(address: IpAddress) -> bool:
    address = _plain(address)
    return address.is_global and not address.is_multicast and not address.is_reserved


@dataclass(frozen=True)
class TsaUrlPolicy:
    public: bool = True
    networks: tuple[IpNetwork, ...] = ()
    names: tuple[str, ...] = ()        # exact host names, lower case
    suffixes: tuple[str, ...] = ()     # ".example.com" for *.example.com

    @classmethod
    def parse(cls, entries: str | Iterable[str] | None) -> "TsaUrlPolicy":
        if entries is None:
            entries = DEFAULT_ALLOWED
        if isinstance(entries, str):
            entries = entries.split(",")
        public, networks, names, suffixes = False, [], [], []
        for raw in entries:
            entry = raw.strip().lower().rstrip(".")
            if not entry or entry == "none":
                continue
            if entry == "public":
                public = True
            elif entry == "loopback":
                networks.extend(_LOOPBACK)
            elif entry.startswith("*."):
                suffixes.append(entry[1:])
            else:
                try:
                    networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                except ValueError:
                    if not all(part and len(part) <= 63 for part in entry.split(".")) or "/" in entry:
                        raise ValueError(f"TSA allow-list entry {raw.strip()!r} is neither public, loopback, "
                                         f"none, an address, a network nor a host name") from None
                    names.append(entry)
        return cls(public=public, networks=tuple(networks), names=tuple(names), suffixes=tuple(suffixes))

    @property
    def allows_anything(self) -> bool:
        return self.public or bool(self.networks or self.names or self.suffixes)

    def name_allowed(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def address_allowed(self, address: IpAddress) -> bool:
        plain = _plain(address)
        if any(plain in net or address in net for net in self.networks):
            return True
        return self.public and is_public(plain)

    async def pin(self, url: httpx.URL) -> str:
        """The address to connect to for ``url``; ``tsa_not_allowed`` when the operator does not
        allow it, ``tsa_unreachable`` when the name does not resolve."""
        if not self.allows_anything:
            raise TsaError("tsa_not_allowed", "this service does not send time-stamp requests to other TSAs")
        host = url.host
        try:
            literal: IpAddress | None = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            literal = None
        if literal is not None:
            if not self.address_allowed(literal):
                raise TsaError("tsa_not_allowed", f"the TSA address {host} is not allowed on this service")
            return str(literal)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise TsaError("tsa_unreachable", f"the TSA host {host} does not resolve: {exc}") from exc
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        if self.name_allowed(host):
            if addresses:
                return str(addresses[0])
        for address in addresses:
            if self.address_allowed(address):
                return str(address)
        raise TsaError("tsa_not_allowed", f"the TSA host {host} resolves to no address allowed on this service")
