"""The figures of a run: medians and ratios, the printed table, docs/performance.md's table and the plot."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

from .netns import underlay_mtu

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "performance.md"
DOC_JSON = ROOT / "docs" / "performance.json"
DOC_PLOT = ROOT / "docs" / "performance.png"
BEGIN, END = "<!-- tunnel-results:begin -->", "<!-- tunnel-results:end -->"

SYSTEMS = ("veth", "null-relay", "wireguard-go", "wgpy")
LABELS = {"veth": "veth", "null-relay": "null relay", "wireguard-go": "wireguard-go", "wgpy": "wgpy"}
COLOURS = {"veth": "#b0b0b0", "null-relay": "#9ecae1", "wireguard-go": "#f28e2b", "wgpy": "#2f6db5"}
RATIO = "wgpy / wireguard-go"


class Metric:
    def __init__(self, key: str, label: str, unit: str, higher_is_better: bool, decimals: int) -> None:
        self.key, self.label, self.unit = key, label, unit
        self.higher_is_better, self.decimals = higher_is_better, decimals

    def heading(self, results: dict, mtu: str) -> str:
        arrow = "higher is better" if self.higher_is_better else "lower is better"
        label = self.label
        if self.key == "udp_received_kpps":
            offered = results["settings"]["udp_offered_kpps"].get(mtu, [])
            label += f" (best of offered {'/'.join(f'{rate:g}' for rate in offered)})"
        return f"{label}, {self.unit} ({arrow})"


METRICS = (
    Metric("tcp1_gbps", "TCP, one stream", "Gbit/s", True, 2),
    Metric("tcp4_gbps", "TCP, four streams", "Gbit/s", True, 2),
    Metric("udp_received_kpps", "UDP received", "kpackets/s", True, 1),
    Metric("ping_rtt_ms", "ping round trip", "ms", False, 3),
    Metric("first_reply_ms", "link-up to first reply", "ms", False, 1),
    Metric("tcp1_cpu_us_per_packet", "daemon CPU per packet, TCP one stream, both ends", "us", False, 1),
    Metric("tcp1_cpu_cores", "daemon CPU during TCP one stream, both ends", "cores", False, 2),
    Metric("rss_mib", "resident memory per daemon (larger end)", "MiB", False, 1),
)


def summarize(sessions: list[dict]) -> dict:
    """{mtu: {metric: {system: median, ..., RATIO: wgpy / wireguard-go}}} over the sessions' figures."""
    summary: dict = {}
    for session in sessions:
        per_metric = summary.setdefault(str(session["mtu"]), {})
        for key, value in session["figures"].items():
            if isinstance(value, (int, float)):
                per_metric.setdefault(key, {}).setdefault(session["system"], []).append(value)
    for per_metric in summary.values():
        for key, by_system in per_metric.items():
            medians = {system: statistics.median(values) for system, values in by_system.items()}
            if medians.get("wireguard-go") and "wgpy" in medians:
                medians[RATIO] = medians["wgpy"] / medians["wireguard-go"]
            per_metric[key] = medians
    return summary


def runs_of(results: dict, mtu: str, key: str, system: str) -> list[float]:
    return [s["figures"][key] for s in results["sessions"]
            if str(s["mtu"]) == mtu and s["system"] == system and isinstance(s["figures"].get(key), (int, float))]


def _number(value, decimals: int) -> str:
    if value is None:
        return "–"
    if decimals and abs(value) >= 100:
        decimals = max(0, decimals - 2)
    return f"{value:,.{decimals}f}"


def _rows(results: dict, mtu: str) -> list[list[str]]:
    summary = results["summary"].get(mtu, {})
    systems = [s for s in SYSTEMS if s in results["settings"]["systems"]]
    rows = []
    for metric in METRICS:
        medians = summary.get(metric.key, {})
        ratio = medians.get(RATIO)
        rows.append([metric.heading(results, mtu)] + [_number(medians.get(s), metric.decimals) for s in systems]
                    + [_number(ratio, 2)])
    return rows


def _header(results: dict) -> list[str]:
    return ["", *(LABELS[s] for s in SYSTEMS if s in results["settings"]["systems"]), RATIO]


def _failures(results: dict) -> list[str]:
    return [f"{s['system']} at MTU {s['mtu']}, repetition {s['repetition'] + 1}: {s['figures']['error']}"
            for s in results["sessions"] if "error" in s["figures"]]


def print_table(results: dict) -> None:
    settings = results["settings"]
    for mtu in results["summary"]:
        rows = [_header(results), *_rows(results, mtu)]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        print(f"\nTunnel MTU {mtu} (veth {underlay_mtu(int(mtu))}), medians of {settings['repeat']} x "
              f"{settings['seconds']:g} s")
        for row in rows:
            print("  " + row[0].ljust(widths[0]) + "".join(f"  {cell:>{w}}" for cell, w in zip(row[1:], widths[1:])))
    for failure in _failures(results):
        print(f"  failed: {failure}")


def markdown(results: dict) -> str:
    machine, settings = results["machine"], results["settings"]
    load = f"{machine['loadavg_start'][0]:.2f} at the start, {machine['loadavg_end'][0]:.2f} at the end"
    lines = [
        f"Measured {results['started'][:16].replace('T', ' ')} UTC on {machine['cpus']} CPUs, Linux "
        f"{machine['kernel']}, Python {machine['python']}, {machine['wireguard_go']}, {machine['iperf3']}; "
        f"{settings['repeat']} repetitions x {settings['seconds']:g} s per test, {results['duration_s'] / 60:.1f} "
        f"minutes in all; load average (1 minute) {load}.",
        "",
    ]
    if results.get("note"):
        lines += [results["note"], ""]
    for mtu in results["summary"]:
        header = _header(results)
        lines.append(f"**Tunnel MTU {mtu}** (veth MTU {underlay_mtu(int(mtu))})")
        lines.append("")
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" + "---:|" * (len(header) - 1))
        lines += ["| " + " | ".join(row) + " |" for row in _rows(results, mtu)]
        lines.append("")
    failures = _failures(results)
    if failures:
        lines.append("Sessions that failed (left out of the medians):")
        lines.append("")
        lines += [f"- {failure}" for failure in failures]
        lines.append("")
    return "\n".join(lines)


PANELS = (
    ("TCP throughput, Gbit/s", (("tcp1_gbps", "1 stream"), ("tcp4_gbps", "4 streams"))),
    ("UDP received, kpackets/s", (("udp_received_kpps", "UDP"),)),
    ("ping round trip, ms", (("ping_rtt_ms", "ping"),)),
    ("link-up to first reply, ms", (("first_reply_ms", "first reply"),)),
    ("daemon CPU per packet (TCP 1 stream), us", (("tcp1_cpu_us_per_packet", "CPU"),)),
    ("resident memory per daemon, MiB", (("rss_mib", "RSS"),)),
)


def plot(results: dict, path: Path) -> None:
    """Bars of the medians, whiskers from the smallest to the largest run; veth bars that dwarf the
    tunnels are cut at the top of the panel and labelled with their value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    systems = [s for s in SYSTEMS if s in results["settings"]["systems"]]
    mtus = list(results["summary"])
    figure, axes = plt.subplots(2, 3, figsize=(15, 8.5))
    width = 0.8 / len(systems)
    for ax, (title, series) in zip(axes.flat, PANELS):
        groups = [(mtu, key, name) for mtu in mtus for key, name in series]
        top_of_tunnels = 0.0
        bars = []
        for i, system in enumerate(systems):
            for g, (mtu, key, _) in enumerate(groups):
                runs = runs_of(results, mtu, key, system)
                if not runs:
                    continue
                median = statistics.median(runs)
                x = g + (i - (len(systems) - 1) / 2) * width
                bars.append((x, median, min(runs), max(runs), system))
                if system != "veth":
                    top_of_tunnels = max(top_of_tunnels, max(runs))
        limit = top_of_tunnels * 1.3 if top_of_tunnels else None
        for x, median, low, high, system in bars:
            clipped = limit is not None and median > limit
            ax.bar(x, min(median, limit) if clipped else median, width, color=COLOURS[system],
                   hatch="//" if clipped else None, edgecolor="white")
            if clipped:
                ax.text(x, limit * 0.98, f"{median:.3g}", ha="center", va="top", rotation=90, fontsize=8)
            else:
                ax.errorbar(x, median, yerr=[[median - low], [high - median]], color="black", capsize=2,
                            linewidth=0.8)
        if limit:
            ax.set_ylim(0, limit)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(groups)))
        ax.set_xticklabels([f"{name}\nMTU {mtu}" if len(series) > 1 else f"MTU {mtu}" for mtu, _, name in groups],
                           fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    figure.legend([Patch(color=COLOURS[s]) for s in systems], [LABELS[s] for s in systems], loc="upper center",
                  bbox_to_anchor=(0.5, 0.955), ncol=len(systems), frameon=False)
    settings = results["settings"]
    figure.suptitle(f"wgpy and wireguard-go through a veth pair: medians of {settings['repeat']} x "
                    f"{settings['seconds']:g} s ({results['started'][:10]}); whiskers from the smallest to the "
                    f"largest run; hatched bars are cut, their value written", y=0.99, fontsize=10)
    figure.tight_layout(rect=(0, 0, 1, 0.92))
    figure.savefig(path, dpi=100)
    plt.close(figure)


def write_docs(results: dict) -> None:
    """Refresh docs/performance.md between its markers, docs/performance.png, and docs/performance.json
    (the run's machine, settings and medians)."""
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        raise SystemExit(f"{DOC} lacks the markers {BEGIN} and {END}")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    DOC.write_text(f"{head}{BEGIN}\n{markdown(results)}{END}{tail}")
    plot(results, DOC_PLOT)
    summary = {key: value for key, value in results.items() if key != "sessions"}   # every session stays in results/
    DOC_JSON.write_text(json.dumps(summary, indent=1) + "\n")
