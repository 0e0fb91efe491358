"""PyTorch's side of the GPU check (bench/gpuCheck.ts): the same train steps and PPO iteration, fp32 eager.

Reads one JSON spec on stdin (device, warmup, rounds, models, ppo) and prints one JSON line:
{"status": "ok", "result": {...}} or {"status": "unavailable" | "failed", ...}. The model, AdamW, loss and
PPO iteration are reference.py's (the CPU benches' yardstick), run on `device` ("cuda" on the GPU machine;
the dry run passes "cpu"). Weights are nanoGPT's initialisation from a seeded generator, batches random.
"""

import json
import os
import sys
import time

# reference.py pins one CPU thread for the CPU benches; on the GPU the host side should not be starved.
os.environ.setdefault("RLHF_TORCH_THREADS", str(os.cpu_count() or 1))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def spread(values):
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    return {"median": median, "min": ordered[0], "max": ordered[-1]}


def synchronize(torch, device):
    if device == "cuda":
        torch.cuda.synchronize()


def train_rows(reference, torch, spec, device):
    rows = []
    for model in spec["models"]:
        config, batch = model["config"], model["batch_size"]
        generator = torch.Generator().manual_seed(0)
        weights = {k: v.to(device) for k, v in reference.init_weights(config, [], generator).items()}
        gpt = reference.Gpt(config, weights)
        shape = (batch, config["block_size"])
        ids = torch.randint(0, config["vocab_size"], shape, generator=generator).to(device)
        targets = torch.randint(0, config["vocab_size"], shape, generator=generator).to(device)
        mask = torch.ones(shape, device=device)
        optimizer = reference.adamw(gpt, 1e-3, 0.1)

        def step():
            started = time.perf_counter()
            loss = reference.masked_nll(gpt.forward(ids)[0], targets, mask)
            reference.optimizer_step(gpt, optimizer, loss, 1.0)
            value = loss.item()
            synchronize(torch, device)
            return (time.perf_counter() - started) * 1000, value

        first_ms, initial_loss = step()
        for _ in range(spec["warmup"] - 1):
            step()
        ms = [step()[0] for _ in range(spec["rounds"])]
        median = spread(ms)
        rows.append(
            {
                "model": model["name"],
                "parameters": sum(p.numel() for p in gpt.parameters()),
                "batch_size": batch,
                "context": config["block_size"],
                "first_step_ms": first_ms,
                "initial_loss": initial_loss,
                "ms": ms,
                "step_ms": median,
                "tokens_per_s": batch * config["block_size"] / (median["median"] / 1000),
            }
        )
        del gpt, optimizer
        if device == "cuda":
            torch.cuda.empty_cache()
    return rows


def ppo_iteration(reference, torch, spec, device):
    """reference.PpoBench builds its tensors with torch's default device and a torch.Generator(): both on `device`."""
    if device != "cpu":  # set_default_device is torch ≥ 2.0; the CPU is the default anyway
        torch.set_default_device(device)
    plain_generator = torch.Generator
    torch.Generator = lambda *args, **kwargs: plain_generator(device=device)  # noqa: E731
    try:
        message = dict(spec["ppo"], seed=1)
        bench = reference.PpoBench(message)
        bench.iteration()  # warm-up: kernels, allocator
        synchronize(torch, device)
        times = bench.iteration()
        synchronize(torch, device)
    finally:
        torch.Generator = plain_generator
        if device != "cpu":
            torch.set_default_device("cpu")
    tokens = message["batch"] * message["new_tokens"]
    return dict(times, response_tokens_per_s=tokens / (times["total_ms"] / 1000))


def main():
    spec = json.loads(sys.stdin.read())
    device = spec["device"]
    try:
        import torch
    except ImportError as error:
        print(json.dumps({"status": "unavailable", "reason": f"python3 cannot import torch: {error}"}))
        return
    if device == "cuda" and not torch.cuda.is_available():
        print(json.dumps({"status": "unavailable", "reason": "torch sees no CUDA device"}))
        return
    import reference

    info = {"torch": torch.__version__, "device": device, "dtype": "float32", "mode": "eager"}
    if device == "cuda":
        info["device_name"] = torch.cuda.get_device_name(0)
        # fp32 eager means fp32 matmuls too, not TF32 (the engines compute in fp32).
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
    result = dict(info)
    try:
        result["train"] = train_rows(reference, torch, spec, device)
    except Exception as error:  # noqa: BLE001 — the check records each side's failure and goes on
        result["train_error"] = f"{type(error).__name__}: {error}"
    try:
        result["ppo"] = ppo_iteration(reference, torch, spec, device)
    except Exception as error:  # noqa: BLE001
        result["ppo_error"] = f"{type(error).__name__}: {error}"
    print(json.dumps({"status": "ok", "result": result}))


if __name__ == "__main__":
    main()
