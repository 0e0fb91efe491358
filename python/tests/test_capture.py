"""Capture functions over real torch tensors, in each engine's layout.

/usr/bin/python3 -m unittest discover -s python/tests
"""
import json
import math
import os
import sys
import tempfile
import unittest
import warnings

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

try:
    import torch
except ImportError:
    torch = None

if torch is not None:
    from rlhf_lens import RunWriter
    from rlhf_lens.capture import clip_classes, kl_estimate, ppo_ratio, response_positions, trace_rows
    from rlhf_lens.engine_capture import (
        GRPORolloutRecord,
        json_config,
        numeric_logs,
        openrlhf_trace_rows,
        verl_kl_estimator,
        verl_trace_rows,
    )

PAD = 0


class CharTokenizer:
    """A real (tiny) tokenizer: id n is the character chr(ord('a') + n − 1); 0 is padding."""

    def convert_ids_to_tokens(self, ids):
        return [chr(ord("a") + i - 1) if i else "<pad>" for i in ids]

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(ord("a") + i - 1) for i in ids if i or not skip_special_tokens)


def written(rows, step=1):
    with tempfile.TemporaryDirectory() as folder:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            path = RunWriter(folder, name="t", rank=0).log_step_tokens(step, rows)
        with open(path, encoding="utf-8") as handle:
            return [json.loads(line) for line in handle], [str(w.message) for w in caught]


@unittest.skipIf(torch is None, "torch is not importable (Debian: apt-get install python3-torch)")
class CaptureFunctions(unittest.TestCase):
    def test_positions_left_and_right_padding_and_gaps(self):
        mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0], [1, 0, 1, 0]])
        self.assertEqual([p.tolist() for p in response_positions(mask)], [[2, 3], [0, 1, 2], [0, 2]])

    def test_kl_estimators(self):
        logp, ref = torch.tensor([-1.0]), torch.tensor([-1.5])
        self.assertAlmostEqual(kl_estimate(logp, ref, "k1").item(), 0.5, places=6)
        self.assertAlmostEqual(kl_estimate(logp, ref, "k2").item(), 0.125, places=6)
        self.assertAlmostEqual(kl_estimate(logp, ref, "k3").item(), math.exp(-0.5) + 0.5 - 1, places=6)
        with self.assertRaisesRegex(ValueError, "k1, k2, k3"):
            kl_estimate(logp, ref, "k4")

    def test_ratio_token_and_sequence_level(self):
        logp = torch.tensor([[-1.0, -2.0, 0.0]])
        old = torch.tensor([[-1.5, -1.0, 5.0]])
        mask = torch.tensor([[1, 1, 0]])
        token = ppo_ratio(logp, old)
        self.assertAlmostEqual(token[0, 0].item(), math.exp(0.5), places=5)
        self.assertAlmostEqual(token[0, 1].item(), math.exp(-1.0), places=5)
        sequence = ppo_ratio(logp, old, mask, "sequence")
        self.assertAlmostEqual(sequence[0, 0].item(), math.exp(-0.25), places=5)
        self.assertAlmostEqual(sequence[0, 2].item(), math.exp(-0.25), places=5)

    def test_clip_classes_match_the_lens_and_trl_masks(self):
        ratio = torch.tensor([[1.0, 1.2, 1.3, 1.3, 0.7, 0.7, 0.8, float("nan")]])
        advantage = torch.tensor([[1.0, 1.0, 1.0, -1.0, -1.0, 1.0, 0.0, 1.0]])
        classes = clip_classes(ratio, advantage, 0.2, 0.28)
        # 1.2 inside [0.8, 1.28]; 1.3 with A>0 is TRL's is_high_clipped; with A<0 kept; 0.7 with A<0 is
        # is_low_clipped; 0.7 with A>0 kept; 0.8 at the band's edge is inside; NaN has no class.
        self.assertEqual(classes.tolist(), [[0, 0, 2, 1, 2, 1, 0, -1]])
        per_sequence = clip_classes(torch.tensor([[1.5, 1.0], [1.5, 0.5]]), torch.tensor([2.0, -2.0]), 0.2)
        self.assertEqual(per_sequence.tolist(), [[2, 0], [1, 2]])

    def test_token_texts_are_decoded_one_id_at_a_time(self):
        class BytePieces(CharTokenizer):
            def convert_ids_to_tokens(self, ids):
                return ["\u0120" + piece for piece in super().convert_ids_to_tokens(ids)]

        self.assertEqual(trace_rows(torch.ones(1, 2), token_ids=[[1, 2]], tokenizer=BytePieces())[0]["tokens"], ["a", "b"])

    def test_bf16_tensors_and_nan_are_written_as_null(self):
        mask = torch.tensor([[1, 1, 0]])
        logp = torch.tensor([[-0.5, float("nan"), -9.0]], dtype=torch.bfloat16)
        rows = trace_rows(mask, token_ids=torch.tensor([[3, 4, PAD]]), per_token={"logprob": logp})
        lines, caught = written(rows)
        self.assertEqual(lines[0]["logprob"], [-0.5, None])
        self.assertEqual(lines[0]["token_ids"], [3, 4])
        self.assertTrue(any("sample 0.logprob" in message for message in caught))

    def test_rows_refuse_a_batch_of_other_size(self):
        with self.assertRaisesRegex(ValueError, "logprob has 1 rows, the mask 2"):
            trace_rows(torch.ones(2, 3), per_token={"logprob": torch.zeros(1, 3)})


@unittest.skipIf(torch is None, "torch is not importable (Debian: apt-get install python3-torch)")
class TrlGrpoLayout(unittest.TestCase):
    """GRPOTrainer's rollout dict: prompts left-padded, completions right-padded, advantages [B]."""

    def rollout(self):
        return {
            "prompt_ids": torch.tensor([[PAD, 1, 2], [3, 1, 2]]),
            "prompt_mask": torch.tensor([[0, 1, 1], [1, 1, 1]]),
            "completion_ids": torch.tensor([[5, 6, 7], [8, PAD, PAD]]),
            "completion_mask": torch.tensor([[1, 1, 1], [1, 0, 0]]),
            "advantages": torch.tensor([0.5, -0.5]),
            "old_per_token_logps": torch.tensor([[-1.0, -2.0, -0.5], [-1.0, 0.0, 0.0]], dtype=torch.bfloat16),
            "ref_per_token_logps": torch.tensor([[-1.0, -1.5, -1.0], [-2.0, 0.0, 0.0]]),
            "num_items_in_batch": torch.tensor(4),
        }

    def test_two_iterations_over_shuffled_micro_batches(self):
        record = GRPORolloutRecord(
            3, self.rollout(), epsilon_low=0.2, epsilon_high=0.28,
            scores=torch.tensor([1.0, 0.0]), reward_columns={"accuracy": torch.tensor([1.0, 0.0])},
        )
        log = math.log
        # Iteration 1: TRL's shuffle put row 1 first, then row 0, one row per micro-batch.
        record.record_loss_pass(torch.tensor([1]), torch.tensor([[-1.0 + log(0.7), 9.0, 9.0]]),
                                torch.tensor([[0.1, 0.0, 0.0]]))
        record.record_loss_pass(torch.tensor([0]), torch.tensor([[-1.0, -2.0 + log(1.3), -0.5 + log(1.1)]]),
                                torch.tensor([[0.2, 0.3, 0.4]]))
        # Iteration 2: both rows in one micro-batch.
        record.record_loss_pass(torch.tensor([0, 1]),
                                torch.tensor([[-1.0 + log(0.5), -2.0, -0.5], [-1.0 + log(1.5), 0.0, 0.0]]))
        lines, _ = written(record.rows(CharTokenizer()), step=3)
        first, second = lines
        self.assertEqual(first["prompt"], "ab")
        self.assertEqual(second["prompt"], "cab")
        self.assertEqual((first["token_ids"], first["tokens"], first["response"]), ([5, 6, 7], ["e", "f", "g"], "efg"))
        self.assertEqual((second["token_ids"], second["response"]), ([8], "h"))
        self.assertEqual(first["logprob"], [-1.0, -2.0, -0.5])
        self.assertEqual(first["advantage"], [0.5, 0.5, 0.5])
        self.assertEqual(second["advantage"], [-0.5])
        self.assertEqual((first["score"], first["reward/accuracy"]), (1.0, 1.0))
        self.assertEqual(first["kl"][0], 0.0)
        self.assertAlmostEqual(first["kl"][1], math.exp(0.5) - 0.5 - 1, places=6)
        self.assertAlmostEqual(first["entropy"][2], 0.4, places=6)
        self.assertEqual(second["entropy"], [0.10000000149011612])
        for got, want in zip(first["ratio"][0], [1.0, 1.3, 1.1]):
            self.assertAlmostEqual(got, want, places=5)
        self.assertAlmostEqual(second["ratio"][1][0], 1.5, places=5)
        # A > 0: 1.3 > 1.28 clipped; A < 0: 0.7 < 0.8 clipped, then 1.5 kept; 0.5 with A > 0 kept.
        self.assertEqual(first["clip_class"], [[0, 2, 0], [1, 0, 0]])
        self.assertEqual(second["clip_class"], [[2], [1]])

    def test_without_old_logps_the_first_pass_is_the_rollout_policy(self):
        rollout = self.rollout()
        del rollout["old_per_token_logps"]
        record = GRPORolloutRecord(1, rollout, epsilon_low=0.2, epsilon_high=0.2)
        record.record_loss_pass(torch.tensor([0, 1]), torch.tensor([[-1.0, -2.0, -3.0], [-4.0, 0.0, 0.0]]))
        first, second = record.rows()
        self.assertEqual(first["logprob"].__class__, list)
        self.assertEqual(first["logprob"], [-1.0, -2.0, -3.0])
        self.assertEqual(first["ratio"], [[1.0, 1.0, 1.0]])
        self.assertEqual(second["clip_class"], [[0]])

    def test_a_loss_pass_of_the_wrong_width_is_refused(self):
        record = GRPORolloutRecord(1, self.rollout(), epsilon_low=0.2, epsilon_high=0.2)
        with self.assertRaisesRegex(ValueError, "do not fit 1 rows of 3 completion tokens"):
            record.record_loss_pass(torch.tensor([0]), torch.zeros(1, 4))

    def test_on_log_metrics_keep_trl_names(self):
        logs = {"loss": 0.5, "kl": torch.tensor(0.01), "clip_ratio/region_mean": 0.1, "step": 3, "note": "x"}
        self.assertEqual(numeric_logs(logs), {"loss": 0.5, "kl": 0.009999999776482582,
                                              "clip_ratio/region_mean": 0.1, "trl/step": 3})

    def test_a_config_field_json_cannot_hold_becomes_its_text(self):
        config = {"torch_dtype": torch.bfloat16, "lr": 1e-6, "names": ("a", "b"), "nested": {"n": None}}
        self.assertEqual(json_config(config), {"torch_dtype": "torch.bfloat16", "lr": 1e-6, "names": ["a", "b"],
                                               "nested": {"n": None}})


@unittest.skipIf(torch is None, "torch is not importable (Debian: apt-get install python3-torch)")
class VerlLayout(unittest.TestCase):
    def test_response_only_tensors_with_response_mask(self):
        batch = {
            "prompts": torch.tensor([[PAD, 1, 2], [3, 4, 5]]),
            "responses": torch.tensor([[6, 7, PAD], [8, 9, 10]]),
            "attention_mask": torch.tensor([[0, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]]),
            "old_log_probs": torch.tensor([[-1.0, -2.0, 0.0], [-0.5, -0.25, -3.0]]),
            "ref_log_prob": torch.tensor([[-1.5, -2.0, 0.0], [-0.5, -1.25, -1.0]]),
            "values": torch.tensor([[0.1, 0.2, 0.0], [0.3, 0.4, 0.5]]),
            "token_level_scores": torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 0.5]]),
            "token_level_rewards": torch.tensor([[-0.05, 1.0, 0.0], [0.0, -0.1, 0.7]]),
            "advantages": torch.tensor([[0.9, 0.8, 0.0], [-0.1, -0.2, -0.3]]),
            "returns": torch.tensor([[1.0, 1.0, 0.0], [0.6, 0.6, 0.7]]),
        }
        entropys = torch.tensor([[2.0, 1.5, 9.0], [0.5, 0.25, 0.125]], dtype=torch.bfloat16)
        rows = verl_trace_rows(batch, entropys=entropys, kl_estimator=verl_kl_estimator("low_var_kl"),
                               tokenizer=CharTokenizer())
        lines, _ = written(rows, step=7)
        first, second = lines
        self.assertEqual((first["prompt"], first["response"], first["tokens"]), ("ab", "fg", ["f", "g"]))
        self.assertEqual(second["token_ids"], [8, 9, 10])
        self.assertEqual(first["score"], 1.0)
        self.assertEqual(first["reward"], [-0.05000000074505806, 1.0])
        self.assertEqual(first["entropy"], [2.0, 1.5])
        self.assertEqual(second["return"], [0.6000000238418579, 0.6000000238418579, 0.699999988079071])
        self.assertAlmostEqual(first["kl"][0], math.exp(-0.5) + 0.5 - 1, places=6)
        self.assertAlmostEqual(second["kl"][2], math.exp(2.0) - 2.0 - 1, places=5)

    def test_kl_penalty_names(self):
        self.assertEqual([verl_kl_estimator(n) for n in ("kl", "mse", "k3+", "low_var_kl")], ["k1", "k2", "k3", "k3"])
        with self.assertRaisesRegex(ValueError, "'abs'"):
            verl_kl_estimator("abs")


@unittest.skipIf(torch is None, "torch is not importable (Debian: apt-get install python3-torch)")
class OpenRlhfLayout(unittest.TestCase):
    def test_action_mask_over_the_last_tokens_with_a_multi_turn_gap(self):
        # sequences [B, T=6]; per-token tensors [B, A=4] align with sequences[:, -4:].
        experience = {
            "sequences": torch.tensor([[1, 2, 5, 6, 7, 8], [1, 3, 9, 10, PAD, PAD]]),
            "action_mask": torch.tensor([[1, 1, 0, 1], [1, 1, 0, 0]], dtype=torch.bool),
            "action_log_probs": torch.tensor([[-0.1, -0.2, 0.0, -0.4], [-1.0, -2.0, 0.0, 0.0]]),
            "kl": torch.tensor([[0.01, 0.02, 0.0, 0.04], [0.1, 0.2, 0.0, 0.0]]),
            "values": None,
            "rewards": torch.tensor([1.0, -1.0]),
            "advantages": torch.tensor([[0.5, 0.5, 0.0, 0.5], [-0.5, -0.5, 0.0, 0.0]]),
            "returns": torch.tensor([[1.0, 1.0, 0.0, 1.0], [-1.0, -1.0, 0.0, 0.0]]),
            "prompts": ["p0", "p1"],
        }
        lines, _ = written(openrlhf_trace_rows(experience, tokenizer=CharTokenizer()))
        first, second = lines
        self.assertEqual((first["prompt"], first["token_ids"], first["response"]), ("p0", [5, 6, 8], "efh"))
        self.assertEqual(first["logprob"], [-0.10000000149011612, -0.20000000298023224, -0.4000000059604645])
        self.assertEqual(second["token_ids"], [9, 10])
        self.assertEqual(second["kl"], [0.10000000149011612, 0.20000000298023224])
        self.assertEqual((first["score"], second["advantage"]), (1.0, [-0.5, -0.5]))
        self.assertNotIn("value", first)


if __name__ == "__main__":
    unittest.main()
