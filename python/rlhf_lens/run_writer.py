"""RunWriter: a run directory the RLHF Lens extension opens like one of its own runs.

    <run_dir>/run.json                 the run's header (name, status, started_at, stage, config, …)
    <run_dir>/metrics.jsonl            one JSON object per logged step, TRL's metric names, plus step and time
    <run_dir>/traces/step-<n>.jsonl    one JSON object per sample of step n, per-token lists (gzip optional)

Every whole file is written atomically (a temporary file in the same folder, flushed and fsynced,
then os.replace and an fsync of the folder), so a reader never sees half a file and a failed write
leaves the previous file as it was. metrics.jsonl is appended one whole line per write.

Standard library only: numpy arrays and torch tensors are converted with ``.tolist()`` (torch
tensors detached and moved to the CPU first) without this module importing either.
"""
from __future__ import annotations

import datetime as _dt
import gzip
import json
import math
import os
import re
import sys
import tempfile
import time
import warnings
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

__all__ = ["RunWriter", "RUN_STATUSES", "TRACE_FIELDS", "resolve_rank"]

#: run.json's ``status`` values (src/shared/runFiles.ts, runStatusValues).
RUN_STATUSES = ("created", "running", "completed", "failed", "stopped")

#: Per-token fields: one number per response token.
PER_TOKEN_FIELDS = ("logprob", "ref_logprob", "kl", "value", "reward", "advantage", "return", "entropy")
#: Per-epoch, per-token fields: one list per PPO epoch, each one number per response token.
PER_EPOCH_FIELDS = ("ratio", "clip_class")
#: Per-sample scalars.
SCALAR_FIELDS = ("score", "oracle_score")
#: Every field a trace line can have that this module knows (others are written as they are).
TRACE_FIELDS = (
    ("step", "sample", "rank", "prompt", "response", "token_ids", "tokens")
    + SCALAR_FIELDS
    + PER_TOKEN_FIELDS
    + PER_EPOCH_FIELDS
)

#: What run.json says about traces/step-<n>.jsonl (``trace_format``, ``trace_version``).
TRACE_FORMAT = "rlhf-lens-trace-jsonl"
TRACE_VERSION = 1


def resolve_rank(rank: Optional[int] = None) -> int:
    """The process's rank: ``rank`` when given, else the environment's RANK, else LOCAL_RANK, else 0."""
    if rank is not None:
        if isinstance(rank, bool) or not isinstance(rank, int) or rank < 0:
            raise ValueError(f"rank must be a whole number >= 0, got {rank!r}")
        return rank
    for variable in ("RANK", "LOCAL_RANK"):
        text = os.environ.get(variable, "").strip()
        if text:
            try:
                value = int(text)
            except ValueError:
                raise ValueError(f"environment variable {variable} must be a whole number, got {text!r}") from None
            if value < 0:
                raise ValueError(f"environment variable {variable} must be >= 0, got {text!r}")
            return value
    return 0


def _now_iso() -> str:
    """An ISO 8601 UTC time with milliseconds, as JavaScript's Date.toISOString writes it."""
    now = _dt.datetime.now(_dt.timezone.utc)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _sanitize_run_name(name: str) -> str:
    """src/shared/runIds.ts's sanitizeRunName: a safe folder name, at most 120 characters."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", str(name)[:480])
    cleaned = re.sub(r"\.{2,}", ".", cleaned)
    cleaned = re.sub(r"^[.-]+", "", cleaned)[:120]
    cleaned = re.sub(r"[.-]+$", "", cleaned)
    return cleaned or "run"


def _new_run_id(name: str, stage: str) -> str:
    """src/trainer/run/runDirectory.ts's newRunId: ``<name>-<stage>-<yyyymmdd-hhmmss>``."""
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    prefix = _sanitize_run_name(f"{_sanitize_run_name(name)[:80]}-{_sanitize_run_name(stage)[:20]}")
    return f"{prefix}-{stamp}"


def _is_tensor_like(value: Any) -> bool:
    return hasattr(value, "tolist") and not isinstance(value, (str, bytes, list, tuple, dict))


def _plain(value: Any, where: str, non_finite: List[str]) -> Any:
    """``value`` as JSON-ready Python: tensors and arrays as lists, NaN/±inf as None (``where`` recorded).

    Raises TypeError naming ``where`` for anything JSON cannot hold.
    """
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        non_finite.append(where)
        return None
    if _is_tensor_like(value):
        # torch: detach from the graph and copy to the CPU first (bfloat16 and half come back as floats).
        if hasattr(value, "detach") and callable(value.detach):
            value = value.detach()
        if hasattr(value, "cpu") and callable(value.cpu):
            value = value.cpu()
        return _plain(value.tolist(), where, non_finite)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{where}: keys must be strings, got {key!r}")
            out[key] = _plain(item, f"{where}.{key}" if where else key, non_finite)
        return out
    if isinstance(value, (list, tuple)):
        return [_plain(item, where, non_finite) for item in value]
    # numpy scalars without tolist are rare; anything with __float__ / __index__ is a number.
    if hasattr(value, "__index__"):
        return int(value.__index__())
    if hasattr(value, "__float__") and not isinstance(value, (bytes, bytearray)):
        return _plain(float(value), where, non_finite)
    raise TypeError(f"{where or 'value'}: cannot be written as JSON ({type(value).__name__})")


def _warn_non_finite(what: str, fields: Sequence[str]) -> None:
    if fields:
        unique = list(dict.fromkeys(fields))
        shown = ", ".join(unique[:10]) + (f" (and {len(unique) - 10} more)" if len(unique) > 10 else "")
        warnings.warn(f"{what}: NaN or infinite values written as null in {shown}", RuntimeWarning, stacklevel=3)


def _dumps(value: Any) -> str:
    """Strict JSON (never NaN/Infinity), one line."""
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _fsync_dir(folder: str) -> None:
    if os.name != "posix":
        return  # Windows cannot open a folder for fsync; os.replace is atomic there all the same
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems do not support fsync on a folder
    finally:
        os.close(fd)


def atomic_write(path: str, data: bytes) -> None:
    """Writes ``data`` to ``path`` so that readers see the old file or the new one, never a part.

    The temporary file is ``.<name>.<random>.tmp`` in the same folder (same file system, so
    os.replace is atomic), removed again when anything fails.
    """
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        # mkstemp makes the file 0600; give it the mode of the file it replaces, else rw-r--r--.
        try:
            mode = os.stat(path).st_mode & 0o777
        except OSError:
            mode = 0o644
        if hasattr(os, "fchmod"):
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


class RunWriter:
    """A run directory in RLHF Lens's layout, written by rank 0 only unless ``all_ranks``.

    >>> run = RunWriter("runs/my-ppo", name="my-ppo", config={"learning_rate": 1e-6})
    >>> run.log_metrics(1, {"objective/kl": 0.02, "objective/scores": 0.4})
    >>> run.log_step_tokens(1, [{"prompt": "Hi", "response": " there", "token_ids": [7, 8],
    ...                          "logprob": [-1.2, -0.3], "ref_logprob": [-1.1, -0.4]}])
    >>> run.finish()

    With ``all_ranks`` every rank writes: rank 0 the files above, rank r > 0 ``metrics.rank-<r>.jsonl``
    and ``traces/step-<n>.rank-<r>.jsonl`` (run.json stays rank 0's alone). On a rank that does not
    write, every method does nothing.
    """

    def __init__(
        self,
        run_dir: str,
        *,
        name: str,
        stage: str = "ppo",
        config: Optional[Mapping[str, Any]] = None,
        rank: Optional[int] = None,
        all_ranks: bool = False,
        max_steps: Optional[int] = None,
        seed: Optional[int] = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("name must be a non-empty string (run.json requires it)")
        if not isinstance(stage, str) or not stage:
            raise ValueError("stage must be a non-empty string")
        self.run_dir = os.path.abspath(os.fspath(run_dir))
        self.rank = resolve_rank(rank)
        self.all_ranks = bool(all_ranks)
        self.writes = self.rank == 0 or self.all_ranks
        self.last_step: Optional[int] = None
        self._finished = False
        self._metrics_checked = False
        suffix = "" if self.rank == 0 else f".rank-{self.rank}"
        self._suffix = suffix
        self.metrics_path = os.path.join(self.run_dir, f"metrics{suffix}.jsonl")
        self.traces_dir = os.path.join(self.run_dir, "traces")
        self.run_json_path = os.path.join(self.run_dir, "run.json")
        self._run_json: Dict[str, Any] = {}
        if not self.writes:
            return
        os.makedirs(self.traces_dir, exist_ok=True)
        if self.rank != 0:
            return
        fields: Dict[str, Any] = {
            "id": _new_run_id(name, stage),
            "name": name,
            "status": "running",
            "started_at": _now_iso(),
            "stage": stage,
            "stage_index": 0,
            "engine": "external",
            "engine_reason": "written by the rlhf-lens Python package (RunWriter)",
            "trace_format": TRACE_FORMAT,
            "trace_version": TRACE_VERSION,
            "versions": {"rlhf-lens": _package_version(), "python": sys.version.split()[0]},
        }
        if max_steps is not None:
            fields["max_steps"] = _whole(max_steps, "max_steps")
        if seed is not None:
            fields["seed"] = seed
        if config is not None:
            if not isinstance(config, Mapping):
                raise TypeError(f"config must be a mapping, got {type(config).__name__}")
            non_finite: List[str] = []
            fields["config"] = _plain(config, "config", non_finite)
            _warn_non_finite("run.json", non_finite)
        self._write_run_json(fields)

    # run.json -------------------------------------------------------------------------------

    def _write_run_json(self, fields: Dict[str, Any]) -> None:
        data = (json.dumps(fields, ensure_ascii=False, allow_nan=False, indent=2) + "\n").encode("utf-8")
        atomic_write(self.run_json_path, data)
        self._run_json = fields

    def update(self, **fields: Any) -> None:
        """Adds or replaces run.json fields (``summary={...}``, ``step=...``); rank 0 only."""
        if not self.writes or self.rank != 0:
            return
        non_finite: List[str] = []
        patch = _plain(fields, "", non_finite)
        _warn_non_finite("run.json", non_finite)
        if "status" in patch and patch["status"] not in RUN_STATUSES:
            raise ValueError(f"status must be one of {', '.join(RUN_STATUSES)}, got {patch['status']!r}")
        self._write_run_json({**self._run_json, **patch})

    def finish(self, status: str = "completed", error: Optional[str] = None) -> None:
        """Records the end of the run in run.json: ``status``, ``ended_at``, the last step, ``error``."""
        if status not in RUN_STATUSES or status in ("created", "running"):
            raise ValueError(f"status must be completed, failed or stopped, got {status!r}")
        self._finished = True
        if not self.writes or self.rank != 0:
            return
        patch: Dict[str, Any] = {"status": status, "ended_at": _now_iso()}
        if self.last_step is not None:
            patch["step"] = self.last_step
        if error is not None:
            patch["error"] = str(error)
        self._write_run_json({**self._run_json, **patch})

    def __enter__(self) -> "RunWriter":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self._finished:
            return
        if error is None:
            self.finish("completed")
        elif isinstance(error, KeyboardInterrupt):
            self.finish("stopped", error="interrupted")
        else:
            self.finish("failed", error=f"{type(error).__name__}: {error}")

    # metrics.jsonl --------------------------------------------------------------------------

    def log_metrics(self, step: int, metrics: Mapping[str, Any]) -> None:
        """Appends ``{"step": step, "time": <unix seconds>, **metrics}`` as one line of metrics.jsonl.

        Use TRL's names (``objective/kl``, ``objective/scores``, ``policy/clipfrac_avg``, ``loss/policy_avg``,
        ``val/ratio``, ``lr``…). Values are numbers (tensors of one element too); NaN and ±inf are written
        as null with a warning naming the metric.
        """
        step = _whole(step, "step")
        if not isinstance(metrics, Mapping):
            raise TypeError(f"metrics must be a mapping, got {type(metrics).__name__}")
        non_finite: List[str] = []
        row: Dict[str, Any] = {"step": step, "time": time.time()}
        for key, value in metrics.items():
            if not isinstance(key, str):
                raise TypeError(f"metric names must be strings, got {key!r}")
            if key in ("step", "time"):
                raise ValueError(f"metric name {key!r} is reserved (RunWriter writes it)")
            plain = _plain(value, key, non_finite)
            if isinstance(plain, list) and len(plain) == 1:
                plain = plain[0]
            if plain is not None and (isinstance(plain, bool) or not isinstance(plain, (int, float))):
                raise TypeError(f"metric {key!r} must be a number, got {type(value).__name__}")
            row[key] = plain
        line = (_dumps(row) + "\n").encode("utf-8")
        _warn_non_finite(f"metrics.jsonl step {step}", non_finite)
        if not self.writes:
            return
        self._append(self.metrics_path, line)
        self.last_step = step if self.last_step is None else max(self.last_step, step)

    def _append(self, path: str, line: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            if not self._metrics_checked:
                # A line a killed writer cut short would swallow this one: end it first.
                self._metrics_checked = True
                if os.fstat(fd).st_size > 0:
                    with open(path, "rb") as reader:
                        reader.seek(-1, os.SEEK_END)
                        if reader.read(1) != b"\n":
                            line = b"\n" + line
            view = memoryview(line)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)

    # traces/step-<n>.jsonl ------------------------------------------------------------------

    def trace_path(self, step: int, compress: bool = False) -> str:
        return os.path.join(self.traces_dir, f"step-{step}{self._suffix}.jsonl" + (".gz" if compress else ""))

    def log_step_tokens(self, step: int, samples: Iterable[Mapping[str, Any]], *, compress: bool = False) -> Optional[str]:
        """Writes ``traces/step-<step>.jsonl`` (``.jsonl.gz`` with ``compress``): one line per sample.

        A sample is a mapping with any of: ``prompt``, ``response`` (text); ``token_ids`` (ids of the
        response tokens; ``tokens`` given as ids is taken as token_ids); ``tokens`` or ``token_texts``
        (decoded text of each response token); ``score``, ``oracle_score``; per token ``logprob``,
        ``ref_logprob``, ``kl``, ``value``, ``reward``, ``advantage``, ``return``, ``entropy``; per PPO
        epoch and token ``ratio`` and ``clip_class`` (a single flat list is taken as one epoch). Other keys
        are written as they are. Lists, numpy arrays and torch tensors are accepted. Returns the path written
        (None on a rank that does not write). Replaces the step's file when it exists.
        """
        step = _whole(step, "step")
        non_finite: List[str] = []
        lines: List[str] = []
        for index, sample in enumerate(samples):
            row = _trace_row(step, index, self.rank, sample, non_finite)
            lines.append(_dumps(row))
        _warn_non_finite(f"traces step {step}", non_finite)
        data = ("\n".join(lines) + ("\n" if lines else "")).encode("utf-8")
        if not self.writes:
            return None
        if compress:
            data = gzip.compress(data, mtime=0)
        path = self.trace_path(step, compress)
        atomic_write(path, data)
        # One file per step: the other spelling of this step, from an earlier call, would be read twice.
        other = self.trace_path(step, not compress)
        if os.path.exists(other):
            os.unlink(other)
            _fsync_dir(self.traces_dir)
        return path


def _whole(value: Any, what: str) -> int:
    if hasattr(value, "item") and callable(value.item) and not isinstance(value, (int, float)):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number >= 0, got {value!r}")
    return value


def _package_version() -> str:
    from . import __version__

    return __version__


def _is_int_list(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def _trace_row(step: int, index: int, rank: int, sample: Mapping[str, Any], non_finite: List[str]) -> Dict[str, Any]:
    if not isinstance(sample, Mapping):
        raise TypeError(f"sample {index}: must be a mapping of field to value, got {type(sample).__name__}")
    where = f"sample {index}"
    plain: Dict[str, Any] = {}
    for key, value in sample.items():
        if not isinstance(key, str):
            raise TypeError(f"{where}: field names must be strings, got {key!r}")
        plain[key] = _plain(value, f"{where}.{key}", non_finite)

    row: Dict[str, Any] = {"step": step, "sample": plain.pop("sample", index)}
    if rank != 0:
        row["rank"] = rank
    for key in ("prompt", "response"):
        if key in plain:
            if not isinstance(plain[key], str):
                raise TypeError(f"{where}.{key} must be a string, got {type(sample[key]).__name__}")
            row[key] = plain.pop(key)

    # Token ids and token texts, named as the lens's Arrow traces name them: token_ids, tokens.
    ids = plain.pop("token_ids", None)
    texts = plain.pop("token_texts", None)
    tokens = plain.pop("tokens", None)
    if tokens is not None:
        if _is_int_list(tokens) and tokens:
            if ids is not None and ids != tokens:
                raise ValueError(f"{where}: tokens (as ids) and token_ids differ")
            ids = tokens
        elif isinstance(tokens, list) and all(isinstance(t, str) for t in tokens):
            if texts is not None and texts != tokens:
                raise ValueError(f"{where}: tokens (as text) and token_texts differ")
            texts = tokens
        else:
            raise TypeError(f"{where}.tokens must be a list of token ids or of token texts")
    if ids is not None:
        if not _is_int_list(ids):
            raise TypeError(f"{where}.token_ids must be a list of whole numbers")
        row["token_ids"] = ids
    if texts is not None:
        if not (isinstance(texts, list) and all(isinstance(t, str) for t in texts)):
            raise TypeError(f"{where}.token_texts must be a list of strings")
        row["tokens"] = texts
    length: Optional[int] = None
    length_from = ""
    for key in ("token_ids", "tokens"):
        if key in row:
            if length is not None and len(row[key]) != length:
                raise ValueError(f"{where}: {key} has {len(row[key])} entries, {length_from} {length}")
            length, length_from = len(row[key]), key

    for key in SCALAR_FIELDS:
        if key in plain:
            value = plain.pop(key)
            if isinstance(value, list) and len(value) == 1:
                value = value[0]
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise TypeError(f"{where}.{key} must be a number")
            row[key] = value

    for key in PER_TOKEN_FIELDS:
        if key not in plain:
            continue
        values = plain.pop(key)
        if not isinstance(values, list) or any(isinstance(v, (list, bool, str)) for v in values):
            raise TypeError(f"{where}.{key} must be a flat list of numbers, one per response token")
        if length is None:
            length, length_from = len(values), key
        elif len(values) != length:
            raise ValueError(f"{where}.{key} has {len(values)} entries, {length_from} {length}")
        row[key] = values

    for key in PER_EPOCH_FIELDS:
        if key not in plain:
            continue
        values = plain.pop(key)
        if not isinstance(values, list):
            raise TypeError(f"{where}.{key} must be a list (per PPO epoch) of lists (per token)")
        if values and not any(isinstance(v, list) for v in values):
            values = [values]  # one epoch given flat
        for epoch, per_token in enumerate(values):
            if not isinstance(per_token, list) or any(isinstance(v, (list, bool, str)) for v in per_token):
                raise TypeError(f"{where}.{key}[{epoch}] must be a flat list of numbers, one per response token")
            if length is None:
                length, length_from = len(per_token), f"{key}[{epoch}]"
            elif len(per_token) != length:
                raise ValueError(f"{where}.{key}[{epoch}] has {len(per_token)} entries, {length_from} {length}")
            if key == "clip_class" and any(v not in (0, 1, 2) for v in per_token if v is not None):
                raise ValueError(f"{where}.clip_class[{epoch}] values must be 0 (inside), 1 (outside, kept) or 2 (clipped)")
        if key == "clip_class":
            values = [[None if v is None else int(v) for v in per_token] for per_token in values]
        row[key] = values

    row.update(plain)  # extra fields, as they are
    return row
