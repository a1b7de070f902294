"""Float32 islands for half-precision models: normalisation layers computed in fp32 whatever the storage dtype.

With `torch_dtype=torch.bfloat16` (or float16 on CUDA) every weight and activation is half precision; GroupNorm and
LayerNorm statistics over thousands of values are where that loses accuracy (and, in float16, overflows). As in the
original MV-VTON code (`GroupNorm32`, the CLIP/mapper `LayerNorm`s that upcast), these layers cast their input and
parameters to float32, normalise, and cast the result back to the input's dtype. In float32 they compute exactly
what `nn.GroupNorm` / `nn.LayerNorm` compute. The two softmaxes that need it (the mapper's and the soft selection's)
upcast in their own modules.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _float32(parameter: torch.Tensor | None) -> torch.Tensor | None:
    return None if parameter is None else parameter.float()


class FP32GroupNorm(nn.GroupNorm):
    """`nn.GroupNorm` computed in float32; the output has the input's dtype. Same parameters and state-dict keys."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        output = F.group_norm(
            hidden_states.float(), self.num_groups, _float32(self.weight), _float32(self.bias), self.eps
        )
        return output.to(hidden_states.dtype)


class FP32LayerNorm(nn.LayerNorm):
    """`nn.LayerNorm` computed in float32; the output has the input's dtype. Same parameters and state-dict keys."""

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        output = F.layer_norm(
            hidden_states.float(), self.normalized_shape, _float32(self.weight), _float32(self.bias), self.eps
        )
        return output.to(hidden_states.dtype)


def _float32_twin(module: nn.Module) -> nn.Module | None:
    """An FP32 twin of a plain GroupNorm / LayerNorm that shares its parameters, or `None` for anything else."""
    if type(module) is nn.GroupNorm:
        with torch.device("meta"):
            twin = FP32GroupNorm(module.num_groups, module.num_channels, module.eps, module.affine)
    elif type(module) is nn.LayerNorm:
        with torch.device("meta"):
            twin = FP32LayerNorm(
                module.normalized_shape, module.eps, module.elementwise_affine, bias=module.bias is not None
            )
    else:
        return None
    twin.weight, twin.bias = module.weight, module.bias  # the same Parameter objects (or None)
    twin.train(module.training)
    return twin


def upcast_normalization_layers(model: nn.Module) -> int:
    """Replace every plain `nn.GroupNorm` / `nn.LayerNorm` inside `model` by its float32-computing twin (in place).

    Parameters are shared, not copied, so state dicts, `from_pretrained` and optimisers see the same tensors.
    Returns how many layers were replaced.
    """
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            twin = _float32_twin(child)
            if twin is not None:
                setattr(parent, name, twin)
                replaced += 1
    return replaced
