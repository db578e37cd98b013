"""The processes of a distributed train-smoke: start N ranks, relay their progress, collect
their results, and on the first failure report it once and stop the rest.

Each rank talks to the parent over its own one-way pipe (a synchronous send: a rank's error is
in the pipe before the rank exits and its peers see its sockets close).  The parent waits on
the pipes and on the processes' sentinels together, so a rank that dies without a word (a
signal, the out-of-memory killer) is noticed at once, and the whole run has one deadline.
Whatever happens, every process is terminated (SIGTERM, then SIGKILL after a grace period)
and joined: nothing is left running and nothing is left a zombie.
"""
from __future__ import annotations

import os
import signal
import time
from multiprocessing import connection as mpc

from archviz.codes import E
from archviz.errors import LoweringError, UnsupportedError

GRACE_S = 5.0       # a rank's time to exit after SIGTERM, before SIGKILL; the group's timeout past the run's
# imported once by the forkserver, before it forks the ranks (DDP's constructor alone imports
# torch._dynamo: 5 s per rank on a busy 2-core machine)
PRELOAD = ["torch", "torch.distributed", "torch._dynamo", "torch.nn.parallel", "torch.distributed.fsdp",
           "archviz.backends.torch.lower", "archviz.backends.torch.bench", "archviz.backends.torch.distributed"]


def mp_context():
    """forkserver where the platform has it (torch imported once, in the server; each rank is
    a fork of it), spawn elsewhere: never a plain fork of a parent that may run threads."""
    import torch.multiprocessing as mp
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        return ctx
    return mp.get_context("spawn")                # pragma: no cover  (Windows)


def _entry(rank: int, body, job, conn) -> None:
    """A rank's process: run `body(rank, job, send, finish)`; `finish(result)` sends ("done",
    rank, result) and a failure ("error", rank, time, kind, message); then the process exits at
    once, without interpreter teardown (gloo's threads may wait on peers that are gone)."""
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")

        def finish(out):
            out["warnings"] = sorted({f"{w.category.__name__}: {w.message}" for w in caught})
            conn.send(("done", rank, out))
            conn.close()
            os._exit(0)

        try:
            body(rank, job, conn.send, finish)
            raise RuntimeError("the rank ended without a result")
        except BaseException as e:     # noqa: BLE001  (everything is reported, then the process ends)
            kind = getattr(e, "kind", "error")
            message = str(e) if kind != "error" else f"{type(e).__name__}: {first_line(e)}"
            try:
                conn.send(("error", rank, time.time(), kind, message))
                conn.close()
            except OSError:
                pass
            os._exit(1)


def run_ranks(job, body, progress=None) -> dict:
    """Run `body` on `job.nproc` ranks; returns {rank: result}.  Raises the first failure."""
    ctx = mp_context()
    procs, conns = [], {}
    try:
        for rank in range(job.nproc):
            recv, send = ctx.Pipe(duplex=False)
            conns[recv] = rank
            p = ctx.Process(target=_entry, args=(rank, body, job, send), name=f"archviz-rank{rank}", daemon=True)
            try:
                p.start()          # pickles the job for the new process
            except Exception as e:  # noqa: BLE001  (a job that cannot be sent: its reason, not a traceback)
                raise LoweringError(f"could not start rank {rank}: {type(e).__name__}: {first_line(e)}",
                                    code=E.RANK_FAILED) from None
            finally:
                send.close()
            procs.append(p)
        return _collect(procs, conns, job.timeout, progress)
    finally:
        _shutdown(procs)
        for c in conns:
            c.close()


def _collect(procs, conns, timeout, progress) -> dict:
    results, errors = {}, []
    sentinels = {p.sentinel: r for r, p in enumerate(procs)}
    deadline = time.monotonic() + timeout
    live = dict(conns)
    while len(results) < len(procs) and not errors:
        left = deadline - time.monotonic()
        if left <= 0:
            waiting = [r for r in range(len(procs)) if r not in results]
            raise LoweringError(f"the distributed run did not finish within {timeout:g} s: rank(s) "
                                f"{', '.join(map(str, waiting))} still running (stopped)", code=E.RANK_TIMEOUT,
                                hint="a larger --timeout, fewer --steps or a smaller model")
        ready = mpc.wait(list(live) + [s for s, r in sentinels.items() if r not in results], timeout=min(left, 1.0))
        for obj in sorted(ready, key=lambda o: o in sentinels):     # pipes first: a result beats its exit
            if obj in live:
                _read(obj, live, results, errors, progress)
            elif sentinels[obj] not in results:
                rank = sentinels[obj]
                for c in [c for c, r in live.items() if r == rank]:
                    while c in live and c.poll():
                        _read(c, live, results, errors, progress)
                if rank not in results and not any(e[1] == rank for e in errors):
                    errors.append((time.time(), rank, "error", _exit_words(procs[rank])))
    if errors:
        _silent_deaths(procs, results, errors)
        _shutdown(procs)
        for c in list(live):                     # the other ranks' last words, to find the first failure
            while c in live and c.poll():
                _read(c, live, results, errors, progress)
        _raise_first(errors)
    return results


def _read(conn, live, results, errors, progress) -> None:
    try:
        msg = conn.recv()
    except (EOFError, OSError):
        live.pop(conn, None)
        return
    if msg[0] == "step":
        if progress:
            progress(msg[1], msg[2], msg[3])
    elif msg[0] == "done":
        results[msg[1]] = msg[2]
        live.pop(conn, None)
    else:
        errors.append(msg[2:3] + msg[1:2] + msg[3:])      # (time, rank, kind, message)


def _exit_words(p) -> str:
    p.join(GRACE_S)
    code = p.exitcode
    if code is not None and code < 0:
        try:
            return f"the process was killed by {signal.Signals(-code).name}"
        except ValueError:                       # pragma: no cover
            return f"the process was killed by signal {-code}"
    return f"the process exited with code {code} without a word"


# what a rank says when another rank died under it: an echo of that failure, not its cause
_ECHOES = ("Connection reset by peer", "Connection closed by peer", "Connection refused", "gloo/transport")


def _echo(message: str) -> bool:
    return any(w in message for w in _ECHOES)


def _silent_deaths(procs, results, errors) -> None:
    """Where every failure so far is a rank's collective losing its peer, the peer that died
    without a word (before we stop the others) is the cause: record it."""
    if not all(_echo(e[3]) for e in errors):
        return
    end = time.monotonic() + GRACE_S
    for rank, p in enumerate(procs):
        if rank in results or any(e[1] == rank for e in errors):
            continue
        p.join(max(0.0, end - time.monotonic()))
        if p.exitcode not in (None, 0):
            errors.append((time.time(), rank, "error", _exit_words(p)))


def _raise_first(errors) -> None:
    """The first failure, a cause before the echoes it made on the other ranks."""
    t, rank, kind, message = min(errors, key=lambda e: (_echo(e[3]), e[0]))
    others = sorted({r for _, r, _, _ in errors} - {rank})
    notes = [f"rank(s) {', '.join(map(str, others))} failed too, after it"] if others else []
    if "without a word" in message:
        notes.append("a rank that dies before it starts: the program that starts the ranks must be a file "
                     "that runs nothing on import (`if __name__ == \"__main__\":`), as for any multiprocessing "
                     "program; its error, if any, is above on stderr")
    if kind == "fsdp":
        raise UnsupportedError(f"torch refuses FSDP here (torch.distributed.fsdp.fully_shard): {message}",
                               code=E.NO_FSDP, hint="use --strategy ddp", notes=notes)
    raise LoweringError(f"rank {rank} failed: {message}", code=E.RANK_FAILED, notes=notes,
                        hint="the other ranks were stopped; run without --nproc to see the error in one process")


def _shutdown(procs) -> None:
    """SIGTERM to the ranks still running, SIGKILL to those still there after a grace period,
    and every process joined (reaped)."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    end = time.monotonic() + GRACE_S
    for p in procs:
        p.join(max(0.0, end - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(GRACE_S)


def first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else type(e).__name__
