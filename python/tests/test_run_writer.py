"""Tests of rlhf_lens.RunWriter: /usr/bin/python3 -m unittest discover -s python/tests"""
import datetime
import gzip
import json
import os
import sys
import tempfile
import unittest
import warnings
from unittest import mock

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from rlhf_lens import RunWriter, resolve_rank  # noqa: E402
from rlhf_lens import run_writer  # noqa: E402

try:
    import numpy
except ImportError:  # the numpy case is skipped, and says so
    numpy = None

try:
    import torch
except ImportError:
    torch = None

# src/shared/runFiles.ts: runJsonProblems requires these; the statuses are runStatusValues.
REQUIRED_RUN_JSON = ("name", "status", "started_at")
STATUSES = ("created", "running", "completed", "failed", "stopped")


def read_lines(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as handle:
        text = handle.read()
    assert text.endswith("\n"), f"{path} does not end with a newline"
    # json.loads with a strict hook: NaN / Infinity are not JSON
    return [json.loads(line, parse_constant=_reject) for line in text.splitlines()]


def _reject(name):
    raise ValueError(f"not JSON: {name}")


def leftovers(folder):
    found = []
    for root, _dirs, files in os.walk(folder):
        found += [os.path.join(root, name) for name in files if name.endswith(".tmp")]
    return found


class Base(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.dir = os.path.join(self._tmp.name, "run")
        # Rank variables of the machine running the tests must not gate these writers.
        patcher = mock.patch.dict(os.environ, {}, clear=False)
        patcher.start()
        self.addCleanup(patcher.stop)
        for variable in ("RANK", "LOCAL_RANK"):
            os.environ.pop(variable, None)

    def tearDown(self):
        self._tmp.cleanup()

    def run_json(self):
        with open(os.path.join(self.dir, "run.json"), encoding="utf-8") as handle:
            return json.load(handle, parse_constant=_reject)


class LayoutTest(Base):
    def test_run_json_has_the_fields_the_lens_requires(self):
        RunWriter(self.dir, name="tiny ppo", config={"learning_rate": 1e-5, "stages": [{"type": "ppo"}]})
        fields = self.run_json()
        for key in REQUIRED_RUN_JSON:
            self.assertIn(key, fields)
        self.assertEqual(fields["name"], "tiny ppo")
        self.assertEqual(fields["status"], "running")
        self.assertEqual(fields["stage"], "ppo")
        self.assertEqual(fields["stage_index"], 0)
        self.assertEqual(fields["config"]["learning_rate"], 1e-5)
        self.assertRegex(fields["id"], r"^tiny-ppo-ppo-\d{8}-\d{6}$")
        self.assertRegex(fields["started_at"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
        datetime.datetime.strptime(fields["started_at"], "%Y-%m-%dT%H:%M:%S.%fZ")
        self.assertTrue(all(isinstance(v, str) for v in fields["versions"].values()))
        self.assertTrue(os.path.isdir(os.path.join(self.dir, "traces")))

    def test_metrics_lines_have_step_time_and_trl_names(self):
        run = RunWriter(self.dir, name="m")
        run.log_metrics(1, {"objective/kl": 0.25, "objective/scores": 1.5, "val/num_eos_tokens": 3})
        run.log_metrics(2, {"objective/kl": 0.5})
        lines = read_lines(os.path.join(self.dir, "metrics.jsonl"))
        self.assertEqual([line["step"] for line in lines], [1, 2])
        self.assertEqual(lines[0]["objective/kl"], 0.25)
        self.assertEqual(lines[0]["val/num_eos_tokens"], 3)
        self.assertIsInstance(lines[0]["time"], float)
        self.assertEqual(list(lines[0])[:2], ["step", "time"])
        with self.assertRaises(ValueError):
            run.log_metrics(3, {"step": 4})
        with self.assertRaises(TypeError):
            run.log_metrics(3, {"text": "no"})

    def test_metrics_after_a_cut_line_start_on_a_line_of_their_own(self):
        os.makedirs(self.dir)
        with open(os.path.join(self.dir, "metrics.jsonl"), "w") as handle:
            handle.write('{"step":1,"time":1}\n{"step":2,"ti')  # a writer killed mid-line
        RunWriter(self.dir, name="m").log_metrics(3, {"objective/kl": 0.1})
        with open(os.path.join(self.dir, "metrics.jsonl")) as handle:
            lines = handle.read().splitlines()
        self.assertEqual(json.loads(lines[-1])["step"], 3)
        self.assertEqual(lines[1], '{"step":2,"ti')

    def test_trace_lines_name_fields_as_the_arrow_traces_do(self):
        run = RunWriter(self.dir, name="t")
        path = run.log_step_tokens(
            7,
            [
                {
                    "prompt": "2+2=",
                    "response": " 4",
                    "tokens": [11, 12],
                    "token_texts": [" ", "4"],
                    "score": 1.0,
                    "logprob": [-0.5, -0.1],
                    "ref_logprob": [-0.6, -0.2],
                    "kl": [0.1, 0.1],
                    "value": [0.2, 0.3],
                    "reward": [-0.01, 0.99],
                    "advantage": [0.4, 0.5],
                    "return": [0.6, 0.7],
                    "entropy": [1.0, 0.5],
                    "ratio": [[1.0, 1.0], [1.3, 0.95]],
                    "clip_class": [[0, 0], [2, 0]],
                    "my_extra": {"judge": "ok"},
                },
                {"prompt": "1+1=", "response": " 2", "token_ids": [13], "logprob": [-0.3]},
            ],
        )
        self.assertEqual(path, os.path.join(self.dir, "traces", "step-7.jsonl"))
        first, second = read_lines(path)
        self.assertEqual((first["step"], first["sample"], second["sample"]), (7, 0, 1))
        self.assertEqual(first["token_ids"], [11, 12])
        self.assertEqual(first["tokens"], [" ", "4"])
        self.assertEqual(first["ratio"], [[1.0, 1.0], [1.3, 0.95]])
        self.assertEqual(first["clip_class"], [[0, 0], [2, 0]])
        self.assertEqual(first["return"], [0.6, 0.7])
        self.assertEqual(first["my_extra"], {"judge": "ok"})
        self.assertNotIn("token_texts", first)
        self.assertEqual(set(second), {"step", "sample", "prompt", "response", "token_ids", "logprob"})

    def test_a_flat_ratio_is_one_epoch(self):
        run = RunWriter(self.dir, name="t")
        (row,) = read_lines(run.log_step_tokens(1, [{"token_ids": [1, 2], "ratio": [1.0, 1.1]}]))
        self.assertEqual(row["ratio"], [[1.0, 1.1]])

    def test_lengths_that_disagree_are_refused_naming_the_field(self):
        run = RunWriter(self.dir, name="t")
        with self.assertRaisesRegex(ValueError, r"sample 0\.kl has 1 entries, token_ids 2"):
            run.log_step_tokens(1, [{"token_ids": [1, 2], "kl": [0.1]}])
        with self.assertRaisesRegex(ValueError, "clip_class"):
            run.log_step_tokens(1, [{"token_ids": [1], "clip_class": [[3]]}])
        self.assertFalse(os.path.exists(run.trace_path(1)))

    def test_finish_and_context_manager(self):
        run = RunWriter(self.dir, name="f")
        run.log_metrics(4, {"objective/kl": 0.1})
        run.finish()
        fields = self.run_json()
        self.assertEqual((fields["status"], fields["step"]), ("completed", 4))
        self.assertIn("ended_at", fields)
        with self.assertRaises(ValueError):
            run.finish("running")
        with self.assertRaises(RuntimeError):
            with RunWriter(self.dir, name="f2"):
                raise RuntimeError("out of memory")
        fields = self.run_json()
        self.assertEqual(fields["status"], "failed")
        self.assertIn("out of memory", fields["error"])
        self.assertIn(fields["status"], STATUSES)


class AtomicTest(Base):
    def test_no_temporary_file_is_left(self):
        run = RunWriter(self.dir, name="a")
        run.log_step_tokens(1, [{"token_ids": [1], "logprob": [-1.0]}])
        run.log_step_tokens(1, [{"token_ids": [1], "logprob": [-2.0]}], compress=True)
        run.update(summary={"accuracy": 0.5})
        run.finish()
        self.assertEqual(leftovers(self.dir), [])
        # one spelling per step: the plain file gave way to the gzip one
        self.assertEqual(os.listdir(os.path.join(self.dir, "traces")), ["step-1.jsonl.gz"])
        self.assertEqual(oct(os.stat(os.path.join(self.dir, "run.json")).st_mode & 0o777), oct(0o644))

    def test_a_failing_write_leaves_the_old_files_intact(self):
        run = RunWriter(self.dir, name="a", config={"lr": 1})
        run.log_step_tokens(2, [{"token_ids": [1], "logprob": [-1.0]}])
        trace = run.trace_path(2)
        with open(trace, "rb") as handle:
            old_trace = handle.read()
        with open(os.path.join(self.dir, "run.json"), "rb") as handle:
            old_run = handle.read()
        with self.assertRaisesRegex(TypeError, r"sample 0\.bad"):
            run.log_step_tokens(2, [{"token_ids": [1], "bad": object()}])
        with self.assertRaisesRegex(TypeError, "summary"):
            run.update(summary={"x": object()})
        with open(trace, "rb") as handle:
            self.assertEqual(handle.read(), old_trace)
        with open(os.path.join(self.dir, "run.json"), "rb") as handle:
            self.assertEqual(handle.read(), old_run)
        self.assertEqual(leftovers(self.dir), [])

    def test_a_failure_mid_write_removes_the_temporary_and_keeps_the_old_file(self):
        path = os.path.join(self._tmp.name, "file.json")
        run_writer.atomic_write(path, b"old")
        with mock.patch.object(run_writer.os, "replace", side_effect=OSError(28, "No space left on device")):
            with self.assertRaises(OSError):
                run_writer.atomic_write(path, b"new")
        with open(path, "rb") as handle:
            self.assertEqual(handle.read(), b"old")
        self.assertEqual(leftovers(self._tmp.name), [])


class GzipTest(Base):
    def test_round_trip(self):
        run = RunWriter(self.dir, name="g")
        samples = [{"prompt": "é ✓", "response": "ok", "token_ids": list(range(50)), "logprob": [-0.5] * 50}]
        path = run.log_step_tokens(3, samples, compress=True)
        self.assertTrue(path.endswith("traces/step-3.jsonl.gz"))
        with open(path, "rb") as handle:
            self.assertEqual(handle.read(2), b"\x1f\x8b")
        (row,) = read_lines(path)
        self.assertEqual(row["prompt"], "é ✓")
        self.assertEqual(row["token_ids"], list(range(50)))
        self.assertEqual(row["logprob"], [-0.5] * 50)


class RankTest(Base):
    def test_rank_from_argument_then_environment(self):
        self.assertEqual(resolve_rank(3), 3)
        self.assertEqual(resolve_rank(), 0)
        with mock.patch.dict(os.environ, {"LOCAL_RANK": "2"}):
            self.assertEqual(resolve_rank(), 2)
            with mock.patch.dict(os.environ, {"RANK": "5"}):
                self.assertEqual(resolve_rank(), 5)
        with mock.patch.dict(os.environ, {"RANK": "x"}):
            with self.assertRaisesRegex(ValueError, "RANK"):
                resolve_rank()

    def test_only_rank_zero_writes(self):
        with mock.patch.dict(os.environ, {"RANK": "1"}):
            run = RunWriter(self.dir, name="r")
        self.assertFalse(run.writes)
        run.log_metrics(1, {"objective/kl": 0.1})
        self.assertIsNone(run.log_step_tokens(1, [{"token_ids": [1]}]))
        run.finish()
        self.assertFalse(os.path.exists(self.dir))
        # still checked on every rank, so a bad call fails everywhere alike
        with self.assertRaises(TypeError):
            run.log_step_tokens(1, [{"bad": object()}])

    def test_all_ranks_write_their_own_shards(self):
        zero = RunWriter(self.dir, name="r", rank=0, all_ranks=True)
        one = RunWriter(self.dir, name="r", rank=1, all_ranks=True)
        zero.log_metrics(1, {"objective/kl": 0.1})
        one.log_metrics(1, {"objective/kl": 0.2})
        zero.log_step_tokens(1, [{"token_ids": [1]}])
        one.log_step_tokens(1, [{"token_ids": [2]}])
        one.finish()
        self.assertEqual(self.run_json()["status"], "running")  # run.json is rank 0's
        zero.finish()
        self.assertEqual(self.run_json()["status"], "completed")
        self.assertEqual(
            sorted(os.listdir(self.dir)), ["metrics.jsonl", "metrics.rank-1.jsonl", "run.json", "traces"]
        )
        (row,) = read_lines(os.path.join(self.dir, "traces", "step-1.rank-1.jsonl"))
        self.assertEqual((row["rank"], row["token_ids"]), (1, [2]))
        (row,) = read_lines(os.path.join(self.dir, "traces", "step-1.jsonl"))
        self.assertNotIn("rank", row)


class NonFiniteTest(Base):
    def test_nan_and_inf_become_null_with_a_warning_naming_the_field(self):
        with self.assertWarnsRegex(RuntimeWarning, "config.target_kl"):
            run = RunWriter(self.dir, name="n", config={"target_kl": float("inf")})
        self.assertIsNone(self.run_json()["config"]["target_kl"])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.log_metrics(1, {"objective/kl": float("nan"), "objective/scores": 1.0})
            run.log_step_tokens(1, [{"token_ids": [1, 2], "kl": [0.1, float("-inf")], "score": float("nan")}])
        messages = [str(w.message) for w in caught]
        self.assertTrue(any("objective/kl" in m for m in messages), messages)
        self.assertTrue(any("sample 0.kl" in m and "sample 0.score" in m for m in messages), messages)
        (line,) = read_lines(os.path.join(self.dir, "metrics.jsonl"))
        self.assertIsNone(line["objective/kl"])
        (row,) = read_lines(run.trace_path(1))
        self.assertEqual(row["kl"], [0.1, None])
        self.assertIsNone(row["score"])


@unittest.skipIf(numpy is None, "numpy is not importable: numpy input not tested")
class NumpyTest(Base):
    def test_arrays_and_scalars(self):
        run = RunWriter(self.dir, name="np", config={"lr": numpy.float32(0.5), "epochs": numpy.int64(4)})
        self.assertEqual(self.run_json()["config"], {"lr": 0.5, "epochs": 4})
        run.log_metrics(numpy.int64(1), {"objective/kl": numpy.float64(0.25), "lr": numpy.array([1e-5])})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run.log_step_tokens(
                1,
                [
                    {
                        "tokens": numpy.array([5, 6], dtype=numpy.int32),
                        "logprob": numpy.array([-1.0, numpy.nan], dtype=numpy.float32),
                        "ratio": numpy.ones((2, 2)),
                        "clip_class": numpy.array([[0, 1], [2, 0]], dtype=numpy.int8),
                    }
                ],
            )
        self.assertTrue(any("sample 0.logprob" in str(w.message) for w in caught))
        (line,) = read_lines(os.path.join(self.dir, "metrics.jsonl"))
        self.assertEqual((line["step"], line["objective/kl"], line["lr"]), (1, 0.25, 1e-5))
        (row,) = read_lines(run.trace_path(1))
        self.assertEqual(row["token_ids"], [5, 6])
        self.assertEqual(row["logprob"], [-1.0, None])
        self.assertEqual(row["ratio"], [[1.0, 1.0], [1.0, 1.0]])
        self.assertEqual(row["clip_class"], [[0, 1], [2, 0]])


@unittest.skipIf(torch is None, "torch is not importable: tensor input not tested")
class TorchTest(Base):
    def test_tensors_with_grad_and_bfloat16(self):
        run = RunWriter(self.dir, name="pt")
        logits = torch.tensor([-0.5, -0.25], requires_grad=True)
        run.log_metrics(1, {"objective/kl": torch.tensor(0.5, requires_grad=True) * 1})
        run.log_step_tokens(
            1,
            [
                {
                    "tokens": torch.tensor([3, 4]),
                    "logprob": logits * 1,
                    "entropy": torch.tensor([1.0, 2.0], dtype=torch.bfloat16),
                    "ratio": torch.ones(3, 2),
                }
            ],
        )
        (line,) = read_lines(os.path.join(self.dir, "metrics.jsonl"))
        self.assertEqual(line["objective/kl"], 0.5)
        (row,) = read_lines(run.trace_path(1))
        self.assertEqual(row["token_ids"], [3, 4])
        self.assertEqual(row["logprob"], [-0.5, -0.25])
        self.assertEqual(row["entropy"], [1.0, 2.0])
        self.assertEqual(len(row["ratio"]), 3)


if __name__ == "__main__":
    unittest.main()
