"""python/examples/minimal_ppo.py end to end: /usr/bin/python3 -m unittest discover -s python/tests"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples", "minimal_ppo.py")

try:
    import torch  # noqa: F401

    TORCH = None
except ImportError as error:  # the example needs torch: skipped, saying why
    TORCH = f"torch is not importable ({error}); install Debian's python3-torch to run the PyTorch example"

# The metrics the lens's own PPO trainer logs (src/trainer/ppo/ppoStep.ts, ppoMetrics.ts), TRL's names.
METRICS = (
    "objective/kl",
    "objective/entropy",
    "objective/non_score_reward",
    "objective/rlhf_reward",
    "objective/scores",
    "objective/kl_coef",
    "policy/approxkl_avg",
    "policy/clipfrac_avg",
    "loss/policy_avg",
    "loss/value_avg",
    "val/clipfrac_avg",
    "policy/entropy_avg",
    "val/ratio",
    "val/ratio_var",
    "lr",
)
PER_TOKEN = ("logprob", "ref_logprob", "kl", "value", "reward", "advantage", "return", "entropy")


def run_example(run_dir, iterations=3, seed=0):
    return subprocess.run(
        [sys.executable, EXAMPLE, "--run-dir", run_dir, "--iterations", str(iterations), "--seed", str(seed)],
        capture_output=True,
        text=True,
        timeout=300,
    )


@unittest.skipIf(TORCH is not None, TORCH or "")
class MinimalPpoExample(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="rlhf-minimal-ppo-")
        self.addCleanup(self.tmp.cleanup)

    def run_into(self, name, iterations=3, seed=0):
        run_dir = os.path.join(self.tmp.name, name)
        result = run_example(run_dir, iterations, seed)
        self.assertEqual(result.returncode, 0, f"the example failed:\n{result.stdout}\n{result.stderr}")
        return run_dir

    def test_writes_a_completed_run_with_metrics_and_per_token_traces(self):
        run_dir = self.run_into("run", iterations=3)
        with open(os.path.join(run_dir, "run.json"), encoding="utf-8") as handle:
            header = json.load(handle)
        self.assertEqual(header["status"], "completed")
        self.assertEqual(header["step"], 3)
        self.assertEqual(header["max_steps"], 3)
        self.assertEqual(header["stage"], "ppo")
        stage = header["config"]["stages"][header["stage_index"]]
        self.assertEqual(stage["type"], "ppo")  # the dashboard reads ε from here
        eps = stage["cliprange"]
        epochs = stage["num_ppo_epochs"]

        with open(os.path.join(run_dir, "metrics.jsonl"), encoding="utf-8") as handle:
            lines = [json.loads(line) for line in handle]
        self.assertEqual([line["step"] for line in lines], [1, 2, 3])
        for line in lines:
            for name in METRICS:
                self.assertIsInstance(line.get(name), (int, float), f"step {line['step']}: {name}")
            self.assertGreaterEqual(line["policy/clipfrac_avg"], 0)
            self.assertLessEqual(line["policy/clipfrac_avg"], 1)

        self.assertEqual(sorted(os.listdir(os.path.join(run_dir, "traces"))), [f"step-{n}.jsonl" for n in (1, 2, 3)])
        for step, metrics in zip((1, 2, 3), lines):
            with open(os.path.join(run_dir, "traces", f"step-{step}.jsonl"), encoding="utf-8") as handle:
                rows = [json.loads(line) for line in handle]
            self.assertEqual(len(rows), stage["batch_size"])
            clipped = counted = 0
            kl_sums = []
            for index, row in enumerate(rows):
                self.assertEqual((row["step"], row["sample"]), (step, index))
                length = len(row["token_ids"])
                self.assertEqual(length, stage["max_new_tokens"])
                self.assertEqual(len(row["tokens"]), length)
                self.assertEqual("".join(row["tokens"]), row["response"])
                self.assertIsInstance(row["prompt"], str)
                self.assertEqual(row["score"], row["tokens"].count("★") / length)
                for field in PER_TOKEN:
                    self.assertEqual(len(row[field]), length, field)
                    self.assertTrue(all(isinstance(v, float) for v in row[field]), field)
                for logprob, ref, kl in zip(row["logprob"], row["ref_logprob"], row["kl"]):
                    self.assertAlmostEqual(kl, logprob - ref, places=5)  # k1
                self.assertEqual(len(row["ratio"]), epochs)
                self.assertEqual(len(row["clip_class"]), epochs)
                for ratios, classes in zip(row["ratio"], row["clip_class"]):
                    for ratio, cls, advantage in zip(ratios, classes, row["advantage"]):
                        # src/core/clipClass.ts's classifyClip, on the numbers written
                        if 1 - eps <= ratio <= 1 + eps:
                            expected = 0
                        elif (ratio > 1 + eps and advantage > 0) or (ratio < 1 - eps and advantage < 0):
                            expected = 2
                        else:
                            expected = 1
                        self.assertEqual(cls, expected, (ratio, advantage))
                        clipped += cls == 2
                        counted += 1
                # The first epoch sees the rollout's own policy: r = 1 exactly.
                self.assertTrue(all(r == 1.0 for r in row["ratio"][0]))
                kl_sums.append(sum(row["kl"]))
            self.assertAlmostEqual(metrics["policy/clipfrac_avg"], clipped / counted, places=6)
            self.assertAlmostEqual(metrics["objective/kl"], sum(kl_sums) / len(kl_sums), places=4)

    def test_is_deterministic_for_a_seed(self):
        first = self.run_into("a", iterations=2, seed=7)
        second = self.run_into("b", iterations=2, seed=7)
        other = self.run_into("c", iterations=2, seed=8)

        def trace(run_dir):
            with open(os.path.join(run_dir, "traces", "step-2.jsonl"), encoding="utf-8") as handle:
                return handle.read()

        self.assertEqual(trace(first), trace(second))
        self.assertNotEqual(trace(first), trace(other))


if __name__ == "__main__":
    unittest.main()
