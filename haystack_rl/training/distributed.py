"""Several training processes (`torchrun`, `accelerate launch`): rank queries and barriers, via accelerate."""

from __future__ import annotations

from typing import Any


def process_state() -> Any:
    """
    The accelerate `PartialState` of this process (a shared singleton).

    On a machine without CUDA it is created with `cpu=True`, so processes started by `torchrun` join one
    gloo process group (the same state `TrainingArguments(use_cpu=True)` later reuses). A single plain
    process gets a state with one process and no process group.
    """
    import torch
    from accelerate import PartialState

    return PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    """True on the process that writes shared outputs (evaluations, plots, the final model): rank 0."""
    return bool(process_state().is_main_process)


def world_size() -> int:
    """Number of training processes."""
    return int(process_state().num_processes)


def wait_for_everyone() -> None:
    """A barrier across the training processes (no-op for a single process)."""
    process_state().wait_for_everyone()
