"""Writing output files safely.

* A regular file (or a new one) is written to a temporary file beside it, flushed to disk
  and renamed over it: a reader sees the old file or the new one, never half of one, and
  a run that fails or is interrupted (Ctrl-C, SIGTERM) leaves the old file and no
  temporary file.  A file that is replaced keeps its permission bits; a new one gets
  those a plain open() would give (0666 less the umask).  Missing parent folders are made.
* A symbolic link is followed: the file it points to is replaced as above, the link stays.
* A character device or a named pipe (/dev/null, a terminal, a FIFO) is written through,
  as a shell's ``>`` would, and never replaced by a regular file. /dev/stdout,
  /dev/stderr and /dev/fd/N write to that open descriptor (so ``-o /dev/stdout >> log``
  appends, as the shell set it up).
* A folder, a block device (a disk) or a socket is refused.
* Every OS error is an :class:`OutputError` naming the path and the cause, never a
  traceback.
"""
from __future__ import annotations

import os
import re
import stat
import sys
import tempfile
from contextlib import contextmanager

from archviz.codes import E
from archviz.errors import OutputError
from archviz.terminal import deferred

_FD_PATH = re.compile(r"^/(?:dev/(?:std(out|err)|fd/(\d+))|proc/self/fd/(\d+))$")


def _reason(e: OSError) -> str:
    return e.strerror or str(e)


def _fail(path: str, why: str, code: str = E.CANNOT_WRITE, hint: str | None = None) -> OutputError:
    return OutputError(f"cannot write '{path}': {why}", code=code, hint=hint)


def _std_fd(path: str) -> int | None:
    m = _FD_PATH.match(os.path.abspath(path)) if os.name == "posix" else None
    if not m:
        return None
    std, fd, pfd = m.groups()
    return {"out": 1, "err": 2}[std] if std else int(fd or pfd)


def _kind(path: str):
    """(what is at the path after following links, its stat or None)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return "missing", None
    except NotADirectoryError:
        return "missing", None          # a parent is a file: _make_parents says so
    except OSError as e:
        raise _fail(path, _reason(e)) from None
    m = st.st_mode
    if stat.S_ISREG(m):
        return "file", st
    if stat.S_ISDIR(m):
        return "folder", st
    if stat.S_ISCHR(m) or stat.S_ISFIFO(m):
        return "through", st
    what = "a block device" if stat.S_ISBLK(m) else "a socket" if stat.S_ISSOCK(m) else "a special file"
    return what, st


def preflight(path: str) -> None:
    """Refuse, before any work starts, an output path that cannot be written because a
    folder on its way is a file (the message write_atomic would give at the end)."""
    folder = os.path.dirname(os.path.abspath(path))
    probe = folder
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if probe and os.path.exists(probe) and not os.path.isdir(probe):
        raise _fail(path, f"'{probe}' is a file, not a folder")


def _make_parents(shown: str, folder: str) -> None:
    """Make `folder` (and its parents); a located message when a part is a file."""
    probe = folder
    while probe and not os.path.exists(probe):
        parent = os.path.dirname(probe)
        if parent == probe:
            break
        probe = parent
    if probe and not os.path.isdir(probe):
        raise _fail(shown, f"'{probe}' is a file, not a folder")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise _fail(shown, f"cannot make the folder '{folder}': {_reason(e)}") from None


def _umask_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _write_fd(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _write_through(shown: str, real: str, data: bytes) -> None:
    try:
        fd = os.open(real, os.O_WRONLY | getattr(os, "O_NOCTTY", 0))
    except OSError as e:
        raise _fail(shown, _reason(e)) from None
    try:
        _write_fd(fd, data)
    except OSError as e:
        raise _fail(shown, _reason(e)) from None
    finally:
        os.close(fd)


def _write_std(shown: str, fd: int, data: bytes) -> None:
    for s in (sys.stdout, sys.stderr):      # what was printed before comes first
        try:
            s.flush()
        except (AttributeError, OSError, ValueError):
            pass
    try:
        _write_fd(fd, data)
    except OSError as e:
        raise _fail(shown, _reason(e)) from None


def _target(path: str):
    """Where to write: ('fd', n) | ('through', real) | ('atomic', real, mode)."""
    fd = _std_fd(path)
    if fd is not None:
        return "fd", fd
    real = os.path.realpath(path)
    kind, st = _kind(real)
    if kind == "file":
        return "atomic", real, stat.S_IMODE(st.st_mode)
    if kind == "missing":
        return "atomic", real, None
    if kind == "through":
        return "through", real
    if kind == "folder":
        raise _fail(path, "it is a folder", code=E.NOT_A_FILE, hint="give a file name")
    raise _fail(path, f"it is {kind}; archviz writes regular files, character devices and pipes only",
                code=E.NOT_A_FILE)


@contextmanager
def _temporary(shown: str, real: str, mode: int | None):
    """A temporary file beside `real` (same extension); moved over `real` when the body
    finishes, removed in every other case."""
    folder = os.path.dirname(real)
    _make_parents(shown, folder)
    base, ext = os.path.splitext(os.path.basename(real))
    tmp = None
    try:
        with deferred():        # never an untracked temporary file, even on Ctrl-C here
            try:
                fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".tmp-{base}-", suffix=ext)
            except OSError as e:
                raise _fail(shown, _reason(e)) from None
        os.close(fd)
        yield tmp
        try:
            os.chmod(tmp, _umask_mode() if mode is None else mode)   # mkstemp makes 0600
            with deferred():
                os.replace(tmp, real)
                tmp = None
        except OSError as e:
            raise _fail(shown, _reason(e)) from None
    finally:
        _discard(tmp)


def _discard(tmp: str | None) -> None:
    """Remove a temporary file if there is one, signals held back; a failure to remove it
    must not hide the error that is on its way out."""
    if tmp is not None:
        with deferred():
            try:
                os.unlink(tmp)
            except OSError:
                pass


def _write_file(path: str, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())     # on disk before the rename: a crash leaves old or new


def write_atomic(path: str, data: str | bytes) -> None:
    """Write `data` to `path` safely (see the module docstring)."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    t = _target(path)
    if t[0] == "fd":
        return _write_std(path, t[1], data)
    if t[0] == "through":
        return _write_through(path, t[1], data)
    with _temporary(path, t[1], t[2]) as tmp:
        try:
            _write_file(tmp, data)
        except OSError as e:
            raise _fail(path, _reason(e)) from None


@contextmanager
def atomic_target(path: str):
    """For writers that need a file name (torch.onnx.export, torch.export.save): yield a
    temporary path beside the target (same extension) and move it into place on success;
    it is removed on failure or interruption. A device or pipe target gets the bytes
    copied through."""
    t = _target(path)
    if t[0] == "atomic":
        with _temporary(path, t[1], t[2]) as tmp:
            try:
                yield tmp
            except OSError as e:      # the writer's own I/O error (a full disk): located
                raise _fail(path, _reason(e)) from None
        return
    fd, tmp = None, None
    try:
        with deferred():
            fd, tmp = tempfile.mkstemp(prefix=".tmp-archviz-", suffix=os.path.splitext(path)[1])
        os.close(fd)
        try:
            yield tmp
        except OSError as e:
            raise _fail(path, _reason(e)) from None
        with open(tmp, "rb") as f:
            data = f.read()
        if t[0] == "fd":
            _write_std(path, t[1], data)
        else:
            _write_through(path, t[1], data)
    finally:
        _discard(tmp)


def remove_outputs(folder: str, names) -> list[str]:
    """Remove the regular files `names` from `folder` (stale outputs of a spec that now
    fails); links, devices and folders are left alone. Returns the names removed."""
    gone = []
    for name in names:
        p = os.path.join(folder, name)
        try:
            if os.path.isfile(p) and not os.path.islink(p):
                os.unlink(p)
                gone.append(name)
        except OSError as e:
            raise OutputError(f"cannot remove the stale output '{p}': {_reason(e)}", code=E.STALE_OUTPUT) from None
    return gone
