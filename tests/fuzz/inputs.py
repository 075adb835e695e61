"""Structured fuzz inputs: the seed corpus (tests/fuzz/make_corpus.py) and the Hypothesis strategies of
tests/test_fuzz.py both build their bytes here, in the layout each target's ``Source`` reads back.

Valid messages for each device state come from the crafting API and the deterministic worlds of
world.py, so a seed delivered to the state it was made for is accepted.
"""

from __future__ import annotations

import base64
from functools import lru_cache

from wgpy import craft
from wgpy.core.crypto import PrivateKey, clamp

from . import targets as t
from . import world as w
from .source import Source, blob


def receive_input(state: w.State, datagrams: list[bytes], steps: list[int] | None = None, roaming: bool = False) -> bytes:
    """A ``receive_path`` input: the state, then each datagram after the pause ``TIME_STEPS[step]``, from
    alice's address (or, ``roaming``, from another)."""
    steps = steps or [0] * len(datagrams)
    sender = bytes([255 if roaming else 0])
    return bytes([w.STATES.index(state)]) + b"".join(bytes([step]) + sender + blob(d) for step, d in zip(steps, datagrams))


@lru_cache(maxsize=None)
def valid_datagrams(state: w.State) -> tuple[bytes, ...]:
    """Datagrams bob accepts in ``state`` (each on its own, delivered first)."""
    world = w.build(state)
    if state is w.State.NO_SESSION:
        return (world.valid_initiation().data,)
    if state is w.State.INITIATION_SENT:
        return (world.valid_response().data, world.valid_cookie_reply().data)
    if state in (w.State.INITIATION_RECEIVED, w.State.IN_SESSION):
        found = (world.valid_transport().data, world.valid_transport(b"").data)
        return found + ((world.valid_initiation().data,) if state is w.State.IN_SESSION else ())
    hello = world.valid_initiation()
    no_cookie = craft.initiation(w.ALICE, w.BOB.public, ephemeral=w.ephemeral(3), sender_index=7,
                                 timestamp=craft.timestamp(int(w.EPOCH) + 5))
    return (hello.data, no_cookie.data)


def receive_seeds() -> dict[str, bytes]:
    """Named ``receive_path`` inputs: every valid datagram in its state, alone, replayed, after each pause
    that matters, and a few sequences that walk from one state to the next."""
    seeds = {}
    for state in w.STATES:
        for n, datagram in enumerate(valid_datagrams(state)):
            name = f"{state.name.lower()}-{n}"
            seeds[name] = receive_input(state, [datagram])
            seeds[name + "-twice"] = receive_input(state, [datagram, datagram])
            seeds[name + "-roaming"] = receive_input(state, [datagram], roaming=True)
            for step in (2, 6, 11, 12, 13):
                seeds[f"{name}-after-{t.TIME_STEPS[step]}s"] = receive_input(state, [datagram], [step])
    sent = valid_datagrams(w.State.INITIATION_SENT)
    seeds["cookie-then-response"] = receive_input(w.State.INITIATION_SENT, [sent[1], sent[0]])
    seeds["response-then-keepalive-timer"] = receive_input(w.State.INITIATION_SENT, [sent[0], b""], [0, 7])
    session = valid_datagrams(w.State.IN_SESSION)
    seeds["in-session-late-data"] = receive_input(w.State.IN_SESSION, [session[0], session[1]], [10, 0])
    return seeds


def message_seeds() -> dict[str, bytes]:
    """``message_parsing`` inputs: every valid datagram, and the framing edge cases of each type."""
    seeds = {f"{state.name.lower()}-{n}": d for state in w.STATES for n, d in enumerate(valid_datagrams(state))}
    for kind, size in ((1, 148), (2, 92), (3, 64), (4, 32)):
        seeds[f"type{kind}-zeros"] = bytes([kind]) + bytes(size - 1)
        seeds[f"type{kind}-short"] = bytes([kind]) + bytes(size - 2)
        seeds[f"type{kind}-long"] = bytes([kind]) + bytes(size)
        seeds[f"type{kind}-reserved"] = bytes([kind, 0, 0, 1]) + bytes(size - 4)
    seeds["empty"] = b""
    seeds["type0"] = bytes(4)
    seeds["type5"] = b"\x05" + bytes(147)
    return seeds


def batch_input(state: w.State, datagrams: list[bytes], step: int = 0) -> bytes:
    """A ``receive_batch`` input: the state, the pause, then each datagram from alice's address."""
    return bytes([w.STATES.index(state), step]) + b"".join(blob(d) + b"\0\0" for d in datagrams)


def batch_seeds() -> dict[str, bytes]:
    """Batches of valid datagrams, mixed with their replays and the other kinds of message."""
    seeds = {}
    for state in w.STATES:
        valid = list(valid_datagrams(state))
        seeds[f"{state.name.lower()}-all"] = batch_input(state, valid)
        seeds[f"{state.name.lower()}-all-twice"] = batch_input(state, valid + valid)
        seeds[f"{state.name.lower()}-reversed-late"] = batch_input(state, valid[::-1] + valid[:1], 6)
    session = valid_datagrams(w.State.IN_SESSION)
    seeds["data-then-initiation"] = batch_input(w.State.IN_SESSION, [session[0], session[2]])
    seeds["data-then-initiation-at-165s"] = batch_input(w.State.IN_SESSION, [session[0], session[2], session[1]], 10)
    return seeds


def send_seeds() -> dict[str, bytes]:
    """``send_batch`` inputs: each state at the pauses that matter, with pings, full-size packets, packets
    without a route, IPv6, short headers and junk (the choices of ``targets._tun_packet``)."""
    mixes = {"ping": b"\0", "pings": b"\0\0\0", "full": b"\1" + bytes(range(256)) * 6, "mixed": b"\0\2\3\0\4\x05\5" + blob(b"junk"),
             "nowhere": b"\2\3"}
    return {f"{state.name.lower()}-{mix}-{t.TIME_STEPS[step]}s": bytes([w.STATES.index(state), step]) + packets
            for state in w.STATES for step in (0, 4, 9, 12) for mix, packets in mixes.items()}


def mutation_seeds() -> dict[str, bytes]:
    """One ``mutated_messages`` input per (case, field), MACs recomputed, and a few without."""
    seeds = {}
    for case_number, (state, kind) in enumerate(t.CASES):
        world = w.build(state)
        for payload_flag in ((1, 0) if kind is t.MessageType.TRANSPORT else (None,)):
            prefix = bytes([case_number]) + (bytes([payload_flag]) if payload_flag is not None else b"")
            valid = t.valid_message(world, kind, Source(prefix[1:]))
            for number, field in enumerate(craft.fields(valid)):
                for remac, tail in ((0, b""), (0, bytes(range(1, 40))), (255, b"\x07" * 8)):
                    name = f"{state.name.lower()}-{kind.name.lower()}{'' if payload_flag is None else '-p' + str(payload_flag)}-{field.name.lower()}-{remac}-{len(tail)}"
                    seeds[name] = prefix + bytes([number, remac]) + tail
    return seeds


def _b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


KEYS = [PrivateKey(clamp(bytes([n]) * 32)) for n in (0x11, 0x22, 0x33)]
PUBLIC = [key.public for key in KEYS]

CONFIGS = {
    "wg-minimal": f"[Interface]\nPrivateKey = {_b64(KEYS[0].private_bytes())}\n",
    "wg-two-peers": (
        f"[Interface]\nPrivateKey = {_b64(KEYS[0].private_bytes())}\nListenPort = 51820\nFwMark = 0x1234\n\n"
        f"[Peer]\nPublicKey = {_b64(PUBLIC[1])}\nPresharedKey = {_b64(bytes(range(32)))}\n"
        "AllowedIPs = 10.0.0.2/32, fd00::2/128\nEndpoint = 192.0.2.2:51820\nPersistentKeepalive = 25\n\n"
        f"[Peer]\nPublicKey = {_b64(PUBLIC[2])}\nAllowedIPs = 0.0.0.0/0, ::/0\nEndpoint = [2001:db8::3]:51820\n"
    ),
    "quick-full": (
        "# wg-quick\n[Interface]\nAddress = 10.0.0.1/24, fd00::1/64\nDNS = 1.1.1.1, example.com\nMTU = 1420\n"
        f"Table = off\nPreUp = echo up # not a comment\nPostDown = true\nSaveConfig = false\nPrivateKey = {_b64(KEYS[0].private_bytes())}\n"
        f"[Peer]\nPublicKey = {_b64(PUBLIC[1])}\nAllowed IPs = 10.0.0.0/8\nEndpoint = vpn.example.com:51820\n"
    ),
    "scoped-endpoint": f"[Peer]\nPublicKey = {_b64(PUBLIC[2])}\nEndpoint = [fe80::1%eth0]:51820\nAllowedIPs = 10.9.0.0/16\n",
    "own-key-as-peer": f"[Interface]\nPrivateKey = {_b64(KEYS[0].private_bytes())}\n[Peer]\nPublicKey = {_b64(PUBLIC[0])}\n",
    "bad-key": "[Peer]\nPublicKey = AAAA\n",
    "duplicate-peer": f"[Peer]\nPublicKey = {_b64(PUBLIC[1])}\n[Peer]\nPublicKey = {_b64(PUBLIC[1])}\n",
    "keepalive-off": f"[Peer]\nPublicKey = {_b64(PUBLIC[1])}\nPersistentKeepalive = off\n",
}


def uapi_bodies() -> dict[str, bytes]:
    """``uapi_set`` inputs: what ``wg setconf`` sends for the sample files, and sets that fail halfway."""
    from wgpy import config

    bodies = {}
    for name, text in CONFIGS.items():
        try:
            parsed = config.parse(text)
        except config.ConfigError:
            continue
        operation = config.to_uapi_set(parsed, resolve=lambda host, port: "192.0.2.9")
        bodies["setconf-" + name] = operation.removeprefix("set=1\n").rstrip("\n").encode()
    alice, carol = (key.hex() for key in t.UAPI_PEERS)
    bodies["keepalive-on-then-bad-line"] = (
        f"public_key={alice}\nendpoint=192.0.2.7:9\npersistent_keepalive_interval=15\nallowed_ip=10.7.0.0/16\nbogus=1").encode()
    bodies["new-peer-keepalive-then-bad-endpoint"] = (
        f"public_key={PUBLIC[1].hex()}\nendpoint=192.0.2.8:1\npersistent_keepalive_interval=5\nendpoint=nowhere").encode()
    bodies["keepalive-then-bad-public-key"] = (
        f"public_key={alice}\npersistent_keepalive_interval=7\npublic_key=zz").encode()
    bodies["remove-then-bad"] = f"public_key={carol}\nremove=true\nprotocol_version=2".encode()
    bodies["update-only-new-peer"] = f"public_key={PUBLIC[2].hex()}\nupdate_only=true\nallowed_ip=10.1.0.0/16".encode()
    bodies["replace-then-no-equals"] = f"replace_peers=true\npublic_key={PUBLIC[1].hex()}\nallowed_ip=10.0.0.0/8\nnoequals".encode()
    bodies["low-order-peer-keepalive"] = ("public_key=" + "00" * 32 + "\nendpoint=192.0.2.1:1\npersistent_keepalive_interval=1").encode()
    bodies["private-key-removed"] = ("private_key=" + "00" * 32 + f"\npublic_key={alice}\npersistent_keepalive_interval=3").encode()
    return bodies


def uapi_streams() -> dict[str, bytes]:
    """``uapi_stream`` inputs: the first byte sets the size of the pieces, the rest is the connection."""
    streams = {}
    for n, (name, body) in enumerate(uapi_bodies().items()):
        streams[name] = bytes([n]) + b"get=1\n\nset=1\n" + body + b"\n\nget=1\n\n"
    streams["get-wrong-byte"] = b"\x00get=1\nx"
    streams["crlf"] = b"\x03set=1\r\nlisten_port=1\r\n\r\nget=1\n\n"
    streams["bad-first-line"] = b"\x01hello\n"
    streams["set-cut-by-eof"] = b"\x05set=1\nlisten_port=7"
    return streams

