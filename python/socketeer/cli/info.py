"""``socketeer info ENDPOINT``: the addresses an endpoint names."""

from __future__ import annotations

import argparse
from typing import Any

from ..constants import AddressFamily, SocketKind
from ..endpoints import Endpoint
from .common import ANY_ENDPOINT, CommandError, endpoint_arg

__all__ = ["add_parser", "run"]


def _name(value: int, kind: Any) -> str:
    try:
        return str(kind(value).name)
    except ValueError:
        return str(value)


def info_lines(endpoint: Endpoint) -> list[str]:
    """One line per address the endpoint names: family, kind, address, and the endpoint to pass
    to connect for just that address."""
    rows = [("family", "kind", "address", "endpoint")]
    for address in endpoint.addresses():
        rows.append((_name(address.family, AddressFamily), _name(endpoint.kind, SocketKind), str(address),
                     str(Endpoint.from_address(address, endpoint.kind))))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}" for a, b, c, d in rows]


def add_parser(commands: Any) -> None:
    """Registers ``socketeer info`` on the subcommand parsers."""
    info = commands.add_parser(
        "info", help="resolve ENDPOINT and print the addresses it names",
        description="Resolve ENDPOINT and print each address it names: family, kind, address, and "
                    "the endpoint that names just that address.")
    info.add_argument("endpoint", metavar="ENDPOINT", help=ANY_ENDPOINT)


def run(args: argparse.Namespace) -> int:
    endpoint = endpoint_arg(args.endpoint, "info")
    try:
        lines = info_lines(endpoint)
    except (OSError, ValueError) as error:
        raise CommandError(f"info: cannot resolve {endpoint}: {error}") from None
    print("\n".join(lines))
    return 0
