"""Speed and memory of skinfluence against captum's TracInCP: measures, writes CSV.

Run from the repository root::

    python benchmarks/bench_speed.py                 # full run -> results/speed.csv
    python benchmarks/bench_speed.py --quick --out speed_quick   # smoke test

One CSV row per measured quantity (columns: COLUMNS); ``python
benchmarks/report.py speed`` renders them. benchmarks/README.md says what
each part measures, and the targets.
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import harness as h
import numpy as np
import pandas as pd
import torch
from sklearn.base import clone

import skinfluence as sk

HIDDEN = (128, 128)
SWEEP = (512, 1024, 2048, 4096, 8192, 16384)
COLUMNS = ["part", "name", "value", "relative", "runs", "other_load", "note"]


def row(part, name, value, note="", *, relative=None, timing=None) -> dict:
    """One measured quantity; a ``harness.Timing`` adds its runs and other load."""
    out = {"part": part, "name": name, "value": value, "relative": relative, "note": note}
    if timing is not None:
        out.update(runs=timing.runs(), other_load=timing.other_at_best)
    return out


def rows_of(part: str, facts: list[tuple]) -> list[dict]:
    """The rows of ``(name, value, note)`` facts, logged."""
    for name, value, note in facts:
        h.log(f"  {name}: {value:.4g} {note}")
    return [row(part, *f) for f in facts]


def rel_diff(ours, ref) -> float:
    """max |ours - ref| / max |ref|, in float64."""
    return float(np.max(np.abs(ours - ref.astype(np.float64))) / np.max(np.abs(ref)))


# ---------------------------------------------------------------- data, model
def load_data(n_train: int, n_val: int, seed: int):
    """Adult train rows (seeded sample) and test rows as validation, encoded."""
    X_tr, y_tr, _ = h.load_dataset("adult", subset="train")
    X_te, y_te, _ = h.load_dataset("adult", subset="test")
    i_tr, i_te = h.sample_rows(len(X_tr), n_train, seed), h.sample_rows(len(X_te), n_val, seed)
    X, X_val = h.encode(X_tr.iloc[i_tr], X_te.iloc[i_te])
    return X, y_tr[i_tr], X_val, y_te[i_te]


def fit_net(X, y, args, quiet):
    """The net fitted ``--repeats`` times from the same seed: a Timing, the net its result."""
    def fit(epochs, n=None):
        torch.manual_seed(args.seed)
        net = h.make_mlp(X.shape[1], hidden=HIDDEN, lr=0.05, momentum=0.9, batch_size=128,
                         epochs=epochs, checkpoints=True, device=args.device)  # fmt: skip
        return net.fit(X[:n], y[:n])

    fit(1, 1024)  # warm-up
    return h.timed(lambda: fit(args.epochs), repeats=args.repeats, device=args.device, quiet=quiet)


# ------------------------------------------------------------------- timings
@dataclass
class Bench:
    """The fitted net, the rows every timed call shares, and what was timed."""

    net: object
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    args: argparse.Namespace
    quiet: h.Quiet
    epoch_s: float
    timings: dict = field(default_factory=dict)  # name -> Timing, with its result

    def influence(self, method, n=None, batch_size=None):
        """``compute_influence`` on the first ``n`` training rows (all: None)."""
        return sk.compute_influence(
            self.net, self.X[:n], self.y[:n], self.X_val, self.y_val, method=method,
            batch_size=batch_size or self.args.batch_size, random_state=self.args.seed,
        )  # fmt: skip

    def time_row(self, part, name, fn, note="", *, repeats=None, warmup=None) -> dict:
        """The fastest of ``repeats`` timed calls of ``fn`` (after ``warmup()``)."""
        if warmup is not None:
            warmup()
        t = h.timed(fn, repeats=repeats or self.args.repeats, device=self.args.device,
                    quiet=self.quiet)  # fmt: skip
        self.timings[name] = t
        h.log(f"{name}: {t.best:.4f} s, runs {t.runs()}, other load {h.fmt_share(t.other_at_best)}")
        return row(part, name, t.best, note, relative=t.best / self.epoch_s, timing=t)

    def torch_rows(self):
        """The model adapter, the training rows as tensors, the bound utility."""
        model = sk.as_torch_model(self.net)
        bound = sk.Utility().bind(model, self.X_val, self.y_val)
        return model, model.prepare_X(self.X), model.prepare_y(self.y), bound


def time_ours(bench: Bench, name: str, method, note: str = "") -> dict:
    """One warm-up call on 256 rows, then the timed calls; warnings join the note."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bench.influence(method, n=256)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = bench.time_row("time", name, lambda: bench.influence(method), note)
    msgs = sorted({str(w.message) for w in caught if w.category is not DeprecationWarning})
    r["note"] += ("; warnings: " + " | ".join(msgs)) if msgs else ""
    return r


def influence_function_row(bench: Bench, damping: float, max_iter: int) -> dict:
    """Timed; its CG iterations are the ``cg_info_`` of one extra, untimed solve."""
    method = sk.InfluenceFunction(damping=damping, max_iter=max_iter, tol=1e-6,
                               on_unconverged="warn")  # fmt: skip
    model, X, y, bound = bench.torch_rows()
    solve = clone(method)
    solve.score(model, bound, X, y, batch_size=bench.args.batch_size)
    info = solve.cg_info_
    note = (f"cg, damping={damping:g}, max_iter={max_iter}, tol=1e-6: {info.n_iter} CG "
            f"iterations per run (stop: {info.stop})")  # fmt: skip
    return time_ours(bench, f"influence_function (damping={damping:g})", method, note)


def our_rows(bench: Bench) -> list[dict]:
    n_cks, a = len(h.checkpoints_of(bench.net)), bench.args
    return [
        time_ours(bench, "ip", "ip", "one backward over validation + one jvp pass"),
        time_ours(bench, "ip_ensemble", sk.IPEnsemble(n_members=10), "IPEnsemble(n_members=10)"),
        time_ours(bench, "tracin", "tracin", f"{n_cks} checkpoints"),
        *(influence_function_row(bench, d, a.cg_iter) for d in a.damping),
        time_ours(bench, "self_influence", "self_influence", f"{n_cks} checkpoints"),
        time_ours(bench, "self_influence_final", sk.SelfInfluence(use_checkpoints=False),
                  "final parameters only"),
    ]  # fmt: skip


def captum_rows(bench: Bench) -> list[dict]:
    """captum's TracInCP on the same rows, checkpoints and batch size."""
    from captum_ref import self_influence, tracin_scores

    module, bs = bench.net.module_, bench.args.batch_size
    cks = [(dict(c.params), float(c.learning_rate)) for c in h.checkpoints_of(bench.net)]
    final = [({k: v.detach().cpu().clone() for k, v in module.named_parameters()}, 1.0)]
    X, y, Xv, yv = (torch.as_tensor(a, device=bench.args.device)
                    for a in (bench.X, bench.y, bench.X_val, bench.y_val))  # fmt: skip

    def aggregate(checkpoints):  # captum's scores of the first n rows
        return lambda n=None: tracin_scores(module, checkpoints, X[:n], y[:n], Xv, yv,
                                            batch_size=bs)  # fmt: skip

    refs = {
        "captum_ip": (aggregate(final), "TracInCP aggregate, 1 checkpoint = final params, lr 1"),
        "captum_tracin": (aggregate(cks), f"TracInCP aggregate, {len(cks)} checkpoints"),
        "captum_self_influence": (
            lambda n=None: self_influence(module, cks, X[:n], y[:n], batch_size=bs),
            f"TracInCP.self_influence, {len(cks)} checkpoints"),
    }  # fmt: skip
    return [bench.time_row("time", name, fn, note, repeats=bench.args.captum_repeats,
                           warmup=lambda fn=fn: fn(256))
            for name, (fn, note) in refs.items()]  # fmt: skip


def ratio_rows(bench: Bench) -> list[dict]:
    """Our times against the epoch and captum's; our scores against captum's."""
    t = {k: v.best for k, v in bench.timings.items()}
    s = {k: v.result for k, v in bench.timings.items()}
    return rows_of("ratio", [
        ("ip / epoch", t["ip"] / bench.epoch_s, ""),
        ("captum_ip / ip", t["captum_ip"] / t["ip"], ""),
        ("captum_tracin / tracin", t["captum_tracin"] / t["tracin"], ""),
        ("captum_self_influence / self_influence",
         t["captum_self_influence"] / t["self_influence"], ""),
        ("max rel diff ip vs captum_ip", rel_diff(s["ip"], s["captum_ip"]), ""),
        ("max rel diff tracin vs captum_tracin", rel_diff(s["tracin"], s["captum_tracin"]), ""),
        ("max rel diff self_influence vs -captum_self_influence",  # our sign: higher = better
         rel_diff(s["self_influence"], -s["captum_self_influence"]), ""),
    ])  # fmt: skip


def sweep_rows(bench: Bench) -> list[dict]:
    return [bench.time_row("sweep", str(b), lambda b=b: bench.influence("ip", batch_size=b),
                           warmup=lambda b=b: bench.influence("ip", n=256, batch_size=b))
            for b in SWEEP]  # fmt: skip


def kernel_rows(bench: Bench) -> list[dict]:
    """The kernels of ``skinfluence.kernels`` next to plain passes over the rows."""
    model, X, y, bound = bench.torch_rows()
    params, bs, k = model.params, bench.args.batch_size, sk.kernels
    v = bound.gradient(params, batch_size=bs)
    hvp = k.make_hvp(model, params, X, y, bs)

    def forward_backward():
        p = {name: t.clone().requires_grad_(True) for name, t in params.items()}
        for sl in k.chunks(len(X), bs):
            loss = model.row_loss(p, *k.to_device(model, X, y, sl)).sum()
            torch.autograd.grad(loss, list(p.values()))

    steps = {
        "plain forward, no grad (row_losses)": lambda: k.row_losses(model, params, X, y, bs),
        "forward + backward of the summed loss": forward_backward,
        f"objective gradient ({len(bench.X_val):,} validation rows)":
            lambda: bound.gradient(params, batch_size=bs),
        "grad_dot: jvp pass (the core of ip)": lambda: k.grad_dot(model, params, v, X, y, bs),
        "grad_sq_norms (closed form)": lambda: k.grad_sq_norms(model, params, X, y, bs),
        "one Hessian-vector product (make_hvp)": lambda: hvp(v),
    }  # fmt: skip
    rows = [bench.time_row("kernel", name, fn, warmup=fn) for name, fn in steps.items()]
    for r in rows:  # relative to the plain forward pass
        r["relative"] = r["value"] / rows[0]["value"]
    return rows


# ---------------------------------------------- memory (in a fresh process)
def synthetic_rows(n: int, n_features: int, seed: int):
    """float32 normal rows built in chunks (no float64 temporary), random labels."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, n_features), dtype=np.float32)
    for start in range(0, n, 65536):
        stop = min(start + 65536, n)
        rng.standard_normal(size=(stop - start, n_features), dtype=np.float32, out=X[start:stop])
    return X, rng.integers(0, 2, size=n).astype(np.int64)


def memory_breakdown(net, X, y, X_val, y_val, batch_size) -> list[tuple]:
    """Peak RSS beyond the baseline of each step of ip alone (diagnostic)."""
    model = sk.as_torch_model(net)
    (Xt, yt), prep = h.peak_beyond(lambda: (model.prepare_X(X), model.prepare_y(y)))
    v = sk.Utility().bind(model, X_val, y_val).gradient(model.params, batch_size=batch_size)
    _, finite = h.peak_beyond(lambda: torch.isfinite(Xt).all())
    _, jvp = h.peak_beyond(lambda: sk.kernels.grad_dot(model, model.params, v, Xt, yt, batch_size))
    return [
        ("step alone: prepare_X/prepare_y (MiB)", prep, "diagnostic"),
        ("step alone: torch.isfinite(X).all() on the whole X (MiB)", finite, "for reference"),
        ("step alone: grad_dot (jvp pass) (MiB)", jvp, "diagnostic"),
    ]


def memory_child(args) -> list[tuple]:
    """Score ``--mem-rows`` synthetic rows with ip on the pickled net and rows."""
    net, X_val, y_val = pickle.loads(Path(args._memory_child).read_bytes())
    cuda = args.device.startswith("cuda")
    X, y = synthetic_rows(args.mem_rows, X_val.shape[1], args.seed)

    def score(n=None):
        return sk.compute_influence(net, X[:n], y[:n], X_val, y_val, method="ip",
                                 batch_size=args.batch_size)  # fmt: skip

    score(256)  # warm-up (kernels, allocator pools) before the baseline
    rss = h.rss_mb()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_base = torch.cuda.memory_allocated()
    t = h.timed(lambda: h.peak_beyond(score), device=args.device)
    scores, delta = t.result
    if delta is None or not np.isfinite(scores).all():
        raise RuntimeError("peak RSS unknown (/proc/self/clear_refs) or non-finite scores")
    facts = [
        ("synthetic rows", len(X), f"{X.shape[1]} features, float32 normal, random labels; "
         f"{len(X_val):,} validation rows; batch_size {args.batch_size}"),
        ("data (MiB)", (X.nbytes + y.nbytes) / 2**20, ""),
        ("scoring (s)", t.best, ""),
        ("RSS after the data and a 256-row warm-up (MiB)", rss, ""),
        ("peak RSS during scoring (MiB)", h.hwm_mb(), "VmHWM, reset after the data"),
        ("peak beyond data (MiB)", delta, ""),
    ]  # fmt: skip
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - cuda_base) / 2**20
        return facts + [("torch.cuda.max_memory_allocated beyond the baseline (MiB)", peak, "")]
    return facts + memory_breakdown(net, X, y, X_val, y_val, args.batch_size)


def run_memory(bench: Bench) -> list[dict]:
    """:func:`memory_child` in a fresh process (the net and rows pickled to it)."""
    a = bench.args
    h.log(f"memory: ip on {a.mem_rows:,} synthetic rows, in a fresh process")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload.pkl"
        path.write_bytes(pickle.dumps((bench.net, bench.X_val, bench.y_val)))
        facts = h.run_child(Path(__file__), [*a.argv, "--_memory-child", str(path)])["facts"]
    return rows_of("memory", [tuple(f) for f in facts])


# ---------------------------------------------------------------------- main
def setup_rows(bench: Bench, fit, accuracy: float) -> list[dict]:
    import captum
    import skorch

    net, quiet = bench.net, bench.quiet
    dims = "-".join(str(w) for w in (bench.X.shape[1], *HIDDEN, 2))
    durs = ", ".join(f"{x:.2f}" for x in net.history[:, "dur"])
    return [row("setup", *f) for f in [
        ("training rows (Adult train subset, seeded shuffle)", len(bench.X),
         f"validation rows: {len(bench.X_val):,} of the test subset"),
        ("features (one-hot + standardised)", bench.X.shape[1], ""),
        ("MLP parameters", sum(p.numel() for p in net.module_.parameters()),
         f"MLP {dims} (ReLU), {len(h.checkpoints_of(net))} checkpoints; device "
         f"{bench.args.device}; skorch {skorch.__version__}, captum {captum.__version__}"),
        ("validation accuracy", accuracy, ""),
        ("idle waits in all (s)", quiet.spent, f"at most {quiet.max_wait:g} s before each "
         f"timed run, {quiet.budget:g} s in all"),
    ]] + [
        row("setup", "fit (s)", fit.best, f"fastest of {len(fit.seconds)} fits from the "
            "same seed, after a 1-epoch warm-up fit on 1,024 rows", timing=fit),
        row("setup", f"epoch (s) = fit / {bench.args.epochs}", bench.epoch_s,
            f"skorch's per-epoch dur: {durs}"),
    ]  # fmt: skip


def run_all(args) -> list[dict]:
    """Fit the net, then time and measure: the CSV rows."""
    quiet = h.Quiet(max(0.0, args.idle_wait), max(0.0, args.idle_budget))
    n_train, n_val = (3_000, 600) if args.quick else (30_000, 6_000)
    X, y, X_val, y_val = load_data(n_train, n_val, args.seed)
    fit = fit_net(X, y, args, quiet)
    net = fit.result
    accuracy = float((net.predict(X_val) == y_val).mean())
    bench = Bench(net, X, y, X_val, y_val, args, quiet, fit.best / args.epochs)
    rows = our_rows(bench) + captum_rows(bench)
    rows += ratio_rows(bench) + ([] if args.no_memory else run_memory(bench))
    if not args.no_sweep:
        rows += sweep_rows(bench) + kernel_rows(bench)
    return setup_rows(bench, fit, accuracy) + rows


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = p.add_argument
    add("--quick", action="store_true", help="1/10 of the rows: a smoke test")
    add("--out", default="speed", help="writes results/<OUT>.csv (default speed)")
    add("--device", default="cpu", help="cpu or cuda (default cpu)")
    add("--threads", type=int, help="torch threads (default: torch's own default)")
    add("--batch-size", type=int, default=4096, help="of our methods and captum's")
    add("--repeats", type=int, default=3, help="timed runs of our methods (default 3)")
    add("--captum-repeats", type=int, default=1, help="timed runs of captum's (default 1)")
    add("--idle-wait", type=float, help="before each timed run, wait up to this many s for "
        "idle CPUs (0: don't; default 30, 5 with --quick)")  # fmt: skip
    add("--idle-budget", type=float, help="s of such waits in all (default 300, 60 with --quick)")
    add("--epochs", type=int, default=5)
    add("--seed", type=int, default=0)
    add("--cg-iter", type=int, default=50, help="influence_function's max_iter")
    add("--damping", type=float, nargs="+", default=[0.1, 0.01], help="influence_function's")
    add("--mem-rows", type=int, help="rows of the memory test (default 1,000,000; 100,000 quick)")
    add("--no-memory", action="store_true", help="skip the memory test")
    add("--no-sweep", action="store_true", help="skip the batch-size sweep and kernel costs")
    add("--_memory-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the memory child
    for name, full, quick in [("mem_rows", 1_000_000, 100_000), ("idle_wait", 30.0, 5.0),
                              ("idle_budget", 300.0, 60.0)]:  # fmt: skip
        if getattr(args, name) is None:
            setattr(args, name, quick if args.quick else full)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    h.set_threads(args.threads)
    if args._memory_child:
        h.child_result({"facts": memory_child(args)})
        return 0
    h.log(f"load average {h.load_avg()}; torch threads {torch.get_num_threads()}")
    h.write_csv(args.out, pd.DataFrame(run_all(args), columns=COLUMNS), argv=argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
