"""The ``wgpy`` command.

    wgpy demo              two peers in memory: a handshake and data both ways, narrated
    wgpy genkey            a new private key, base64 (as ``wg genkey``)
    wgpy pubkey            the public key of the private key on standard input (as ``wg pubkey``)
    wgpy genpsk            a new preshared key, base64 (as ``wg genpsk``)
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import sys

from .core.crypto import PrivateKey, clamp


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wgpy", description="WireGuard in Python")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("demo", help="run two peers in memory and show what happens")
    commands.add_parser("genkey", help="print a new private key")
    commands.add_parser("pubkey", help="read a private key on stdin, print its public key")
    commands.add_parser("genpsk", help="print a new preshared key")
    args = parser.parse_args(argv)

    if args.command == "demo":
        from . import demo

        return 0 if demo.run() else 1
    if args.command == "genkey":
        print(base64.b64encode(clamp(os.urandom(32))).decode())
        return 0
    if args.command == "genpsk":
        print(base64.b64encode(os.urandom(32)).decode())
        return 0
    if args.command == "pubkey":
        return _pubkey(sys.stdin.read())
    return 2  # unreachable: argparse requires a command


def _pubkey(text: str) -> int:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        print("wgpy: Key is not the correct length or format", file=sys.stderr)
        return 1
    print(base64.b64encode(PrivateKey(raw).public).decode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
