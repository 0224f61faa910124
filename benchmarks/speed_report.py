"""The Markdown report of bench_speed.py, and the targets it is judged by.

``bench_speed.py`` measures; :func:`render` writes what one run measured
(a :class:`SpeedRun`) as ``benchmarks/results/speed.md``, and
:func:`render_sparse_only` the sparse case alone (``speed_sparse.md``).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from harness import Quiet, Timing, checkpoints_of, fmt_share, md_table

# Targets (ratio name -> (comparison, threshold)).
TARGETS = {
    "ip / epoch": ("<=", 1.5),
    "captum_ip / ip": (">=", 10.0),
    "captum_tracin / tracin": (">=", 5.0),
    "captum_self_influence / self_influence": (">=", 5.0),
}
REL_DIFF_TARGET = 1e-4
MEMORY_TARGET_MB = 2048.0
SPARSE_MEMORY_TARGET_MB = 1024.0
SPARSE_TIME_TARGET = 3.0  # compute_influence time / LogisticRegression fit time


def verdict(value: float, cmp: str, threshold: float) -> str:
    ok = value <= threshold if cmp == "<=" else value >= threshold
    return "PASS" if ok else "MISS"


@dataclass
class SpeedRun:
    """Everything a full run measured, for :func:`render`.

    ``bench`` is bench_speed's ``Bench``: the fitted net and its rows.
    """

    header: list
    args: argparse.Namespace
    bench: object
    accuracy: float
    fit: Timing
    rows: list
    diffs: dict
    ratios: dict
    quiet: Quiet
    sweep: list = field(default_factory=list)
    kernels: list = field(default_factory=list)
    memory: dict | None = None
    sparse: dict | None = None

    @property
    def epoch_s(self) -> float:
        return self.fit.best / self.args.epochs


def setup_lines(run: SpeedRun) -> list[str]:
    import captum
    import skorch

    a, b, net = run.args, run.bench, run.bench.net
    n, nv, d = len(b.X), len(b.X_val), b.X.shape[1]
    n_params = sum(p.numel() for p in net.module_.parameters())
    durs = ", ".join(f"{x:.2f}" for x in net.history[:, "dur"])
    dims = "-".join(str(w) for w in (d, *net.get_params()["module__hidden"], 2))
    return [
        f"- Device: `{a.device}`; skorch {skorch.__version__}, captum {captum.__version__}",
        f"- Data: Adult, {n:,} training rows (train subset, seeded shuffle), {nv:,} "
        f"validation rows (test subset); one-hot + standardised: **{d} features**",
        f"- Model: skorch NeuralNetClassifier, MLP {dims} (ReLU), {n_params:,} "
        f"parameters, CrossEntropyLoss, SGD(lr=0.05, momentum=0.9), batch_size 128, "
        f"{a.epochs} epochs, TracInCheckpoints ({len(checkpoints_of(net))} "
        f"checkpoints); validation accuracy {run.accuracy:.4f}",
        f"- Epoch time = {a.epochs}-epoch fit / {a.epochs} = {run.fit.best:.2f} s / "
        f"{a.epochs} = **{run.epoch_s:.3f} s** (fastest of {len(run.fit.seconds)} fits "
        f"from the same seed: {run.fit.runs(2)} s; after a 1-epoch warm-up fit on "
        f"1,024 rows; skorch's per-epoch `dur`: {durs} s; other load during the "
        f"fit: {fmt_share(run.fit.other_at_best)})",
        f"- Our methods: `compute_influence(..., batch_size={b.batch_size})`, one "
        f"warm-up call on 256 rows, then the fastest of {b.repeats} timed runs "
        "(time.perf_counter; all runs listed). captum: `benchmarks/captum_ref.py` "
        f"with `batch_size={b.batch_size}`, `sample_wise_grads_per_batch=True`, one "
        f"warm-up on 256 rows, then the fastest of {a.captum_repeats} timed run(s).",
        '- "other load": share of all CPUs kept busy by OTHER processes during '
        "the reported run (/proc/stat busy time minus this process's CPU time); "
        f"before each run the script waited up to {run.quiet.max_wait:g} s for the "
        f"machine to be idle (in all {run.quiet.spent:.0f} s of a "
        f"{run.quiet.budget:g} s budget).",
    ]


def times_lines(run: SpeedRun) -> list[str]:
    rows = [
        [
            r.name,
            f"{r.timing.best:.3f}",
            f"{r.timing.best / run.epoch_s:.2f}",
            r.timing.runs(),
            fmt_share(r.timing.other_at_best),
            r.note,
        ]
        for r in run.rows
    ]
    head = ["method", "seconds", "x epoch", "all runs (s)", "other load", "notes"]
    return ["## Times", "", *md_table(head, rows, "lrrlrl")]


def ratio_lines(run: SpeedRun) -> list[str]:
    rows = []
    for k, v in run.ratios.items():
        cmp, thr = TARGETS[k]
        rows.append([k, f"{v:.2f}", f"{cmp} {thr:g}", verdict(v, cmp, thr)])
    for k, v in run.diffs.items():
        rows.append(
            [f"max rel diff {k}", f"{v:.2e}", f"<= {REL_DIFF_TARGET:g}",
             verdict(v, "<=", REL_DIFF_TARGET)]
        )  # fmt: skip
    if run.memory is not None:
        m = run.memory
        rows.append(
            [f"ip peak memory beyond data, {m['rows']:,} rows", f"{m['delta_mb']:.0f} MiB",
             f"< {MEMORY_TARGET_MB:.0f} MiB", verdict(m["delta_mb"], "<=", MEMORY_TARGET_MB)]
        )  # fmt: skip
    if run.sparse is not None:
        rows += sparse_target_rows(run.sparse)
    return [
        "## Ratios and agreement",
        "",
        *md_table(["quantity", "value", "target", "result"], rows, "lrrl"),
        "",
        "max rel diff = max|ours - captum| / max|captum|; our self_influence "
        "is compared with minus captum's (our sign: higher = more beneficial).",
    ]


def memory_lines(run: SpeedRun) -> list[str]:
    m, b = run.memory, run.bench
    out = [
        "## Memory (ip, synthetic rows, separate process)",
        "",
        f"- {m['rows']:,} rows x {b.X.shape[1]} features, float32 normal, random "
        f"labels: data {m['data_mb']:.0f} MiB; {len(b.X_val):,} Adult validation "
        f"rows; batch_size {b.batch_size}; scoring took {m['seconds']:.2f} s",
        f"- RSS after building the data (and a 256-row warm-up): "
        f"{m['rss_after_data_mb']:.0f} MiB",
        f"- Peak RSS during scoring: {m['peak_after_scoring_mb']:.0f} MiB (VmHWM, "
        "reset via /proc/self/clear_refs after the data) -> **peak beyond data: "
        f"{m['delta_mb']:.0f} MiB**",
    ]
    parts = [
        f"{k}: {v:.0f} MiB" if isinstance(v, float) else f"{k}: {v}"
        for k, v in m.get("breakdown", {}).items()
    ]
    if parts:
        out.append(
            "- Peak beyond the baseline of each step alone (diagnostic): "
            + "; ".join(parts)
        )
    if "cuda_peak_mb" in m:
        out.append(
            "- torch.cuda.max_memory_allocated beyond the baseline: "
            f"{m['cuda_peak_mb']:.0f} MiB"
        )
    return out


def sweep_lines(run: SpeedRun) -> list[str]:
    rows = [[b, f"{t:.3f}", f"{t / run.epoch_s:.2f}"] for b, t in run.sweep]
    return [
        "## ip time vs batch_size",
        "",
        *md_table(["batch_size", "seconds", "x epoch"], rows, "rrr"),
    ]


def kernel_lines(run: SpeedRun) -> list[str]:
    fwd = run.kernels[0][1] if isinstance(run.kernels[0][1], float) else None
    rows = []
    for k, t in run.kernels:
        if isinstance(t, float):
            rows.append([k, f"{t:.4f}", f"{t / fwd:.1f}" if fwd else ""])
        else:
            rows.append([k, t, ""])
    b = run.bench
    return [
        f"## Kernel costs over the {len(b.X):,} training rows (batch_size "
        f"{b.batch_size}, fastest of {b.repeats}; `skinfluence.kernels`)",
        "",
        *md_table(["kernel", "seconds", "x plain forward"], rows, "lrr"),
    ]


def sparse_target_rows(s: dict) -> list[list]:
    ratio = s["score_s"] / s["fit_s"]
    size = f"{s['rows']:,} x {s['features']:,} CSR"
    return [
        [f"sparse ({size}): compute_influence / LogisticRegression fit",
         f"{ratio:.2f}", f"<= {SPARSE_TIME_TARGET:g}", verdict(ratio, "<=", SPARSE_TIME_TARGET)],
        [f"sparse ({size}): ip peak memory beyond data", f"{s['delta_mb']:.0f} MiB",
         f"< {SPARSE_MEMORY_TARGET_MB:.0f} MiB",
         verdict(s["delta_mb"], "<=", SPARSE_MEMORY_TARGET_MB)],
    ]  # fmt: skip


def sparse_lines(s: dict) -> list[str]:
    return [
        "## Sparse input (ip, LogisticRegression, separate process)",
        "",
        f"- Training rows: a seeded {s['rows']:,} x {s['features']:,} CSR matrix, "
        f"{s['nnz']:,} non-zeros (distinct positions, normal values), float64; "
        f"labels from a random linear rule plus noise. Validation rows: another "
        f"block, {s['val_rows']:,} rows, {s['val_nnz']:,} non-zeros. Sparse data "
        f"{s['data_mb']:.2f} MiB (the training rows dense in float64: "
        f"{s['dense_mb']:.0f} MiB).",
        f"- `LogisticRegression(max_iter=1000).fit`: {s['fit_s']:.3f} s; "
        f'`compute_influence(clf, X, y, X_val, y_val, method="ip", '
        f'objective="utility")` (batch_size: {s["batch_size"]}), after a warm-up '
        f"on 256 rows: {s['score_s']:.3f} s = **{s['score_s'] / s['fit_s']:.2f} x "
        f"the fit** (target <= {SPARSE_TIME_TARGET:g})",
        "- Peak RSS of the scoring beyond the RSS with the data and the fitted "
        f"model (before the warm-up): **{s['delta_mb']:.0f} MiB** (target < "
        f"{SPARSE_MEMORY_TARGET_MB:.0f} MiB; VmHWM reset after a 256-row "
        "warm-up, baseline taken before it, so what the warm-up kept counts "
        f"too); beyond the RSS right before the timed call: "
        f"{s['delta_scoring_mb']:.0f} MiB; "
        f"scores finite: {s['finite']}",
    ]


def render(run: SpeedRun) -> str:
    mode = "quick (1/10 size)" if run.args.quick else "full"
    out = [f"# Speed benchmark ({mode})", "", *run.header]
    out += setup_lines(run) + [""] + times_lines(run) + [""] + ratio_lines(run)
    if run.memory is not None:
        out += [""] + memory_lines(run)
    if run.sparse is not None:
        out += [""] + sparse_lines(run.sparse)
    if run.sweep:
        out += [""] + sweep_lines(run)
    if run.kernels:
        out += [""] + kernel_lines(run)
    return "\n".join(out) + "\n"


def render_sparse_only(header: list, sparse: dict, quick: bool) -> str:
    title = "# Speed benchmark: sparse input" + (" (quick)" if quick else "")
    table = md_table(
        ["quantity", "value", "target", "result"], sparse_target_rows(sparse), "lrrl"
    )
    return "\n".join([title, "", *header, "", *sparse_lines(sparse), "", *table]) + "\n"
