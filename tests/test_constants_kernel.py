"""socketeer.kernel_constants against the kernel's own headers (compiled here: the headers are
the oracle) and against the stdlib's socket module wherever it has the same name."""

from __future__ import annotations

import shutil
import socket
import subprocess

import pytest

import socketeer
from socketeer import kernel_constants

HEADERS = ("sys/socket.h", "netinet/in.h", "linux/netlink.h", "linux/rtnetlink.h", "linux/if_ether.h", "linux/if_packet.h")


def test_every_kernel_constant_equals_the_headers(tmp_path):
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler to read the kernel headers with")
    names = kernel_constants.__all__
    source = "".join(f"#include <{header}>\n" for header in HEADERS) + "#include <stdio.h>\nint main(void) {\n"
    source += "".join(f'  printf("{name} %lld\\n", (long long)({name}));\n' for name in names) + "  return 0;\n}\n"
    (tmp_path / "constants.c").write_text(source)
    subprocess.run([compiler, "-o", str(tmp_path / "constants"), str(tmp_path / "constants.c")], check=True,
                   timeout=60)
    output = subprocess.run([str(tmp_path / "constants")], check=True, capture_output=True, text=True, timeout=10)
    kernel = {name: int(value) for name, value in (line.split() for line in output.stdout.splitlines())}
    assert {name: getattr(kernel_constants, name) for name in names} == kernel


def test_the_stdlibs_names_have_the_stdlibs_values():
    shared = [name for name in kernel_constants.__all__ if hasattr(socket, name)]
    assert {"NETLINK_ROUTE", "PACKET_HOST", "PACKET_OUTGOING"} <= set(shared)
    for name in shared:
        assert getattr(socketeer, name) == getattr(socket, name), name


def test_a_sample_by_value_and_exported_from_socketeer():
    """The values the textbook's examples use, written out (the kernel ABI), as socketeer exports them."""
    expected = {"NETLINK_ROUTE": 0, "NETLINK_SOCK_DIAG": 4, "NETLINK_INET_DIAG": 4, "NETLINK_GENERIC": 16,
                "NETLINK_KOBJECT_UEVENT": 15, "NETLINK_ADD_MEMBERSHIP": 1, "NETLINK_EXT_ACK": 11,
                "NETLINK_GET_STRICT_CHK": 12, "NLM_F_REQUEST": 1, "NLM_F_DUMP": 0x300, "NLM_F_ACK": 4,
                "NLMSG_ERROR": 2, "NLMSG_DONE": 3, "RTM_NEWLINK": 16, "RTM_GETLINK": 18, "RTM_GETROUTE": 26,
                "RTMGRP_LINK": 1, "RTMGRP_IPV4_IFADDR": 0x10, "ETH_P_ALL": 3, "ETH_P_IP": 0x0800,
                "ETH_P_IPV6": 0x86DD, "ETH_P_ARP": 0x0806, "ETH_P_8021Q": 0x8100, "ETH_P_LOOP": 0x0060,
                "PACKET_HOST": 0, "PACKET_OUTGOING": 4, "PACKET_ADD_MEMBERSHIP": 1, "PACKET_AUXDATA": 8,
                "PACKET_FANOUT": 18, "SOL_NETLINK": 270, "SOL_PACKET": 263, "SO_ZEROCOPY": 60,
                "MSG_ZEROCOPY": 0x4000000}
    assert {name: getattr(socketeer, name) for name in expected} == expected
    assert set(expected) <= set(socketeer.__all__) and set(expected) <= set(socketeer.constants.__all__)
