"""Benchmark output: the JSON document, the text report and the PNG plots.

Every report states the machine, the baseline each figure is compared with and the ratio, and
the target from issue #6 with a met / missed verdict, so a number never travels without its
yardstick. Plots need matplotlib (the ``bench`` extra); without it the JSON and text still work.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

from attest.bench.machine import describe, one_line

#: issue #6 (and #11) targets: (report key, comparison, bound, what it means)
TARGETS: dict[str, list[tuple[str, str, float, str]]] = {
    "core": [
        ("core_vs_libsodium", ">=", 0.85, "core >= 0.85 x libsodium verify"),
        ("core_vs_pycose", ">=", 2.5, "core >= 2.5 x pycose"),
        ("core_vs_cwt", ">=", 2.0, "core >= 2 x python-cwt"),
    ],
    "e2e": [
        ("e2e_vs_libsodium", ">=", 0.35, "sessions/s >= 0.35 x libsodium verify"),
        ("p99_ms", "<=", 50.0, "p99 latency <= 50 ms"),
        ("errors", "<=", 0, "zero errors"),
    ],
    "scaling": [("workers_speedup", ">=", 1.6, "two workers >= 1.6 x one")],
    "dos": [
        ("honest_success", ">=", 0.99, "honest sessions >= 99 % ok under the flood"),
        ("honest_chip_success", ">=", 0.99, "honest chips >= 99 % never refused or failed"),
        ("p99_ms", "<", 1000.0, "honest p99 latency < 1 s (first sessions and window)"),
    ],
    "scale": [("rate_ratio_largest_vs_smallest", ">=", 0.8, "rate at 10^5 within 20 % of 10^3")],
    "soak": [
        ("rss_growth_mb", "<", 50.0, "RSS growth over the soak < 50 MB"),
        ("errors", "<=", 0, "zero errors"),
        ("lost_results", "<=", 0, "zero lost results"),
    ],
    # issue #11: what the calibration must show for location verification to be useful here
    "location": [
        ("bound_window_p50_km", "<=", 50.0, "a chip beside the landmark: bound <= 50 km (p50)"),
        ("chip_exit_code", "<=", 0, "every session completed"),
    ],
    "chaos": [("failed_runs", "<=", 0, "every invariant held after every kill")],
    "fuzz": [
        ("inputs", ">=", 1_000_000, ">= 10^6 inputs"),
        ("failed_targets", "<=", 0, "decoders raise only attest's own errors"),
    ],
    "timing": [
        ("max_abs_t", "<", 4.5, "max |t| < 4.5 for every failure-class pair"),
        ("control_max_abs_t", ">", 4.5, "leaky control detected (|t| > 4.5)"),
    ],
}


def verdicts(kind: str, result: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, op, bound, text in TARGETS.get(kind, []):
        value = result.get(key)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            met = None
        else:
            met = {">=": value >= bound, "<=": value <= bound, "<": value < bound}.get(
                op, value > bound
            )
        out.append({"target": text, "key": key, "value": value, "bound": bound, "met": met})
    return out


def document(kind: str, command: str, result: dict[str, Any]) -> dict[str, Any]:
    """The JSON document of one benchmark run."""
    return {
        "benchmark": kind,
        "command": command,
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": describe(),
        "result": result,
        "targets": verdicts(kind, result)
        + (verdicts("scaling", result) if "workers_speedup" in result else []),
    }


def write_json(doc: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2, default=_jsonable) + "\n")


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    return str(value)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    return str(v)


def text(doc: dict[str, Any]) -> str:
    """The human-readable report (what ``attest bench`` prints)."""
    r = doc["result"]
    lines = [f"attest bench {doc['benchmark']}  ({doc['when']})"]
    lines.append(f"machine: {one_line(doc['machine'])}")
    kind = doc["benchmark"]
    if kind == "core":
        base = r["libsodium_verify_per_s"]
        lines.append(f"baseline: libsodium crypto_sign_verify_detached {base:,.0f}/s")
        rows = [
            ("libsodium verify (baseline)", base),
            ("PyNaCl crypto_sign_open", r["pynacl_crypto_sign_open_per_s"]),
            ("attest core appraise()", r["core_per_s"]),
            ("pycose decode+verify", r["pycose_per_s"]),
            ("python-cwt decode+verify", r["cwt_per_s"]),
        ]
        lines.append(f"  {'contender':32} {'per s':>10} {'us/op':>8} {'vs libsodium':>13}")
        for name, rate in rows:
            lines.append(f"  {name:32} {rate:10,.0f} {1e6 / rate:8.1f} {rate / base:13.3f}")
        lines.append(
            f"  core vs pycose {r['core_vs_pycose']:.3f}x, core vs python-cwt "
            f"{r['core_vs_cwt']:.3f}x"
        )
    elif kind in ("e2e", "soak"):
        lines += _e2e_lines(r)
        for c in r.get("comparison", []):
            lines.append(
                f"  {c['store']:10} {c['nodes']} node(s): {c['sessions_per_s']:,.0f} sessions/s, "
                f"p99 {c['p99_ms']:.1f} ms, errors {c['errors']}"
            )
    elif kind == "chaos":
        for run in r["runs"]:
            lines.append(
                f"  {run['store']:10} node kills {run['node_kills_total']} {run['node_kills']}, "
                f"database kills {run['database_kills']}, results {run['results_received']:,}, "
                f"licences {run['licences_issued']}, session errors "
                f"{sum(run['session_errors'].values())} (retried), unexpected exits "
                f"{run['unexpected_node_exits']}"
            )
            for name, held in run["invariants"].items():
                lines.append(f"    {name}: {'held' if held else 'VIOLATED'}")
    elif kind == "fuzz":
        for t in r["targets"]:
            lines.append(
                f"  {t['target']:18} {t['inputs']:>10,} inputs {t['seconds']:7.1f} s "
                f"{t['inputs_per_s']:9,.0f}/s  edges {t['coverage_edges']:>5}  "
                f"{'ok' if t['ok'] else 'FINDINGS ' + ' '.join(t['findings'])}"
            )
        lines.append(f"  total {r['inputs']:,} inputs in {r['seconds']:.1f} s")
    elif kind == "scale":
        lines.append(f"baseline: libsodium verify {r['libsodium_verify_per_s']:,.0f}/s")
        lines.append(
            f"  {'registered':>10} {'sessions/s':>11} {'p99 ms':>8} {'RSS MB':>8} {'err':>4}"
        )
        for row in r["points"]:
            lines.append(
                f"  {row['registered_chips']:>10,} {row['sessions_per_s']:11,.0f} "
                f"{row['p99_ms']:8.1f} {row['verifier_peak_rss_mb']:8.1f} {row['errors']:>4}"
            )
        lines.append(
            f"  rate at the largest / smallest store: {r['rate_ratio_largest_vs_smallest']:.3f}"
        )
    elif kind == "dos":
        a = r["attacker"]
        lines.append(
            f"flood: {r['idle_sockets']:,} idle connections from {a['source']} (shipped "
            f"config): {a['opened']:,} opened, {a['closed_by_verifier']:,} closed by the "
            f"verifier, {a['open_at_end']:,} open at the end"
        )
        lines.append(
            f"verifier: refused {r['verifier_refused_address_cap']:,.0f} (address cap) + "
            f"{r['verifier_refused_full']:,.0f} (full), evicted {r['verifier_evicted']:,.0f}"
        )
        lines.append(
            f"honest: {r['chips']:,} chips ({100 * r['honest_chip_success']:.1f} % never failed), "
            f"{r['honest_ok']:,}/{r['honest_sessions']:,} "
            f"sessions ok ({100 * r['honest_success']:.2f} %); first sessions p50 "
            f"{r['first_session_p50_ms']:.1f} ms p99 {r['first_session_p99_ms']:.1f} ms; "
            f"window {r['window_sessions_per_s']:,.0f}/s p50 {r['window_p50_ms']:.1f} ms "
            f"p99 {r['window_p99_ms']:.1f} ms"
        )
        if r["honest_error_kinds"]:
            lines.append(f"  honest failures: {r['honest_error_kinds']}")
    elif kind == "timing":
        lines.append(
            f"Welch's t, classes interleaved at random, {r['per_class']:,} measurements per "
            f"class, cropped at {len(r['pairs'][next(iter(r['pairs']))]['t']) - 1} percentiles"
        )
        lines.append(f"  {'pair':44} {'max |t|':>8} {'where':>9} {'n':>17}  leak?")
        for name, a in {**r["pairs"], **r["controls"]}.items():
            n = "/".join(f"{k:,}" for k in a["n"])
            lines.append(
                f"  {name:44} {a['max_abs_t']:8.2f} {a['max_at']:>9} {n:>17}  "
                f"{'LEAK' if a['leak'] else 'no'}"
            )
    elif kind == "location":
        lines += _location_lines(r)
    for v in doc["targets"]:
        mark = {True: "met", False: "MISSED", None: "n/a"}[v["met"]]
        lines.append(f"target: {v['target']}: {_fmt(v['value'])} -> {mark}")
    return "\n".join(lines)


def _location_lines(r: dict[str, Any]) -> list[str]:
    return [
        f"baseline: a bare TCP echo on loopback, floor {r['echo_floor_us']:.1f} us (one process); "
        f"PING floor / echo floor {r['floor_vs_echo']:.2f}; libsodium verify "
        f"{r['libsodium_verify_per_s']:,.0f}/s",
        f"loopback: {r['pings']:,} PINGs timed by the landmark (rounds of {r['per_round']}), "
        "chip in a second process",
        f"  round trip: floor {r['floor_us']:.1f} us, p1 {r['p1_us']:.1f}, p50 {r['p50_us']:.1f}, "
        f"p99 {r['p99_us']:.1f}, max {r['max_us']:.1f} us",
        f"  jitter: stdev {r['jitter_stdev_us']:.1f} us, p50 - floor "
        f"{r['jitter_p50_minus_floor_us']:.1f} us ({r['jitter_km_per_us']:.3f} km per us)",
        f"  least of {r['window']} PINGs (one record): p50 {r['window_min_p50_us']:.1f} us, "
        f"p99 {r['window_min_p99_us']:.1f} us",
        f"  bound of a chip on this machine, allowance {r['allowance_us']:.1f} us: "
        f"{r['bound_window_p50_km']:.1f} km (p50), {r['bound_window_p99_km']:.1f} km (p99); "
        f"{r['bound_no_allowance_window_p50_km']:.1f} km with no allowance",
        f"  calibration: an allowance above the floor ({r['floor_us']:.1f} us) would let a chip "
        "this fast look nearer than it is; below it, every microsecond left over adds "
        f"{r['jitter_km_per_us']:.3f} km",
    ]


def _e2e_lines(r: dict[str, Any]) -> list[str]:
    lines = [f"baseline: libsodium verify {r['libsodium_verify_per_s']:,.0f}/s (same run)"]
    runs = r.get("runs") or [r]
    for run in runs:
        lines.append(
            f"  workers={run['workers']} chips={run['chips']} inflight={run['inflight']}: "
            f"{run['sessions_per_s']:,.0f} sessions/s ({run['e2e_vs_libsodium']:.3f} x "
            f"libsodium), p50 {run['p50_ms']:.1f} ms, p95 {run['p95_ms']:.1f} ms, "
            f"p99 {run['p99_ms']:.1f} ms, errors {run['errors']}, verifier CPU "
            f"{run['verifier_cpu_cores']:.2f} cores ({run['verifier_cpu_us_per_session']:.0f} "
            f"us/session), peak RSS {run['verifier_peak_rss_mb']:.1f} MB"
        )
    if "workers_speedup" in r:
        lines.append(f"  {runs[-1]['workers']} workers / 1 worker: {r['workers_speedup']:.3f}x")
    if "rss_growth_mb" in r:
        lines.append(
            f"  RSS over {r['window_s'] / 60:.1f} min: {r['verifier_rss_start_mb']:.1f} -> "
            f"{r['verifier_rss_end_mb']:.1f} MB (growth {r['rss_growth_mb']:+.1f} MB)"
        )
    return lines


def plot(doc: dict[str, Any], path: Path) -> bool:
    """Write the benchmark's PNG; False (and nothing written) without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    r, kind = doc["result"], doc["benchmark"]
    if kind in ("chaos", "fuzz"):
        return False  # tables, not curves: the text report is the whole result
    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    if kind == "core":
        names = ["libsodium\nverify", "PyNaCl\nsign_open", "attest\ncore", "pycose", "python-cwt"]
        keys = [
            "libsodium_verify_per_s",
            "pynacl_crypto_sign_open_per_s",
            "core_per_s",
            "pycose_per_s",
            "cwt_per_s",
        ]
        values = [r[k] for k in keys]
        bars = ax.bar(names, values, color=["#777", "#999", "#1f77b4", "#ff7f0e", "#2ca02c"])
        ax.axhline(0.85 * r["libsodium_verify_per_s"], ls="--", c="k", lw=1)
        ax.text(4.4, 0.85 * r["libsodium_verify_per_s"], "target 0.85x", ha="right", va="bottom")
        for bar, v in zip(bars, values, strict=True):
            ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:,.0f}", ha="center", va="bottom")
        ax.set_ylabel("operations per second (one core)")
        ax.set_title("Verification core vs baselines (same tokens, one run)")
    elif kind in ("e2e", "soak"):
        runs = r.get("runs") or [r]
        if kind == "soak":
            _soak(ax, r)
        else:
            for run in runs:
                h = run["latency_histogram_ms"]
                if h["counts"]:
                    ax.step(h["edges"][:-1], h["counts"], where="post", label=_run_label(run))
            ax.axvline(50, ls="--", c="k", lw=1, label="target: p99 <= 50 ms")
            ax.set_xlabel("session latency (ms)")
            ax.set_ylabel("sessions")
            ax.legend()
            ax.set_title("End-to-end session latency")
    elif kind == "scale":
        pts = r["points"]
        xs = [p["registered_chips"] for p in pts]
        ax.plot(xs, [p["sessions_per_s"] for p in pts], "o-", label="sessions/s")
        ax.set_xscale("log")
        ax.set_xlabel("chips registered in the store")
        ax.set_ylabel("sessions per second")
        ax2 = ax.twinx()
        ax2.plot(xs, [p["verifier_peak_rss_mb"] for p in pts], "s--", c="#d62728", label="RSS")
        ax2.set_ylabel("verifier peak RSS (MB)")
        ax.set_ylim(0, 1.3 * max(p["sessions_per_s"] for p in pts))
        ax2.set_ylim(0, 1.3 * max(p["verifier_peak_rss_mb"] for p in pts))
        ax.legend(loc="upper left")
        ax2.legend(loc="upper right")
        ax.set_title("Rate and memory against registry size")
    elif kind == "location":
        h = r["histogram_us"]
        ax.step(h["edges"][:-1], h["counts"], where="post")
        ax.axvline(r["floor_us"], ls="--", c="k", lw=1, label=f"floor {r['floor_us']:.1f} us")
        ax.axvline(
            r["allowance_us"],
            ls=":",
            c="#555",
            lw=1,
            label=f"allowance {r['allowance_us']:.0f} us (subtracted before the bound)",
        )
        ax.legend()
        ax.set_xlabel("PING round trip on loopback (us), up to p99")
        ax.set_ylabel("PINGs")
        ax.set_title(
            f"{r['pings']:,} PINGs: least of {r['window']} -> {r['bound_window_p50_km']:.1f} km "
            f"(allowance {r['allowance_us']:.0f} us)"
        )
    elif kind == "dos":
        values = [r["first_session_p99_ms"], r["window_p99_ms"]]
        ax.bar(["first sessions p99", "keep-alive window p99"], values, color="#1f77b4")
        ax.axhline(1000, ls="--", c="k", lw=1, label="target: p99 < 1 s")
        ax.legend()
        ax.set_ylabel("honest session latency (ms)")
        ax.set_title(
            f"{r['idle_sockets']:,} idle sockets from one address: "
            f"{100 * r['honest_success']:.2f} % of honest sessions ok"
        )
    elif kind == "timing":
        _timing(ax, r)
    fig.text(0.01, 0.01, one_line(doc["machine"]), fontsize=6, color="#555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return True


#: colours that mean one thing each: the outcome is what it should be, or is not, or there is
#: no expectation (Python's ``bytes ==``: reported for what it is)
_AS_EXPECTED, _NOT_AS_EXPECTED, _NO_EXPECTATION = "#2ca02c", "#d62728", "#999999"


def _timing(ax: Any, r: dict[str, Any]) -> None:
    """Failure-class pairs should show no leak; the leaky control must show one."""
    from matplotlib.patches import Patch

    items = {**r["pairs"], **r["controls"]}
    names = [n.replace(" vs ", "\nvs ").replace("control_", "control: ") for n in items]
    values = [a["max_abs_t"] for a in items.values()]
    colors = []
    for name, a in items.items():
        if name == "control_bytes_eq":
            colors.append(_NO_EXPECTATION)
        else:
            should_leak = name == "control_leaky_loop"
            colors.append(_AS_EXPECTED if a["leak"] == should_leak else _NOT_AS_EXPECTED)
    bars = ax.bar(range(len(values)), values, color=colors)
    for bar, v in zip(bars, values, strict=True):
        ax.text(bar.get_x() + bar.get_width() / 2, v, f"{v:.1f}", ha="center", va="bottom")
    ax.set_xticks(range(len(values)), names, fontsize=7)
    line = ax.axhline(4.5, ls="--", c="k", lw=1)
    ax.set_yscale("log")
    ax.set_ylabel("max |t| over crops (log)")
    ax.set_title(f"dudect: {r['per_class']:,} measurements per class")
    ax.legend(
        [
            line,
            Patch(color=_AS_EXPECTED),
            Patch(color=_NOT_AS_EXPECTED),
            Patch(color=_NO_EXPECTATION),
        ],
        [
            "|t| = 4.5: above it the two classes are told apart (leak)",
            "as it should be: pair below 4.5, leaky control above",
            "not as it should be: a pair leaks (or the control is missed)",
            "bytes == (memcmp): no expectation, reported as measured",
        ],
        fontsize=7,
        loc="upper left",
    )


def _soak(ax: Any, r: dict[str, Any]) -> None:
    """RSS over the soak on an axis that fits the samples: the growth is what it is about."""
    t = [s[0] / 60 for s in r["rss_samples"]]
    rss = [s[1] for s in r["rss_samples"]]
    ax.plot(t, rss, label="verifier RSS")
    low, high = min(rss), max(rss)
    pad = max(0.5, 0.15 * (high - low))
    ax.set_ylim(low - pad, high + pad)
    ax.axhline(rss[0], ls=":", c="#555", lw=1, label=f"at the start: {rss[0]:.1f} MB")
    growth = r.get("rss_growth_mb", rss[-1] - rss[0])
    ax.text(
        0.98,
        0.05,
        f"growth {growth:+.1f} MB over {t[-1]:.1f} min (target: < 50 MB)",
        transform=ax.transAxes,
        ha="right",
    )
    ax.set_xlabel("minutes")
    ax.set_ylabel("verifier RSS (MB; axis fitted to the samples)")
    ax.legend(loc="upper left")
    ax.set_title(f"Soak: {r['sessions_per_s']:,.0f} sessions/s, RSS over time")


def _run_label(run: dict[str, Any]) -> str:
    return (
        f"{run['workers']} worker{'s' if run['workers'] > 1 else ''}: "
        f"{run['sessions_per_s']:,.0f}/s, p99 {run['p99_ms']:.0f} ms"
    )
