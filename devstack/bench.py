"""`make bench`: figures a reader can check, measured in one run, reported as ratios and counts.

- import cost of every function's handler module in a fresh process, as a ratio to
  `import boto3; boto3.client("dynamodb")` measured interleaved in the same run, and RSS after import;
- the extra sections other modules register (call counts per operation, stream batch speed-up, API latency).
Writes docs/benchmarks.md, docs/benchmarks.json and docs/benchmarks.png.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devstack.template import ROOT, load_template, resources_of_type

DOCS = ROOT / "docs"
IMPORT_GOAL_RATIO = 1.3
RSS_GOAL_MB = 90

_BASELINE = (
    "import time, resource\n"
    "t = time.perf_counter()\n"
    "import boto3\n"
    "boto3.client('dynamodb', region_name='us-east-1')\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)

_HANDLER = (
    "import sys, time, resource\n"
    "sys.path[:0] = [{code!r}, {layer!r}]\n"
    "t = time.perf_counter()\n"
    "import app\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)\n"
)


def _fresh(code: str) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON") and k not in {"AWS_ENDPOINT_URL"}}
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_SERVICE_NAME": "link-zoom"})
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, timeout=60
    ).stdout.split()
    return float(out[0]), float(out[1]) / 1024.0


def function_code_dirs() -> dict[str, Path]:
    template = load_template()
    return {
        name: ROOT / spec["Properties"]["CodeUri"]
        for name, spec in resources_of_type(template, "AWS::Serverless::Function").items()
    }


def measure_imports(rounds: int = 7) -> dict[str, Any]:
    """Median fresh-process import time per handler, interleaved with the baseline so noise hits both."""
    layer = str(ROOT / "layers" / "shared")
    functions = function_code_dirs()
    samples: dict[str, list[tuple[float, float]]] = {"baseline": [], **{f: [] for f in functions}}
    for _ in range(rounds):
        samples["baseline"].append(_fresh(_BASELINE))
        for name, code_dir in functions.items():
            samples[name].append(_fresh(_HANDLER.format(code=str(code_dir), layer=layer)))
    baseline = statistics.median(t for t, _ in samples["baseline"])
    result: dict[str, Any] = {
        "rounds": rounds,
        "baseline_ms": round(baseline * 1000, 1),
        "baseline_rss_mb": round(statistics.median(r for _, r in samples["baseline"]), 1),
        "functions": {},
    }
    for name in functions:
        median_s = statistics.median(t for t, _ in samples[name])
        result["functions"][name] = {
            "import_ms": round(median_s * 1000, 1),
            "ratio": round(median_s / baseline, 2),
            "rss_mb": round(statistics.median(r for _, r in samples[name]), 1),
        }
    return result


# Other measurements register here: name -> callable returning a JSON-able dict (run in this order).
SECTIONS: dict[str, Callable[[], dict[str, Any]]] = {}


def _optional_sections() -> None:
    """Sections that live beside the code they measure; a missing one is reported, not fatal."""
    for module in ("devstack.bench_meetings", "devstack.bench_stream", "devstack.bench_api", "devstack.bench_keeper"):
        try:
            __import__(module)
        except ImportError as exc:
            print(f"bench: section {module} not available ({exc})", file=sys.stderr)


def render_markdown(figures: dict[str, Any]) -> str:
    imports = figures["imports"]
    lines = [
        "# Benchmarks",
        "",
        f"Measured by `make bench` on {figures['measured_at']} ({figures['machine']}). Timings are ratios to a",
        "baseline measured in the same run; counts are exact. Raw figures: `docs/benchmarks.json`.",
        "",
        "## Cold start: importing each handler module in a fresh process",
        "",
        *([f"Measured on {imports['measured_at']} with `--only imports`.", ""] if "measured_at" in imports else []),
        f'Baseline `import boto3; boto3.client("dynamodb")`: {imports["baseline_ms"]} ms median of '
        f"{imports['rounds']} (RSS {imports['baseline_rss_mb']} MB). Goal: ratio ≤ {IMPORT_GOAL_RATIO}, "
        f"RSS ≤ {RSS_GOAL_MB} MB.",
        "",
        "| function | import (ms) | ratio to baseline | RSS after import (MB) | within goals |",
        "|---|---:|---:|---:|---|",
    ]
    for name, row in imports["functions"].items():
        ok = row["ratio"] <= IMPORT_GOAL_RATIO and row["rss_mb"] <= RSS_GOAL_MB
        lines.append(f"| {name} | {row['import_ms']} | {row['ratio']} | {row['rss_mb']} | {'yes' if ok else 'NO'} |")
    for name, section in figures.get("sections", {}).items():
        lines += ["", f"## {name}", ""]
        if isinstance(section, dict) and "markdown" in section:
            lines.append(section["markdown"])
        else:
            lines += ["```json", json.dumps(section, indent=2), "```"]
    lines.append("")
    return "\n".join(lines)


def plot(figures: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stream = next((v for v in figures.get("sections", {}).values() if isinstance(v, dict) and "unlimited" in v), None)
    fig, axes = plt.subplots(1, 2 if stream else 1, figsize=(15 if stream else 9, 4.5), squeeze=False)
    _plot_imports(axes[0][0], figures["imports"]["functions"])
    if stream:
        _plot_stream(axes[0][1], stream)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_imports(ax: Any, rows: dict[str, Any]) -> None:
    names = list(rows)
    ratios = [rows[n]["ratio"] for n in names]
    ax.barh(names, ratios, color=["#2d7d46" if r <= IMPORT_GOAL_RATIO else "#b03a2e" for r in ratios])
    ax.axvline(1.0, color="#555", linestyle=":", label="baseline: boto3 + DynamoDB client")
    ax.axvline(IMPORT_GOAL_RATIO, color="#b03a2e", linestyle="--", label=f"goal {IMPORT_GOAL_RATIO}x")
    ax.set_xlabel("handler import time / baseline (fresh process, median)")
    ax.set_title("Cold-start import cost per Lambda function")
    ax.legend(loc="lower right")


def _plot_stream(ax: Any, stream: dict[str, Any]) -> None:
    """Speed-up over sequential of the 100-record batch through the stack: cold and warm, per CPU setting."""
    kinds = (
        ("cold", "cold stack", "#2f4b7c"),
        ("cold_function", "cold function", "#4a6fa5"),
        ("warm", "warm", "#9bb7d4"),
    )
    from devstack.bench_stream import SETTINGS, setting_label

    labels = [f"{setting_label(setting, stream)}\n{shape}" for setting in SETTINGS for shape in stream.get(setting, {})]
    rows = [row for setting in SETTINGS for row in stream.get(setting, {}).values()]
    for offset, (kind, name, color) in zip((-0.27, 0.0, 0.27), kinds, strict=True):
        values = [row.get(f"{kind}_speedup", 0) for row in rows]
        ax.bar([x + offset for x in range(len(rows))], values, width=0.27, color=color, label=name)
    ax.axhline(stream.get("goal", 5.0), color="#b03a2e", linestyle="--", label=f"goal {stream.get('goal', 5.0)}x")
    ax.set_xticks(list(range(len(labels))), labels)
    ax.set_ylabel("speed-up over sequential (same CPU setting)")
    ax.set_title("Stream batch of 100 through the stack, 100 ms Zoom latency")
    ax.legend(loc="upper right")


def main(argv: list[str] | None = None) -> int:
    """`python -m devstack.bench [--only TEXT]`: every section, or only those whose title holds TEXT (the other
    figures are kept from the last docs/benchmarks.json, each section saying when it was measured)."""
    import argparse
    import platform

    parser = argparse.ArgumentParser(prog="python -m devstack.bench")
    parser.add_argument(
        "--only", help="re-measure only the sections whose title contains this text ('imports': the import table)"
    )
    only = parser.parse_args(argv).only
    # Run as `python -m devstack.bench`, this module is __main__: sections must register into this copy.
    sys.modules.setdefault("devstack.bench", sys.modules[__name__])

    started = time.time()
    now = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    if only:
        figures: dict[str, Any] = json.loads((DOCS / "benchmarks.json").read_text())
        if only == "imports":
            figures["imports"] = {**measure_imports(), "measured_at": now}
    else:
        figures = {"measured_at": now, "machine": machine, "imports": measure_imports(), "sections": {}}
    _optional_sections()
    for name, section in SECTIONS.items():
        if only and only not in name:
            continue
        print(f"bench: {name} ...", file=sys.stderr)
        figures["sections"][name] = section()
        if only:
            figures["sections"][name]["markdown"] = (
                f"Measured on {now} ({machine}) by `make bench` with `--only`; the sections without such a "
                f"line are from the full run above.\n\n{figures['sections'][name].get('markdown', '')}"
            )
    # Sections that no longer exist (renamed or removed) leave the document.
    figures["sections"] = {name: value for name, value in figures["sections"].items() if name in SECTIONS}
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks.json").write_text(json.dumps(figures, indent=2) + "\n")
    (DOCS / "benchmarks.md").write_text(render_markdown(figures))
    plot(figures, DOCS / "benchmarks.png")
    print(render_markdown(figures))
    print(f"bench: done in {time.time() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
