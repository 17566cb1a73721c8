"""Shared `--threads` option of the timing benches (a helper module, not a bench of its own)."""

from __future__ import annotations

import argparse


def add_threads_argument(parser: argparse.ArgumentParser) -> None:
    """`--threads N`: torch intra-op threads, 1 by default (on busy cores, spin-waiting threads distort timings)."""
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (0: torch's default; 1 keeps timings steady on a shared machine)",
    )


def apply_threads(threads: int) -> None:
    """Set torch's intra-op threads (0 leaves torch's default)."""
    if threads > 0:
        import torch

        torch.set_num_threads(threads)
