"""``wgpy decode``: every field of every WireGuard message, from hex or from a capture file.

Input is one or more messages as hex, or a pcap or pcapng file (``capture.py``). A datagram is taken for
WireGuard as Wireshark's heuristic does: a known type byte, three zero bytes, the right size. Each is
labelled field by field (``labels.py``) and, with a key log from ``--keylog FILE`` or from a pcapng
Decryption Secrets Block, checked and decrypted by a passive observer (``observer.py``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from ..core.keylog import Keylog, parse_keylog
from .capture import CaptureError, Datagram, datagrams, is_capture, read_capture
from .labels import looks_like_wireguard
from .observer import Decoded, Observer
from .render import field_json, field_lines, json_text, write_stdout


@dataclass
class Report:
    """Everything decoded, in order; ``entries`` pairs each decoded message with where it was found."""

    entries: list[tuple[Datagram | None, Decoded]] = field(default_factory=list)
    frames: int = 0

    def counts(self) -> dict[str, int]:
        decoded = [d for _, d in self.entries if not d.error]
        return {
            "messages": len(decoded),
            "initiations": sum(d.kind == "handshake initiation" for d in decoded),
            "responses": sum(d.kind == "handshake response" for d in decoded),
            "cookie_replies": sum(d.kind == "cookie reply" for d in decoded),
            "transport": sum(d.kind == "transport data" for d in decoded),
            "transport_decrypted": sum(d.kind == "transport data" and d.decrypted for d in decoded),
            "keepalives": sum(d.keepalive for d in decoded),
            "handshakes_decrypted": sum(d.kind == "handshake response" and d.decrypted for d in decoded),
        }


def decode_capture(data: bytes, keylog: Keylog | None = None) -> Report:
    frames, embedded = read_capture(data)
    observer = Observer(keylog)
    observer.add_keys(embedded)
    report = Report(frames=len(frames))
    for datagram in datagrams(frames):
        if looks_like_wireguard(datagram.payload):
            report.entries.append((datagram, observer.decode(datagram.payload)))
    return report


def decode_hex(messages: list[str], keylog: Keylog | None = None) -> Report:
    observer = Observer(keylog)
    report = Report()
    for text in messages:
        digits = "".join(text.split()).replace(":", "").removeprefix("0x")
        try:
            data = bytes.fromhex(digits)
        except ValueError:
            raise ValueError(f"{text[:40]!r} is neither a capture file nor a message in hex") from None
        report.entries.append((None, observer.decode(data)))
    return report


def render_text(report: Report, full: bool = False) -> str:
    lines: list[str] = []
    start = next((datagram.frame.time for datagram, _ in report.entries if datagram is not None), 0.0)
    for datagram, decoded in report.entries:
        if datagram is not None:
            (s, sp), (d, dp) = datagram.source, datagram.destination
            elapsed = datagram.frame.time - start
            where = f"frame {datagram.frame.number}  +{elapsed:.6f} s  {_endpoint(s, sp)} -> {_endpoint(d, dp)}  "
        else:
            where = ""
        if decoded.error:
            lines.append(f"{where}{len(decoded.data)} bytes: {decoded.error}")
            continue
        lines.append(f"{where}{decoded.kind}, {len(decoded.data)} bytes (whitepaper {decoded.section})")
        lines += ["  " + line for line in field_lines(decoded.fields, full)]
        lines.extend(f"  => {note}" for note in decoded.notes)
    counts = report.counts()
    summary = (
        f"{_count(counts['messages'], 'WireGuard message')}: {_count(counts['initiations'], 'initiation')}, "
        f"{_count(counts['responses'], 'response')}, {_count(counts['cookie_replies'], 'cookie reply', 'cookie replies')}, "
        f"{counts['transport']} transport ({counts['transport_decrypted']} decrypted, "
        f"{_count(counts['keepalives'], 'keepalive')})"
    )
    if report.frames:
        summary = f"{_count(report.frames, 'frame')}, " + summary
    lines.append(summary)
    return "\n".join(lines) + "\n"


def render_json(report: Report) -> str:
    entries = []
    for datagram, decoded in report.entries:
        entry: dict = {"length": len(decoded.data)}
        if datagram is not None:
            entry.update(frame=datagram.frame.number, time=datagram.frame.time,
                         source=f"{_endpoint(*datagram.source)}", destination=f"{_endpoint(*datagram.destination)}")
        if decoded.error:
            entry["error"] = decoded.error
        else:
            entry.update(kind=decoded.kind, section=decoded.section, decrypted=decoded.decrypted, inner=decoded.inner,
                         fields=[field_json(f) for f in decoded.fields],
                         notes=decoded.notes)
        entries.append(entry)
    return json_text({"frames": report.frames, "counts": report.counts(), "messages": entries})


def _count(n: int, word: str, plural: str = "") -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _endpoint(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# ------------------------------------------------------------------------------------- command


def main(inputs: list[str], keylog_path: str | None = None, output_format: str = "text", full: bool = False) -> int:
    """``wgpy decode``: ``inputs`` is one capture file, or messages as hex."""
    keylog = None
    try:
        if keylog_path:
            keylog = parse_keylog(Path(keylog_path).read_text())
        if len(inputs) == 1 and Path(inputs[0]).is_file():
            data = Path(inputs[0]).read_bytes()
            if not is_capture(data):
                raise CaptureError(f"{inputs[0]} is neither a pcap nor a pcapng file")
            report = decode_capture(data, keylog)
        else:
            report = decode_hex(inputs, keylog)
    except (OSError, ValueError) as err:
        print(f"wgpy decode: {err}", file=sys.stderr)
        return 1
    write_stdout(render_json(report) if output_format == "json" else render_text(report, full))
    return 0
