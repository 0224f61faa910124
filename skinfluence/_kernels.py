"""The computational core (DESIGN section 4).

Three kernels over the rows, chunked by ``batch_size``:

1. :func:`objective_gradient` -- v = grad J(theta), by reverse mode over the
   validation rows;
2. :func:`grad_dot` -- <grad l_i(theta), v> for every row, by one forward-mode
   pass (``torch.func.jvp`` of the per-row losses along v);
3. :func:`grad_sq_norms` -- ||grad l_i(theta)||^2 for every row, in closed form
   for networks of ``nn.Linear`` layers, else by ``vmap(grad)``.

and Hessian-vector products of the training objective with the solvers that
use them (:func:`cg`, :func:`lissa`, :func:`exact_solve`). No kernel holds
the n x P matrix of per-row gradients: memory is O(batch_size x P).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Mapping

import torch
from torch import Tensor, nn
from torch.func import grad, jvp, vmap

from . import _tree as tree
from ._progress import progress
from .models import TorchModel

Params = Mapping[str, Tensor]


def chunks(n: int, batch_size: int) -> Iterator[slice]:
    """Consecutive slices of ``range(n)`` of length ``batch_size``."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def row_chunks(n: int, batch_size: int, desc: str = "rows") -> Iterator[slice]:
    """:func:`chunks` with a progress bar when verbosity is on."""
    return progress(chunks(n, batch_size), desc=desc, total=-(-n // batch_size))


def to_device(
    model: TorchModel, X: Tensor, y: Tensor, sl: slice
) -> tuple[Tensor, Tensor]:
    """Rows ``sl`` of ``X`` and ``y`` on the model's device."""
    return (
        X[sl].to(model.device, non_blocking=True),
        y[sl].to(model.device, non_blocking=True),
    )


@torch.no_grad()
def row_losses(
    model: TorchModel, params: Params, X: Tensor, y: Tensor, batch_size: int
) -> Tensor:
    """Per-row losses ``l_i(theta)``, shape ``(n,)``, on the model's device."""
    out = [
        model.row_loss(params, *to_device(model, X, y, sl))
        for sl in row_chunks(len(X), batch_size, "losses")
    ]
    return torch.cat(out) if out else torch.zeros(0, device=model.device)


def grad_dot(
    model: TorchModel,
    params: Params,
    v: Params,
    X: Tensor,
    y: Tensor,
    batch_size: int,
) -> Tensor:
    """``<grad l_i(theta), v>`` for all rows by forward-mode differentiation.

    One ``jvp`` of the per-row loss vector along ``v`` per chunk: the cost of
    about one forward pass, and no per-row gradient is ever formed.
    """
    params = {k: p.detach() for k, p in params.items()}
    v = {k: v[k].detach().to(p.device, p.dtype) for k, p in params.items()}
    out = []
    for sl in row_chunks(len(X), batch_size, "inner products"):
        Xb, yb = to_device(model, X, y, sl)
        _, tangent = jvp(
            lambda p, Xb=Xb, yb=yb: model.row_loss(p, Xb, yb), (params,), (v,)
        )
        out.append(tangent.detach())
    return torch.cat(out) if out else torch.zeros(0, device=model.device)


# --------------------------------------------------------------- grad norms
def linear_layout(model: TorchModel) -> dict[str, nn.Linear] | None:
    """Map module path -> nn.Linear when every trainable parameter is in one."""
    linears = {
        name: m for name, m in model.module.named_modules() if isinstance(m, nn.Linear)
    }
    owned = set()
    for name, m in linears.items():
        prefix = f"{name}." if name else ""
        for pname, p in m.named_parameters(recurse=False):
            if p.requires_grad:
                owned.add(prefix + pname)
    if owned != set(model.params):
        return None
    return linears


def linear_factors(
    model: TorchModel, params: Params, Xb: Tensor, yb: Tensor, linears: dict
) -> list[tuple[Tensor | None, Tensor]] | None:
    """Per-row gradient factors of a network of ``nn.Linear`` layers.

    For each layer with trainable parameters, the gradient of ``l_i`` with
    respect to ``(W, b)`` is ``d_i [a_i, 1]^T``: ``a_i`` the layer's input
    (with a column of ones appended when the bias is trainable) and ``d_i``
    the gradient of ``l_i`` with respect to the layer's output. Returns one
    ``(a, d)`` pair per layer (``a`` is None when only the bias is
    trainable), or None when a layer is called more than once or on inputs
    that are not ``(batch, features)``: the caller must fall back.
    """
    records: dict[str, list] = {name: [] for name in linears}
    handles = []
    for name, m in linears.items():

        def hook(mod, inputs, output, _name=name):
            records[_name].append((inputs[0], output))

        handles.append(m.register_forward_hook(hook))
    try:
        with torch.enable_grad():
            p = {k: v.detach().requires_grad_(True) for k, v in params.items()}
            losses = model.row_loss(p, Xb, yb)
            if any(len(r) != 1 or r[0][0].ndim != 2 for r in records.values()):
                return None
            names = list(records)
            outs = [records[n][0][1] for n in names]
            deltas = torch.autograd.grad(losses.sum(), outs, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    factors = []
    for name, delta in zip(names, deltas, strict=True):
        prefix = f"{name}." if name else ""
        has_w, has_b = prefix + "weight" in params, prefix + "bias" in params
        if delta is None or not (has_w or has_b):
            continue
        a = records[name][0][0].detach() if has_w else None
        if has_w and has_b:
            a = torch.cat([a, torch.ones_like(a[:, :1])], dim=1)
        factors.append((a, delta.detach()))
    return factors


def _closed_form_sq_norms(
    model: TorchModel, params: Params, Xb: Tensor, yb: Tensor, linears: dict
) -> Tensor | None:
    """||grad l_i||^2 = sum over layers of ||[a_i, 1]||^2 ||d_i||^2."""
    factors = linear_factors(model, params, Xb, yb, linears)
    if factors is None:
        return None
    total = torch.zeros(len(Xb), device=Xb.device, dtype=model.dtype)
    for a, d in factors:
        d2 = d.pow(2).sum(1)
        total += d2 if a is None else a.pow(2).sum(1) * d2
    return total


def _vmap_sq_norms(model: TorchModel, params: Params, Xb: Tensor, yb: Tensor) -> Tensor:
    def one(p, x, t):
        return model.row_loss(p, x.unsqueeze(0), t.unsqueeze(0)).sum()

    g = vmap(grad(one), in_dims=(None, 0, 0))(params, Xb, yb)
    return sum(v.reshape(len(Xb), -1).pow(2).sum(1) for v in g.values()).detach()


def grad_sq_norms(
    model: TorchModel,
    params: Params,
    X: Tensor,
    y: Tensor,
    batch_size: int,
    *,
    method: str = "auto",
) -> Tensor:
    """``||grad l_i(theta)||^2`` for all rows.

    Parameters
    ----------
    method : {"auto", "closed_form", "vmap"}
        "auto" uses the closed form when every trainable parameter sits in an
        ``nn.Linear`` called once per forward on 2-D inputs, else ``vmap(grad)``.
    """
    params = {k: p.detach() for k, p in params.items()}
    linears = linear_layout(model) if method in ("auto", "closed_form") else None
    if method == "closed_form" and linears is None:
        raise ValueError("The closed form needs every parameter in an nn.Linear layer.")
    out = []
    for sl in row_chunks(len(X), batch_size, "gradient norms"):
        Xb, yb = to_device(model, X, y, sl)
        res = None
        if linears is not None:
            res = _closed_form_sq_norms(model, params, Xb, yb, linears)
            if res is None:
                linears = None  # the layout does not allow it: fall back for good
        if res is None:
            res = _vmap_sq_norms(model, params, Xb, yb)
        out.append(res)
    return torch.cat(out) if out else torch.zeros(0, device=model.device)


# ------------------------------------------------------------------ Hessian
def make_hvp(
    model: TorchModel,
    params: Params,
    X: Tensor,
    y: Tensor,
    batch_size: int,
) -> Callable[[Params], dict[str, Tensor]]:
    """Hessian-vector product of the training objective at ``params``.

    The objective is ``mean_i l_i(theta) + sum_p lambda_p / 2 ||theta_p||^2``
    over the rows ``X`` (the model's L2 penalty, see ``TorchModel.l2``). Each
    product is forward-over-reverse (``jvp`` of ``grad``), chunked over rows.
    """
    n = len(X)
    l2 = model.l2(n)
    params = {k: p.detach() for k, p in params.items()}

    def total(p, Xb, yb):
        return model.row_loss(p, Xb, yb).sum()

    def hvp(v: Params) -> dict[str, Tensor]:
        out = {k: torch.zeros_like(p) for k, p in params.items()}
        for sl in chunks(n, batch_size):
            Xb, yb = to_device(model, X, y, sl)
            _, hv = jvp(
                lambda p, Xb=Xb, yb=yb: grad(total)(p, Xb, yb), (params,), (dict(v),)
            )
            for k in out:
                out[k] += hv[k].detach()
        out = {k: t / n for k, t in out.items()}
        for k, lam in l2.items():
            out[k] = out[k] + lam * v[k]
        return out

    return hvp


def hessian_matrix(
    model: TorchModel, params: Params, X: Tensor, y: Tensor, batch_size: int
) -> Tensor:
    """The full P x P Hessian of the training objective (small models only)."""
    like = {k: p.detach() for k, p in params.items()}
    flat0 = tree.flatten(like)
    n = len(X)

    def total(flat, Xb, yb):
        return model.row_loss(tree.unflatten(flat, like), Xb, yb).sum()

    H = torch.zeros(
        flat0.numel(), flat0.numel(), dtype=flat0.dtype, device=flat0.device
    )
    for sl in chunks(n, batch_size):
        Xb, yb = to_device(model, X, y, sl)
        H += torch.func.hessian(total)(flat0, Xb, yb).detach()
    H /= n
    diag = tree.flatten(
        {k: torch.full_like(p, model.l2(n).get(k, 0.0)) for k, p in like.items()}
    )
    return H + torch.diag(diag)


def exact_solve(
    model: TorchModel,
    params: Params,
    X: Tensor,
    y: Tensor,
    b: Params,
    *,
    damping: float,
    batch_size: int,
    max_params: int = 5000,
) -> dict[str, Tensor]:
    """``(H + damping I)^-1 b`` with the Hessian formed explicitly."""
    P = tree.n_params(params)
    if P > max_params:
        raise ValueError(
            f"solver='exact' forms the {P} x {P} Hessian; it is limited to "
            f"{max_params} parameters. Use solver='cg' or 'lissa'."
        )
    H = hessian_matrix(model, params, X, y, batch_size)
    A = H + damping * torch.eye(P, dtype=H.dtype, device=H.device)
    x = torch.linalg.solve(A, tree.flatten(b).to(H.dtype))
    return tree.unflatten(x, params)


def cg(
    matvec: Callable[[Params], dict[str, Tensor]],
    b: Params,
    *,
    damping: float = 0.0,
    tol: float = 1e-6,
    max_iter: int = 200,
) -> dict[str, Tensor]:
    """Conjugate gradients for ``(A + damping I) x = b`` (A symmetric).

    Stops when ``||r|| <= tol ||b||``. Warns when the matrix shows a
    non-positive curvature (a non-convex model with too little damping) or
    when it does not converge in ``max_iter`` steps.
    """

    def A(v):
        return tree.add(matvec(v), v, damping)

    x = tree.zeros_like(b)
    r = {k: v.clone() for k, v in b.items()}
    p = {k: v.clone() for k, v in r.items()}
    rs = tree.dot(r, r)
    b_norm = torch.sqrt(rs)
    if b_norm == 0:
        return x
    for _ in range(max_iter):
        Ap = A(p)
        curv = tree.dot(p, Ap)
        if curv <= 0:
            warnings.warn(
                "CG met non-positive curvature: the damped Hessian is not "
                "positive definite. Increase `damping`.",
                RuntimeWarning,
                stacklevel=3,
            )
            break
        alpha = rs / curv
        x = tree.add(x, p, alpha)
        r = tree.add(r, Ap, -alpha)
        rs_new = tree.dot(r, r)
        if torch.sqrt(rs_new) <= tol * b_norm:
            return x
        p = tree.add(r, p, rs_new / rs)
        rs = rs_new
    else:
        warnings.warn(
            f"CG did not reach tol={tol} in {max_iter} iterations "
            f"(relative residual {float(torch.sqrt(rs) / b_norm):.2e}).",
            RuntimeWarning,
            stacklevel=3,
        )
    return x


def top_eigenvalue(
    matvec: Callable[[Params], dict[str, Tensor]],
    like: Params,
    *,
    n_iter: int = 30,
    generator: torch.Generator | None = None,
) -> float:
    """Largest-magnitude eigenvalue by power iteration."""
    v = {
        k: torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        for k, p in like.items()
    }
    v = tree.scale(v, 1.0 / torch.sqrt(tree.dot(v, v)))
    lam = torch.tensor(0.0)
    for _ in range(n_iter):
        w = matvec(v)
        lam = tree.dot(v, w)
        norm = torch.sqrt(tree.dot(w, w))
        if norm == 0:
            return 0.0
        v = tree.scale(w, 1.0 / norm)
    return float(abs(lam))


def lissa(
    matvec_batches: Callable[[int, Params], dict[str, Tensor]],
    b: Params,
    *,
    damping: float,
    scale: float,
    depth: int,
) -> dict[str, Tensor]:
    """LiSSA (Agarwal et al. 2017) for ``(H + damping I)^-1 b``.

    Iterates ``h_j = b + h_{j-1} - (H_j + damping I) h_{j-1} / scale``, with
    ``H_j`` the Hessian on the j-th mini-batch (``matvec_batches(j, v)``), and
    returns ``h_depth / scale``. Converges when ``scale`` exceeds the largest
    eigenvalue of ``H + damping I`` and that matrix is positive definite.
    """
    h = {k: v.clone() for k, v in b.items()}
    for j in range(depth):
        Hh = matvec_batches(j, h)
        h = {k: b[k] + h[k] - (Hh[k] + damping * h[k]) / scale for k in h}
        if not all(torch.isfinite(t).all() for t in h.values()):
            raise FloatingPointError("LiSSA diverged; increase `scale` or `damping`.")
    return tree.scale(h, 1.0 / scale)
