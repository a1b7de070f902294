"""Attention processors of the MV-VTON denoiser.

The decoder's cross-attention is MV-VTON's *joint attention block*: a global branch attending to the garment's CLIP
token(s) and a local branch, with its own query/key/value projections, attending to the garment encoder's local tokens.
The two are summed with a learned per-channel gate on the local branch before the shared output projection:

    out = to_out( Attn(W_q x, W_k g, W_v g) + diag(ip_scale) · Attn(W_q' x, W_k' l, W_v' l) )

Local tokens reach the processors through `cross_attention_kwargs={"garment_tokens": GarmentTokens}`; every processor
installed in the MV-VTON UNet accepts that keyword (diffusers warns about and drops keywords a processor does not
declare), and only the joint processors use it.

Each processor comes in three kernels with the same weights and results: PyTorch SDPA (`*2_0`, default), sliced
(`Sliced*`: (batch x heads) rows in chunks, for low-memory GPUs) and xformers (`XFormers*`: memory-efficient attention,
where xformers has a kernel for the device). `MVVTONUNet2DConditionModel.set_attention_slice` /
`enable_xformers_memory_efficient_attention` switch between them without touching the joint-attention weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import Attention
from torch import nn

from mvvton.errors import InvalidArgumentError, MissingDependencyError


class GarmentTokens:
    """The garment encoder's local tokens for one denoiser call.

    Args:
        levels: one tensor per garment-encoder level `k`, each `(B, N_k, D)`; `None` for levels not provided.
        cache_projections: let each joint processor compute its local keys/values once and reuse them on later
            calls with this same object (the tokens are fixed across denoising steps). Only for inference: the
            cache holds tensors of the first call, so do not use it while the projections are being trained.
    """

    def __init__(
        self,
        levels: list[torch.Tensor | None] | tuple[torch.Tensor | None, ...],
        cache_projections: bool = False,
    ):
        self.levels = tuple(levels)
        self.projection_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] | None = {} if cache_projections else None

    def gather(self, level_indices: tuple[int, ...]) -> torch.Tensor | None:
        """Concatenate the given levels along tokens -> `(B, sum N_k, D)`, or `None` if none is available."""
        chosen = [self.levels[k] for k in level_indices if k < len(self.levels) and self.levels[k] is not None]
        if not chosen:
            return None
        return chosen[0] if len(chosen) == 1 else torch.cat(chosen, dim=1)

    def __len__(self) -> int:
        return len(self.levels)


def _attend(
    attn: Attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, use_sdpa: bool
) -> torch.Tensor:
    """Multi-head attention on projected tensors `(B, N, inner)` -> `(B, N_q, inner)`, scale `head_dim ** -0.5`."""
    batch_size, _, inner_dim = query.shape
    head_dim = inner_dim // attn.heads
    if use_sdpa:
        query = query.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)  # (B, heads, N_q, d)
        key = key.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)  # (B, heads, N_k, d)
        value = value.view(batch_size, -1, attn.heads, head_dim).transpose(1, 2)
        hidden_states = F.scaled_dot_product_attention(query, key, value, dropout_p=0.0, is_causal=False)
        return hidden_states.transpose(1, 2).reshape(batch_size, -1, inner_dim)  # (B, N_q, inner)
    query = attn.head_to_batch_dim(query)  # (B*heads, N_q, d)
    key = attn.head_to_batch_dim(key)
    value = attn.head_to_batch_dim(value)
    probabilities = attn.get_attention_scores(query, key, None)
    hidden_states = torch.bmm(probabilities, value)
    return attn.batch_to_head_dim(hidden_states)  # (B, N_q, inner)


def _attend_sliced(
    attn: Attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, slice_size: int
) -> torch.Tensor:
    """`_attend` over chunks of `slice_size` (batch x head) rows: peak attention memory / (B * heads / slice_size)."""
    query = attn.head_to_batch_dim(query)  # (B*heads, N_q, d)
    key = attn.head_to_batch_dim(key)  # (B*heads, N_k, d)
    value = attn.head_to_batch_dim(value)
    hidden_states = torch.empty_like(query)
    for start in range(0, query.shape[0], slice_size):
        rows = slice(start, start + slice_size)
        hidden_states[rows] = F.scaled_dot_product_attention(query[rows], key[rows], value[rows], dropout_p=0.0)
    return attn.batch_to_head_dim(hidden_states)  # (B, N_q, inner)


def xformers_ops():
    """`xformers.ops`, or a `MissingDependencyError` that says how to install it."""
    try:
        import xformers.ops
    except ImportError as error:  # also raised when xformers was built for another torch
        raise MissingDependencyError(
            f"xformers memory-efficient attention needs the `xformers` package ({error}); install it with "
            "`pip install 'mvvton[xformers]'` in an environment whose torch matches xformers' build (CUDA), or "
            "keep the default SDPA processors, which already use memory-efficient kernels on CUDA"
        ) from error
    return xformers.ops


def _attend_xformers(
    attn: Attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, attention_op
) -> torch.Tensor:
    """xformers' memory-efficient attention on projected tensors `(B, N, inner)` -> `(B, N_q, inner)`."""
    batch_size, _, inner_dim = query.shape
    head_dim = inner_dim // attn.heads
    query = query.view(batch_size, -1, attn.heads, head_dim)  # (B, N_q, heads, d): xformers' BMHK layout
    key = key.view(batch_size, -1, attn.heads, head_dim)
    value = value.view(batch_size, -1, attn.heads, head_dim)
    hidden_states = xformers_ops().memory_efficient_attention(
        query.contiguous(), key.contiguous(), value.contiguous(), op=attention_op, scale=attn.scale
    )
    return hidden_states.reshape(batch_size, -1, inner_dim)  # (B, N_q, inner)


def check_slice_size(slice_size: int) -> int:
    if isinstance(slice_size, bool) or not isinstance(slice_size, int) or slice_size < 1:
        raise InvalidArgumentError(
            f"attention `slice_size` must be a positive int (batch x head rows per chunk), got {slice_size!r}"
        )
    return slice_size


def _flatten_spatial(hidden_states: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int, int, int] | None]:
    if hidden_states.ndim == 4:
        shape = hidden_states.shape
        batch_size, channels, height, width = shape
        return hidden_states.view(batch_size, channels, height * width).transpose(1, 2), tuple(shape)
    return hidden_states, None


def _finish(attn: Attention, hidden_states: torch.Tensor, residual: torch.Tensor, shape) -> torch.Tensor:
    hidden_states = attn.to_out[0](hidden_states)
    hidden_states = attn.to_out[1](hidden_states)
    if shape is not None:
        batch_size, channels, height, width = shape
        hidden_states = hidden_states.transpose(-1, -2).reshape(batch_size, channels, height, width)
    if attn.residual_connection:
        hidden_states = hidden_states + residual
    return hidden_states / attn.rescale_output_factor


class MVVTONAttnProcessor2_0:
    """Plain attention (self-attention, and encoder / mid-block cross-attention) that accepts `garment_tokens`.

    Matches diffusers' `AttnProcessor2_0` for the SD-1 blocks (no spatial norm, group norm or attention mask) and
    ignores `garment_tokens`: in MV-VTON only the decoder's cross-attention sees local tokens.
    """

    def __init__(self, use_sdpa: bool = True):
        self.use_sdpa = use_sdpa

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        garment_tokens: GarmentTokens | None = None,
    ) -> torch.Tensor:
        if attention_mask is not None:
            raise NotImplementedError("MV-VTON attention does not support attention masks")
        residual = hidden_states
        hidden_states, shape = _flatten_spatial(hidden_states)
        context = hidden_states if encoder_hidden_states is None else encoder_hidden_states
        query, key, value = attn.to_q(hidden_states), attn.to_k(context), attn.to_v(context)
        hidden_states = self.attend(attn, query, key, value).to(query.dtype)
        return _finish(attn, hidden_states, residual, shape)

    def attend(self, attn: Attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """The attention kernel on projected `(B, N, inner)` tensors; overridden by the sliced / xformers variants."""
        return _attend(attn, query, key, value, self.use_sdpa)


class SlicedMVVTONAttnProcessor(MVVTONAttnProcessor2_0):
    """`MVVTONAttnProcessor2_0` computed over chunks of `slice_size` (batch x head) rows (same result, less memory)."""

    def __init__(self, slice_size: int):
        super().__init__(use_sdpa=True)
        self.slice_size = check_slice_size(slice_size)

    def attend(self, attn: Attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return _attend_sliced(attn, query, key, value, self.slice_size)


class XFormersMVVTONAttnProcessor(MVVTONAttnProcessor2_0):
    """`MVVTONAttnProcessor2_0` with xformers' memory-efficient attention (`attention_op`: xformers' `op`)."""

    def __init__(self, attention_op=None):
        super().__init__(use_sdpa=True)
        self.attention_op = attention_op

    def attend(self, attn: Attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return _attend_xformers(attn, query, key, value, self.attention_op)


class JointAttnProcessor2_0(nn.Module):
    """MV-VTON joint attention block (decoder cross-attention): global CLIP branch + gated local garment branch.

    Args:
        hidden_size: query width (the block's channels) = inner dim of the attention.
        cross_attention_dim: token width D of the global and local tokens.
        token_levels: garment-encoder levels this block attends to, concatenated in this order (the released model
            accumulates levels across decoder blocks, see `MVVTONUNet2DConditionModel`).
        use_sdpa: `F.scaled_dot_product_attention` (default) or the explicit math path.
    """

    def __init__(
        self,
        hidden_size: int,
        cross_attention_dim: int,
        token_levels: tuple[int, ...] = (),
        use_sdpa: bool = True,
    ):
        super().__init__()
        self.hidden_size = hidden_size
        self.cross_attention_dim = cross_attention_dim
        self.token_levels = tuple(token_levels)
        self.use_sdpa = use_sdpa
        # New parameters of the joint block; PyTorch default init as in the original, the gate starts at 0 so that
        # a fresh block equals the plain cross-attention it extends.
        self.to_q_ip = nn.Linear(hidden_size, hidden_size, bias=False)
        self.to_k_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)
        self.to_v_ip = nn.Linear(cross_attention_dim, hidden_size, bias=False)
        self.ip_scale = nn.Parameter(torch.zeros(hidden_size))

    def _local_keys_values(
        self, garment_tokens: GarmentTokens | None, dtype: torch.dtype
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Keys and values `(B, L, inner)` of this block's local tokens, from the call's cache when enabled."""
        if garment_tokens is None:
            return None
        cache = garment_tokens.projection_cache
        if cache is not None and id(self) in cache:
            return cache[id(self)]
        local_tokens = garment_tokens.gather(self.token_levels)
        if local_tokens is None:
            return None
        local_tokens = local_tokens.to(dtype)  # (B, L, D)
        keys_values = (self.to_k_ip(local_tokens), self.to_v_ip(local_tokens))
        if cache is not None:
            cache[id(self)] = keys_values
        return keys_values

    def __call__(
        self,
        attn: Attention,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        garment_tokens: GarmentTokens | None = None,
    ) -> torch.Tensor:
        if attention_mask is not None:
            raise NotImplementedError("MV-VTON attention does not support attention masks")
        if encoder_hidden_states is None:
            raise ValueError("the joint attention block is a cross-attention: pass the global garment token(s)")
        residual = hidden_states
        hidden_states, shape = _flatten_spatial(hidden_states)  # (B, N, C)
        query = attn.to_q(hidden_states)
        global_out = self.attend(attn, query, attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states))
        local_kv = self._local_keys_values(garment_tokens, hidden_states.dtype)
        if local_kv is not None:
            local_out = self.attend(attn, self.to_q_ip(hidden_states), *local_kv)
            global_out = global_out + local_out * self.ip_scale.to(local_out.dtype)
        return _finish(attn, global_out.to(query.dtype), residual, shape)

    def attend(self, attn: Attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """The attention kernel of both branches; overridden by the sliced / xformers variants."""
        return _attend(attn, query, key, value, self.use_sdpa)

    def adopt_weights(self, other: JointAttnProcessor2_0) -> JointAttnProcessor2_0:
        """Take `other`'s local-branch modules and gate (the same objects, with any hooks on them); returns self."""
        if (other.hidden_size, other.cross_attention_dim) != (self.hidden_size, self.cross_attention_dim):
            raise InvalidArgumentError(
                f"cannot adopt a joint processor of width {other.hidden_size}/{other.cross_attention_dim} into one "
                f"of width {self.hidden_size}/{self.cross_attention_dim}"
            )
        self.to_q_ip, self.to_k_ip, self.to_v_ip = other.to_q_ip, other.to_k_ip, other.to_v_ip
        self.ip_scale = other.ip_scale
        self.train(other.training)
        return self


class SlicedJointAttnProcessor(JointAttnProcessor2_0):
    """`JointAttnProcessor2_0` with both branches computed over chunks of `slice_size` (batch x head) rows.

    Same weights (names, shapes) and result as the SDPA processor; the largest attention matrix shrinks from
    `B * heads` to `slice_size` rows (the local branch at 64x64 latents attends over up to 8064 tokens).
    """

    def __init__(
        self, hidden_size: int, cross_attention_dim: int, token_levels: tuple[int, ...] = (), slice_size: int = 1
    ):
        super().__init__(hidden_size, cross_attention_dim, token_levels, use_sdpa=True)
        self.slice_size = check_slice_size(slice_size)

    def attend(self, attn: Attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return _attend_sliced(attn, query, key, value, self.slice_size)


class XFormersJointAttnProcessor(JointAttnProcessor2_0):
    """`JointAttnProcessor2_0` with xformers' memory-efficient attention for the global and the local branch."""

    def __init__(
        self, hidden_size: int, cross_attention_dim: int, token_levels: tuple[int, ...] = (), attention_op=None
    ):
        super().__init__(hidden_size, cross_attention_dim, token_levels, use_sdpa=True)
        self.attention_op = attention_op

    def attend(self, attn: Attention, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        return _attend_xformers(attn, query, key, value, self.attention_op)
