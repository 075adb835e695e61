"""The benchmarks fail loudly: a system that fails is recorded, the others are still measured, a summary
names the failure and the exit status is 1; run_all.py exits 1 if any benchmark did. Each failure path is
reached cheaply: a forced failure (WGPY_BENCH_FAIL), a daemon command that does not exist, an interpreter
that dies, or a tiny in-process run. No timing is asserted. Also: help texts name no issue, and the
scaling figures in docs/ are what the committed results draw.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
SCRIPTS = sorted(BENCHMARKS.glob("bench_*.py")) + [BENCHMARKS / "run_all.py"]

sys.path.insert(0, str(BENCHMARKS))

import bench_flood  # noqa: E402
import bench_proxy  # noqa: E402
import bench_startup  # noqa: E402
import bench_tunnel  # noqa: E402
import scaling_report  # noqa: E402
from failures import FORCE, Failures  # noqa: E402
from tunnelbench import measure  # noqa: E402


def run(script: str, *args: str, fail: str = "", timeout: float = 240) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != FORCE}
    if fail:
        env[FORCE] = fail
    return subprocess.run([sys.executable, str(BENCHMARKS / script), *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


# ------------------------------------------------------------------------------------ help texts

@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_help_text_names_no_issue(script):
    result = run(script.name, "--help", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "usage:" in result.stdout
    assert not re.search(r"\bissues?\b|#\d", result.stdout, re.IGNORECASE), result.stdout


# ------------------------------------------------------------------------------------ in-process benchmarks

FORCED = [   # script, arguments, the system forced to fail, what the other systems still print
    ("bench_core.py", ["--quick"], "handshake", "1420 B"),
    ("bench_device.py", ["--quick"], "flood", "batches of 64"),
    ("bench_allowedips.py", ["--quick"], "IPv6 mixed", "every length"),
    ("bench_replay.py", ["--quick"], "replayed", "reordered"),
    ("bench_scaling.py", ["--rounds", "1", "--count", "64", "--peers", "1", "3", "--allowed-ips", "10", "20",
                          "--memory-peers", "--flood-seconds", "0.05"], "flood", "IPv6 mixed lookup"),
]


@pytest.mark.parametrize("script,args,failing,others", FORCED, ids=[f[0] for f in FORCED])
def test_a_failed_system_is_named_the_others_measured_and_the_exit_status_is_1(script, args, failing, others,
                                                                             tmp_path):
    out = tmp_path / "out.json"
    result = run(script, *args, "--json", str(out), fail=failing)
    assert result.returncode == 1, result.stdout + result.stderr
    assert others in result.stdout
    summary = result.stderr[result.stderr.index("failed:"):]
    assert failing in summary and "ForcedFailure" in summary
    assert json.loads(out.read_text())["failed"] == {failing: f"ForcedFailure: {FORCE} asked {failing!r} to fail"}


def test_a_benchmark_where_nothing_failed_exits_0(tmp_path):
    result = run("bench_replay.py", "--quick", "--json", str(tmp_path / "replay.json"))
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "replay.json").read_text())["failed"] == {}


def test_bench_memory_exits_1_when_its_interpreters_die(tmp_path):
    """--peers 0: every interpreter that builds peers dies (a division by zero); the empty device and the
    timer heap are still measured."""
    out = tmp_path / "memory.json"
    result = run("bench_memory.py", "--peers", "0", "--allowed-ips", "10", "--flood-seconds", "0", "--json", str(out))
    assert result.returncode == 1, result.stdout + result.stderr
    figures = json.loads(out.read_text())
    assert "empty_tracemalloc" in figures and "timer_heap" in figures
    assert set(figures["failed"]) == {f"{config} ({mode})" for config in ("bare", "idle", "sessions")
                                      for mode in ("tracemalloc", "rss")}
    assert "ZeroDivisionError" in figures["failed"]["bare (rss)"]


def test_bench_scaling_write_docs_fails_on_results_it_cannot_read(tmp_path):
    broken = tmp_path / "scaling.json"
    broken.write_text(json.dumps({"started": "x"}))
    docs = (scaling_report.PLOT, scaling_report.DOC, scaling_report.DOC_JSON)
    before = [path.read_bytes() for path in docs]
    result = run("bench_scaling.py", "--write-docs", "--json", str(broken))
    assert result.returncode == 1
    assert "write-docs" in result.stderr and "KeyError" in result.stderr
    assert [path.read_bytes() for path in docs] == before   # none touched


# ------------------------------------------------------------------------------------ run_all

def test_run_all_exits_1_if_a_benchmark_did_and_runs_the_rest(tmp_path):
    result = run("run_all.py", "--quick", "--results", str(tmp_path), "replay", "core", fail="in order")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "== bench_core.py" in result.stdout and "== bench_replay.py" in result.stdout
    assert "bench_replay: exited with 1" in result.stderr
    assert "bench_core" not in result.stderr.split("run_all: 1 failed:")[1]
    assert (tmp_path / "bench_core.json").exists() and (tmp_path / "bench_replay.json").exists()


def test_run_all_exits_0_when_every_benchmark_did(tmp_path):
    result = run("run_all.py", "--quick", "--results", str(tmp_path), "replay")
    assert result.returncode == 0, result.stdout + result.stderr
    assert json.loads((tmp_path / "bench_replay.json").read_text())["streams"]


def test_run_all_refuses_a_name_it_does_not_know(tmp_path):
    result = run("run_all.py", "--results", str(tmp_path), "no-such-benchmark")
    assert result.returncode != 0 and "no-such-benchmark" in result.stderr


# ------------------------------------------------------------------------------------ daemons and tunnels

MISSING = "/nonexistent/b15-no-such-daemon"


def test_bench_startup_records_a_daemon_that_does_not_exist_and_goes_on():
    failures = Failures("bench_startup")
    result = bench_startup.measure(1, 0.0, failures, {"absent": ([MISSING, "-f"], dict(os.environ))})
    assert list(failures.failed) == ["absent"] and "FileNotFoundError" in failures.failed["absent"]
    assert "absent" not in result and result["python"]["startup_s"] > 0   # the interpreter's floor still measured
    bench_startup.report(result)
    assert failures.finish() == 1


class AbsentDaemon:
    """A tunnel system whose daemon's command does not exist."""

    target, link, pids = "198.18.0.2", "b15nothing", []

    def start(self, mtu: int) -> None:
        subprocess.Popen([MISSING, str(mtu)])

    def stop(self) -> None:
        pass


class FakeServer:
    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def pretend_root(monkeypatch, module) -> None:
    monkeypatch.setattr(module.shutil, "which", lambda command: f"/usr/bin/{command}")
    monkeypatch.setattr(module.os, "geteuid", lambda: 0)


def test_bench_tunnel_measures_every_system_then_exits_1_if_one_failed(monkeypatch, tmp_path, capsys):
    """The namespaces and iperf3 are stood in for; the sessions are real: each system's daemon command
    does not exist."""
    pretend_root(monkeypatch, bench_tunnel)
    for name in ("setup", "teardown", "set_underlay_mtu"):
        monkeypatch.setattr(bench_tunnel.netns, name, lambda *args: None)
    monkeypatch.setattr(measure, "IperfServer", FakeServer)
    monkeypatch.setattr(bench_tunnel, "SYSTEMS", {"absent-a": AbsentDaemon, "absent-b": AbsentDaemon})
    monkeypatch.setattr(bench_tunnel, "write_plot", lambda results, path: None)
    monkeypatch.delenv(FORCE, raising=False)
    out = tmp_path / "tunnel.json"
    status = bench_tunnel.main(["--repeat", "1", "--mtu", "1420", "--json", str(out)])
    assert status == 1
    sessions = json.loads(out.read_text())["sessions"]
    assert [s["system"] for s in sessions] == ["absent-a", "absent-b"]
    assert all("FileNotFoundError" in s["figures"]["error"] for s in sessions)
    err = capsys.readouterr().err
    assert "absent-a at MTU 1420, repetition 1" in err and "absent-b at MTU 1420, repetition 1" in err


def test_bench_flood_goes_on_after_a_broken_session_and_an_unexpected_error(monkeypatch, tmp_path, capsys):
    """Namespaces stood in for; one session breaks as the benchmark knows (Broken), the other with an
    error it does not expect: both recorded, exit status 1."""
    pretend_root(monkeypatch, bench_flood)
    monkeypatch.setattr(bench_flood, "Hosts", lambda tag: contextlib.nullcontext())

    def measured(hosts, system, args, tmp, figures):
        if system == "wgpy":
            raise bench_flood.Broken("no tunnel through wgpy without a flood")
        raise RuntimeError("an error nobody expected")

    monkeypatch.setattr(bench_flood, "measure", measured)
    monkeypatch.delenv(FORCE, raising=False)
    out = tmp_path / "flood.json"
    assert bench_flood.main(["--json", str(out)]) == 1
    sessions = json.loads(out.read_text())["sessions"]
    assert {s["system"] for s in sessions} == {"wgpy", "wireguard-go"}
    err = capsys.readouterr().err
    assert "Broken: no tunnel through wgpy" in err and "RuntimeError: an error nobody expected" in err


class AbsentFar(bench_proxy.Far):
    """The far side of bench_proxy stood in for: no namespaces, nothing started."""

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass


def test_bench_proxy_measures_both_modes_then_exits_1_if_one_failed(monkeypatch, tmp_path, capsys):
    """The namespaces and the far side are stood in for; the sessions are real: each mode's wgpy command
    does not exist, so each session fails to start and is named; both modes are tried."""
    pretend_root(monkeypatch, bench_proxy)
    monkeypatch.setattr(bench_proxy, "Far", AbsentFar)
    for mode in bench_proxy.MODES.values():
        monkeypatch.setattr(mode, "command", lambda self: [MISSING])
    monkeypatch.delenv(FORCE, raising=False)
    out = tmp_path / "proxy.json"
    assert bench_proxy.main(["--repeat", "1", "--json", str(out)]) == 1
    results = json.loads(out.read_text())
    assert [s["mode"] for s in results["sessions"]] == ["tun", "proxy"]
    assert all("error" in s["figures"] for s in results["sessions"])
    assert results["summary"] == {} and set(results["failed"]) == {"tun, repetition 1", "proxy, repetition 1"}
    err = capsys.readouterr().err
    assert "tun, repetition 1 FAILED" in err and "proxy, repetition 1 FAILED" in err


def test_a_missing_requirement_is_a_skip_unless_ci(monkeypatch, capsys):
    monkeypatch.delenv("CI", raising=False)
    assert Failures("bench_x").missing("root") == 0
    monkeypatch.setenv("CI", "true")
    assert Failures("bench_x").missing("root") == 1
    assert "needs root; skipped" in capsys.readouterr().out


# ------------------------------------------------------------------------------------ the scaling docs

def test_the_scaling_plot_and_tables_are_what_the_committed_results_draw():
    results = json.loads(scaling_report.DOC_JSON.read_text())
    assert scaling_report.PLOT.read_text() == scaling_report.draw(results), \
        "docs/performance-scaling.svg is stale: python3 benchmarks/bench_scaling.py --write-docs"
    text = scaling_report.DOC.read_text()
    assert scaling_report.doc_text(results, text) == text, \
        "docs/performance.md's scaling tables are stale: python3 benchmarks/bench_scaling.py --write-docs"
    assert "![" in text and "(performance-scaling.svg)" in text
    assert not results["failed"]
    assert [row["peers"] for row in results["per_packet_by_peers"]["rows"]] == [1, 10, 100, 1000, 10_000]
    assert [row["allowed_ips"] for row in results["per_packet_by_allowed_ips"]["rows"]] == [10, 100, 1000, 10_000,
                                                                                          100_000]
