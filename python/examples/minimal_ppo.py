"""A minimal PPO loop for a language model in plain PyTorch, instrumented with rlhf_lens.RunWriter.

    python3 python/examples/minimal_ppo.py --run-dir runs/minimal-ppo --iterations 8 --seed 0

A tiny GPT (one causal self-attention block) over a 10-token vocabulary writes 8-token responses to
2-token prompts. The toy reward is the fraction of response tokens that are the target token "★".
PPO (Schulman et al. 2017, https://arxiv.org/abs/1707.06347) with the per-token KL penalty of
Ziegler et al. 2019 (https://arxiv.org/abs/1909.08593) to a frozen copy of the initial policy, in the
shape of TRL's PPOTrainer and cleanrl's ppo.py: the math is in the comments next to the code.

Every iteration writes one line of metrics.jsonl under TRL's names and traces/step-<n>.jsonl with
each sample's per-token values (log-probs, KL, value, reward, advantage, return, entropy, and the ratio
and clip class of every PPO epoch), so the RLHF Lens extension opens the run like one of its own.
Runs in a few seconds on a CPU and is deterministic for a seed.
"""
from __future__ import annotations

import argparse
import copy
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from rlhf_lens import RunWriter  # noqa: E402

VOCAB = ["<bos>", "a", "b", "c", "d", "e", "f", "g", "h", "★"]
TARGET = VOCAB.index("★")
PROMPTS = [[0, 1], [0, 2], [0, 3], [0, 4]]  # "<bos>a", "<bos>b", …


class TinyGpt(nn.Module):
    """Token + position embeddings, one pre-norm causal transformer block, an LM head and a value head."""

    def __init__(self, vocab: int, width: int = 32, heads: int = 2, context: int = 16) -> None:
        super().__init__()
        self.token = nn.Embedding(vocab, width)
        self.position = nn.Embedding(context, width)
        self.block = nn.TransformerEncoderLayer(
            width, heads, dim_feedforward=4 * width, dropout=0.0, batch_first=True, norm_first=True
        )
        self.norm = nn.LayerNorm(width)
        self.lm_head = nn.Linear(width, vocab)
        self.value_head = nn.Linear(width, 1)  # V(s_t), TRL's separate value model folded into one trunk

    def forward(self, ids: torch.Tensor):
        length = ids.shape[1]
        x = self.token(ids) + self.position(torch.arange(length))
        causal = nn.Transformer.generate_square_subsequent_mask(length)
        h = self.norm(self.block(x, src_mask=causal))
        return self.lm_head(h), self.value_head(h).squeeze(-1)


def response_stats(model: TinyGpt, sequences: torch.Tensor, prompt_len: int):
    """log π(a_t | s_t), the entropy H(π(· | s_t)) and V(s_t) at each response position t.

    The logits at position i predict token i+1, so the response tokens sequences[:, P:] are scored by
    the logits at positions P-1 … L-2; the value of the state before token t sits at the same place.
    """
    logits, values = model(sequences)
    logits = logits[:, prompt_len - 1 : -1]
    logp_all = F.log_softmax(logits, dim=-1)
    actions = sequences[:, prompt_len:]
    logprob = logp_all.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)  # H = −Σ_a π(a|s) log π(a|s)
    return logprob, entropy, values[:, prompt_len - 1 : -1]


@torch.no_grad()
def generate(model: TinyGpt, prompts: torch.Tensor, new_tokens: int, generator: torch.Generator) -> torch.Tensor:
    """Samples a_t ~ π(· | s_t) one token at a time (temperature 1, no EOS: every response has new_tokens)."""
    ids = prompts
    for _ in range(new_tokens):
        logits, _ = model(ids)
        probs = F.softmax(logits[:, -1], dim=-1)
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return ids


def whiten(x: torch.Tensor) -> torch.Tensor:
    """(x − mean) / std over the whole batch, TRL's masked_whiten with every token counted."""
    return (x - x.mean()) / (x.std() + 1e-8)


def clip_classes(ratio: torch.Tensor, advantage: torch.Tensor, eps: float) -> torch.Tensor:
    """src/core/clipClass.ts's classes: 0 inside [1−ε, 1+ε], 1 outside but the gradient is kept, 2 clipped.

    The min in L^CLIP = min(r·A, clip(r, 1−ε, 1+ε)·A) picks the constant clipped term (no gradient)
    exactly when r > 1+ε and A > 0, or r < 1−ε and A < 0.
    """
    inside = (ratio >= 1 - eps) & (ratio <= 1 + eps)
    clipped = ((ratio > 1 + eps) & (advantage > 0)) | ((ratio < 1 - eps) & (advantage < 0))
    return torch.where(inside, 0, torch.where(clipped, 2, 1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", required=True, help="the run directory to write (created)")
    parser.add_argument("--iterations", type=int, default=8, help="PPO iterations (rollout + update), one step each")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=16, help="rollouts per iteration")
    parser.add_argument("--new-tokens", type=int, default=8, help="response length")
    parser.add_argument("--ppo-epochs", type=int, default=4)
    parser.add_argument("--learning-rate", type=float, default=3e-3)
    args = parser.parse_args(argv)

    # TRL's PPOConfig names: ε (cliprange), ε_v (cliprange_value), β (kl_coef), γ, λ, c_v (vf_coef).
    stage = {
        "type": "ppo",
        "learning_rate": args.learning_rate,
        "batch_size": args.batch_size,
        "num_ppo_epochs": args.ppo_epochs,
        "max_new_tokens": args.new_tokens,
        "cliprange": 0.2,
        "cliprange_value": 0.2,
        "kl_coef": 0.05,
        "gamma": 1.0,
        "lam": 0.95,
        "vf_coef": 0.1,
    }
    eps, eps_v, beta = stage["cliprange"], stage["cliprange_value"], stage["kl_coef"]
    gamma, lam, vf_coef = stage["gamma"], stage["lam"], stage["vf_coef"]

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)  # one thread: the same sums in the same order, run after run
    generator = torch.Generator().manual_seed(args.seed)
    policy = TinyGpt(len(VOCAB))
    reference = copy.deepcopy(policy).requires_grad_(False)  # π_ref: the frozen initial policy
    optimizer = torch.optim.Adam(policy.parameters(), lr=args.learning_rate)
    P, T, B = len(PROMPTS[0]), args.new_tokens, args.batch_size

    config = {"stages": [stage], "seed": args.seed, "model": "TinyGpt(width=32, heads=2, 1 block)", "vocab": VOCAB}
    with RunWriter(
        args.run_dir, name="minimal-ppo", stage="ppo", config=config, max_steps=args.iterations, seed=args.seed
    ) as run:
        for step in range(1, args.iterations + 1):
            # ---- rollout ------------------------------------------------------------------------
            prompts = torch.tensor([PROMPTS[i % len(PROMPTS)] for i in range(B)])
            sequences = generate(policy, prompts, T, generator)
            responses = sequences[:, P:]
            with torch.no_grad():
                old_logprob, rollout_entropy, old_values = response_stats(policy, sequences, P)
                ref_logprob, _, _ = response_stats(reference, sequences, P)
            # Toy reward model: the share of "★" tokens in the response, a score in [0, 1].
            scores = (responses == TARGET).float().mean(1)
            # Per-token KL estimate k1 = log π_old(a_t|s_t) − log π_ref(a_t|s_t) (TRL's default).
            kl = old_logprob - ref_logprob
            # Reward: r_t = −β·kl_t, plus the score on the last token (TRL: non_score_reward + score at EOS).
            non_score_reward = -beta * kl
            rewards = non_score_reward.clone()
            rewards[:, -1] += scores

            # GAE (Schulman et al. 2016): δ_t = r_t + γ·V(s_{t+1}) − V(s_t),  A_t = δ_t + γλ·A_{t+1},
            # with V(s_T) = 0 after the last token; the value target is R_t = A_t + V(s_t).
            advantages = torch.zeros_like(rewards)
            last = torch.zeros(B)
            for t in reversed(range(T)):
                next_value = old_values[:, t + 1] if t + 1 < T else torch.zeros(B)
                delta = rewards[:, t] + gamma * next_value - old_values[:, t]
                last = delta + gamma * lam * last
                advantages[:, t] = last
            returns = advantages + old_values
            advantages = whiten(advantages)  # the policy loss uses whitened advantages, as TRL

            # ---- PPO update: num_ppo_epochs passes over the batch (one minibatch each) -----------
            ratios, classes = [], []
            stats = {k: [] for k in ("approxkl", "clipfrac", "pg_loss", "vf_loss", "vf_clipfrac", "entropy", "ratio")}
            for _ in range(args.ppo_epochs):
                logprob, entropy, values = response_stats(policy, sequences, P)
                # r_t(θ) = π_θ(a_t|s_t) / π_old(a_t|s_t) = exp(log π_θ − log π_old)
                ratio = torch.exp(logprob - old_logprob)
                # L^CLIP = E[min(r_t·A_t, clip(r_t, 1−ε, 1+ε)·A_t)]; minimize its negative, the max of the losses
                pg_losses = -advantages * ratio
                pg_losses2 = -advantages * torch.clamp(ratio, 1 - eps, 1 + eps)
                pg_loss = torch.max(pg_losses, pg_losses2).mean()
                # Clipped value loss: ½·max((V − R)², (V_old + clip(V − V_old, −ε_v, ε_v) − R)²)
                values_clipped = old_values + torch.clamp(values - old_values, -eps_v, eps_v)
                vf_losses1 = (values - returns) ** 2
                vf_losses2 = (values_clipped - returns) ** 2
                vf_loss = 0.5 * torch.max(vf_losses1, vf_losses2).mean()
                loss = pg_loss + vf_coef * vf_loss

                optimizer.zero_grad()
                loss.backward()
                optimizer.step()

                with torch.no_grad():
                    cls = clip_classes(ratio, advantages, eps)
                    ratios.append(ratio.detach())
                    classes.append(cls)
                    # approx KL(π_old ‖ π_θ) ≈ ½·E[(log π_θ − log π_old)²] (TRL's approxkl)
                    stats["approxkl"].append(0.5 * ((logprob - old_logprob) ** 2).mean().item())
                    # clipfrac: mean(pg_losses2 > pg_losses) — the "clipped" class (clipClass.ts)
                    stats["clipfrac"].append((cls == 2).float().mean().item())
                    stats["pg_loss"].append(pg_loss.item())
                    stats["vf_loss"].append(vf_loss.item())
                    stats["vf_clipfrac"].append((vf_losses2 > vf_losses1).float().mean().item())
                    stats["entropy"].append(entropy.mean().item())
                    stats["ratio"].append(ratio.mean().item())

            mean = lambda values: sum(values) / len(values)  # noqa: E731
            mean_ratio = mean(stats["ratio"])
            run.log_metrics(
                step,
                {
                    "episode": step * B,
                    # Per sequence (sums over the response), batch means: TRL's objective/*.
                    "objective/kl": kl.sum(1).mean(),
                    "objective/entropy": (-old_logprob).sum(1).mean(),
                    "objective/non_score_reward": non_score_reward.sum(1).mean(),
                    "objective/rlhf_reward": (non_score_reward.sum(1) + scores).mean(),
                    "objective/scores": scores.mean(),
                    "objective/kl_coef": beta,
                    "policy/approxkl_avg": mean(stats["approxkl"]),
                    "policy/clipfrac_avg": mean(stats["clipfrac"]),
                    "loss/policy_avg": mean(stats["pg_loss"]),
                    "loss/value_avg": mean(stats["vf_loss"]),
                    "val/clipfrac_avg": mean(stats["vf_clipfrac"]),
                    "policy/entropy_avg": mean(stats["entropy"]),
                    "val/ratio": mean_ratio,
                    "val/ratio_var": mean([(r - mean_ratio) ** 2 for r in stats["ratio"]]),
                    "val/num_eos_tokens": 0,
                    "response_length": float(T),
                    "lr": args.learning_rate,
                },
            )
            samples = []
            for i in range(B):
                texts = [VOCAB[t] for t in responses[i].tolist()]
                samples.append(
                    {
                        "prompt": "".join(VOCAB[t] for t in sequences[i, :P].tolist()),
                        "response": "".join(texts),
                        "token_ids": responses[i],
                        "tokens": texts,
                        "score": scores[i],
                        "logprob": old_logprob[i],
                        "ref_logprob": ref_logprob[i],
                        "kl": kl[i],
                        "value": old_values[i],
                        "reward": rewards[i],
                        "advantage": advantages[i],
                        "return": returns[i],
                        "entropy": rollout_entropy[i],
                        "ratio": [r[i] for r in ratios],
                        "clip_class": [c[i] for c in classes],
                    }
                )
            run.log_step_tokens(step, samples)
            print(
                f"step {step}: score {scores.mean().item():.3f}  kl {kl.sum(1).mean().item():.4f}  "
                f"clipfrac {mean(stats['clipfrac']):.3f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
