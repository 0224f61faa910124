"""Speed and memory benchmark of skinfluence against captum's TracInCP.

Run from the repository root::

    python benchmarks/bench_speed.py              # full run (Adult, 30,000 rows)
    python benchmarks/bench_speed.py --quick      # ~1/10 size smoke test
    python benchmarks/bench_speed.py --device cuda
    python benchmarks/bench_speed.py --only sparse --sparse-rows 1000

What it measures (see benchmarks/README.md for the details):

* one training epoch of a skorch MLP (2 x 128 ReLU) on 30,000 Adult rows;
* ``compute_influence`` with ip, ip_ensemble, tracin, influence_function and
  self_influence (with checkpoints and at the final parameters only);
* captum's ``TracInCP`` (``benchmarks/captum_ref.py``) on the same rows and
  checkpoints, and the largest relative difference to our scores;
* ip's time per batch size, and the cost of the kernels of
  ``skinfluence.kernels`` next to plain passes;
* the peak memory of ``ip`` on 1,000,000 synthetic rows, beyond the data,
  in a fresh subprocess;
* sparse input: ip with a LogisticRegression on a seeded scipy.sparse CSR
  matrix (8,000 x 50,000, 40,000 non-zeros), its time against the fit's and
  its peak memory beyond the data, in a fresh subprocess.

It prints progress, then a Markdown report that it also writes to
``benchmarks/results/speed.md`` (``speed_sparse.md`` with ``--only sparse``;
nothing with ``--no-write``).
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from harness import (
    RESULTS_DIR,
    Quiet,
    Timing,
    checkpoints_of,
    child_result,
    encode,
    fmt_share,
    hwm_mb,
    load_avg,
    load_dataset,
    log,
    make_mlp,
    peak_beyond,
    rss_mb,
    run_child,
    run_header,
    sample_rows,
    set_threads,
    timed,
    write_result,
)
from speed_report import SpeedRun, render, render_sparse_only

from skinfluence import (
    InfluenceFunction,
    IPEnsemble,
    SelfInfluence,
    Utility,
    as_torch_model,
    compute_influence,
)

SCRIPT = Path(__file__).resolve()
RESULTS = RESULTS_DIR / "speed.md"
SPARSE_RESULTS = RESULTS_DIR / "speed_sparse.md"
HIDDEN = (128, 128)
SWEEP = (512, 1024, 2048, 4096, 8192, 16384)


def rel_diff(ours, ref) -> float:
    """max |ours - ref| / max |ref|."""
    ours, ref = np.asarray(ours, np.float64), np.asarray(ref, np.float64)
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


# ---------------------------------------------------------------- data, model
def load_data(n_train: int, n_val: int, seed: int):
    """Adult train rows (seeded sample) and test rows as validation, encoded."""
    X_tr, y_tr, _ = load_dataset("adult", subset="train")
    X_te, y_te, _ = load_dataset("adult", subset="test")
    i_tr, i_te = (
        sample_rows(len(X_tr), n_train, seed),
        sample_rows(len(X_te), n_val, seed),
    )
    X, X_val = encode(X_tr.iloc[i_tr], X_te.iloc[i_te])
    return X, y_tr[i_tr], X_val, y_te[i_te]


def make_net(n_features: int, epochs: int, args):
    torch.manual_seed(args.seed)
    return make_mlp(
        n_features,
        hidden=HIDDEN,
        lr=0.05,
        momentum=0.9,
        batch_size=128,
        epochs=epochs,
        checkpoints=True,
        device=args.device,
    )


def fit_net(X, y, args, quiet: Quiet):
    """The net fitted ``--repeats`` times from the same seed; the fits' Timing."""
    make_net(X.shape[1], 1, args).fit(X[:1024], y[:1024])  # warm-up
    fits = Timing()
    for _ in range(args.repeats):
        net = make_net(X.shape[1], args.epochs, args)
        t = timed(lambda net=net: net.fit(X, y), device=args.device, quiet=quiet)
        fits.seconds += t.seconds
        fits.other += t.other
    fits.result = net
    return net, fits


# ------------------------------------------------------------------- timings
@dataclass
class Bench:
    """The fitted net and the rows every timed call shares."""

    net: object
    X: np.ndarray
    y: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    batch_size: int
    repeats: int
    device: str
    seed: int
    quiet: Quiet

    def influence(self, method, n=None, batch_size=None):
        """``compute_influence`` on the first ``n`` training rows (all: None)."""
        return compute_influence(
            self.net,
            self.X[:n],
            self.y[:n],
            self.X_val,
            self.y_val,
            method=method,
            batch_size=batch_size or self.batch_size,
            random_state=self.seed,
        )

    def time(self, fn, repeats=None) -> Timing:
        return timed(
            fn, repeats=repeats or self.repeats, device=self.device, quiet=self.quiet
        )


@dataclass
class Row:
    name: str
    timing: Timing
    note: str = ""


def log_row(row: Row) -> Row:
    t = row.timing
    log(
        f"{row.name}: {t.best:.3f} s (runs: {t.runs()}; other load "
        f"{fmt_share(t.other_at_best)}) {row.note}"
    )
    return row


def time_ours(bench: Bench, name: str, method, note: str = "") -> Row:
    """One warm-up call on 256 rows, then ``repeats`` timed calls."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bench.influence(method, n=256)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        timing = bench.time(lambda: bench.influence(method))
    msgs = sorted(
        {
            str(w.message)
            for w in caught
            if not issubclass(w.category, DeprecationWarning)
        }
    )
    if msgs:
        note += "; warnings: " + " | ".join(msgs)
    return log_row(Row(name, timing, note))


class CountingCG(InfluenceFunction):
    """``InfluenceFunction(solver="cg")`` counting its Hessian-vector products.

    For one extra, untimed run: the timed runs use the package's own class.
    The count is class-wide, since ``compute_influence`` scores with a clone.
    """

    n_hvp = 0

    def inverse_hvp(self, model, v, X, y, *, batch_size, random_state=None):
        from skinfluence.kernels import cg, make_hvp

        hvp = make_hvp(model, model.params, X, y, batch_size)

        def counted(u):
            type(self).n_hvp += 1
            return hvp(u)

        return cg(
            counted,
            v,
            damping=self.damping,
            tol=self.tol,
            max_iter=self.max_iter or 200,
        )


def cg_iterations(bench: Bench, method: InfluenceFunction) -> int | None:
    """CG iterations of ``method`` (one HVP each); None if it cannot be counted."""
    CountingCG.n_hvp = 0
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bench.influence(CountingCG(**method.get_params()))
    except ImportError as exc:
        log(f"  CG iterations not counted: {exc}")
        return None
    return CountingCG.n_hvp


def influence_function_row(bench: Bench, damping: float, max_iter: int) -> Row:
    method = InfluenceFunction(
        solver="cg", damping=damping, max_iter=max_iter, tol=1e-6
    )
    row = time_ours(bench, f"influence_function (damping={damping:g})", method)
    n = cg_iterations(bench, method)
    per = "n/a" if n is None else f"{row.timing.best / max(n, 1):.3f}"
    row.note = (
        f"cg, damping={damping:g}, max_iter={max_iter}, tol=1e-6: "
        f"{'n/a' if n is None else n} HVPs (= CG iterations, counted in an extra "
        f"untimed run) per run, {per} s per iteration" + row.note
    )
    log(f"  {n} CG iterations per run")
    return row


def our_rows(bench: Bench, args) -> list[Row]:
    n_cks = len(checkpoints_of(bench.net))
    log(f"our methods, batch_size={bench.batch_size}, fastest of {bench.repeats} runs")
    rows = [
        time_ours(bench, "ip", "ip", "one backward over validation + one jvp pass"),
        time_ours(
            bench, "ip_ensemble", IPEnsemble(n_members=10), "IPEnsemble(n_members=10)"
        ),
        time_ours(bench, "tracin", "tracin", f"{n_cks} checkpoints"),
    ]
    rows += [influence_function_row(bench, d, args.cg_iter) for d in args.damping]
    rows += [
        time_ours(bench, "self_influence", "self_influence", f"{n_cks} checkpoints"),
        time_ours(
            bench,
            "self_influence_final",
            SelfInfluence(use_checkpoints=False),
            "final parameters only",
        ),
    ]
    return rows


def captum_rows(bench: Bench, repeats: int) -> list[Row]:
    """captum's TracInCP on the same rows, checkpoints and batch size."""
    from captum_ref import self_influence, tracin_scores

    module, bs = bench.net.module_, bench.batch_size
    cks = [(dict(c.params), float(c.learning_rate)) for c in checkpoints_of(bench.net)]
    final = [({k: v.detach().cpu().clone() for k, v in module.named_parameters()}, 1.0)]
    dev = torch.device(bench.device)
    X, y, Xv, yv = (
        torch.as_tensor(a).to(dev) for a in (bench.X, bench.y, bench.X_val, bench.y_val)
    )
    refs = {
        "captum_ip": (
            lambda n=None: tracin_scores(
                module, final, X[:n], y[:n], Xv, yv, batch_size=bs
            ),
            "TracInCP aggregate, 1 checkpoint = final params, lr 1",
        ),
        "captum_tracin": (
            lambda n=None: tracin_scores(
                module, cks, X[:n], y[:n], Xv, yv, batch_size=bs
            ),
            f"TracInCP aggregate, {len(cks)} checkpoints",
        ),
        "captum_self_influence": (
            lambda n=None: self_influence(module, cks, X[:n], y[:n], batch_size=bs),
            f"TracInCP.self_influence, {len(cks)} checkpoints",
        ),
    }
    log(f"captum TracInCP (sample_wise_grads_per_batch=True), batch_size={bs}")
    rows = []
    for name, (fn, note) in refs.items():
        fn(256)  # warm-up
        rows.append(log_row(Row(name, bench.time(fn, repeats), note)))
    return rows


def agreement(scores: dict) -> dict:
    return {
        "ip vs captum_ip": rel_diff(scores["ip"], scores["captum_ip"]),
        "tracin vs captum_tracin": rel_diff(scores["tracin"], scores["captum_tracin"]),
        # our self_influence is minus the sum (higher = more beneficial)
        "self_influence vs -captum_self_influence": rel_diff(
            scores["self_influence"], -scores["captum_self_influence"]
        ),
    }


def speed_ratios(times: dict, epoch_s: float) -> dict:
    return {
        "ip / epoch": times["ip"] / epoch_s,
        "captum_ip / ip": times["captum_ip"] / times["ip"],
        "captum_tracin / tracin": times["captum_tracin"] / times["tracin"],
        "captum_self_influence / self_influence": times["captum_self_influence"]
        / times["self_influence"],
    }


def batch_size_sweep(bench: Bench) -> list[tuple[int, float]]:
    log("ip batch-size sweep")
    out = []
    for b in SWEEP:
        bench.influence("ip", n=256, batch_size=b)
        out.append(
            (b, bench.time(lambda b=b: bench.influence("ip", batch_size=b)).best)
        )
        log(f"  batch_size={b}: {out[-1][1]:.3f} s")
    return out


def kernel_costs(bench: Bench) -> list[tuple[str, object]]:
    """The kernels of ``skinfluence.kernels`` next to plain passes over the rows."""
    try:
        from skinfluence.kernels import (
            chunks,
            grad_dot,
            grad_sq_norms,
            make_hvp,
            row_losses,
            to_device,
        )
    except ImportError as exc:
        return [("error", repr(exc))]
    model = as_torch_model(bench.net)
    X, y = model.prepare_X(bench.X), model.prepare_y(bench.y)
    params, bs = model.params, bench.batch_size
    bound = Utility().bind(model, bench.X_val, bench.y_val)
    v = bound.gradient(params, batch_size=bs)
    hvp = make_hvp(model, params, X, y, bs)

    def forward_backward():
        p = {k: t.clone().requires_grad_(True) for k, t in params.items()}
        for sl in chunks(len(X), bs):
            loss = model.row_loss(p, *to_device(model, X, y, sl)).sum()
            torch.autograd.grad(loss, list(p.values()))

    steps = [
        (
            "plain forward, no grad (row_losses)",
            lambda: row_losses(model, params, X, y, bs),
        ),
        ("forward + backward of the summed loss", forward_backward),
        (
            f"objective gradient ({len(bench.X_val):,} validation rows)",
            lambda: bound.gradient(params, batch_size=bs),
        ),
        (
            "grad_dot: jvp pass (the core of ip)",
            lambda: grad_dot(model, params, v, X, y, bs),
        ),
        ("grad_sq_norms (closed form)", lambda: grad_sq_norms(model, params, X, y, bs)),
        ("one Hessian-vector product (make_hvp)", lambda: hvp(v)),
    ]
    log(f"kernel costs over the {len(X):,} training rows, batch_size={bs}")
    out = []
    for name, fn in steps:
        fn()  # warm-up
        out.append((name, bench.time(fn).best))
        log(f"  {name}: {out[-1][1]:.4f} s")
    return out


# ---------------------------------------------- memory (in a fresh process)
def synthetic_rows(n: int, n_features: int, seed: int):
    """float32 normal rows built in chunks (no float64 temporary), random labels."""
    rng = np.random.default_rng(seed)
    X = np.empty((n, n_features), dtype=np.float32)
    for start in range(0, n, 65536):
        stop = min(start + 65536, n)
        rng.standard_normal(
            size=(stop - start, n_features), dtype=np.float32, out=X[start:stop]
        )
    return X, rng.integers(0, 2, size=n).astype(np.int64)


def memory_breakdown(net, X, y, X_val, y_val, batch_size) -> dict:
    """Peak RSS beyond the baseline of each step of ip alone (diagnostic)."""
    try:
        from skinfluence.kernels import grad_dot
    except ImportError as exc:
        return {"error": repr(exc)}
    model = as_torch_model(net)
    (Xt, yt), prep = peak_beyond(lambda: (model.prepare_X(X), model.prepare_y(y)))
    v = (
        Utility()
        .bind(model, X_val, y_val)
        .gradient(model.params, batch_size=batch_size)
    )
    _, finite = peak_beyond(lambda: torch.isfinite(Xt).all())
    _, jvp = peak_beyond(lambda: grad_dot(model, model.params, v, Xt, yt, batch_size))
    return {
        "prepare_X/prepare_y": prep,
        "for reference: torch.isfinite(X).all() on the whole X": finite,
        "grad_dot (jvp pass)": jvp,
    }


def memory_child(args) -> None:
    """Score ``--mem-rows`` synthetic rows with ip; report through child_result."""
    payload = pickle.loads(Path(args._memory_child).read_bytes())
    net, X_val, y_val = payload["net"], payload["X_val"], payload["y_val"]
    cuda = args.device.startswith("cuda")
    if cuda:
        torch.cuda.init()
    X, y = synthetic_rows(args.mem_rows, X_val.shape[1], args.seed)

    def score(n=None):
        return compute_influence(
            net, X[:n], y[:n], X_val, y_val, method="ip", batch_size=args.batch_size
        )

    score(256)  # warm-up (kernels, allocator pools) before the baseline
    out = {"rows": len(X), "data_mb": (X.nbytes + y.nbytes) / 2**20}
    out["rss_after_data_mb"] = rss_mb()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_base = torch.cuda.memory_allocated()
    t = timed(lambda: peak_beyond(score), device=args.device)
    scores, out["delta_mb"] = t.result
    out.update(seconds=t.best, finite=bool(np.isfinite(scores).all()))
    out["peak_after_scoring_mb"] = hwm_mb()
    if cuda:
        out["cuda_peak_mb"] = (torch.cuda.max_memory_allocated() - cuda_base) / 2**20
    elif out["delta_mb"] is not None:
        out["breakdown"] = memory_breakdown(net, X, y, X_val, y_val, args.batch_size)
    child_result(out)


def run_memory(bench: Bench, args) -> dict:
    log(f"memory: ip on {args.mem_rows:,} synthetic rows in a subprocess")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "payload.pkl"
        path.write_bytes(
            pickle.dumps({"net": bench.net, "X_val": bench.X_val, "y_val": bench.y_val})
        )
        mem = run_child(SCRIPT, ["--_memory-child", str(path), *child_args(args)])
    if mem["delta_mb"] is None:
        raise RuntimeError("the peak RSS cannot be reset here (/proc/self/clear_refs)")
    log(
        f"  data {mem['data_mb']:.0f} MiB; RSS after data {mem['rss_after_data_mb']:.0f}"
        f" MiB -> peak +{mem['delta_mb']:.0f} MiB in {mem['seconds']:.2f} s"
    )
    for k, v in mem.get("breakdown", {}).items():
        log(f"    {k}: +{v:.0f} MiB" if isinstance(v, float) else f"    {k}: {v}")
    return mem


def child_args(args) -> list[str]:
    """The options a child process needs, as command-line words."""
    out = ["--seed", str(args.seed), "--device", args.device]
    out += ["--batch-size", str(args.batch_size), "--mem-rows", str(args.mem_rows)]
    out += ["--sparse-rows", str(args.sparse_rows)]
    out += ["--sparse-features", str(args.sparse_features)]
    out += ["--sparse-nnz", str(args.sparse_nnz)]
    if args.sparse_batch_size is not None:
        out += ["--sparse-batch-size", str(args.sparse_batch_size)]
    if args.threads is not None:
        out += ["--threads", str(args.threads)]
    return out


# ------------------------------------------------ sparse (in a fresh process)
def sparse_problem(rows: int, features: int, nnz: int, seed: int):
    """Seeded CSR training and validation blocks (a quarter of the rows).

    ``nnz`` distinct positions with normal values; labels from a random
    linear rule plus noise.
    """
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    w = rng.standard_normal(features)

    def block(n, k):
        flat = rng.choice(n * features, size=k, replace=False)
        vals = rng.standard_normal(k)
        X = sp.csr_matrix(
            (vals, (flat // features, flat % features)), shape=(n, features)
        )
        y = (X @ w + 0.5 * rng.standard_normal(n) > 0).astype(np.int64)
        return X, y

    X, y = block(rows, nnz)
    X_val, y_val = block(max(rows // 4, 2), max(nnz // 4, 1))
    return X, y, X_val, y_val


def sparse_child(args) -> None:
    """Fit LogisticRegression on the sparse rows, time and measure ip on them."""
    from sklearn.linear_model import LogisticRegression

    X, y, X_val, y_val = sparse_problem(
        args.sparse_rows, args.sparse_features, args.sparse_nnz, args.seed
    )
    fit = timed(lambda: LogisticRegression(max_iter=1000).fit(X, y))
    kw = (
        {} if args.sparse_batch_size is None else {"batch_size": args.sparse_batch_size}
    )

    def score(n=None):
        return compute_influence(
            fit.result,
            X[:n],
            y[:n],
            X_val,
            y_val,
            method="ip",
            objective="utility",
            **kw,
        )

    base = rss_mb()  # data and fitted model in memory
    score(256)  # warm-up (its peak counts too: the baseline is taken before it)
    scored = timed(lambda: peak_beyond(score))
    scores, delta_scoring = scored.result
    delta = None if delta_scoring is None else hwm_mb() - base
    child_result(
        {
            "rows": X.shape[0],
            "features": X.shape[1],
            "nnz": int(X.nnz),
            "val_rows": X_val.shape[0],
            "val_nnz": int(X_val.nnz),
            "data_mb": sum(
                a.data.nbytes + a.indices.nbytes + a.indptr.nbytes for a in (X, X_val)
            )
            / 2**20,
            "dense_mb": X.shape[0] * X.shape[1] * 8 / 2**20,
            "batch_size": args.sparse_batch_size or "package default",
            "fit_s": fit.best,
            "score_s": scored.best,
            "delta_mb": delta,
            "delta_scoring_mb": delta_scoring,
            "finite": bool(np.isfinite(scores).all()),
        }
    )


def run_sparse(args) -> dict:
    log(
        f"sparse: ip on a {args.sparse_rows:,} x {args.sparse_features:,} CSR matrix "
        f"({args.sparse_nnz:,} non-zeros), LogisticRegression, in a subprocess"
    )
    res = run_child(SCRIPT, ["--_sparse-child", *child_args(args)])
    log(
        f"  fit {res['fit_s']:.3f} s; compute_influence {res['score_s']:.3f} s "
        f"({res['score_s'] / res['fit_s']:.1f} x fit); peak beyond data "
        f"{res['delta_mb']:.0f} MiB (dense X would be {res['dense_mb']:.0f} MiB)"
    )
    return res


# ---------------------------------------------------------------------- main
def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="~1/10 size smoke test")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's own default)")  # fmt: skip
    p.add_argument("--batch-size", type=int, default=4096,
                   help="batch_size for all our methods and for captum")  # fmt: skip
    p.add_argument("--repeats", type=int, default=3,
                   help="timed repeats of each of our methods (the fastest is reported)")  # fmt: skip
    p.add_argument("--captum-repeats", type=int, default=1,
                   help="timed repeats of each captum reference (fastest reported)")  # fmt: skip
    p.add_argument("--idle-wait", type=float, default=None,
                   help="before each timed run, wait up to this many seconds for other "
                   "processes to leave the CPUs idle (0: don't; default 30, 5 with --quick)")  # fmt: skip
    p.add_argument("--idle-budget", type=float, default=None,
                   help="total seconds the run may spend waiting for idle CPUs "
                   "(default 300, 60 with --quick)")  # fmt: skip
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cg-iter", type=int, default=50)
    p.add_argument("--damping", type=float, nargs="+", default=[0.1, 0.01],
                   help="influence_function damping(s); one timed row each")  # fmt: skip
    p.add_argument("--mem-rows", type=int, default=None,
                   help="rows for the memory test (default 1,000,000; 100,000 with --quick)")  # fmt: skip
    p.add_argument("--no-memory", action="store_true", help="skip the memory test")
    p.add_argument("--no-sweep", action="store_true",
                   help="skip the ip batch-size sweep and the kernel costs")  # fmt: skip
    p.add_argument("--only", choices=["sparse"],
                   help="run only this part (sparse: writes results/speed_sparse.md)")  # fmt: skip
    p.add_argument("--no-sparse", action="store_true", help="skip the sparse case")
    p.add_argument("--sparse-rows", type=int, default=None,
                   help="rows of the sparse case (default 8,000; 800 with --quick)")  # fmt: skip
    p.add_argument("--sparse-features", type=int, default=50_000)
    p.add_argument("--sparse-nnz", type=int, default=None,
                   help="non-zeros of the sparse training rows (default 5 per row)")  # fmt: skip
    p.add_argument("--sparse-batch-size", type=int, default=None,
                   help="batch_size of the sparse case (default: the package's)")  # fmt: skip
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--output", default=str(RESULTS), help=argparse.SUPPRESS)
    p.add_argument("--_memory-child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--_sparse-child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mem_rows is None:
        args.mem_rows = 100_000 if args.quick else 1_000_000
    if args.sparse_rows is None:
        args.sparse_rows = 800 if args.quick else 8_000
    if args.sparse_nnz is None:
        args.sparse_nnz = 5 * args.sparse_rows
    if args.idle_wait is None:
        args.idle_wait = 5.0 if args.quick else 30.0
    if args.idle_budget is None:
        args.idle_budget = 60.0 if args.quick else 300.0
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda but torch.cuda.is_available() is False")
    return args


def run_all(args, header: list) -> SpeedRun:
    """The MLP part (and, unless skipped, memory and sparse): a SpeedRun."""
    quiet = Quiet(max(0.0, args.idle_wait), max(0.0, args.idle_budget))
    scale = 10 if args.quick else 1
    n_train, n_val = 30_000 // scale, 6_000 // scale
    log(f"loading Adult: {n_train} train rows, {n_val} validation rows (test subset)")
    X, y, X_val, y_val = load_data(n_train, n_val, args.seed)
    log(f"features after one-hot + scaling: {X.shape[1]}")
    net, fit = fit_net(X, y, args, quiet)
    log(f"fit {args.epochs} epochs: fastest {fit.best:.2f} s of {fit.runs(2)}")
    accuracy = float((net.predict(X_val) == y_val).mean())
    log(f"validation accuracy {accuracy:.4f}")
    bench = Bench(
        net,
        X,
        y,
        X_val,
        y_val,
        args.batch_size,
        args.repeats,
        args.device,
        args.seed,
        quiet,
    )
    rows = our_rows(bench, args) + captum_rows(bench, args.captum_repeats)
    times = {r.name: r.timing.best for r in rows}
    run = SpeedRun(
        header, args, bench, accuracy, fit, rows,
        agreement({r.name: r.timing.result for r in rows}),
        speed_ratios(times, fit.best / args.epochs), quiet,
    )  # fmt: skip
    for k, v in {**run.ratios, **run.diffs}.items():
        log(f"{k} = {v:.3g}")
    if not args.no_sweep:
        run.sweep, run.kernels = batch_size_sweep(bench), kernel_costs(bench)
    if not args.no_memory:
        run.memory = run_memory(bench, args)
    if not args.no_sparse:
        run.sparse = run_sparse(args)
    return run


def main(argv=None) -> int:
    args = parse_args(argv)
    set_threads(args.threads)
    if args._memory_child:
        memory_child(args)
        return 0
    if args._sparse_child:
        sparse_child(args)
        return 0
    header = run_header("bench_speed.py", argv)
    log(f"load average {load_avg()}; torch threads {torch.get_num_threads()}")
    if args.only == "sparse":
        text, path = (
            render_sparse_only(header, run_sparse(args), args.quick),
            SPARSE_RESULTS,
        )
    else:
        text, path = render(run_all(args, header)), Path(args.output)
    print()
    print(text)
    if not args.no_write:
        write_result(path, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
