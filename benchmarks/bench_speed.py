"""Speed and memory benchmark of skinfluence against captum's TracInCP.

Run from the repository root::

    python benchmarks/bench_speed.py            # full run (Adult, 30,000 rows)
    python benchmarks/bench_speed.py --quick    # ~1/10 size smoke test
    python benchmarks/bench_speed.py --device cuda

What it measures (see benchmarks/README.md for the details):

* one training epoch of a skorch MLP (2 x 128 ReLU) on 30,000 Adult rows;
* ``compute_influence`` with ip, ip_ensemble, tracin, influence_function and
  self_influence (with checkpoints and at the final parameters only);
* captum's ``TracInCP`` (``tests/_captum_ref.py``) on the same rows and
  checkpoints, and the largest relative difference to our scores;
* the peak memory of ``ip`` on 1,000,000 synthetic rows, beyond the data,
  in a fresh subprocess.

It prints progress, then a Markdown table that it also writes to
``benchmarks/results/speed.md`` (unless ``--no-write``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pickle
import platform
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "speed.md"

# Targets (ratio name -> (comparison, threshold)).
TARGETS = {
    "ip / epoch": ("<=", 1.5),
    "captum_ip / ip": (">=", 10.0),
    "captum_tracin / tracin": (">=", 5.0),
    "captum_self_influence / self_influence": (">=", 5.0),
}
REL_DIFF_TARGET = 1e-4
MEMORY_TARGET_MB = 2048.0


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


# Seconds to wait, before each timed run, for the other processes on the
# machine to go quiet (set from --idle-wait; 0 disables the wait).
IDLE_WAIT = 0.0
# Total seconds the whole run may spend waiting (set from --idle-budget), and
# what it has spent: on a machine that stays busy, stop waiting.
IDLE_BUDGET = {"left": 0.0, "spent": 0.0}
IDLE_BUSY = 0.15  # "quiet": less than this share of all CPUs busy


def _cpu_busy_s() -> float | None:
    """Busy CPU-seconds of the whole machine since boot (/proc/stat)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        vals = [int(x) for x in fields]
    except (OSError, ValueError):
        return None
    idle = vals[3] + (vals[4] if len(vals) > 4 else 0)  # idle + iowait
    return (sum(vals[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def wait_for_idle(max_wait: float) -> None:
    """Sleep until the machine is quiet, for at most ``max_wait`` seconds and
    within what is left of the run's budget."""
    start = time.monotonic()
    deadline = start + min(max_wait, IDLE_BUDGET["left"])
    ncpu = os.cpu_count() or 1
    try:
        while time.monotonic() < deadline:
            b0, t0 = _cpu_busy_s(), time.monotonic()
            if b0 is None:
                return
            time.sleep(0.5)
            share = (_cpu_busy_s() - b0) / ((time.monotonic() - t0) * ncpu)
            if share < IDLE_BUSY:
                return
    finally:
        waited = time.monotonic() - start
        IDLE_BUDGET["spent"] += waited
        IDLE_BUDGET["left"] = max(0.0, IDLE_BUDGET["left"] - waited)


def timed(fn, device: str, repeats: int = 1):
    """Run ``fn`` ``repeats`` times.

    Returns (last result, list of seconds, list of "other load"): the share
    of all CPUs that OTHER processes kept busy during each run (machine busy
    time from /proc/stat minus this process's CPU time), or None.
    """
    times, others, out = [], [], None
    ncpu = os.cpu_count() or 1
    for _ in range(repeats):
        if IDLE_WAIT > 0 and IDLE_BUDGET["left"] > 0:
            wait_for_idle(IDLE_WAIT)
        sync(device)
        b0, c0 = _cpu_busy_s(), _own_cpu_s()
        t0 = time.perf_counter()
        out = fn()
        sync(device)
        dt = time.perf_counter() - t0
        b1, c1 = _cpu_busy_s(), _own_cpu_s()
        times.append(dt)
        if b0 is None or b1 is None:
            others.append(None)
        else:
            others.append(max(0.0, ((b1 - b0) - (c1 - c0)) / (dt * ncpu)))
    return out, times, others


def fmt_other(x) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def rel_diff(ours: np.ndarray, ref: np.ndarray) -> float:
    """max |ours - ref| / max |ref|."""
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    return float(np.max(np.abs(ours - ref)) / np.max(np.abs(ref)))


def verdict(value: float, cmp: str, threshold: float) -> str:
    ok = value <= threshold if cmp == "<=" else value >= threshold
    return "PASS" if ok else "MISS"


def load_avg() -> str:
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def current_rss_mb() -> float | None:
    """Resident set size now, in MiB (psutil, else /proc/self/statm)."""
    try:
        import psutil

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        pass
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark of this process (Linux >= 4.0).

    Needed because ``ru_maxrss`` of a child started by fork + exec also
    counts the parent's pages before the exec, so it cannot be trusted for
    a baseline. Returns False where ``/proc/self/clear_refs`` is missing.
    """
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return hwm_mb() is not None
    except OSError:
        return False


def hwm_mb() -> float | None:
    """``VmHWM`` (peak RSS since start or the last reset) in MiB, if readable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 2**10
    except (OSError, ValueError, IndexError):
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MiB."""
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # KiB on Linux, bytes on macOS
    return kb / 2**20 if sys.platform == "darwin" else kb / 2**10


# --------------------------------------------------------------------------
# data and model
# --------------------------------------------------------------------------
def load_data(n_train: int, n_val: int, seed: int):
    """Adult train (shuffled, first ``n_train``) and test (first ``n_val``)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from skinfluence.datasets import load_adult

    X_tr_df, y_tr, _ = load_adult(subset="train")
    X_te_df, y_te, _ = load_adult(subset="test")
    numeric = [c for c in X_tr_df.columns if X_tr_df[c].dtype.kind in "if"]
    categorical = [c for c in X_tr_df.columns if c not in numeric]
    ct = ColumnTransformer(
        [
            ("num", StandardScaler(), numeric),
            (
                "cat",
                OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                categorical,
            ),
        ]
    )
    rng = np.random.RandomState(seed)
    idx_tr = rng.permutation(len(X_tr_df))[:n_train]
    idx_te = rng.permutation(len(X_te_df))[:n_val]
    X_tr_df, y_tr = X_tr_df.iloc[idx_tr], y_tr.iloc[idx_tr]
    X_te_df, y_te = X_te_df.iloc[idx_te], y_te.iloc[idx_te]
    X_train = np.ascontiguousarray(ct.fit_transform(X_tr_df), dtype=np.float32)
    X_val = np.ascontiguousarray(ct.transform(X_te_df), dtype=np.float32)
    return (
        X_train,
        y_tr.to_numpy().astype(np.int64),
        X_val,
        y_te.to_numpy().astype(np.int64),
    )


def make_module(n_features: int, hidden: int = 128) -> nn.Module:
    return nn.Sequential(
        nn.Linear(n_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, 2),
    )


def make_net(n_features: int, device: str, epochs: int, seed: int):
    from skorch import NeuralNetClassifier

    from skinfluence.callbacks import TracInCheckpoints

    torch.manual_seed(seed)
    return NeuralNetClassifier(
        make_module(n_features),
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        lr=0.05,
        batch_size=128,
        max_epochs=epochs,
        train_split=None,
        iterator_train__shuffle=True,
        device=device,
        verbose=0,
        callbacks=[("tracin", TracInCheckpoints())],
    )


def tracin_callback(net):
    return dict(net.callbacks_)["tracin"]


# --------------------------------------------------------------------------
# memory child (run in a fresh process)
# --------------------------------------------------------------------------
def memory_child(args) -> None:
    """Score ``args.mem_rows`` synthetic rows with ip; print a JSON line."""
    from skinfluence import compute_influence

    with open(args._memory_child, "rb") as fh:
        payload = pickle.load(fh)
    net, X_val, y_val = payload["net"], payload["X_val"], payload["y_val"]
    n_features, n = X_val.shape[1], args.mem_rows
    device = args.device
    if device.startswith("cuda"):
        torch.cuda.init()
    # Build the data in float32 chunks so that no float64 temporary inflates
    # the peak before the baseline is taken.
    rng = np.random.default_rng(args.seed)
    X = np.empty((n, n_features), dtype=np.float32)
    for start in range(0, n, 65536):
        stop = min(start + 65536, n)
        rng.standard_normal(
            size=(stop - start, n_features), dtype=np.float32, out=X[start:stop]
        )
    y = rng.integers(0, 2, size=n).astype(np.int64)
    # warm-up on a few rows (loads kernels, allocator pools) before the baseline
    compute_influence(
        net, X[:256], y[:256], X_val, y_val, method="ip", batch_size=args.batch_size
    )
    base_now = current_rss_mb()
    base_peak = peak_rss_mb()
    hwm_reset = reset_peak_rss()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        cuda_base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    scores = compute_influence(
        net, X, y, X_val, y_val, method="ip", batch_size=args.batch_size
    )
    seconds = time.perf_counter() - t0
    out = {
        "rows": n,
        "data_mb": (X.nbytes + y.nbytes) / 2**20,
        "rss_after_data_mb": base_now,
        "peak_after_data_mb": base_peak,
        "rss_after_scoring_mb": current_rss_mb(),
        "seconds": seconds,
        "finite": bool(np.isfinite(scores).all()),
        "rss_source": "psutil" if _has_psutil() else "/proc/self/statm",
    }
    if hwm_reset:
        out["peak_after_scoring_mb"] = hwm_mb()
        out["peak_source"] = "VmHWM, reset via /proc/self/clear_refs after the data"
    else:
        out["peak_after_scoring_mb"] = peak_rss_mb()
        out["peak_source"] = "ru_maxrss (lifetime peak; may include pre-exec pages)"
    if device.startswith("cuda"):
        out["cuda_peak_mb"] = (torch.cuda.max_memory_allocated() - cuda_base) / 2**20
    if hwm_reset and not device.startswith("cuda"):
        out["breakdown"] = memory_breakdown(net, X, y, X_val, y_val, args.batch_size)
    print("MEMORY_RESULT " + json.dumps(out), flush=True)


def memory_breakdown(net, X, y, X_val, y_val, batch_size) -> dict:
    """Peak RSS beyond the baseline of the steps of ``compute_influence``.

    Diagnostic only: it calls the package's internals as they are today and
    returns ``{}`` if they moved.
    """
    out = {}
    try:
        from skinfluence import as_torch_model
        from skinfluence._kernels import grad_dot
        from skinfluence.objectives import Utility

        model = as_torch_model(net)
        steps = {}
        Xt = yt = None

        def prepare():
            nonlocal Xt, yt
            Xt, yt = model.prepare_X(X), model.prepare_y(y)

        steps["prepare_X/prepare_y"] = prepare
        try:  # the package's own NaN/inf check on X, where it has one
            from skinfluence._compute import _all_finite

            steps["NaN/inf check (_compute._all_finite)"] = lambda: _all_finite(Xt)
        except ImportError:
            pass
        steps["for reference: torch.isfinite(X).all() on the whole X"] = lambda: (
            torch.isfinite(Xt).all()
        )
        bound = Utility().bind(model, X_val, y_val)
        v = bound.gradient(model.params, batch_size=batch_size)
        steps["grad_dot (jvp pass)"] = lambda: grad_dot(
            model, model.params, v, Xt, yt, batch_size
        )
        for name, fn in steps.items():
            base = current_rss_mb()
            reset_peak_rss()
            fn()
            out[name] = hwm_mb() - base
    except Exception as exc:  # pragma: no cover - diagnostic only
        out["error"] = repr(exc)
    return out


def _has_psutil() -> bool:
    try:
        import psutil  # noqa: F401

        return True
    except ImportError:
        return False


def run_memory(net, X_val, y_val, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "payload.pkl")
        with open(path, "wb") as fh:
            pickle.dump({"net": net, "X_val": X_val, "y_val": y_val}, fh)
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--_memory-child",
            path,
            "--mem-rows",
            str(args.mem_rows),
            "--batch-size",
            str(args.batch_size),
            "--device",
            args.device,
            "--seed",
            str(args.seed),
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith("MEMORY_RESULT "):
            return json.loads(line[len("MEMORY_RESULT ") :])
    raise RuntimeError(
        f"memory subprocess failed (rc={proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    )


# --------------------------------------------------------------------------
# main benchmark
# --------------------------------------------------------------------------
def kernel_costs(net, X, y, X_val, y_val, batch_size, device, reps) -> list:
    """Time the package's kernels on the training rows next to plain passes.

    Diagnostic only (it uses the package's internals as they are today and
    returns the error if they moved): a plain forward pass, a forward +
    backward pass of the summed loss, ``grad_dot`` (the jvp pass of ip),
    ``grad_sq_norms`` and one Hessian-vector product.
    """
    try:
        from skinfluence import as_torch_model
        from skinfluence._kernels import grad_dot, grad_sq_norms, make_hvp
        from skinfluence.objectives import Utility
    except ImportError as exc:  # pragma: no cover - diagnostic only
        return [("error", repr(exc))]
    model = as_torch_model(net)
    Xt, yt = model.prepare_X(X), model.prepare_y(y)
    params = model.params
    n = len(Xt)
    dev = model.device

    def forward():
        with torch.no_grad():
            for st in range(0, n, batch_size):
                model.row_loss(
                    params,
                    Xt[st : st + batch_size].to(dev),
                    yt[st : st + batch_size].to(dev),
                )

    def forward_backward():
        p = {k: t.clone().requires_grad_(True) for k, t in params.items()}
        for st in range(0, n, batch_size):
            loss = model.row_loss(
                p, Xt[st : st + batch_size].to(dev), yt[st : st + batch_size].to(dev)
            ).sum()
            torch.autograd.grad(loss, list(p.values()))

    bound = Utility().bind(model, X_val, y_val)
    v = bound.gradient(params, batch_size=batch_size)
    hvp = make_hvp(model, params, Xt, yt, batch_size)
    steps = [
        ("plain forward, no grad", forward),
        ("forward + backward of the summed loss", forward_backward),
        (
            f"objective gradient ({len(X_val):,} validation rows)",
            lambda: bound.gradient(params, batch_size=batch_size),
        ),
        (
            "grad_dot: jvp pass (the core of ip)",
            lambda: grad_dot(model, params, v, Xt, yt, batch_size),
        ),
        (
            "grad_sq_norms (closed form)",
            lambda: grad_sq_norms(model, params, Xt, yt, batch_size),
        ),
        ("one Hessian-vector product (make_hvp)", lambda: hvp(v)),
    ]
    out = []
    for name, fn in steps:
        fn()  # warm-up
        _, ts, _ = timed(fn, device, reps)
        out.append((name, min(ts)))
    return out


def count_cg_iterations():
    """Wrap the package's make_hvp (benchmark-side only) to count HVP calls."""
    import skinfluence.methods._influence_function as mod

    counter = {"hvp": 0}
    original = mod.make_hvp

    def counting_make_hvp(*a, **k):
        hvp = original(*a, **k)

        def wrapped(v):
            counter["hvp"] += 1
            return hvp(v)

        return wrapped

    mod.make_hvp = counting_make_hvp
    return counter


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="~1/10 size smoke test (about a minute)"
    )
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=4096,
        help="batch_size for all our methods and for captum",
    )
    p.add_argument(
        "--repeats",
        type=int,
        default=3,
        help="timed repeats of each of our methods (the fastest is reported)",
    )
    p.add_argument(
        "--captum-repeats",
        type=int,
        default=1,
        help="timed repeats of each captum reference (fastest reported)",
    )
    p.add_argument(
        "--idle-wait",
        type=float,
        default=None,
        help="before each timed run, wait up to this many seconds for "
        "other processes to leave the CPUs idle (0: don't wait; default 30, "
        "5 with --quick)",
    )
    p.add_argument(
        "--idle-budget",
        type=float,
        default=None,
        help="total seconds the run may spend waiting for idle CPUs "
        "(default 300, 60 with --quick)",
    )
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cg-iter", type=int, default=50)
    p.add_argument(
        "--damping",
        type=float,
        nargs="+",
        default=[0.1, 0.01],
        help="influence_function damping(s); one timed row each",
    )
    p.add_argument(
        "--mem-rows",
        type=int,
        default=None,
        help="rows for the memory test (default 1,000,000; 100,000 with --quick)",
    )
    p.add_argument("--no-memory", action="store_true", help="skip the memory test")
    p.add_argument(
        "--no-sweep",
        action="store_true",
        help="skip the ip batch-size sweep and the kernel costs",
    )
    p.add_argument(
        "--no-write",
        action="store_true",
        help=f"do not write {RESULTS.relative_to(ROOT)}",
    )
    p.add_argument("--output", default=str(RESULTS), help=argparse.SUPPRESS)
    p.add_argument("--_memory-child", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the report
    if args.mem_rows is None:
        args.mem_rows = 100_000 if args.quick else 1_000_000
    if args._memory_child:
        memory_child(args)
        return 0
    global IDLE_WAIT
    if args.idle_wait is None:
        args.idle_wait = 5.0 if args.quick else 30.0
    IDLE_WAIT = max(0.0, args.idle_wait)
    if args.idle_budget is None:
        args.idle_budget = 60.0 if args.quick else 300.0
    IDLE_BUDGET["left"] = max(0.0, args.idle_budget)

    from skinfluence import (
        InfluenceFunction,
        IPEnsemble,
        SelfInfluence,
        compute_influence,
    )

    sys.path.insert(0, str(ROOT / "tests"))
    import captum
    import skorch
    from _captum_ref import captum_self_influence, captum_tracin_aggregate

    device = args.device
    if device.startswith("cuda") and not torch.cuda.is_available():
        p.error("--device cuda but torch.cuda.is_available() is False")
    scale = 10 if args.quick else 1
    n_train, n_val = 30_000 // scale, 6_000 // scale
    bs = args.batch_size
    reps = args.repeats

    load_start = load_avg()
    log(
        f"load average (1, 5, 15 min): {load_start}; torch threads "
        f"{torch.get_num_threads()}"
    )
    # ------------------------------------------------------------ data
    log(f"loading Adult: {n_train} train rows, {n_val} validation rows (test subset)")
    X, y, X_val, y_val = load_data(n_train, n_val, args.seed)
    n_features = X.shape[1]
    log(f"features after one-hot + scaling: {n_features}")

    # ------------------------------------------------------------ training
    warm = make_net(n_features, device, 1, args.seed)
    warm.fit(X[:1024], y[:1024])  # warm-up: one-time costs out of the timing
    # fresh net (same seed) per timed fit; the last one is benchmarked
    net, fit_s, fit_other, fit_all = None, float("inf"), None, []
    for _ in range(reps):
        candidate = make_net(n_features, device, args.epochs, args.seed)
        _, (t,), (oth,) = timed(lambda c=candidate: c.fit(X, y), device)
        fit_all.append(t)
        if t < fit_s:
            fit_s, fit_other = t, oth
        net = candidate
    epoch_s = fit_s / args.epochs
    skorch_durs = [float(d) for d in net.history[:, "dur"]]
    cks = tracin_callback(net).checkpoints_
    n_params = sum(p.numel() for p in net.module_.parameters())
    log(
        f"fit {args.epochs} epochs: fastest {fit_s:.2f} s of "
        f"{', '.join(f'{x:.2f}' for x in fit_all)} (other load {fmt_other(fit_other)})"
        f" -> {epoch_s:.3f} s/epoch "
        f"(skorch per-epoch dur: {', '.join(f'{d:.2f}' for d in skorch_durs)}); "
        f"{len(cks)} checkpoints, {n_params} parameters"
    )
    acc = float((net.predict(X_val) == y_val).mean())
    log(f"validation accuracy {acc:.4f}")

    module = net.module_
    ck_list = [(dict(c.params), float(c.learning_rate)) for c in cks]
    final = ({k: v.detach().cpu().clone() for k, v in module.named_parameters()}, 1.0)
    tdev = torch.device(device)
    Xt, yt = torch.as_tensor(X).to(tdev), torch.as_tensor(y).to(tdev)
    Xvt, yvt = torch.as_tensor(X_val).to(tdev), torch.as_tensor(y_val).to(tdev)

    rows: list[dict] = []
    cg_info: dict[float, float] = {}
    times: dict[str, float] = {}
    scores: dict[str, np.ndarray] = {}

    def ours(name, method, note="", counter=None):
        def call(n=None):
            sl = slice(None) if n is None else slice(0, n)
            return compute_influence(
                net,
                X[sl],
                y[sl],
                X_val,
                y_val,
                method=method,
                batch_size=bs,
                random_state=args.seed,
            )

        call(256)  # warm-up
        if counter is not None:
            counter["hvp"] = 0
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            s, ts, oth = timed(call, device, reps)
        t = min(ts)  # least disturbed by other load on the machine
        times[name], scores[name] = t, s
        msgs = sorted(
            {
                str(x.message)
                for x in w
                if not issubclass(x.category, DeprecationWarning)
            }
        )
        rows.append(
            {
                "name": name,
                "seconds": t,
                "all": ts,
                "other": oth[ts.index(t)],
                "note": note + ("; warnings: " + " | ".join(msgs) if msgs else ""),
            }
        )
        log(
            f"{name}: {t:.3f} s (runs: {', '.join(f'{x:.3f}' for x in ts)}; other "
            f"load {fmt_other(oth[ts.index(t)])}) {note}"
        )
        for m in msgs:
            log(f"  warning: {m}")
        return s

    def theirs(name, fn, note=""):
        fn(small=True)  # warm-up
        s, ts, oth = timed(fn, device, args.captum_repeats)
        t = min(ts)
        times[name], scores[name] = t, s
        rows.append(
            {
                "name": name,
                "seconds": t,
                "all": ts,
                "other": oth[ts.index(t)],
                "note": note,
            }
        )
        log(
            f"{name}: {t:.3f} s (runs: {', '.join(f'{x:.3f}' for x in ts)}; other "
            f"load {fmt_other(oth[ts.index(t)])}) {note}"
        )
        return s

    # ------------------------------------------------------------ our methods
    log(f"our methods, batch_size={bs}, fastest of {reps} runs each")
    ours("ip", "ip", "one backward over validation + one jvp pass")
    ours("ip_ensemble", IPEnsemble(n_members=10), "IPEnsemble(n_members=10)")
    ours("tracin", "tracin", f"{len(cks)} checkpoints")
    counter = count_cg_iterations()
    for damping in args.damping:
        if_method = InfluenceFunction(
            solver="cg", damping=damping, max_iter=args.cg_iter, tol=1e-6
        )
        ours(
            f"influence_function (damping={damping:g})", if_method, "", counter=counter
        )
        hvp_per_run = counter["hvp"] / reps
        cg_info[damping] = hvp_per_run
        rows[-1]["note"] = (
            f"cg, damping={damping:g}, max_iter={args.cg_iter}, "
            f"tol=1e-6: {hvp_per_run:.0f} HVPs (= CG iterations) "
            f"per run, {rows[-1]['seconds'] / max(hvp_per_run, 1):.3f}"
            " s per iteration" + rows[-1]["note"]
        )
        log(f"  {hvp_per_run:.0f} CG iterations per run")
    ours("self_influence", "self_influence", f"{len(cks)} checkpoints")
    ours(
        "self_influence_final",
        SelfInfluence(use_checkpoints=False),
        "final parameters only",
    )

    # ------------------------------------------------------------ captum
    log(f"captum TracInCP (sample_wise_grads_per_batch=True), batch_size={bs}")

    def cap_ip(small=False):
        n = 256 if small else None
        return captum_tracin_aggregate(
            module, [final], Xt[:n], yt[:n], Xvt, yvt, batch_size=bs
        )

    def cap_tracin(small=False):
        n = 256 if small else None
        return captum_tracin_aggregate(
            module, ck_list, Xt[:n], yt[:n], Xvt, yvt, batch_size=bs
        )

    def cap_self(small=False):
        n = 256 if small else None
        return captum_self_influence(module, ck_list, Xt[:n], yt[:n], batch_size=bs)

    theirs("captum_ip", cap_ip, "TracInCP aggregate, 1 checkpoint = final params, lr 1")
    theirs("captum_tracin", cap_tracin, f"TracInCP aggregate, {len(cks)} checkpoints")
    theirs(
        "captum_self_influence",
        cap_self,
        f"TracInCP.self_influence, {len(cks)} checkpoints",
    )

    diffs = {
        "ip vs captum_ip": rel_diff(scores["ip"], scores["captum_ip"]),
        "tracin vs captum_tracin": rel_diff(scores["tracin"], scores["captum_tracin"]),
        # our self_influence is minus the sum (higher = more beneficial)
        "self_influence vs -captum_self_influence": rel_diff(
            scores["self_influence"], -scores["captum_self_influence"]
        ),
    }
    for k, v in diffs.items():
        log(f"max rel diff {k}: {v:.2e}")

    ratios = {
        "ip / epoch": times["ip"] / epoch_s,
        "captum_ip / ip": times["captum_ip"] / times["ip"],
        "captum_tracin / tracin": times["captum_tracin"] / times["tracin"],
        "captum_self_influence / self_influence": times["captum_self_influence"]
        / times["self_influence"],
    }
    for k, v in ratios.items():
        cmp, thr = TARGETS[k]
        log(f"{k} = {v:.2f} (target {cmp} {thr}): {verdict(v, cmp, thr)}")

    # ------------------------------------------------------------ sweep
    sweep = []
    if not args.no_sweep:
        log("ip batch-size sweep")
        for b in (512, 1024, 2048, 4096, 8192, 16384):
            compute_influence(
                net, X[:256], y[:256], X_val, y_val, method="ip", batch_size=b
            )
            _, ts, _ = timed(
                lambda b=b: compute_influence(
                    net, X, y, X_val, y_val, method="ip", batch_size=b
                ),
                device,
                reps,
            )
            sweep.append((b, min(ts)))
            log(f"  batch_size={b}: {sweep[-1][1]:.3f} s")

    # ------------------------------------------------------------ kernels
    kernels = []
    if not args.no_sweep:
        log(f"kernel costs over the {n_train:,} training rows, batch_size={bs}")
        kernels = kernel_costs(net, X, y, X_val, y_val, bs, device, reps)
        for k, t in kernels:
            log(f"  {k}: {t:.4f} s" if isinstance(t, float) else f"  {k}: {t}")

    # ------------------------------------------------------------ memory
    mem = None
    if not args.no_memory:
        log(f"memory: ip on {args.mem_rows:,} synthetic rows in a subprocess")
        mem = run_memory(net, X_val, y_val, args)
        base = mem["rss_after_data_mb"]
        if base is None:
            base = mem["peak_after_data_mb"]
        mem["delta_mb"] = mem["peak_after_scoring_mb"] - base
        log(
            f"  data {mem['data_mb']:.0f} MiB; RSS after data {base:.0f} MiB; peak "
            f"after scoring {mem['peak_after_scoring_mb']:.0f} MiB "
            f"({mem['peak_source']}) -> +{mem['delta_mb']:.0f} MiB in "
            f"{mem['seconds']:.2f} s"
        )
        for k, v in mem.get("breakdown", {}).items():
            log(f"    {k}: +{v:.0f} MiB" if isinstance(v, float) else f"    {k}: {v}")

    # ------------------------------------------------------------ report
    header = {
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
        "mode": "quick (1/10 size)" if args.quick else "full",
        "machine": f"{platform.node()}; {cpu_name()}; {os.cpu_count()} CPUs",
        "gpu": torch.cuda.get_device_name(0)
        if device.startswith("cuda")
        else "none used",
        "device": device,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "skorch": skorch.__version__,
        "captum": captum.__version__,
        "python": platform.python_version(),
        "load": f"{load_start} at start, {load_avg()} at end",
    }
    md = render(
        header,
        args,
        n_train,
        n_val,
        n_features,
        n_params,
        len(cks),
        fit_s,
        epoch_s,
        skorch_durs,
        acc,
        rows,
        diffs,
        ratios,
        sweep,
        mem,
        bs,
        reps,
        kernels,
        fit_other,
        fit_all,
    )
    print()
    print(md)
    if not args.no_write:
        out = Path(args.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(md)
        log(f"wrote {out}")
    return 0


def render(
    h,
    args,
    n_train,
    n_val,
    n_features,
    n_params,
    n_cks,
    fit_s,
    epoch_s,
    durs,
    acc,
    rows,
    diffs,
    ratios,
    sweep,
    mem,
    bs,
    reps,
    kernels,
    fit_other,
    fit_all,
) -> str:
    cmd = " ".join(["python benchmarks/bench_speed.py", *args.argv])
    L = [
        f"# Speed benchmark ({h['mode']})",
        "",
        f"- Date: {h['date']}",
        f"- Command: `{cmd}`",
        f"- Machine: {h['machine']}; GPU: {h['gpu']}; device: `{h['device']}`",
        f"- torch {h['torch']} ({h['threads']} threads, `torch.get_num_threads()`), "
        f"skorch {h['skorch']}, captum {h['captum']}, Python {h['python']}",
        f"- Load average (1/5/15 min): {h['load']} (the machine is shared: "
        "other processes can slow single runs down)",
        f"- Data: Adult, {n_train:,} training rows (train subset, seeded shuffle), "
        f"{n_val:,} validation rows (test subset); one-hot + standardised: "
        f"**{n_features} features**",
        f"- Model: skorch NeuralNetClassifier, MLP {n_features}-128-128-2 (ReLU), "
        f"{n_params:,} parameters, CrossEntropyLoss, SGD(lr=0.05, momentum=0.9), "
        f"batch_size 128, {args.epochs} epochs, TracInCheckpoints ({n_cks} "
        f"checkpoints); validation accuracy {acc:.4f}",
        f"- Epoch time = {args.epochs}-epoch fit / {args.epochs} = "
        f"{fit_s:.2f} s / {args.epochs} = **{epoch_s:.3f} s** (fastest of "
        f"{len(fit_all)} fits from the same seed: "
        f"{', '.join(f'{x:.2f}' for x in fit_all)} s; after a 1-epoch "
        f"warm-up fit on 1,024 rows; skorch's per-epoch `dur`: "
        f"{', '.join(f'{d:.2f}' for d in durs)} s; other load during the fit: "
        f"{fmt_other(fit_other)})",
        f"- Our methods: `compute_influence(..., batch_size={bs})`, one warm-up call "
        f"on 256 rows, then the fastest of {reps} timed runs (time.perf_counter; "
        "all runs listed). "
        f"captum: `tests/_captum_ref.py` with `batch_size={bs}`, "
        "`sample_wise_grads_per_batch=True`, one warm-up on 256 rows, then the "
        f"fastest of {args.captum_repeats} timed run(s).",
        '- "other load": share of all CPUs kept busy by OTHER processes during '
        "the reported run (/proc/stat busy time minus this process's CPU time); "
        f"before each run the script waited up to {args.idle_wait:g} s for the "
        f"machine to be idle (in all {IDLE_BUDGET['spent']:.0f} s of a "
        f"{args.idle_budget:g} s budget).",
        "",
        "## Times",
        "",
        "| method | seconds | x epoch | all runs (s) | other load | notes |",
        "|---|---:|---:|---|---:|---|",
    ]
    for r in rows:
        runs = ", ".join(f"{x:.3f}" for x in r["all"])
        L.append(
            f"| {r['name']} | {r['seconds']:.3f} | {r['seconds'] / epoch_s:.2f} "
            f"| {runs} | {fmt_other(r['other'])} | {r['note']} |"
        )
    L += [
        "",
        "## Ratios and agreement",
        "",
        "| quantity | value | target | result |",
        "|---|---:|---:|---|",
    ]
    for k, v in ratios.items():
        cmp, thr = TARGETS[k]
        L.append(f"| {k} | {v:.2f} | {cmp} {thr:g} | {verdict(v, cmp, thr)} |")
    for k, v in diffs.items():
        L.append(
            f"| max rel diff {k} | {v:.2e} | <= {REL_DIFF_TARGET:g} | "
            f"{verdict(v, '<=', REL_DIFF_TARGET)} |"
        )
    if mem is not None:
        L.append(
            f"| ip peak memory beyond data, {mem['rows']:,} rows | "
            f"{mem['delta_mb']:.0f} MiB | < {MEMORY_TARGET_MB:.0f} MiB | "
            f"{'PASS' if mem['delta_mb'] < MEMORY_TARGET_MB else 'MISS'} |"
        )
    L += [
        "",
        "max rel diff = max|ours - captum| / max|captum|; our self_influence "
        "is compared with minus captum's (our sign: higher = more beneficial).",
    ]
    if mem is not None:
        L += [
            "",
            "## Memory (ip, synthetic rows, separate process)",
            "",
            f"- {mem['rows']:,} rows x {n_features} features, float32 normal, "
            f"random labels: data {mem['data_mb']:.0f} MiB; {n_val:,} Adult "
            f"validation rows; batch_size {bs}; scoring took {mem['seconds']:.2f} s",
            f"- RSS after building the data (and a 256-row warm-up): "
            f"{mem['rss_after_data_mb']:.0f} MiB ({mem['rss_source']})",
            f"- Peak RSS during scoring: {mem['peak_after_scoring_mb']:.0f} MiB "
            f"({mem['peak_source']}) -> **peak beyond data: {mem['delta_mb']:.0f} "
            "MiB**",
        ]
        bd = mem.get("breakdown", {})
        if bd:
            L.append(
                "- Peak beyond the baseline of each step alone (diagnostic, "
                "package internals): "
                + "; ".join(
                    f"{k}: {v:.0f} MiB" if isinstance(v, float) else f"{k}: {v}"
                    for k, v in bd.items()
                )
            )
        if "cuda_peak_mb" in mem:
            L.append(
                f"- torch.cuda.max_memory_allocated beyond the baseline: "
                f"{mem['cuda_peak_mb']:.0f} MiB"
            )
    if sweep:
        L += [
            "",
            "## ip time vs batch_size",
            "",
            "| batch_size | seconds | x epoch |",
            "|---:|---:|---:|",
        ]
        for b, t in sweep:
            L.append(f"| {b} | {t:.3f} | {t / epoch_s:.2f} |")
    if kernels:
        fwd = kernels[0][1] if isinstance(kernels[0][1], float) else None
        L += [
            "",
            f"## Kernel costs over the {n_train:,} training rows "
            f"(batch_size {bs}, fastest of {reps})",
            "",
            "| kernel | seconds | x plain forward |",
            "|---|---:|---:|",
        ]
        for k, t in kernels:
            if isinstance(t, float):
                rel = f"{t / fwd:.1f}" if fwd else ""
                L.append(f"| {k} | {t:.4f} | {rel} |")
            else:
                L.append(f"| {k} | {t} | |")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    sys.exit(main())
