"""Draw docs/handshake.svg: the WireGuard handshake as a sequence diagram (whitepaper section 5.4).

    python3 docs/handshake_svg.py            rewrite docs/handshake.svg
    python3 docs/handshake_svg.py --check    exit 1 if docs/handshake.svg is not what this draws

The message sizes come from wgpy's constants, so the figure follows the code; tests/test_docs.py fails
when the committed file is stale.
"""

from __future__ import annotations

import sys
from html import escape
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from wgpy.core.constants import COOKIE_REPLY_SIZE, INITIATION_SIZE, RESPONSE_SIZE, TRANSPORT_MIN_SIZE  # noqa: E402

OUTPUT = Path(__file__).resolve().parent / "handshake.svg"
WIDTH = 820
LEFT, RIGHT = 150, 670  # the two lifelines
FONT = "font-family='DejaVu Sans, Helvetica, Arial, sans-serif'"
MONO = "font-family='DejaVu Sans Mono, Menlo, Consolas, monospace'"

# Each row: (kind, from left?, title, lines under the title, section); kind is "message", "optional" or "note".
ROWS = [
    ("note", None, "Both know the other's static public key (and maybe a pre-shared key Q)",
     ["C = HASH(CONSTRUCTION)   H = HASH(HASH(C || IDENTIFIER) || S_pub_r)"], "5.4"),
    ("message", True, f"Handshake initiation · type 1 · {INITIATION_SIZE} bytes",
     ["Noise tokens: e, es, s, ss",
      "sender_index · E_pub_i · AEAD(S_pub_i) · AEAD(TAI64N timestamp) · mac1 · mac2"], "5.4.2"),
    ("optional", False, f"Cookie reply · type 3 · {COOKIE_REPLY_SIZE} bytes (only when under load)",
     ["receiver_index · nonce · XAEAD(τ = MAC(R_m, source address and port))",
      "the initiator retries after REKEY_TIMEOUT with mac2 = MAC(τ, ...)"], "5.4.7"),
    ("message", False, f"Handshake response · type 2 · {RESPONSE_SIZE} bytes",
     ["Noise tokens: e, ee, se, psk",
      "sender_index · receiver_index · E_pub_r · AEAD(ε) · mac1 · mac2"], "5.4.3"),
    ("note", None, "Both: (T_send_i = T_recv_r, T_recv_i = T_send_r) = KDF2(C, ε)",
     ["the responder may not send until the initiator's first packet confirms the keys"], "5.4.5"),
    ("message", True, "Transport data · type 4 · the first packet confirms the session",
     ["receiver_index · counter N · AEAD(T_send_i, N, packet || padding, ε)"], "5.4.6"),
    ("message", False, f"Transport data · type 4 · data, or a {TRANSPORT_MIN_SIZE}-byte keepalive",
     ["receiver_index · counter N · AEAD(T_send_r, N, packet || padding, ε)"], "5.4.6, 6.5"),
]


def row_height(kind: str, lines: list[str]) -> int:
    return 22 + 18 * len(lines) + 30 if kind == "note" else 48 + 16 * len(lines) + 30


def draw() -> str:
    top = 96
    height = top + sum(row_height(kind, lines) for kind, _, _, lines, _ in ROWS) + 10
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' viewBox='0 0 {WIDTH} {height}'>",
        "<title>The WireGuard handshake as a sequence diagram (whitepaper section 5.4)</title>",
        "<defs><marker id='arrow' markerWidth='10' markerHeight='8' refX='9' refY='4' orient='auto'>"
        "<path d='M0,0 L10,4 L0,8 z' fill='#1f2937'/></marker></defs>",
        f"<rect width='{WIDTH}' height='{height}' fill='#ffffff'/>",
    ]
    for x, name, keys in ((LEFT, "Initiator", "S_priv_i, S_pub_r"), (RIGHT, "Responder", "S_priv_r, S_pub_i")):
        out += [
            f"<rect x='{x - 90}' y='16' width='180' height='52' rx='6' fill='#e0ecff' stroke='#1f2937'/>",
            f"<text x='{x}' y='38' text-anchor='middle' font-size='16' font-weight='bold' {FONT}>{name}</text>",
            f"<text x='{x}' y='58' text-anchor='middle' font-size='12' {MONO}>{escape(keys)}</text>",
            f"<line x1='{x}' y1='68' x2='{x}' y2='{height - 20}' stroke='#6b7280' stroke-dasharray='4 4'/>",
        ]
    y_next = top
    for kind, from_left, title, lines, section in ROWS:
        y, y_next = y_next, y_next + row_height(kind, lines)
        if kind == "note":
            out.append(f"<rect x='{LEFT - 60}' y='{y - 14}' width='{RIGHT - LEFT + 120}' height='{22 + 18 * len(lines)}' "
                       f"rx='4' fill='#fff7d6' stroke='#b59a2d'/>")
            out.append(f"<text x='{WIDTH // 2}' y='{y + 2}' text-anchor='middle' font-size='13' {FONT}>"
                       f"{escape(title)} <tspan fill='#6b7280'>[{section}]</tspan></text>")
        else:
            start, end = (LEFT, RIGHT) if from_left else (RIGHT, LEFT)
            arrow_y = y + 26
            dash = " stroke-dasharray='7 5'" if kind == "optional" else ""
            out.append(f"<text x='{WIDTH // 2}' y='{y}' text-anchor='middle' font-size='14' font-weight='bold' {FONT}>"
                       f"{escape(title)} <tspan font-weight='normal' fill='#6b7280'>[{section}]</tspan></text>")
            out.append(f"<line x1='{start}' y1='{arrow_y}' x2='{end}' y2='{arrow_y}' stroke='#1f2937' stroke-width='2'"
                       f"{dash} marker-end='url(#arrow)'/>")
            y = arrow_y + 4
        for line_number, line in enumerate(lines):
            out.append(f"<text x='{WIDTH // 2}' y='{y + 18 + 16 * line_number}' text-anchor='middle' font-size='12' "
                       f"{MONO}>{escape(line)}</text>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main(argv: list[str]) -> int:
    if argv == ["--check"]:
        current = OUTPUT.read_text() if OUTPUT.exists() else ""
        if current != draw():
            print(f"{OUTPUT} is stale: run python3 docs/handshake_svg.py", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(draw())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
