"""verl: a RayPPOTrainer mixin that writes each step's per-token batch, entropy included.

    from verl.trainer.ppo.ray_trainer import RayPPOTrainer
    from rlhf_lens.adapters.verl import RLHFLensVerlMixin

    class LensRayPPOTrainer(RLHFLensVerlMixin, RayPPOTrainer):
        pass

    trainer = LensRayPPOTrainer(config=config, ..., rlhf_lens_dir="runs/verl")   # then trainer.fit() as usual

Written against verl's RayPPOTrainer.fit (verl/trainer/ppo/ray_trainer.py, commit b178a3cd, 2026-01-29).
Two overrides, each calling super() and only reading tensors:

* _compute_old_log_prob: verl computes the per-token entropy of the rollout policy with the old log-probs,
  logs its mean as actor/entropy and then pops ``entropys`` from the batch; the mixin keeps that tensor.
* _update_actor: called with the full batch after compute_advantage (responses, response_mask,
  old_log_probs, ref_log_prob, values, token_level_scores, token_level_rewards, advantages, returns);
  the mixin writes traces/step-<global_steps>.jsonl from it before the update.

verl runs fit() in the Ray driver, one process: it writes every sample of the step. No verl import here.
"""
from __future__ import annotations

from typing import Any, Optional

from ..run_writer import RunWriter

__all__ = ["RLHFLensVerlMixin", "batch_tensors"]

#: The per-token (and prompt) keys of verl's batch that the trace reads.
BATCH_KEYS = (
    "prompts", "responses", "attention_mask", "response_mask", "old_log_probs", "ref_log_prob", "values",
    "token_level_scores", "token_level_rewards", "advantages", "returns", "rollout_log_probs",
)


def batch_tensors(data: Any) -> dict:
    """The tensors of a DataProto (its ``.batch`` TensorDict) under BATCH_KEYS, where present."""
    tensors = data.batch
    keys = set(tensors.keys())
    return {key: tensors[key] for key in BATCH_KEYS if key in keys}


class RLHFLensVerlMixin:
    """Put before RayPPOTrainer in the bases; adds ``rlhf_lens_dir``, ``rlhf_lens_name``, ``rlhf_lens_compress``."""

    def __init__(self, *args: Any, rlhf_lens_dir: str = "rlhf-lens-run", rlhf_lens_name: Optional[str] = None,
                 rlhf_lens_compress: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from omegaconf import OmegaConf  # verl's config library

        from ..engine_capture import json_config, verl_kl_estimator

        algorithm = self.config.algorithm
        self._lens_kl = verl_kl_estimator(str(algorithm.get("kl_penalty", "kl")))
        self._lens_compress = rlhf_lens_compress
        self._lens_entropys = None
        name = rlhf_lens_name or str(self.config.trainer.get("experiment_name", "verl"))
        config = json_config(OmegaConf.to_container(self.config, resolve=True))
        self.rlhf_lens = RunWriter(rlhf_lens_dir, name=name, stage="ppo", config=config, rank=0)
        self.rlhf_lens.update(kl_estimator=self._lens_kl, trace_source="verl RayPPOTrainer via rlhf_lens.adapters.verl")

    def _compute_old_log_prob(self, batch):
        output = super()._compute_old_log_prob(batch)
        old_log_prob = output[0] if isinstance(output, tuple) else output
        if "entropys" in set(old_log_prob.batch.keys()):
            self._lens_entropys = old_log_prob.batch["entropys"]  # fit pops it from the batch after this
        return output

    def _update_actor(self, batch):
        from ..engine_capture import verl_trace_rows

        entropys, self._lens_entropys = self._lens_entropys, None
        rows = verl_trace_rows(
            batch_tensors(batch), entropys=entropys, kl_estimator=self._lens_kl, tokenizer=self.tokenizer
        )
        self.rlhf_lens.log_step_tokens(self.global_steps, rows, compress=self._lens_compress)
        return super()._update_actor(batch)
