"""Faults injected into the ranks of a distributed train-smoke (tests/torch/test_distributed.py).
They run in the rank's process, so they live in a module a rank can import by name; each
first writes the rank's pid to ARCHVIZ_TEST_PIDS/rank<r> so the test can check that the
process is gone afterwards (not running, and reaped: a zombie keeps its pid)."""
from __future__ import annotations

import os
import time


class _Hook:
    def __init__(self, pid_dir: str, rank: int):
        self.pid_dir, self.rank = pid_dir, rank

    def note(self, rank: int) -> None:
        with open(os.path.join(self.pid_dir, f"rank{rank}"), "w") as f:
            f.write(str(os.getpid()))


class Raise(_Hook):
    """Rank `rank` raises ValueError once its group is up (the others wait in a collective)."""

    def __call__(self, rank):
        self.note(rank)
        if rank == self.rank:
            raise ValueError("boom on purpose")


class Die(_Hook):
    """Rank `rank` exits with code 3 without a word (as a crash would)."""

    def __call__(self, rank):
        self.note(rank)
        if rank == self.rank:
            os._exit(3)


class Hang(_Hook):
    """Rank `rank` sleeps far past the run's timeout."""

    def __call__(self, rank):
        self.note(rank)
        if rank == self.rank:
            time.sleep(600)


class RefuseFSDP(_Hook):
    """torch's fully_shard refusing, as an older torch refused CPU tensors."""

    def __call__(self, rank):
        self.note(rank)
        import torch.distributed.fsdp as fsdp

        def refuse(*a, **k):
            raise NotImplementedError("FSDP does not support CPU tensors")
        fsdp.fully_shard = refuse
