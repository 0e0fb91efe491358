"""TRL: a TrainerCallback for metrics and run.json, and a GRPOTrainer mixin for per-token traces.

    from trl import GRPOTrainer
    from rlhf_lens.adapters.trl import RLHFLensGRPOMixin

    class LensGRPOTrainer(RLHFLensGRPOMixin, GRPOTrainer):
        pass

    trainer = LensGRPOTrainer(model=..., reward_funcs=..., args=..., train_dataset=..., rlhf_lens_dir="runs/grpo")

TRL is imported only when the callback is built (``transformers.TrainerCallback``); the mixin imports
nothing from TRL and overrides four GRPOTrainer methods, each calling super() and only reading tensors:
_generate_and_score_completions (the rollout), _calculate_rewards (the per-function rewards),
_get_per_token_logps_and_entropies (current log-probs and entropies inside a loss call) and
_compute_loss. Written against TRL 1.10.0.dev0 (trl/trainer/grpo_trainer.py). Rank 0 only.
"""
from __future__ import annotations

from typing import Any, Optional

from ..run_writer import RunWriter

__all__ = ["RLHFLensCallback", "RLHFLensGRPOMixin", "lens_callback_class"]

#: The extra key that carries each row's index through TRL's shuffle and split of the generation batch.
ROW_KEY = "rlhf_lens_row"


def lens_callback_class():
    """The callback class, built on transformers.TrainerCallback (imported here, lazily)."""
    from transformers import TrainerCallback

    from ..engine_capture import json_config, numeric_logs

    class _Callback(TrainerCallback):
        def __init__(self, run_dir: str, name: Optional[str] = None, stage: str = "ppo") -> None:
            self.run_dir, self.name, self.stage = run_dir, name, stage
            self.writer: Optional[RunWriter] = None
            self.before_finish = []  # the mixin's last trace flush runs before run.json says "completed"

        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero and self.writer is None:
                config = json_config(args.to_dict()) if hasattr(args, "to_dict") else None
                name = self.name or getattr(args, "run_name", None) or "trl"
                self.writer = RunWriter(
                    self.run_dir, name=str(name), stage=self.stage, config=config, rank=0, max_steps=state.max_steps
                )

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.writer is not None and logs:
                self.writer.log_metrics(state.global_step, numeric_logs(logs))

        def on_train_end(self, args, state, control, **kwargs):
            if self.writer is not None:
                for flush in self.before_finish:
                    flush()
                self.writer.finish("completed")

    _Callback.__name__ = _Callback.__qualname__ = "RLHFLensCallback"
    return _Callback


def RLHFLensCallback(run_dir: str, name: Optional[str] = None, stage: str = "ppo"):  # noqa: N802 (a class to users)
    """A transformers TrainerCallback writing run.json (on_train_begin) and metrics.jsonl (on_log, TRL's names)."""
    return lens_callback_class()(run_dir, name=name, stage=stage)


class RLHFLensGRPOMixin:
    """Put before GRPOTrainer in the bases; adds ``rlhf_lens_dir``, ``rlhf_lens_name``, ``rlhf_lens_compress``."""

    def __init__(self, *args: Any, rlhf_lens_dir: str = "rlhf-lens-run", rlhf_lens_name: Optional[str] = None,
                 rlhf_lens_compress: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lens_callback = RLHFLensCallback(rlhf_lens_dir, name=rlhf_lens_name, stage="grpo")
        self._lens_callback.before_finish.append(self._lens_flush)
        self.add_callback(self._lens_callback)
        self._lens_compress = rlhf_lens_compress
        self._lens_record = None
        self._lens_rewards = None
        self._lens_in_loss = False
        self._lens_pass = None
        self._lens_described = False

    def _lens_capturing(self) -> bool:
        return self.accelerator.is_main_process and self.model.training

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self._lens_capturing():
            # TRL gathers every process's rewards; this process's rows are the slice TRL keeps for its advantages.
            start = self.accelerator.process_index * len(prompts)
            self._lens_rewards = rewards_per_func[start : start + len(prompts)]
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if not self._lens_capturing():
            return output
        from ..engine_capture import GRPORolloutRecord

        self._lens_flush()
        import torch

        rewards = self._lens_rewards
        scores = None
        columns = {}
        if rewards is not None:
            weights = self.reward_weights.to(rewards.device)
            scores = (rewards * weights.unsqueeze(0)).nansum(dim=1)  # TRL's logged "reward"
            columns = {name: rewards[:, i] for i, name in enumerate(self.reward_func_names)}
        self._lens_record = GRPORolloutRecord(
            self.state.global_step + 1,  # the optimizer step this rollout is first trained on
            output,
            epsilon_low=self.epsilon_low,
            epsilon_high=self.epsilon_high,
            loss_type=self.loss_type,
            importance_sampling_level=self.importance_sampling_level,
            scores=scores,
            reward_columns=columns,
        )
        output[ROW_KEY] = torch.arange(output["completion_ids"].shape[0], device=output["completion_ids"].device)
        return output

    def _get_per_token_logps_and_entropies(self, *args: Any, **kwargs: Any):
        result = super()._get_per_token_logps_and_entropies(*args, **kwargs)
        if self._lens_in_loss:
            self._lens_pass = (result[0], result[1])
        return result

    def _compute_loss(self, model, inputs):
        capture = ROW_KEY in inputs and self._lens_record is not None and self._lens_capturing()
        self._lens_in_loss, self._lens_pass = capture, None
        try:
            loss = super()._compute_loss(model, inputs)
        finally:
            self._lens_in_loss = False
        if capture and self._lens_pass is not None:
            logprobs, entropies = self._lens_pass
            self._lens_record.record_loss_pass(inputs[ROW_KEY], logprobs, entropies)
        self._lens_pass = None
        return loss

    def _lens_flush(self) -> None:
        record, self._lens_record = self._lens_record, None
        writer = self._lens_callback.writer
        if record is None or writer is None:
            return
        tokenizer = getattr(self, "processing_class", None)
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps its tokenizer
        writer.log_step_tokens(record.step, record.rows(tokenizer), compress=self._lens_compress)
        if not self._lens_described:
            self._lens_described = True
            writer.update(kl_estimator="k3", trace_source="trl GRPOTrainer via rlhf_lens.adapters.trl")
