"""``wgpy show [NAME] [--socket PATH]``: ask a UAPI socket ``get=1`` and print what ``wg show`` prints.

``wg`` looks only in ``/var/run/wireguard``; ``wgpy proxy`` run by an ordinary user serves its socket in
``$XDG_RUNTIME_DIR/wgpy`` or ``/tmp/wgpy-UID`` (runtime/proxy_command.py), and this finds it there too.
"""

from __future__ import annotations

import os
import sys
import time

from .uapi_socket import SOCKET_DIRECTORY, request


def directories() -> list[str]:
    uid = os.geteuid()
    found = [SOCKET_DIRECTORY] if uid == 0 else []
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        found.append(os.path.join(runtime, "wgpy"))
    found.append(f"/tmp/wgpy-{uid}")
    return found


def find(name: str | None) -> list[tuple[str, str]]:
    """(name, socket path) of NAME, or of every socket found."""
    found = []
    for directory in directories():
        try:
            entries = sorted(os.listdir(directory))
        except OSError:
            continue
        for entry in entries:
            if entry.endswith(".sock") and (name is None or entry == f"{name}.sock"):
                found.append((entry[:-5], os.path.join(directory, entry)))
    return found[:1] if name is not None else found


def main(name: str | None, path: str | None) -> int:
    from ..core.crypto import PrivateKey
    from ..core.encoding import key_to_base64
    from ..uapi.show import parse_get, show

    targets = [(name or os.path.basename(path).removesuffix(".sock"), path)] if path else find(name)
    if not targets:
        print(f"wgpy show: no UAPI socket found for {name or 'any interface'} in {', '.join(directories())}",
              file=sys.stderr)
        return 1
    texts = []
    for shown_name, socket_path in targets:
        try:
            answer = request(os.path.basename(socket_path).removesuffix(".sock"), "get=1\n\n", timeout=10,
                             directory=os.path.dirname(socket_path) or ".")
            device = parse_get(answer)
        except (OSError, ValueError) as error:
            print(f"wgpy show: {socket_path}: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
            return 1
        texts.append(show(shown_name, device, int(time.time()), key_to_base64, lambda raw: PrivateKey(raw).public))
    sys.stdout.write("\n".join(texts))
    return 0
