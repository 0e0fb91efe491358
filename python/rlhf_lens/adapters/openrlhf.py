"""OpenRLHF: a hook that snapshots KL and log-probs before compute_advantages_and_returns discards them.

    # openrlhf/cli/train_ppo_ray.py builds the trainer as a Ray actor: PPOTrainer.remote(...)
    from openrlhf.trainer.ppo_trainer import PPOTrainer
    from rlhf_lens.adapters.openrlhf import lens_ppo_trainer

    PPOTrainer = lens_ppo_trainer(PPOTrainer, "runs/openrlhf")   # then PPOTrainer.remote(...) as before

``lens_ppo_trainer`` subclasses the class behind Ray's actor class (``__ray_actor_class__``) so that
``attach`` runs inside the actor, where the trainer lives; the files are written on the node of that
actor. ``attach(trainer, run_dir)`` is the hook itself, for a trainer object in the same process.

Written against OpenRLHF commit 3c3be623 (2026-08-13): RemoteExperienceMaker.make_experience_batch calls
make_experience (action_log_probs, base_action_log_probs, values, kl per token) and then
compute_advantages_and_returns, which sets ``experience.kl = None`` after folding it into the reward.
``attach`` wraps two bound methods of the instances (no OpenRLHF class is imported or replaced):
``trainer.train_step`` (to know the global step) and ``trainer.experience_maker.compute_advantages_and_returns``
(to read each Experience before and after it). The reference log-probs are in the snapshot only when
OpenRLHF keeps them (``algo.kl.use_loss``): otherwise make_experience drops them and the trace has the KL.
"""
from __future__ import annotations

import functools
from typing import Any, Optional

from ..run_writer import RunWriter

__all__ = ["attach", "lens_ppo_trainer", "SNAPSHOT_FIELDS"]

#: Experience fields read before compute_advantages_and_returns (kl is gone after it).
SNAPSHOT_FIELDS = ("sequences", "action_mask", "action_log_probs", "base_action_log_probs", "rollout_log_probs",
                   "values", "kl", "rewards")


def attach(trainer: Any, run_dir: str, *, name: Optional[str] = None, compress: bool = True) -> RunWriter:
    """Writes traces/step-<global_step>.jsonl for each train_step of ``trainer``; returns the RunWriter."""
    from ..engine_capture import openrlhf_trace_rows

    args = trainer.args
    writer = RunWriter(run_dir, name=name or "openrlhf", stage="ppo", rank=0)
    writer.update(kl_estimator=str(args.algo.kl.estimator), trace_source="OpenRLHF via rlhf_lens.adapters.openrlhf")
    maker = trainer.experience_maker
    state = {"step": 0}
    original_train_step = trainer.train_step
    original_compute = maker.compute_advantages_and_returns

    @functools.wraps(original_train_step)
    def train_step(rollout_samples, global_step):
        state["step"] = global_step + 1  # train_step returns global_step + 1: the step these samples train
        return original_train_step(rollout_samples, global_step)

    @functools.wraps(original_compute)
    def compute_advantages_and_returns(experiences):
        snapshots = [{key: getattr(e, key, None) for key in SNAPSHOT_FIELDS} | {"prompts": list(e.prompts or [])}
                     for e in experiences]
        experiences = original_compute(experiences)
        rows = []
        for snapshot, experience in zip(snapshots, experiences):
            snapshot.update(advantages=experience.advantages, returns=experience.returns)
            for row in openrlhf_trace_rows(snapshot, tokenizer=maker.tokenizer):
                row["sample"] = len(rows)
                rows.append(row)
        writer.log_step_tokens(state["step"], rows, compress=compress)
        return experiences

    trainer.train_step = train_step
    maker.compute_advantages_and_returns = compute_advantages_and_returns
    return writer


def lens_ppo_trainer(remote_class: Any, run_dir: str, **options: Any) -> Any:
    """A Ray actor class like ``remote_class`` (OpenRLHF's ``@ray.remote`` PPOTrainer) that calls ``attach``
    at the end of its constructor. Imports ray (OpenRLHF's dependency) here only."""
    import ray

    base = getattr(remote_class, "__ray_actor_class__", remote_class)

    class LensPPOTrainer(base):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.rlhf_lens = attach(self, run_dir, **options)

    LensPPOTrainer.__name__ = LensPPOTrainer.__qualname__ = f"Lens{base.__name__}"
    return ray.remote(LensPPOTrainer)
