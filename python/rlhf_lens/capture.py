"""Per-token capture: an engine's padded batch tensors and masks → RunWriter trace rows.

Pure functions over plain torch tensors (numpy arrays and lists are converted with ``torch.as_tensor``);
the engine bindings in ``rlhf_lens.adapters`` only find the tensors and call these. Every tensor is read
with ``.detach().float().cpu()`` first, so bf16/fp16 tensors on any device are accepted; NaN stays NaN
here and RunWriter writes it as null (with a warning naming the field).

Layouts the engines use (all ``[batch, time]``):

* TRL GRPO: ``prompt_ids`` left-padded, ``completion_ids`` right-padded, ``completion_mask`` over the
  completion; per-token tensors are completion-aligned.
* verl: response-only tensors ``[batch, response_length]`` with ``response_mask`` (right padding).
* OpenRLHF: ``sequences`` ``[batch, T]``, per-token tensors ``[batch, A]`` aligned with the last ``A``
  tokens of ``sequences``; ``action_mask`` ``[batch, A]`` marks the action tokens (several spans in
  multi-turn samples).

In every case the response tokens of a row are the positions its mask marks, in order; they need not
be contiguous.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch

__all__ = [
    "CLIP_INSIDE",
    "CLIP_OUTSIDE_KEPT",
    "CLIP_CLIPPED",
    "KL_ESTIMATORS",
    "as_float",
    "response_positions",
    "kl_estimate",
    "ppo_ratio",
    "clip_classes",
    "token_texts",
    "decode",
    "trace_rows",
]

#: src/core/clipClass.ts's ClipClass values, the trace's clip_class numbers.
CLIP_INSIDE = 0
CLIP_OUTSIDE_KEPT = 1
CLIP_CLIPPED = 2
#: A token whose ratio or advantage is NaN has no class: written as null.
_NO_CLASS = -1

#: Per-token KL estimators (J. Schulman, "Approximating KL divergence"), with r = ref_logprob − logprob:
#: k1 = −r (log π − log π_ref), k2 = r²/2, k3 = exp(r) − r − 1 (≥ 0; TRL's GRPO and verl's low_var_kl).
KL_ESTIMATORS = ("k1", "k2", "k3")


def as_float(values: Any) -> torch.Tensor:
    """A float32 CPU tensor detached from any graph (bf16, fp16, CUDA tensors, numpy arrays, lists)."""
    if isinstance(values, torch.Tensor):
        return values.detach().float().cpu()
    return torch.as_tensor(values).float()


def _as_long(values: Any) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().long()
    return torch.as_tensor(values).long()


def response_positions(mask: Any) -> List[torch.Tensor]:
    """For each row of a ``[batch, time]`` mask, the indices of its non-zero entries (left or right padding)."""
    mask_tensor = as_float(mask)
    if mask_tensor.dim() != 2:
        raise ValueError(f"mask must be [batch, time], got shape {tuple(mask_tensor.shape)}")
    return [torch.nonzero(row != 0, as_tuple=False).flatten() for row in mask_tensor]


def kl_estimate(logprob: Any, ref_logprob: Any, estimator: str) -> torch.Tensor:
    """The per-token KL estimate between the policy and the reference, with the engine's estimator."""
    if estimator not in KL_ESTIMATORS:
        raise ValueError(f"estimator must be one of {', '.join(KL_ESTIMATORS)}, got {estimator!r}")
    log_ratio = as_float(ref_logprob) - as_float(logprob)
    if estimator == "k1":
        return -log_ratio
    if estimator == "k2":
        return log_ratio.square() / 2
    return torch.exp(log_ratio) - log_ratio - 1


def ppo_ratio(logprob: Any, old_logprob: Any, mask: Optional[Any] = None, level: str = "token") -> torch.Tensor:
    """π_θ / π_old per token: exp(logprob − old_logprob).

    ``level="sequence"`` (TRL's ``importance_sampling_level``, GSPO) gives every token of a row the
    exponential of the row's mean log-ratio over ``mask``.
    """
    log_ratio = as_float(logprob) - as_float(old_logprob)
    if level == "token":
        return torch.exp(log_ratio)
    if level != "sequence":
        raise ValueError(f"level must be 'token' or 'sequence', got {level!r}")
    if mask is None:
        raise ValueError("a sequence-level ratio needs the mask")
    weights = as_float(mask)
    mean = (log_ratio * weights).sum(-1) / weights.sum(-1).clamp(min=1.0)
    return torch.exp(mean).unsqueeze(-1).expand_as(log_ratio).clone()


def clip_classes(ratio: Any, advantage: Any, epsilon_low: float, epsilon_high: Optional[float] = None) -> torch.Tensor:
    """Each token's clip class (src/core/clipClass.ts): 0 inside [1−ε_low, 1+ε_high], 1 outside with the
    gradient kept, 2 clipped (A > 0 and r > 1+ε_high, or A < 0 and r < 1−ε_low: TRL's is_high_clipped /
    is_low_clipped), −1 where the ratio or the advantage is NaN. ``advantage`` may be ``[batch]`` (one per
    sequence, GRPO) and is then broadcast over the row.
    """
    high = epsilon_low if epsilon_high is None else epsilon_high
    ratio_tensor = as_float(ratio)
    advantage_tensor = as_float(advantage)
    if advantage_tensor.dim() == 1 and ratio_tensor.dim() == 2:
        advantage_tensor = advantage_tensor.unsqueeze(1)
    advantage_tensor = advantage_tensor.expand_as(ratio_tensor)
    inside = (ratio_tensor >= 1 - epsilon_low) & (ratio_tensor <= 1 + high)
    removed = ((ratio_tensor > 1 + high) & (advantage_tensor > 0)) | (
        (ratio_tensor < 1 - epsilon_low) & (advantage_tensor < 0)
    )
    classes = torch.full(ratio_tensor.shape, CLIP_OUTSIDE_KEPT, dtype=torch.long)
    classes[inside] = CLIP_INSIDE
    classes[removed] = CLIP_CLIPPED
    classes[torch.isnan(ratio_tensor) | torch.isnan(advantage_tensor)] = _NO_CLASS
    return classes


def token_texts(ids: Sequence[int], tokenizer: Any) -> List[str]:
    """Each id's text as the lens shows it: ``decode([id])`` (readable text, not byte-level BPE symbols such
    as "Ġthe"), else ``convert_ids_to_tokens`` for a tokenizer without ``decode``."""
    if hasattr(tokenizer, "decode"):
        return [str(tokenizer.decode([token])) for token in ids]
    texts = tokenizer.convert_ids_to_tokens(list(ids))
    return ["" if text is None else str(text) for text in texts]


def decode(ids: Sequence[int], tokenizer: Any) -> str:
    """The text of ``ids`` (special tokens dropped where the tokenizer supports it)."""
    try:
        return str(tokenizer.decode(list(ids), skip_special_tokens=True))
    except TypeError:  # a decode without skip_special_tokens
        return str(tokenizer.decode(list(ids)))


def _row_values(tensor: torch.Tensor, row: int, positions: torch.Tensor, name: str) -> List[Optional[float]]:
    if tensor.dim() == 1:  # one value per sequence, broadcast over its tokens (GRPO's advantage)
        return [tensor[row].item()] * len(positions)
    if tensor.dim() != 2:
        raise ValueError(f"{name} must be [batch] or [batch, time], got shape {tuple(tensor.shape)}")
    return tensor[row, positions].tolist()


def trace_rows(
    mask: Any,
    *,
    token_ids: Optional[Any] = None,
    per_token: Optional[Mapping[str, Any]] = None,
    per_epoch: Optional[Mapping[str, Sequence[Any]]] = None,
    scalars: Optional[Mapping[str, Any]] = None,
    prompts: Optional[Sequence[str]] = None,
    tokenizer: Any = None,
) -> List[Dict[str, Any]]:
    """One RunWriter sample per row of ``mask``.

    ``token_ids`` and every ``per_token`` tensor are ``[batch, time]`` aligned with ``mask`` (a ``[batch]``
    tensor is one value per row, repeated for each of its tokens); ``None`` entries are left out.
    ``per_epoch`` maps ``ratio`` / ``clip_class`` to a list (one per PPO epoch) of such tensors; a
    clip class of −1 is written as null. ``scalars`` are ``[batch]`` (``score``…). With a ``tokenizer``,
    ``tokens`` (each id's text) and ``response`` (the decoded response) are added.
    """
    positions = response_positions(mask)
    batch = len(positions)
    ids = None if token_ids is None else _as_long(token_ids)
    dense = {name: as_float(value) for name, value in (per_token or {}).items() if value is not None}
    epochs = {name: [as_float(v) for v in values] for name, values in (per_epoch or {}).items() if values}
    flat_scalars = {name: as_float(value).reshape(-1) for name, value in (scalars or {}).items() if value is not None}
    for name, tensor in [("token_ids", ids), *dense.items()] + [(n, t) for n, ts in epochs.items() for t in ts]:
        if tensor is not None and tensor.shape[0] != batch:
            raise ValueError(f"{name} has {tensor.shape[0]} rows, the mask {batch}")
    if prompts is not None and len(prompts) != batch:
        raise ValueError(f"prompts has {len(prompts)} entries, the mask {batch} rows")
    rows: List[Dict[str, Any]] = []
    for row, where in enumerate(positions):
        sample: Dict[str, Any] = {"sample": row}
        if prompts is not None:
            sample["prompt"] = prompts[row]
        if ids is not None:
            row_ids = ids[row, where].tolist()
            sample["token_ids"] = row_ids
            if tokenizer is not None:
                sample["tokens"] = token_texts(row_ids, tokenizer)
                sample["response"] = decode(row_ids, tokenizer)
        for name, tensor in flat_scalars.items():
            sample[name] = tensor[row].item()
        for name, tensor in dense.items():
            sample[name] = _row_values(tensor, row, where, name)
        for name, tensors in epochs.items():
            values = [_row_values(tensor, row, where, name) for tensor in tensors]
            if name == "clip_class":
                values = [[None if v < 0 else int(v) for v in epoch] for epoch in values]
            sample[name] = values
        rows.append(sample)
    return rows
