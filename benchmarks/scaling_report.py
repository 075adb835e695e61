"""bench_scaling's figures as docs/performance.md's scaling tables and the plot docs/performance-scaling.svg,
with the results they come from beside them (docs/performance-scaling.json; benchmarks/results/ is not
committed).

The plot is SVG written by hand from the results: no plotting library to install (matplotlib is only in
the ``bench`` extra), and the file is text that changes only where a figure does, so a test can check
that the committed plot is what the committed results draw.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
PLOT = ROOT / "docs" / "performance-scaling.svg"
DOC_JSON = ROOT / "docs" / "performance-scaling.json"   # the results the plot and tables were drawn from
BEGIN, END = "<!-- scaling-results:begin -->", "<!-- scaling-results:end -->"

PANEL_W, PANEL_H = 440, 290
LEFT, RIGHT, TOP, BOTTOM = 62, 16, 40, 46
COLUMNS = 2
BLUE, ORANGE, GREEN, RED, GREY = "#2f6db5", "#f28e2b", "#59a14f", "#e15759", "#8c8c8c"


# ------------------------------------------------------------------------------------ the plot

def _ticks(top: float) -> list[float]:
    """Round tick values from 0 to at least ``top``."""
    if top <= 0:
        return [0.0, 1.0]
    raw = top / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(int(math.ceil(top / step - 1e-9)) + 1)]


def _number(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:g}k"
    return f"{value:g}"


def _panel(index: int, title: str, x_label: str, y_label: str, series: list[tuple]) -> list[str]:
    """A panel with a logarithmic x axis (powers of ten) and a linear y axis from 0. ``series``:
    (label, colour, dashed, [(x, y), ...])."""
    ox, oy = (index % COLUMNS) * PANEL_W, (index // COLUMNS) * PANEL_H
    width, height = PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM
    points = [p for _, _, _, values in series for p in values]
    if not points:
        return []
    low, high = math.floor(math.log10(min(x for x, _ in points))), math.ceil(math.log10(max(x for x, _ in points)))
    high = max(high, low + 1)
    # Room above the highest point for the legend, one line per series.
    legend = (14 * len(series) + 12) / height
    ticks = _ticks(max(y for _, y in points) / (1 - legend))
    top = ticks[-1]

    def at(x: float, y: float) -> tuple[float, float]:
        return (ox + LEFT + (math.log10(x) - low) / (high - low) * width, oy + TOP + height - y / top * height)

    out = [f'<text x="{ox + PANEL_W / 2:.1f}" y="{oy + 20}" class="title">{escape(title)}</text>',
           f'<rect x="{ox + LEFT}" y="{oy + TOP}" width="{width}" height="{height}" class="frame"/>']
    for tick in ticks:
        _, y = at(10 ** low, tick)
        out.append(f'<line x1="{ox + LEFT}" y1="{y:.1f}" x2="{ox + LEFT + width}" y2="{y:.1f}" class="grid"/>')
        out.append(f'<text x="{ox + LEFT - 6}" y="{y + 4:.1f}" class="ytick">{_number(tick)}</text>')
    for power in range(low, high + 1):
        x, _ = at(10 ** power, 0)
        out.append(f'<line x1="{x:.1f}" y1="{oy + TOP}" x2="{x:.1f}" y2="{oy + TOP + height}" class="grid"/>')
        out.append(f'<text x="{x:.1f}" y="{oy + TOP + height + 16}" class="xtick">{_number(10 ** power)}</text>')
    out.append(f'<text x="{ox + LEFT + width / 2:.1f}" y="{oy + PANEL_H - 10}" class="label">{escape(x_label)}</text>')
    cy = oy + TOP + height / 2
    out.append(f'<text x="{ox + 16}" y="{cy:.1f}" class="label" transform="rotate(-90 {ox + 16} {cy:.1f})">'
               f'{escape(y_label)}</text>')
    for n, (label, colour, dashed, values) in enumerate(series):
        if not values:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (at(*p) for p in values))
        dash = ' stroke-dasharray="5 4"' if dashed else ""
        out.append(f'<polyline points="{path}" stroke="{colour}"{dash} class="line"/>')
        for x, y in (at(*p) for p in values):
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.6" fill="{colour}"/>')
        lx, ly = ox + LEFT + 8, oy + TOP + 14 + 14 * n
        out.append(f'<line x1="{lx}" y1="{ly - 4}" x2="{lx + 18}" y2="{ly - 4}" stroke="{colour}"{dash} class="line"/>')
        out.append(f'<text x="{lx + 24}" y="{ly}" class="legend">{escape(label)}</text>')
    return out


def _panels(results: dict) -> list[tuple]:
    panels = []
    peers = results.get("per_packet_by_peers", {}).get("rows", [])
    if peers:
        def line(key):
            return [(row["peers"], row[key]["best"]) for row in peers]
        panels.append(("Time per 1420-byte packet against peers", "peers", "microseconds per packet", [
            ("send, spread over all peers", BLUE, False, line("send_spread")),
            ("send, all to one peer", BLUE, True, line("send_one")),
            ("receive, spread over all peers", ORANGE, False, line("receive_spread")),
            ("receive, all from one peer", ORANGE, True, line("receive_one")),
            ("bare ChaCha20-Poly1305 encrypt", GREY, True, line("bare_encrypt")),
        ]))
    allowed = results.get("per_packet_by_allowed_ips", {}).get("rows", [])
    if allowed:
        panels.append(("Time per packet against allowed IPs (10 peers)", "allowed IPs", "microseconds per packet", [
            ("send", BLUE, False, [(row["allowed_ips"], row["send_spread"]["best"]) for row in allowed]),
            ("receive", ORANGE, False, [(row["allowed_ips"], row["receive_spread"]["best"]) for row in allowed]),
        ]))
    lookups = results.get("lookup_by_table_size", {}).get("series", {})
    if lookups:
        styles = {"IPv4 host": (BLUE, False), "IPv4 mixed": (BLUE, True), "IPv6 host": (ORANGE, False),
                  "IPv6 mixed": (ORANGE, True)}
        panels.append(("AllowedIPs.lookup against table size", "prefixes in the table", "nanoseconds per lookup", [
            (f"{name} {'(/32, /128)' if name.endswith('host') else 'lengths'}", *styles[name],
             [(row["prefixes"], row["best"]) for row in rows]) for name, rows in lookups.items()]))
    if peers:
        panels.append(("Handshakes a responder completes", "peers", "handshakes per second", [
            ("initiations answered, one at a time", GREEN, False,
             [(row["peers"], row["setup"]["handshakes_per_s"]) for row in peers if row["peers"] >= 10]),
        ]))
    memory = results.get("memory", {}).get("rows", [])
    if memory:
        def kib(mode, key):
            return [(row["peers"], row[mode][key] / 1024) for row in memory]
        panels.append(("Memory per peer and per session", "peers", "KiB", [
            ("per peer, tracemalloc", BLUE, False, kib("tracemalloc", "per_peer")),
            ("per peer, RSS", BLUE, True, kib("rss", "per_peer")),
            ("per session, tracemalloc", RED, False, kib("tracemalloc", "per_session")),
            ("per session, RSS", RED, True, kib("rss", "per_session")),
        ]))
    return panels


def draw(results: dict) -> str:
    """The SVG plot of ``results`` (bench_scaling's JSON)."""
    panels = _panels(results)
    rows = max(1, math.ceil(len(panels) / COLUMNS))
    width, height = COLUMNS * PANEL_W, rows * PANEL_H + 24
    body = [line for n, panel in enumerate(panels) for line in _panel(n, *panel)]
    note = (f"bench_scaling.py, {results.get('started', '')[:16].replace('T', ' ')} UTC; best of "
            f"{results.get('settings', {}).get('rounds', '?')} rounds; Python {results.get('machine', {}).get('python', '')}")
    style = (".title{font:bold 13px sans-serif;text-anchor:middle}.label{font:12px sans-serif;text-anchor:middle}"
             ".xtick{font:11px sans-serif;text-anchor:middle}.ytick{font:11px sans-serif;text-anchor:end}"
             ".legend{font:11px sans-serif}.note{font:11px sans-serif;fill:#555}"
             ".frame{fill:none;stroke:#444}.grid{stroke:#e3e3e3}.line{fill:none;stroke-width:1.8}")
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f"<style>{style}</style>",
        f'<rect width="{width}" height="{height}" fill="white"/>',
        *body,
        f'<text x="8" y="{height - 8}" class="note">{escape(note)}</text>',
        "</svg>",
    ]) + "\n"


# ------------------------------------------------------------------------------------ the tables

def table(results: dict) -> str:
    """docs/performance.md's text between the scaling markers."""
    machine, settings = results["machine"], results["settings"]
    out = [f"Measured {results['started'][:16].replace('T', ' ')} UTC on {machine['cpus']} CPUs, Linux "
           f"{machine['kernel']}, Python {machine['python']}; best of {settings['rounds']} rounds, "
           f"{settings['count']} packets a pass, {results['duration_s'] / 60:.1f} minutes in all; load average "
           f"(1 minute) {machine['loadavg_start'][0]:.2f} at the start, {machine['loadavg_end'][0]:.2f} at the end."]
    if results.get("note"):
        out += ["", results["note"]]
    peers = results.get("per_packet_by_peers")
    if peers:
        out += ["", f"**Per {peers['packet_bytes']}-byte packet against peers**, microseconds (batches of "
                    f"{peers['batch']}; the responder's handshakes per second while the peers were set up, with 1 peer a "
                    f"single cold handshake)", "",
                "| peers | send, spread | send, one peer | receive, spread | receive, one peer | bare encrypt "
                "| bare decrypt | handshakes/s |",
                "|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for row in peers["rows"]:
            cells = [f"{row[key]['best']:.2f}" for key in ("send_spread", "send_one", "receive_spread", "receive_one",
                                                           "bare_encrypt", "bare_decrypt")]
            out.append(f"| {row['peers']:,} | " + " | ".join(cells) + f" | {row['setup']['handshakes_per_s']:,.0f} |")
    allowed = results.get("per_packet_by_allowed_ips")
    lookups = results.get("lookup_by_table_size")
    if allowed and lookups:
        names = list(lookups["series"])
        out += ["", "**Against allowed IPs**: per packet over 10 peers, microseconds; one `AllowedIPs.lookup`, "
                    "nanoseconds, by table size (host routes: /32 or /128 only; mixed: lengths as in real tables)", "",
                "| allowed IPs | send | receive | " + " | ".join(f"lookup, {name}" for name in names) + " |",
                "|---:|---:|---:|" + "---:|" * len(names)]
        for n, row in enumerate(allowed["rows"]):
            cells = [f"{lookups['series'][name][n]['best']:.0f}" for name in names]
            out.append(f"| {row['allowed_ips']:,} | {row['send_spread']['best']:.2f} | "
                       f"{row['receive_spread']['best']:.2f} | " + " | ".join(cells) + " |")
    flood = results.get("flood")
    if flood:
        runtime, full = flood["runtime_reads"], flood["full_batches"]
        out += ["", f"**Under a flood** of initiations with a valid MAC1 from 4,096 endpoints, one core, the clock "
                    f"real: read as the runtime reads its handshake socket (only as far as the handshake queue has "
                    f"room), the device answered {runtime['cookie_replies_per_s']:,.0f} per second with a cookie "
                    f"reply; given full batches of 64 instead, it got through {full['messages_per_s']:,.0f} messages "
                    f"per second, {full['cookie_replies_per_s']:,.0f} answered with a cookie reply and "
                    f"{full['turned_away_queue_full_per_s']:,.0f} turned away with its queue full. Before its load "
                    f"showed, it handled {runtime['counts'].get('unknown_peer', 0)} of them as full handshakes "
                    f"(each refused: unknown peer)."]
    memory = results.get("memory")
    if memory:
        out += ["", "**Memory**, bytes (tracemalloc / VmRSS), each device built in a fresh interpreter", "",
                "| peers | per peer | per allowed IP | per session |", "|---:|---:|---:|---:|"]
        for row in memory["rows"]:
            cells = [f"{row['tracemalloc'][key]:,.0f} / {row['rss'][key]:,.0f}"
                     for key in ("per_peer", "per_allowed_ip", "per_session")]
            out.append(f"| {row['peers']:,} | " + " | ".join(cells) + " |")
    if results.get("failed"):
        out += ["", "Failed in this run: " + "; ".join(f"{k}: {v}" for k, v in results["failed"].items())]
    return "\n".join(out)


def doc_text(results: dict, text: str) -> str:
    """``text`` (docs/performance.md) with the part between the markers replaced."""
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    if not rest:
        raise ValueError(f"{DOC} has no {BEGIN} marker")
    return f"{head}{BEGIN}\n{table(results)}\n{END}{tail}"


def write_docs(results: dict) -> None:
    """The three files, or none: everything is drawn before anything is written."""
    plot, doc = draw(results), doc_text(results, DOC.read_text())
    DOC_JSON.write_text(json.dumps(results, indent=1) + "\n")
    PLOT.write_text(plot)
    DOC.write_text(doc)
