"""Run archviz commands on fuzz cases, each in a forked child, and classify what happened.

Each command runs in a child forked from this (already warm) process: the CLI is called
in-process exactly as the ``archviz`` entry point calls it (``main.main(args,
standalone_mode=True)``), so exit codes are the real ones: click's usage errors exit 2,
``clikit.handle_errors`` turns an :class:`~archviz.errors.ArchvizError` into a message
and exit 1, and any other exception escapes ``main.main`` -- that is an uncaught
exception (a traceback for the user), caught here in the child with its traceback.

The child has an address-space limit (``RLIMIT_AS``), its stdin on /dev/null and its
stdout/stderr in files. faulthandler dumps its Python stack on a fatal signal, on SIGUSR1
(sent by the parent at the hang threshold) and on SIGUSR2 (sent by a thread of the child
when its RSS passes the report threshold), so a crash, a hang or a memory blow-up is
located too. (The dump is taken by a signal handler on the running thread: a watchdog
thread dumping another thread, as ``dump_traceback_later`` does, can itself crash.) The
parent kills a child that passes the hard timeout, and reads its peak RSS from
``wait4``. A crashed or hung child costs that one command, never the run.

Linux only (fork, /proc, RLIMIT_AS).
"""
from __future__ import annotations

import json
import os
import re
import resource
import selectors
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import archviz

ARCHVIZ_DIR = os.path.dirname(os.path.abspath(archviz.__file__))
COMMANDS = ("validate", "summary", "explain", "rf", "draw")   # validate first: see skip_after_hang
HANG_S = 5.0              # slower than this is a hang
HARD_TIMEOUT_S = 10.0     # the child is killed then
MEM_LIMIT = 2 << 30       # RLIMIT_AS of the child
MEM_REPORT = 1 << 30      # a peak RSS over this is reported
FAILURES = ("uncaught", "crash", "hang", "memory", "silent", "exit", "traceback", "disclosure", "badoutput")
SENTINEL_MARK = "FUZZ-SENTINEL-0d1b5e"
_LOCATED = re.compile(r"^\S.*:\d+:\d+: error\[E\d+\]", re.M)
_CODE = re.compile(r"error\[(E\d+)\]")
_FH_FRAME = re.compile(r'^\s+File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<func>\S+)', re.M)


def warm() -> None:
    """Import what the commands import lazily (not torch), once, before forking: each child
    then starts warm, and its time and memory are those of the command."""
    import importlib
    import pkgutil
    import archviz.cli  # noqa: F401
    for m in pkgutil.walk_packages(archviz.__path__, "archviz."):
        if ".torch" in m.name or m.name == "archviz.__main__":
            continue
        try:
            importlib.import_module(m.name)
        except Exception:  # noqa: BLE001 - a module with an optional dependency
            pass
    for name in ("rich.console", "rich.table", "rich.text", "fractions", "decimal", "difflib", "json", "ast",
                 "faulthandler", "traceback", "threading"):
        importlib.import_module(name)


def argv_for(cmd: str, spec: str, outdir: str, options=()) -> list[str]:
    if cmd == "summary":
        return ["summary", spec, "-f", "json", *options]
    if cmd == "draw":
        return ["draw", spec, "-o", os.path.join(outdir, "out.dot"), *options]
    return [cmd, spec, *options]


@dataclass
class Result:
    cmd: str
    argv: list
    status: str = "ok"               # ok | error | usage | one of FAILURES
    flags: list = field(default_factory=list)   # every failure kind seen (status is the first)
    exit: int | None = None
    seconds: float = 0.0
    peak_rss: int = 0
    signal: int | None = None
    exc_type: str | None = None
    exc_msg: str | None = None
    frame: str | None = None         # innermost archviz frame: archviz/spec/expr.py:v_Name
    line: int | None = None
    tb: str | None = None            # the last frames of the traceback (or of a faulthandler dump)
    stderr_head: str = ""
    error_code: str | None = None    # E-code of the first error printed
    located: bool | None = None      # exit 1: does the first error carry file:line:col?

    @property
    def failed(self) -> bool:
        return self.status in FAILURES

    def key(self) -> str:
        """The failure class: what failed, and where (type + innermost archviz frame)."""
        if self.status == "uncaught":
            return f"uncaught {self.exc_type} at {self.frame or '?'}"
        if self.status in ("hang", "memory", "crash"):
            # where a run was when the watchdog looked is one moment of a long loop: group
            # by module (the function is in the record)
            what = self.status + (f" SIG{signal.Signals(self.signal).name[3:]}"
                                  if self.status == "crash" and self.signal else "")
            extra = f" {self.exc_type}" if self.exc_type else ""
            where = (self.frame or "?").split(":")[0]
            return f"{what}{extra} in {where}"
        if self.status == "exit":
            return f"exit {self.exit} in {self.cmd}"
        return f"{self.status} in {self.cmd}"

    def to_json(self) -> dict:
        return asdict(self)


# --------------------------------------------------------------------------------------
# the child
# --------------------------------------------------------------------------------------
def _innermost(tb_frames) -> tuple[str | None, int | None]:
    """(archviz-relative 'path:function', line) of the innermost archviz frame, else of the
    innermost frame at all."""
    last = None
    for filename, lineno, func in tb_frames:
        f = os.path.abspath(filename)
        if f.startswith(ARCHVIZ_DIR + os.sep):
            last = ("archviz/" + os.path.relpath(f, ARCHVIZ_DIR).replace(os.sep, "/") + ":" + func, lineno)
    if last is None and tb_frames:
        filename, lineno, func = tb_frames[-1]
        last = (os.path.basename(filename) + ":" + func, lineno)
    return last or (None, None)


def _frames_of_dump(text: str):
    """Frames of a faulthandler dump, innermost last: of the thread that runs archviz (the
    crashing "Current thread" first), never of the runner's own memory watcher."""
    blocks = re.split(r"\n(?=(?:Current thread|Thread) 0x)", text)
    blocks.sort(key=lambda b: not b.lstrip().startswith("Current thread"))
    fallback = []
    for b in blocks:
        frames = [(m["file"], int(m["line"]), m["func"]) for m in _FH_FRAME.finditer(b)]
        frames.reverse()   # faulthandler prints the most recent call first
        if not frames or all(os.path.abspath(f) == os.path.abspath(__file__) for f, _, _ in frames):
            continue
        if any(os.path.abspath(f).startswith(ARCHVIZ_DIR + os.sep) for f, _, _ in frames):
            return frames
        fallback = fallback or frames
    return fallback


def _watch_memory(limit: int) -> None:
    """A thread that signals the process (SIGUSR2: faulthandler dumps the main thread's
    stack) when its RSS passes `limit`. Dumping is done by the signal handler on the main
    thread itself: dumping a running thread from another one is unsafe (it can crash)."""
    import threading

    def run():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1, signal.SIGUSR2})
        page = os.sysconf("SC_PAGE_SIZE")
        while True:
            try:
                with open("/proc/self/statm") as f:
                    rss = int(f.read().split()[1]) * page
            except OSError:  # pragma: no cover
                return
            if rss > limit:
                os.kill(os.getpid(), signal.SIGUSR2)
                return
            time.sleep(0.02)

    threading.Thread(target=run, daemon=True).start()


def _child(argv: list, outdir: str, wfd: int, mem_limit: int, mem_report: int, encoding: str) -> None:
    import faulthandler
    import io
    import traceback
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # stack dumps: on a fatal signal; on SIGUSR1 (the parent, at the hang threshold); on
    # SIGUSR2 (the memory watcher)
    dumps = {name: open(os.path.join(outdir, name), "w") for name in ("fault", "hangdump", "memdump")}
    faulthandler.enable(file=dumps["fault"], all_threads=False)
    faulthandler.register(signal.SIGUSR1, file=dumps["hangdump"], all_threads=False)
    faulthandler.register(signal.SIGUSR2, file=dumps["memdump"], all_threads=False)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    out = os.open(os.path.join(outdir, "stdout"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    err = os.open(os.path.join(outdir, "stderr"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(out, 1)
    os.dup2(err, 2)
    sys.stdin = io.TextIOWrapper(open(0, "rb", closefd=False), encoding=encoding)
    sys.stdout = io.TextIOWrapper(open(1, "wb", closefd=False), encoding=encoding, errors="strict")
    sys.stderr = io.TextIOWrapper(open(2, "wb", closefd=False), encoding=encoding, errors="backslashreplace",
                                  line_buffering=True)
    if mem_limit:
        resource.setrlimit(resource.RLIMIT_AS, (mem_limit, mem_limit))
    _watch_memory(mem_report)
    res: dict = {}
    from archviz.cli import main
    t0 = time.perf_counter()
    try:
        main.main(args=argv, prog_name="archviz", standalone_mode=True)
        res["exit"] = 0
    except SystemExit as e:
        c = e.code
        res["exit"] = 0 if c is None else c if isinstance(c, int) else 1
        if not isinstance(c, (int, type(None))):
            print(c, file=sys.stderr)       # what the interpreter would print
    except BaseException as e:  # noqa: BLE001 - anything else escaped the CLI's handling
        res["seconds"] = time.perf_counter() - t0
        try:
            frames = [(f.filename, f.lineno, f.name) for f in traceback.extract_tb(e.__traceback__)]
            res["exc_type"] = type(e).__name__
            res["exc_msg"] = str(e)[:500]
            res["frame"], res["line"] = _innermost(frames)
            res["tb"] = "".join(traceback.format_list(traceback.extract_tb(e.__traceback__)[-12:]))[-6000:]
        except BaseException as e2:  # noqa: BLE001 - a MemoryError while formatting
            res["exc_type"] = type(e).__name__
            res["exc_msg"] = f"(could not format: {type(e2).__name__})"
    res.setdefault("seconds", time.perf_counter() - t0)
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException as e:  # noqa: BLE001 - the output itself failed (encoding)
        res.setdefault("exc_type", type(e).__name__)
        res.setdefault("exc_msg", f"while flushing output: {e}"[:500])
    os.write(wfd, json.dumps(res).encode())
    os._exit(0)


# --------------------------------------------------------------------------------------
# the parent
# --------------------------------------------------------------------------------------
@dataclass
class Limits:
    hang_s: float = HANG_S
    timeout_s: float = HARD_TIMEOUT_S
    mem_limit: int = MEM_LIMIT
    mem_report: int = MEM_REPORT
    encoding: str = "utf-8"


class Running:
    def __init__(self, cmd, argv, outdir, limits: Limits, tag=None):
        self.cmd, self.argv, self.outdir, self.limits, self.tag = cmd, argv, outdir, limits, tag
        os.makedirs(outdir, exist_ok=True)
        r, w = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            try:
                os.close(r)
                _child(argv, outdir, w, limits.mem_limit, limits.mem_report, limits.encoding)
            finally:
                os._exit(70)
        os.close(w)
        self.pid, self.fd = pid, r
        self.t0 = time.monotonic()
        self.deadline = self.t0 + limits.timeout_s
        self.hang_at = self.t0 + limits.hang_s
        self.poked = False
        self.buf = b""
        self.killed = False

    def wake_at(self) -> float:
        """When the parent must look at this child next (monotonic)."""
        return self.deadline if self.poked else min(self.hang_at, self.deadline)

    def on_time(self, now: float) -> bool:
        """Past the hang threshold: ask for a stack dump; past the deadline: kill. True when
        the child was killed."""
        if not self.poked and now >= self.hang_at:
            self.poked = True
            try:
                os.kill(self.pid, signal.SIGUSR1)
            except ProcessLookupError:  # pragma: no cover
                pass
        if now >= self.deadline:
            self.kill()
            return True
        return False

    def read(self) -> bool:
        """Read what is there; True at end of file."""
        chunk = os.read(self.fd, 1 << 16)
        self.buf += chunk
        return not chunk

    def kill(self):
        self.killed = True
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:  # pragma: no cover
            pass

    def finish(self) -> Result:
        os.close(self.fd)
        _, status, ru = os.wait4(self.pid, 0)
        wall = time.monotonic() - self.t0
        res = Result(self.cmd, self.argv, peak_rss=ru.ru_maxrss * 1024)
        try:
            child = json.loads(self.buf.decode()) if self.buf else {}
        except ValueError:
            child = {}
        for k in ("exit", "exc_type", "exc_msg", "frame", "line", "tb"):
            if k in child:
                setattr(res, k, child[k])
        res.seconds = round(child.get("seconds", wall), 4)
        if os.WIFSIGNALED(status):
            res.signal = os.WTERMSIG(status)
        stderr = _read(os.path.join(self.outdir, "stderr"))
        stdout = _read(os.path.join(self.outdir, "stdout"))
        res.stderr_head = stderr[:300]
        m = _CODE.search(stderr)
        res.error_code = m.group(1) if m else None
        flags = []
        if self.killed:
            flags.append("hang")
            res.seconds = round(wall, 4)
        elif res.signal is not None or not child:
            flags.append("crash")
        if res.exc_type:
            flags.append("uncaught")
        if res.seconds > self.limits.hang_s and "hang" not in flags:
            flags.append("hang")
        if res.peak_rss > self.limits.mem_report:
            flags.append("memory")
        if res.exit == 1 and not stderr.strip():
            flags.append("silent")
        if res.exit not in (None, 0, 1, 2):
            flags.append("exit")
        if "Traceback (most recent call last)" in stderr + stdout and not res.exc_type:
            flags.append("traceback")
        if SENTINEL_MARK in stderr + stdout:
            flags.append("disclosure")
        if res.exit == 0 and self.cmd == "summary" and not res.exc_type:
            try:
                json.loads(stdout)
            except ValueError:
                flags.append("badoutput")
        if not res.frame and flags and flags[0] in ("hang", "crash", "memory"):
            dump = _read(os.path.join(self.outdir, {"crash": "fault", "hang": "hangdump",
                                                    "memory": "memdump"}[flags[0]]))
            if dump:
                res.frame, res.line = _innermost(_frames_of_dump(dump))
                res.tb = dump[-3000:]
        order = {k: i for i, k in enumerate(FAILURES)}
        flags.sort(key=lambda f: order[f])
        res.flags = flags
        if flags:
            res.status = flags[0]
        else:
            res.status = {0: "ok", 1: "error", 2: "usage"}.get(res.exit, "exit")
        if res.exit == 1:
            res.located = bool(_LOCATED.search(stderr))
        return res


def _read(path: str, limit: int = 4 << 20) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""


def run_one(cmd: str, argv: list, outdir: str, limits: Limits | None = None) -> Result:
    """Run one command in a forked child and wait for it."""
    r = Running(cmd, argv, outdir, limits or Limits())
    sel = selectors.DefaultSelector()
    sel.register(r.fd, selectors.EVENT_READ)
    try:
        while True:
            now = time.monotonic()
            if r.on_time(now):
                break
            if sel.select(timeout=max(0.0, r.wake_at() - now)) and r.read():
                break
    finally:
        sel.close()
    return r.finish()


def run_case_files(spec_path: str, outdir: str, commands=COMMANDS, options=(), limits: Limits | None = None,
                   skip_after_hang: bool = True) -> list[Result]:
    """Run each command on one spec (already written out), one child per command, in turn.
    After a hang of `validate` (which only loads the spec, as every command does first),
    the other commands are not run: each would hang the same way in the same load."""
    limits = limits or Limits()
    results = []
    for cmd in commands:
        d = os.path.join(outdir, cmd)
        os.makedirs(d, exist_ok=True)
        res = run_one(cmd, argv_for(cmd, spec_path, d, options), d, limits)
        results.append(res)
        if skip_after_hang and cmd == "validate" and "hang" in res.flags:
            break
    return results


def run_case(case, workdir: str, commands=COMMANDS, limits: Limits | None = None,
             skip_after_hang: bool = True) -> list[Result]:
    """Write a mutate.Case into `workdir` and run the commands on it."""
    from tests.fuzz.mutate import write_case
    spec = write_case(case, Path(workdir) / "spec")
    return run_case_files(spec, str(Path(workdir) / "run"), commands, case.options, limits, skip_after_hang)
