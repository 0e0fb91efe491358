"""What each engine's batch holds, turned into trace rows: the logic behind rlhf_lens.adapters.*.

No engine is imported here: these take the tensors the bindings read from TRL, verl and OpenRLHF
objects (names as the engines spell them) and are tested over real tensors in python/tests.
"""
from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Sequence

import torch

from .capture import as_float, clip_classes, kl_estimate, ppo_ratio, trace_rows

__all__ = [
    "GRPORolloutRecord",
    "verl_kl_estimator",
    "verl_trace_rows",
    "openrlhf_trace_rows",
    "numeric_logs",
    "json_config",
]

#: TRL's GRPO per-token KL (GRPOTrainer._compute_loss): exp(ref − logp) − (ref − logp) − 1.
TRL_GRPO_KL_ESTIMATOR = "k3"
#: TRL loss types whose clipped surrogate is min(r·A, clip(r, 1−ε_low, 1+ε_high)·A): clip classes apply.
TRL_CLIPPED_LOSS_TYPES = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo")
#: verl's algorithm.kl_penalty names (core_algos.kl_penalty_forward) → estimator; "+" variants share the forward.
VERL_KL_NAMES = {"kl": "k1", "k1": "k1", "mse": "k2", "k2": "k2", "low_var_kl": "k3", "k3": "k3"}


def numeric_logs(logs: Mapping[str, Any]) -> Dict[str, float]:
    """The numeric entries of a TRL ``on_log`` dict, under TRL's names (``step``/``time`` renamed, as
    RunWriter reserves them; strings and other non-numbers left out)."""
    out: Dict[str, float] = {}
    for key, value in logs.items():
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if not isinstance(value, (int, float)):
            continue
        out[f"trl/{key}" if key in ("step", "time") else key] = value
    return out


def json_config(value: Any) -> Any:
    """An engine's config as JSON-ready values: mappings, lists, numbers, strings, booleans and None as they
    are (NaN kept for RunWriter to report); anything else (a torch.dtype, an enum, a callable) as its str(),
    so that a config field JSON cannot hold never stops the training run."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Mapping):
        return {str(key): json_config(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_config(item) for item in value]
    return str(value)


class GRPORolloutRecord:
    """One TRL GRPO generation batch (this process's share) and what each PPO iteration did to it.

    ``rollout`` is the dict GRPOTrainer._generate_and_score_completions returns (``prompt_ids``,
    ``prompt_mask``, ``completion_ids``, ``completion_mask``, ``advantages`` and, when TRL computed them,
    ``old_per_token_logps``, ``ref_per_token_logps``, ``sampling_per_token_logps``, ``tool_mask``).
    Each loss call then adds, for the rows of its micro-batch (``rows``: indices into the rollout, as
    shuffled and split by TRL), the current log-probs and entropies; the ratio and clip class are
    derived from those here, since TRL keeps its ``coef_1`` and clip masks local to _compute_loss.
    """

    def __init__(
        self,
        step: int,
        rollout: Mapping[str, Any],
        *,
        epsilon_low: float,
        epsilon_high: float,
        loss_type: str = "grpo",
        importance_sampling_level: str = "token",
        scores: Optional[Any] = None,
        reward_columns: Optional[Mapping[str, Any]] = None,
        prompts: Optional[Sequence[str]] = None,
    ) -> None:
        self.step = step
        self.epsilon_low = epsilon_low
        self.epsilon_high = epsilon_high
        self.loss_type = loss_type
        self.level = importance_sampling_level
        self.prompts = prompts
        self.prompt_ids = as_float(rollout["prompt_ids"]).long()
        self.prompt_mask = as_float(rollout["prompt_mask"])
        self.completion_ids = as_float(rollout["completion_ids"]).long()
        mask = as_float(rollout["completion_mask"])
        if rollout.get("tool_mask") is not None:
            mask = mask * as_float(rollout["tool_mask"])  # tool output tokens are not the policy's
        self.mask = mask
        self.advantages = as_float(rollout["advantages"])
        self.old = _optional(rollout.get("old_per_token_logps"))
        self.sampling = _optional(rollout.get("sampling_per_token_logps"))
        self.ref = _optional(rollout.get("ref_per_token_logps"))
        self.scores = _optional(scores)
        self.reward_columns = {name: as_float(v) for name, v in (reward_columns or {}).items()}
        batch, length = self.completion_ids.shape
        self._iterations: List[List[Dict[str, torch.Tensor]]] = [[] for _ in range(batch)]
        self._length = length

    @property
    def batch_size(self) -> int:
        return len(self._iterations)

    def record_loss_pass(self, rows: Any, logprobs: Any, entropies: Optional[Any] = None) -> None:
        """One _compute_loss call: ``logprobs`` / ``entropies`` ``[len(rows), completion_length]``."""
        row_indices = as_float(rows).long().tolist()
        current = as_float(logprobs)
        entropy = _optional(entropies)
        if current.shape[0] != len(row_indices) or current.shape[1] != self._length:
            raise ValueError(
                f"log-probs of shape {tuple(current.shape)} do not fit {len(row_indices)} rows of "
                f"{self._length} completion tokens"
            )
        for position, row in enumerate(row_indices):
            entry = {"logprob": current[position]}
            if entropy is not None:
                entry["entropy"] = entropy[position]
            self._iterations[row].append(entry)

    def rows(self, tokenizer: Any = None) -> List[Dict[str, Any]]:
        """The trace rows: one per completion, per-epoch ratio / clip class from the recorded passes."""
        first = self._first_pass("logprob")
        # The policy that sampled: TRL's old log-probs; without them (num_iterations 1, on-policy) TRL uses
        # the first pass's log-probs, detached; vLLM's sampling log-probs when that is all there is.
        rollout_logprob = self.old if self.old is not None else first if first is not None else self.sampling
        per_token: Dict[str, Any] = {"logprob": rollout_logprob, "advantage": self.advantages}
        if self.ref is not None and rollout_logprob is not None:
            per_token["ref_logprob"] = self.ref
            per_token["kl"] = kl_estimate(rollout_logprob, self.ref, TRL_GRPO_KL_ESTIMATOR)
        if self.sampling is not None and self.old is not None:
            per_token["sampling_logprob"] = self.sampling
        per_token["entropy"] = self._first_pass("entropy")
        per_epoch = self._per_epoch(rollout_logprob)
        scalars: Dict[str, Any] = {"score": self.scores}
        scalars.update({f"reward/{name}": values for name, values in self.reward_columns.items()})
        samples = trace_rows(
            self.mask,
            token_ids=self.completion_ids,
            per_token=per_token,
            per_epoch=per_epoch,
            scalars=scalars,
            prompts=self.prompts,
            tokenizer=tokenizer,
        )
        if tokenizer is not None and self.prompts is None:
            for sample, ids, mask in zip(samples, self.prompt_ids, self.prompt_mask):
                sample["prompt"] = _decode(ids[mask != 0].tolist(), tokenizer)
        return samples

    def _first_pass(self, key: str) -> Optional[torch.Tensor]:
        if not self._iterations or any(not passes or key not in passes[0] for passes in self._iterations):
            return None
        return torch.stack([passes[0][key] for passes in self._iterations])

    def _per_epoch(self, old_logprob: Optional[torch.Tensor]) -> Dict[str, List[torch.Tensor]]:
        epochs = min((len(passes) for passes in self._iterations), default=0)
        if epochs == 0 or old_logprob is None:
            return {}
        ratios, classes = [], []
        for epoch in range(epochs):
            current = torch.stack([passes[epoch]["logprob"] for passes in self._iterations])
            ratio = ppo_ratio(current, old_logprob, self.mask, self.level)
            ratios.append(ratio)
            if self.loss_type in TRL_CLIPPED_LOSS_TYPES:
                classes.append(clip_classes(ratio, self.advantages, self.epsilon_low, self.epsilon_high))
        return {"ratio": ratios, "clip_class": classes}


def _optional(value: Any) -> Optional[torch.Tensor]:
    return None if value is None else as_float(value)


def _decode(ids: List[int], tokenizer: Any) -> str:
    from .capture import decode

    return decode(ids, tokenizer)


def verl_kl_estimator(kl_penalty: str) -> str:
    """verl's ``algorithm.kl_penalty`` (or ``actor.kl_loss_type``) name as k1 / k2 / k3."""
    name = kl_penalty[:-1] if kl_penalty.endswith("+") else kl_penalty
    if name not in VERL_KL_NAMES:
        raise ValueError(f"kl_penalty {kl_penalty!r} has no per-token estimator the lens writes")
    return VERL_KL_NAMES[name]


def verl_trace_rows(
    batch: Mapping[str, Any],
    *,
    entropys: Optional[Any] = None,
    kl_estimator: str = "k1",
    tokenizer: Any = None,
) -> List[Dict[str, Any]]:
    """Rows from a verl DataProto's tensors after compute_advantage (``batch`` maps verl's key to tensor).

    Response-only tensors ``[batch, response_length]``: ``responses``, ``response_mask`` (else the last
    ``response_length`` columns of ``attention_mask``, as verl's compute_response_mask), ``old_log_probs``,
    ``ref_log_prob``, ``values``, ``token_level_scores`` (its row sum is the score, as verl's rollout
    dump), ``token_level_rewards`` (scores − β·KL when the KL is in the reward), ``advantages``,
    ``returns``, ``rollout_log_probs``; ``entropys`` is the tensor verl pops after logging actor/entropy.
    ``prompts`` (left-padded) is decoded with the tokenizer, masked by the prompt part of attention_mask.
    """
    responses = batch["responses"]
    length = responses.shape[1]
    mask = batch.get("response_mask")
    if mask is None:
        mask = as_float(batch["attention_mask"])[:, -length:]
    old = batch.get("old_log_probs")
    ref = batch.get("ref_log_prob")
    per_token = {
        "logprob": old,
        "ref_logprob": ref,
        "kl": kl_estimate(old, ref, kl_estimator) if old is not None and ref is not None else None,
        "value": batch.get("values"),
        "reward": batch.get("token_level_rewards"),
        "advantage": batch.get("advantages"),
        "return": batch.get("returns"),
        "entropy": entropys,
        "rollout_logprob": batch.get("rollout_log_probs"),
    }
    scores = batch.get("token_level_scores")
    samples = trace_rows(
        mask,
        token_ids=responses,
        per_token=per_token,
        scalars={"score": None if scores is None else as_float(scores).sum(-1)},
        tokenizer=tokenizer,
    )
    prompts = batch.get("prompts")
    if tokenizer is not None and prompts is not None and batch.get("attention_mask") is not None:
        prompt_mask = as_float(batch["attention_mask"])[:, : prompts.shape[1]]
        for sample, ids, keep in zip(samples, as_float(prompts).long(), prompt_mask):
            sample["prompt"] = _decode(ids[keep != 0].tolist(), tokenizer)
    return samples


def openrlhf_trace_rows(
    experience: Mapping[str, Any],
    *,
    tokenizer: Any = None,
) -> List[Dict[str, Any]]:
    """Rows from one OpenRLHF Experience, snapshotted before and completed after compute_advantages_and_returns.

    ``sequences`` ``[batch, T]``; ``action_mask``, ``action_log_probs``, ``base_action_log_probs``, ``kl``,
    ``values``, ``advantages``, ``returns`` ``[batch, A]`` aligned with ``sequences[:, -A:]`` (OpenRLHF's
    actor keeps the last A of the T−1 next-token log-probs); ``rewards`` ``[batch]`` is the score.
    ``kl`` is OpenRLHF's own tensor (compute_approx_kl with args.algo.kl.estimator, clamped to ±10).
    """
    mask = as_float(experience["action_mask"])
    actions = as_float(experience["sequences"]).long()[:, -mask.shape[1] :]
    per_token = {
        "logprob": experience.get("action_log_probs"),
        "ref_logprob": experience.get("base_action_log_probs"),
        "kl": experience.get("kl"),
        "value": experience.get("values"),
        "advantage": experience.get("advantages"),
        "return": experience.get("returns"),
        "rollout_logprob": experience.get("rollout_log_probs"),
    }
    return trace_rows(
        mask,
        token_ids=actions,
        per_token=per_token,
        scalars={"score": experience.get("rewards")},
        prompts=experience.get("prompts") or None,
        tokenizer=tokenizer,
    )
