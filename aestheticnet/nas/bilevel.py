"""One step of the bi-level search on a supernet, and the supernet and optimisers of a stage.

Each step of an architecture epoch first updates the architecture on a batch of the architecture split (first
order by default; ``order="second"`` is DARTS' unrolled step with the finite-difference Hessian-vector product),
then the weights on a batch of the weight split, as in P-DARTS' ``train``. With a latency table and
``latency_weight > 0`` the architecture objective is the loss times a factor of the expected latency
(``latency_penalty.latency_penalty``); the weights are trained on the loss alone. A non-finite loss, network output or
architecture weight raises :class:`SearchDivergedError`. The loop over batches, epochs and stages, with its
files, is the search job (``aestheticnet.train.search``).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.func import functional_call

from aestheticnet.distributed import DistContext
from aestheticnet.losses import make_loss
from aestheticnet.nas.active_ops import ActiveOps
from aestheticnet.nas.latency_penalty import ExpectedLatency, latency_penalty
from aestheticnet.nas.search_space import SearchNetwork
from aestheticnet.nas.strategy import SearchConfig

__all__ = ["SearchDivergedError", "BilevelStepper", "build_supernet", "make_optimizers"]


class SearchDivergedError(RuntimeError):
    """A loss or a weight became NaN/inf; the message says where and which checkpoint was kept."""


def build_supernet(
    config: SearchConfig, stage: int, active_normal: ActiveOps, active_reduce: ActiveOps, num_buckets: int
) -> SearchNetwork:
    """The supernet of ``stage``; its initial weights depend on ``(seed, stage)`` only."""
    torch.manual_seed(config.seed * 1000 + stage)
    return SearchNetwork(
        active_normal,
        active_reduce,
        layers=config.stages[stage].cells,
        init_channels=config.init_channels,
        steps=config.steps,
        num_buckets=num_buckets,
        stem=config.stem,
        alpha_init_std=config.alpha_init_std,
    )


def make_optimizers(config: SearchConfig, model: SearchNetwork, epochs: int):
    opt_w = torch.optim.SGD(
        model.weight_parameters(), config.weight_lr, momentum=config.momentum, weight_decay=config.weight_decay
    )
    opt_a = torch.optim.Adam(
        model.arch_parameters(), lr=config.arch_lr, betas=config.arch_betas, weight_decay=config.arch_weight_decay
    )
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt_w, float(epochs), eta_min=config.weight_lr_min)
    return opt_w, opt_a, sched


class BilevelStepper:
    """The two updates of a search step on one supernet: architecture weights (Adam) and network weights (SGD).

    ``where`` describes the current position for divergence messages; gradients are averaged over the
    processes of ``ctx``. ``latency`` (the stage's expected latency) enters the architecture objective when
    ``config.latency_weight > 0``; otherwise the step is exactly the one without a table.
    """

    def __init__(
        self,
        config: SearchConfig,
        model: SearchNetwork,
        opt_w,
        opt_a,
        ctx: DistContext,
        where: Callable,
        latency: ExpectedLatency | None = None,
    ):
        self.config, self.model, self.opt_w, self.opt_a, self.ctx, self.where = config, model, opt_w, opt_a, ctx, where
        self.criterion = make_loss(config.loss, r=config.loss_r, lam=config.loss_lam)
        self.alphas = model.arch_parameters()
        self.weights = model.weight_parameters()
        self.latency = latency if config.latency_weight > 0 else None

    def arch_objective(self, loss: torch.Tensor) -> torch.Tensor:
        """The architecture loss with the latency term of the current architecture weights (if any)."""
        if self.latency is None:
            return loss
        cfg = self.config
        expected = self.latency(self.model.alphas_normal, self.model.alphas_reduce)
        return latency_penalty(loss, expected, cfg.latency_weight, cfg.latency_target_ms, self.latency.reference_ms)

    def _loss(self, x, y, params: dict | None = None, what: str | None = None) -> torch.Tensor:
        pred = self.model(x) if params is None else functional_call(self.model, params, (x,))
        loss = self.criterion(pred, y)
        if what is not None:
            # The prediction too: the EMD losses map a NaN prediction to a finite loss (their root is guarded).
            self._check([pred.detach()], f"network output (for the {what})")
            self._check([loss.detach()], what)
        return loss

    def _check(self, values: list[torch.Tensor], what: str) -> None:
        if not self.ctx.all_finite(values):
            raise SearchDivergedError(f"non-finite {what} {self.where()}")

    def weight_step(self, x, y) -> float:
        self.opt_w.zero_grad(set_to_none=True)
        loss = self._loss(x, y, what="weight-training loss")
        loss.backward(inputs=self.weights)
        self.ctx.average_grads(self.weights)
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.weights, self.config.grad_clip)
        self.opt_w.step()
        return float(loss.detach())

    def arch_step(self, xa, ya, x, y, lr: float) -> float:
        """One architecture update; returns the architecture loss without the latency factor."""
        self.opt_a.zero_grad(set_to_none=True)
        if self.config.order == "second":
            loss, grads = self._unrolled_grads(xa, ya, x, y, lr)
        else:
            loss = self._loss(xa, ya, what="architecture loss")
            grads = torch.autograd.grad(self.arch_objective(loss), self.alphas)
        for a, g in zip(self.alphas, grads):
            a.grad = g
        self.ctx.average_grads(self.alphas)
        if self.config.arch_grad_clip:
            torch.nn.utils.clip_grad_norm_(self.alphas, self.config.arch_grad_clip)
        self.opt_a.step()
        self._check([a.detach() for a in self.alphas], "architecture weight")
        return float(loss.detach())

    def _unrolled_grads(self, xa, ya, x, y, lr: float):
        """DARTS' second-order gradient: d/dalpha L_arch(w - lr * dL_w/dw, alpha), the Hessian term by finite
        differences with ``eps = 0.01 / ||dL_arch/dw'||`` (Liu et al. 2019, eq. 7-8)."""
        cfg, names = self.config, [n for n, _ in self.model.named_weight_parameters()]
        loss_w = self._loss(x, y, what="weight-training loss (unrolled step)")
        g_w = torch.autograd.grad(loss_w, self.weights)
        with torch.no_grad():
            virtual = []
            for p, g in zip(self.weights, g_w):
                buf = self.opt_w.state.get(p, {}).get("momentum_buffer")
                step = g + cfg.weight_decay * p + (cfg.momentum * buf if buf is not None else 0.0)
                virtual.append((p - lr * step).requires_grad_())
        loss = self._loss(xa, ya, dict(zip(names, virtual)), what="architecture loss")
        # The latency factor depends on the architecture weights only: it scales the gradient in the virtual
        # weights too, and so the Hessian-vector product below, as d/dalpha of loss(w'(alpha)) * factor(alpha) needs.
        grads = torch.autograd.grad(self.arch_objective(loss), self.alphas + virtual)
        d_alpha, d_w = grads[: len(self.alphas)], grads[len(self.alphas) :]
        eps = 0.01 / torch.sqrt(sum((d * d).sum() for d in d_w)).clamp_min(1e-12)
        saved = [p.detach().clone() for p in self.weights]
        with torch.no_grad():
            for p, d in zip(self.weights, d_w):
                p.add_(eps * d)
        g_plus = torch.autograd.grad(self._loss(x, y), self.alphas)
        with torch.no_grad():
            for p, s, d in zip(self.weights, saved, d_w):
                p.copy_(s - eps * d)
        g_minus = torch.autograd.grad(self._loss(x, y), self.alphas)
        with torch.no_grad():
            for p, s in zip(self.weights, saved):
                p.copy_(s)
        return loss, [da - lr * (gp - gm) / (2 * eps) for da, gp, gm in zip(d_alpha, g_plus, g_minus)]
