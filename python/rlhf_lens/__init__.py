"""Write RLHF runs in the layout the RLHF Lens VS Code extension reads.

Standard library only; numpy arrays and torch tensors are accepted wherever numbers are.
"""
from .run_writer import RUN_STATUSES, TRACE_FIELDS, RunWriter, resolve_rank

__version__ = "0.1.0"

__all__ = ["RunWriter", "RUN_STATUSES", "TRACE_FIELDS", "resolve_rank", "__version__"]
