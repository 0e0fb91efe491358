"""PyTorch reference for the benches: our GPT (src/trainer/engine/tfjs/gpt.ts) re-implemented op for op.

Driven by bench/torch/torchReference.ts over stdin/stdout, one JSON object a line each way:
  request  {"id": 1, "cmd": "...", ...arguments}
  response {"id": 1, "ok": true, ...results}  or  {"id": 1, "ok": false, "error": "..."}
Commands: hello, train_setup, train_loss, train_step, ppo_setup, ppo_iteration, release.
Times are measured here (time.perf_counter around the work only), so the pipe is not in them.
One thread (torch.set_num_threads(1)): the benches compare one thread to one thread.
Standard library, torch and numpy only (Debian: apt-get install python3-torch python3-numpy).
"""

import json
import math
import os
import struct
import sys
import time

# One thread in the BLAS too: OpenBLAS reads these when torch loads it.
# RLHF_TORCH_THREADS (default 1): the benches also compare two threads to two threads.
THREADS = int(os.environ.get("RLHF_TORCH_THREADS", "1"))
os.environ.setdefault("OPENBLAS_NUM_THREADS", str(THREADS))
os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

torch.set_num_threads(THREADS)

NEGATIVE_INFINITY = -1e9  # gpt.ts's additive attention bias
LAYER_NORM_EPSILON = 1e-5  # ops.ts layerNorm


def blas_library():
    """The BLAS this process loaded: Debian's torch uses whatever libblas.so.3 the alternatives name.
    The reference (netlib) BLAS makes PyTorch's matmuls ~5× slower than OpenBLAS."""
    torch.ones(2, 2) @ torch.ones(2, 2)
    with open("/proc/self/maps") as maps:
        paths = {line.split()[-1] for line in maps if "blas" in line.lower() and "/" in line}
    resolved = sorted({os.path.realpath(path) for path in paths})
    name = ", ".join(resolved) or "unknown"
    return {"library": name, "openblas": "openblas" in name.lower()}


def read_safetensors(path):
    """float32 tensors of a safetensors file: u64 header size, JSON header, raw little-endian data."""
    with open(path, "rb") as handle:
        data = handle.read()
    (header_size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + header_size])
    base = 8 + header_size
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] != "F32":
            raise ValueError(f"{name}: only F32 is read, got {info['dtype']}")
        start, end = info["data_offsets"]
        array = np.frombuffer(data[base + start : base + end], dtype="<f4").copy()
        tensors[name] = torch.from_numpy(array).reshape(info["shape"])
    return tensors


def init_weights(config, heads, generator):
    """nanoGPT's initialisation, as Gpt.create (same distributions; a different random stream)."""
    v, t, c, layers = config["vocab_size"], config["block_size"], config["n_embd"], config["n_layer"]
    residual_std = 0.02 / math.sqrt(2 * layers)
    normal = lambda shape, std: torch.randn(shape, generator=generator) * std  # noqa: E731
    w = {"transformer.wte.weight": normal([v, c], 0.02), "transformer.wpe.weight": normal([t, c], 0.02)}
    for layer in range(layers):
        p = f"transformer.h.{layer}"
        w.update(
            {
                f"{p}.ln_1.weight": torch.ones(c),
                f"{p}.ln_1.bias": torch.zeros(c),
                f"{p}.attn.c_attn.weight": normal([c, 3 * c], 0.02),
                f"{p}.attn.c_attn.bias": torch.zeros(3 * c),
                f"{p}.attn.c_proj.weight": normal([c, c], residual_std),
                f"{p}.attn.c_proj.bias": torch.zeros(c),
                f"{p}.ln_2.weight": torch.ones(c),
                f"{p}.ln_2.bias": torch.zeros(c),
                f"{p}.mlp.c_fc.weight": normal([c, 4 * c], 0.02),
                f"{p}.mlp.c_fc.bias": torch.zeros(4 * c),
                f"{p}.mlp.c_proj.weight": normal([4 * c, c], residual_std),
                f"{p}.mlp.c_proj.bias": torch.zeros(c),
            }
        )
    w["transformer.ln_f.weight"] = torch.ones(c)
    w["transformer.ln_f.bias"] = torch.zeros(c)
    for head in heads:
        w[f"{head}.weight"] = normal([c, 1], 0.02 / math.sqrt(c))
        w[f"{head}.bias"] = torch.zeros(1)
    return w


class Gpt:
    """Pre-LN decoder: embeddings, [LN → causal attention → +, LN → tanh-GELU MLP → +] × L, LN, tied head."""

    def __init__(self, config, weights):
        self.config = config
        self.w = {name: tensor.clone().requires_grad_(True) for name, tensor in weights.items()}
        self.bias_cache = {}

    def parameters(self):
        return list(self.w.values())

    def causal_bias(self, length, past):
        key = (length, past)
        if key not in self.bias_cache:
            i = torch.arange(length).unsqueeze(1)
            j = torch.arange(past + length).unsqueeze(0)
            bias = torch.where(j <= past + i, 0.0, NEGATIVE_INFINITY)
            self.bias_cache[key] = bias.reshape(1, 1, length, past + length)
        return self.bias_cache[key]

    def forward(self, ids, cache=None):
        """ids [B, T] → logits [B, T, V], hidden [B, T, C], and the extended cache when one is given."""
        w, config = self.w, self.config
        batch, length = ids.shape
        heads, width = config["n_head"], config["n_embd"]
        head_width = width // heads
        past = 0 if cache is None else cache["length"]
        positions = torch.arange(past, past + length)
        x = w["transformer.wte.weight"][ids] + w["transformer.wpe.weight"][positions]
        bias = self.causal_bias(length, past)

        def split_heads(t):  # [B, T, C] → [B, H, T, D]
            return t.reshape(batch, length, heads, head_width).transpose(1, 2)

        new_layers = []
        for layer in range(config["n_layer"]):
            p = f"transformer.h.{layer}"
            h = F.layer_norm(x, (width,), w[f"{p}.ln_1.weight"], w[f"{p}.ln_1.bias"], LAYER_NORM_EPSILON)
            qkv = h @ w[f"{p}.attn.c_attn.weight"] + w[f"{p}.attn.c_attn.bias"]
            q, k, v = (split_heads(t) for t in qkv.split(width, dim=2))
            if cache is not None:
                k = torch.cat([cache["layers"][layer][0], k], dim=2)
                v = torch.cat([cache["layers"][layer][1], v], dim=2)
                new_layers.append((k, v))
            scores = (q @ k.transpose(-1, -2)) * (1 / math.sqrt(head_width)) + bias
            mixed = (torch.softmax(scores, dim=-1) @ v).transpose(1, 2).reshape(batch, length, width)
            x = x + mixed @ w[f"{p}.attn.c_proj.weight"] + w[f"{p}.attn.c_proj.bias"]
            m = F.layer_norm(x, (width,), w[f"{p}.ln_2.weight"], w[f"{p}.ln_2.bias"], LAYER_NORM_EPSILON)
            fc = F.gelu(m @ w[f"{p}.mlp.c_fc.weight"] + w[f"{p}.mlp.c_fc.bias"], approximate="tanh")
            x = x + fc @ w[f"{p}.mlp.c_proj.weight"] + w[f"{p}.mlp.c_proj.bias"]
        hidden = F.layer_norm(x, (width,), w["transformer.ln_f.weight"], w["transformer.ln_f.bias"], LAYER_NORM_EPSILON)
        logits = hidden @ w["transformer.wte.weight"].t()
        new_cache = None if cache is None else {"layers": new_layers, "length": past + length}
        return logits, hidden, new_cache

    def scalar_head(self, head, hidden):
        return (hidden @ self.w[f"{head}.weight"] + self.w[f"{head}.bias"]).squeeze(-1)


def adamw(model, lr, weight_decay=0.1):
    """AdamW as adamW.ts: decoupled decay on weights of rank ≥ 2 only, β (0.9, 0.99), ε 1e-8."""
    params = model.parameters()
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.99), eps=1e-8)


def masked_nll(logits, targets, mask):
    """losses.ts maskedNll: Σ −log p(target)·mask / max(Σ mask, 1)."""
    nll = -torch.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (nll * mask).sum() / torch.clamp(mask.sum(), min=1)


def optimizer_step(model, optimizer, loss, max_grad_norm):
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    # clipByGlobalNorm: g · min(1, max_norm / (‖g‖ + 1e-6))
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()


class TrainBench:
    def __init__(self, message):
        self.model = Gpt(message["config"], read_safetensors(message["weights_path"]))
        self.ids = torch.tensor(message["ids"], dtype=torch.long)
        self.targets = torch.tensor(message["targets"], dtype=torch.long)
        self.mask = torch.tensor(message["mask"], dtype=torch.float32)
        self.optimizer = adamw(self.model, message["learning_rate"], message["weight_decay"])
        self.learning_rate = message["learning_rate"]
        self.max_grad_norm = message["max_grad_norm"]

    def loss(self):
        with torch.no_grad():
            return masked_nll(self.model.forward(self.ids)[0], self.targets, self.mask).item()

    def step(self):
        started = time.perf_counter()
        loss = masked_nll(self.model.forward(self.ids)[0], self.targets, self.mask)
        optimizer_step(self.model, self.optimizer, loss, self.max_grad_norm)
        loss.item()
        return (time.perf_counter() - started) * 1000


class PpoBench:
    """One PPO iteration as ppoStep.ts runs it: rollouts, scoring passes, advantages, update."""

    def __init__(self, message):
        self.config = message["config"]
        self.batch = message["batch"]
        self.prompt_length = message["prompt_length"]
        self.new_tokens = message["new_tokens"]
        self.epochs = message["epochs"]
        self.mini_batches = message["mini_batches"]
        self.stage = message["stage"]
        self.generator = torch.Generator().manual_seed(message["seed"])
        trunk = init_weights(self.config, [], self.generator)
        policy_weights = dict(trunk, **{k: v for k, v in init_weights(self.config, ["v_head"], self.generator).items()
                                        if k.startswith("v_head")})
        self.policy = Gpt(self.config, policy_weights)
        self.reference = Gpt(self.config, trunk)
        self.reward = Gpt(self.config, dict(trunk, **{k: v for k, v in init_weights(
            self.config, ["score"], self.generator).items() if k.startswith("score")}))
        self.optimizer = adamw(self.policy, self.stage["learning_rate"])

    def generate(self):
        """Sampling with a KV cache at temperature 1: the prompt once, then one position per token."""
        vocab = self.config["vocab_size"]
        prompts = torch.randint(1, vocab, (self.batch, self.prompt_length), generator=self.generator)
        with torch.no_grad():
            cache = {"layers": [], "length": 0}
            cache["layers"] = [
                (torch.zeros(self.batch, self.config["n_head"], 0, self.config["n_embd"] // self.config["n_head"]),) * 2
                for _ in range(self.config["n_layer"])
            ]
            logits, _, cache = self.policy.forward(prompts, cache)
            tokens = []
            for i in range(self.new_tokens):
                probs = torch.softmax(logits[:, -1, :] / self.stage["temperature"], dim=-1)
                token = torch.multinomial(probs, 1, generator=self.generator)
                tokens.append(token)
                if i + 1 < self.new_tokens:
                    logits, _, cache = self.policy.forward(token, cache)
        return torch.cat([prompts] + tokens, dim=1)

    def response_logprobs(self, logits):
        """log π(token_t | ·) of the response tokens: logits [B, T, V] → [B, new_tokens]."""
        start = self.prompt_length
        scaled = logits[:, start - 1 : -1, :] / self.stage["temperature"]
        return scaled, torch.log_softmax(scaled, dim=-1)

    def score(self, sequences):
        with torch.no_grad():
            logits, hidden, _ = self.policy.forward(sequences)
            _, logp = self.response_logprobs(logits)
            response = sequences[:, self.prompt_length :]
            logprobs = logp.gather(-1, response.unsqueeze(-1)).squeeze(-1)
            values = self.policy.scalar_head("v_head", hidden)[:, self.prompt_length - 1 : -1]
            ref_logits, _, _ = self.reference.forward(sequences)
            _, ref_logp = self.response_logprobs(ref_logits)
            ref_logprobs = ref_logp.gather(-1, response.unsqueeze(-1)).squeeze(-1)
            _, reward_hidden, _ = self.reward.forward(sequences)
            scores = self.reward.scalar_head("score", reward_hidden)[:, -1]  # 'last' pooling
        return logprobs, ref_logprobs, values, scores

    def advantages(self, logprobs, ref_logprobs, values, scores):
        """TRL: rewards = −β·KL per token + score at the last; GAE (γ, λ); whitened advantages."""
        stage = self.stage
        rewards = -stage["kl_coef"] * (logprobs - ref_logprobs)
        rewards[:, -1] += scores
        last = torch.zeros(self.batch)
        reversed_advantages = []
        for t in reversed(range(self.new_tokens)):
            next_value = values[:, t + 1] if t + 1 < self.new_tokens else torch.zeros(self.batch)
            delta = rewards[:, t] + stage["gamma"] * next_value - values[:, t]
            last = delta + stage["gamma"] * stage["lam"] * last
            reversed_advantages.append(last)
        advantages = torch.stack(reversed_advantages[::-1], dim=1)
        returns = advantages + values
        advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        return advantages, returns

    def update(self, sequences, old_logprobs, old_values, advantages, returns):
        """num_ppo_epochs × num_mini_batches optimizer steps of the clipped policy + clipped value loss."""
        stage = self.stage
        size = self.batch // self.mini_batches
        response = sequences[:, self.prompt_length :]
        for _ in range(self.epochs):
            order = torch.randperm(self.batch, generator=self.generator)
            for start in range(0, self.batch, size):
                idx = order[start : start + size]
                logits, hidden, _ = self.policy.forward(sequences[idx])
                scaled, logp = self.response_logprobs(logits)
                new_logprobs = logp.gather(-1, response[idx].unsqueeze(-1)).squeeze(-1)
                values = self.policy.scalar_head("v_head", hidden)[:, self.prompt_length - 1 : -1]
                ratio = torch.exp(new_logprobs - old_logprobs[idx])
                adv = advantages[idx]
                pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - stage["cliprange"], 1 + stage["cliprange"]))
                clipped = old_values[idx] + (values - old_values[idx]).clamp(
                    -stage["cliprange_value"], stage["cliprange_value"]
                )
                vf_loss = 0.5 * torch.max((values - returns[idx]) ** 2, (clipped - returns[idx]) ** 2)
                entropy = -(torch.exp(logp) * logp).sum(-1)
                loss = (
                    pg_loss.mean() + stage["vf_coef"] * vf_loss.mean() - stage["entropy_coef"] * entropy.mean()
                )
                optimizer_step(self.policy, self.optimizer, loss, stage["max_grad_norm"])
                ratio.mean().item()  # the product reads the minibatch's statistics back

    def iteration(self):
        t0 = time.perf_counter()
        sequences = self.generate()
        t1 = time.perf_counter()
        logprobs, ref_logprobs, values, scores = self.score(sequences)
        t2 = time.perf_counter()
        advantages, returns = self.advantages(logprobs, ref_logprobs, values, scores)
        t3 = time.perf_counter()
        self.update(sequences, logprobs, values, advantages, returns)
        t4 = time.perf_counter()
        ms = lambda a, b: (b - a) * 1000  # noqa: E731
        return {
            "rollout_generate": ms(t0, t1),
            "rollout_score": ms(t1, t2),
            "advantages": ms(t2, t3),
            "update": ms(t3, t4),
            "total_ms": ms(t0, t4),
        }


def main():
    benches = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        reply = {"id": message.get("id"), "ok": True}
        try:
            cmd = message["cmd"]
            if cmd == "hello":
                reply.update(
                    torch=torch.__version__,
                    threads=torch.get_num_threads(),
                    python=sys.version.split()[0],
                    blas=blas_library(),
                )
            elif cmd == "train_setup":
                benches[message["key"]] = TrainBench(message)
            elif cmd == "train_loss":
                reply["loss"] = benches[message["key"]].loss()
            elif cmd == "train_step":
                reply["ms"] = benches[message["key"]].step()
            elif cmd == "ppo_setup":
                benches[message["key"]] = PpoBench(message)
            elif cmd == "ppo_iteration":
                reply.update(benches[message["key"]].iteration())
            elif cmd == "release":
                benches.pop(message["key"], None)
            else:
                raise ValueError(f"unknown command {cmd!r}")
        except Exception as error:  # noqa: BLE001 — every failure goes back to the bench as a reply
            reply = {"id": message.get("id"), "ok": False, "error": f"{type(error).__name__}: {error}"}
        sys.stdout.write(json.dumps(reply) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
