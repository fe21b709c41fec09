"""Export-time model preparation and the one ``torch.export`` trace shared by the ONNX and CoreML exporters.

``prepare_for_export`` returns a copy of the network rewritten into a mathematically identical form that is
smaller and easier for every converter (the checkpoint and the training code are untouched):

* ``fold_batchnorm``: every ``Conv2d -> BatchNorm2d`` pair (in ``nn.Sequential`` blocks and in CBAM's spatial
  attention) becomes one convolution with a bias. 236 of 240 BN layers in the default AestheticNet*; it halves
  the tensors ``torch.export`` has to lift (1645 -> 701) and removes ~20% of the graph, which is most of the
  export time. Outputs move by float rounding only (7e-9 on the distribution).
* ``static_factorized_reduce``: ``FactorizedReduce`` builds its shifted 2x2 kernel at forward time
  (``F.pad(conv_2.weight)``); here the kernel is computed once and stored, and the BN after the concat is folded
  into both halves. The TorchScript exporter cannot export a convolution whose kernel is computed in the graph,
  so without this rewrite the fallback exporter fails.

``trace`` runs ``torch.export`` once with dynamic batch/height/width (H, W = 32 x Dim, example batch 2, see
:mod:`~aestheticnet.export.dynamic`) and decomposes the program with the ONNX exporter's table. The decomposed
program is ATen dialect and is accepted by coremltools as well, so an export of both formats pays for one trace and
one decomposition (each ~15-35 s for the default model on 2 cores) instead of two.
"""

from __future__ import annotations

import copy
import itertools
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from aestheticnet.export.dynamic import DynamicSpec, example_input

__all__ = ["FoldedFactorizedReduce", "Traced", "fold_input_std", "prepare_for_export", "trace"]


class FoldedFactorizedReduce(nn.Module):
    """``FactorizedReduce`` with its shifted kernel precomputed and its BN folded into both convolutions."""

    def __init__(self, source: nn.Module):
        super().__init__()
        bn = source.bn
        half = source.conv_1.out_channels
        shifted = F.pad(source.conv_2.weight.detach(), (1, 0, 1, 0))
        conv_a = nn.Conv2d(source.conv_1.in_channels, half, 1, stride=2, bias=False)
        conv_a.weight.data.copy_(source.conv_1.weight.detach())
        conv_b = nn.Conv2d(source.conv_2.in_channels, half, 2, stride=2, bias=False)
        conv_b.weight.data.copy_(shifted)
        self.conv_a = _fuse_slice(conv_a, bn, 0, half)
        self.conv_b = _fuse_slice(conv_b, bn, half, 2 * half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)
        return torch.cat([self.conv_a(x), self.conv_b(x)], dim=1)


def _fuse_slice(conv: nn.Conv2d, bn: nn.BatchNorm2d, start: int, stop: int) -> nn.Conv2d:
    part = nn.BatchNorm2d(stop - start, eps=bn.eps, affine=bn.affine)
    part.running_mean.copy_(bn.running_mean[start:stop])
    part.running_var.copy_(bn.running_var[start:stop])
    if bn.affine:
        part.weight.data.copy_(bn.weight.detach()[start:stop])
        part.bias.data.copy_(bn.bias.detach()[start:stop])
    return fuse_conv_bn_eval(conv.eval(), part.eval())


def _fold_sequentials(model: nn.Module) -> int:
    count = 0
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules)
        for a, b in itertools.pairwise(names):
            conv, bn = module._modules[a], module._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                module._modules[a] = fuse_conv_bn_eval(conv, bn)
                module._modules[b] = nn.Identity()
                count += 1
    return count


def _fold_named_pairs(model: nn.Module) -> int:
    """Modules whose forward is ``self.bn(self.conv(x))`` (CBAM's spatial attention)."""
    from aestheticnet.models.cbam import SpatialAttention

    count = 0
    for module in model.modules():
        if isinstance(module, SpatialAttention) and isinstance(module.bn, nn.BatchNorm2d):
            module.conv = fuse_conv_bn_eval(module.conv, module.bn)
            module.bn = nn.Identity()
            count += 1
    return count


def _replace_factorized_reduce(model: nn.Module) -> int:
    from aestheticnet.nas.operations import FactorizedReduce

    count = 0
    for parent in list(model.modules()):
        for name, child in list(parent._modules.items()):
            if isinstance(child, FactorizedReduce):
                parent._modules[name] = FoldedFactorizedReduce(child)
                count += 1
    return count


def prepare_for_export(model: nn.Module) -> tuple[nn.Module, list[str]]:
    """An eval-mode copy rewritten for export, and the list of rewrites applied (for the manifest)."""
    prepared = copy.deepcopy(model).eval()
    for p in prepared.parameters():
        p.requires_grad_(False)
    rewrites = []
    with torch.no_grad():
        n = _replace_factorized_reduce(prepared)
        if n:
            rewrites.append(f"static_factorized_reduce x{n}")
        n = _fold_sequentials(prepared) + _fold_named_pairs(prepared)
        if n:
            rewrites.append(f"fold_batchnorm x{n}")
    # The auxiliary head never runs at inference; dropping it keeps its weights out of the traced program. Probe
    # modules of the latency table are exported here too, and they are not networks: they have no such head.
    if getattr(prepared, "auxiliary_head", None) is not None:
        prepared.auxiliary_head = None
    return prepared, rewrites


def fold_input_std(model: nn.Module, std: tuple[float, float, float]) -> nn.Module:
    """Copy of ``model`` whose first convolution also divides its input channels by ``std``.

    Used by the CoreML image input: ``ImageType`` has one scale for all channels, so it produces
    ``pixel / 255 - mean`` and the per-channel ``1 / std`` moves into the first conv's weights. Exact, padding
    included (zero padding stays zero after scaling).
    """
    folded = copy.deepcopy(model)
    first = next((m for m in folded.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None or first.in_channels != 3:
        raise ValueError("cannot fold the input std: the first convolution does not take 3 input channels")
    with torch.no_grad():
        first.weight.div_(torch.tensor(std, dtype=first.weight.dtype).view(1, 3, 1, 1))
    return folded


@dataclass
class Traced:
    """A ``torch.export`` program of the prepared model, decomposed for ONNX (and usable by coremltools)."""

    program: Any  # torch.export.ExportedProgram (decomposed) or None when decomposition was not possible
    raw: Any  # the program straight from torch.export
    decomposed: bool
    seconds: dict[str, float] = field(default_factory=dict)
    registry: Any = None


def trace(
    model: nn.Module,
    spec: DynamicSpec = DynamicSpec(),  # noqa: B008 - frozen dataclass
    example_size: tuple[int, int] = (224, 224),
    decompose: bool = True,
) -> Traced:
    """``torch.export`` with dynamic batch, H and W, then (``decompose``) one decomposition shared by ONNX and
    CoreML. Without it the ONNX exporter translates the raw program (its ops are all in torchlib), which saves
    the decomposition's retrace (~40% of the ONNX time) when CoreML is converted elsewhere."""
    x = example_input(example_size)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        raw = torch.export.export(model, (x,), dynamic_shapes=(spec.dims(),))
    seconds = {"torch_export": round(time.perf_counter() - t0, 3)}
    if not decompose:
        return Traced(program=None, raw=raw, decomposed=False, seconds=seconds)
    t0 = time.perf_counter()
    try:
        from torch.onnx._internal.exporter import _fx_passes, _registration

        registry = _registration.ONNXRegistry.from_torchlib()
        with warnings.catch_warnings(), torch.fx.experimental._config.patch(backed_size_oblivious=True):
            warnings.simplefilter("ignore")
            program = _fx_passes.decompose_with_registry(raw, registry)
        decomposed = True
    except Exception:  # private API moved: each exporter decomposes on its own through public calls  # noqa: BLE001
        program, registry, decomposed = None, None, False
    seconds["decompose"] = round(time.perf_counter() - t0, 3)
    return Traced(program=program, raw=raw, decomposed=decomposed, seconds=seconds, registry=registry)
