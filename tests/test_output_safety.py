"""Output safety (issue 10, item 7): no half-written or temporary file, no good output
clobbered by a failed or interrupted run, located messages for every writing error,
special files never replaced, and `report` / `gallery` going on past a failing spec.

The interruption tests run archviz in a subprocess whose file writer is slowed down half
way through a file (it writes half the bytes, then waits), and send it SIGINT or SIGTERM
there: the truth is the old file, byte for byte, and an empty list of temporary files."""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import pytest
from click.testing import CliRunner

from archviz.backends.files import atomic_target, write_atomic
from archviz.cli import main
from archviz.errors import OutputError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = os.path.join(ROOT, "specs")
CONV = os.path.join(SPECS, "exam_conv_pool.yaml")
HAS_DOT = shutil.which("dot") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None
ENV = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))

GOOD = """archviz: 1
name: good
inputs: {x: {shape: [3, 8, 8]}}
nodes:
  - {id: conv, op: conv2d, out: 4, kernel: 3, padding: 1}
  - {id: relu, op: relu}
"""
BROKEN = """archviz: 1
name: broken
inputs: {x: {shape: [3, 8, 8]}}
nodes:
  - {id: conv, op: conv2d, out: 4, kernel: 9}
"""


def run(*args, env=None):
    r = CliRunner().invoke(main, list(args), env=env)
    assert r.exception is None or isinstance(r.exception, SystemExit), (r.output, r.exception)
    return r


def temporaries(folder) -> list:
    return sorted(n for n in os.listdir(folder) if n.startswith(".tmp-"))


# ---------------------------------------------------------------- the writer itself

def test_replaces_a_file_atomically_and_keeps_its_mode(tmp_path):
    p = tmp_path / "out.json"
    p.write_text("old")
    os.chmod(p, 0o640)
    write_atomic(str(p), "new")
    assert p.read_text() == "new"
    assert stat.S_IMODE(os.stat(p).st_mode) == 0o640
    assert temporaries(tmp_path) == []


def test_new_file_gets_the_mode_open_would_give(tmp_path):
    old = os.umask(0o027)
    try:
        write_atomic(str(tmp_path / "a" / "b" / "new.txt"), b"x")   # parents are made
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a" / "b" / "new.txt").st_mode) == 0o640


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path):
    p = tmp_path / "m.onnx"
    p.write_bytes(b"good")
    with pytest.raises(RuntimeError):
        with atomic_target(str(p)) as tmp:
            with open(tmp, "wb") as f:
                f.write(b"half")
            raise RuntimeError("the exporter failed")
    assert p.read_bytes() == b"good" and temporaries(tmp_path) == []


def test_an_io_error_of_the_writer_is_located(tmp_path):
    """torch.onnx.export failing to write (a full disk) is an OutputError naming the path."""
    p = tmp_path / "m.onnx"
    with pytest.raises(OutputError, match=f"cannot write '{p}': No space left on device"):
        with atomic_target(str(p)):
            raise OSError(28, "No space left on device")
    assert temporaries(tmp_path) == [] and not p.exists()


def test_symlink_is_followed_and_stays_a_link(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_atomic(str(link), "new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new"
    # a dangling link: its target is created
    dangling = tmp_path / "dangling.json"
    dangling.symlink_to(tmp_path / "sub" / "made.json")
    write_atomic(str(dangling), "x")
    assert dangling.is_symlink() and (tmp_path / "sub" / "made.json").read_text() == "x"


def test_fifo_is_written_through_not_replaced(tmp_path):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    write_atomic(str(fifo), "through the pipe")
    reader.join(10)
    assert got == [b"through the pipe"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_character_device_is_written_through_not_replaced(tmp_path):
    """A private copy of /dev/null (major 1, minor 3): the system's node is never at risk."""
    dev = tmp_path / "null"
    try:
        os.mknod(dev, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as e:
        pytest.skip(f"cannot make a device node here: {e}")
    write_atomic(str(dev), "discarded")
    assert stat.S_ISCHR(os.lstat(dev).st_mode) and os.lstat(dev).st_rdev == os.makedev(1, 3)
    assert temporaries(tmp_path) == []


def test_a_link_to_a_device_writes_through(tmp_path):
    """`-o` onto a symlink to a device node (as /dev/stdout is one) never replaces either."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    link = tmp_path / "link.txt"
    link.symlink_to(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(open(fifo, "rb").read()), daemon=True)
    reader.start()
    write_atomic(str(link), "abc")
    reader.join(10)
    assert got == [b"abc"] and link.is_symlink() and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_dev_stdout_writes_to_the_open_descriptor(tmp_path):
    """`-o /dev/stdout >> log` appends to log, as the shell set descriptor 1 up (a reopen of
    /proc/self/fd/1 would start at offset 0 and overwrite the log)."""
    log = tmp_path / "log.txt"
    log.write_text("before\n")
    code = "from archviz.backends.files import write_atomic; write_atomic('/dev/stdout', 'after\\n')"
    with open(log, "ab") as f:
        subprocess.run([sys.executable, "-c", code], stdout=f, env=ENV, check=True, timeout=60)
    assert log.read_text() == "before\nafter\n"


def test_block_device_socket_and_folder_are_refused(tmp_path):
    sock_path = str(tmp_path / "s.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(sock_path)
    try:
        with pytest.raises(OutputError, match="socket"):
            write_atomic(sock_path, "x")
    finally:
        s.close()
    with pytest.raises(OutputError, match="is a folder"):
        write_atomic(str(tmp_path), "x")
    blk = tmp_path / "disk"
    try:
        os.mknod(blk, stat.S_IFBLK | 0o600, os.makedev(7, 250))
    except (PermissionError, OSError):
        return
    with pytest.raises(OutputError, match="block device") as e:
        write_atomic(str(blk), "x")
    assert e.value.code == "E0802" and stat.S_ISBLK(os.lstat(blk).st_mode)


# ---------------------------------------------------------------- located messages

def _no_traceback(r):
    assert "Traceback" not in r.output and not isinstance(r.exception, (OSError, TypeError)), r.output


def test_parent_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    out = tmp_path / "file" / "x.json"
    r = run("summary", CONV, "-f", "json", "-o", str(out))
    assert r.exit_code == 1 and f"error[E0801]: cannot write '{out}'" in r.output
    assert f"'{tmp_path / 'file'}' is a file, not a folder" in r.output
    _no_traceback(r)


@pytest.mark.skipif(not os.path.isfile("/proc/version"), reason="needs Linux's /proc")
def test_repro_13_proc_version(tmp_path):
    r = run("summary", CONV, "-f", "json", "-o", "/proc/version/x.json")
    assert r.exit_code == 1 and "cannot write '/proc/version/x.json': '/proc/version' is a file, not a folder" \
        in r.output
    _no_traceback(r)


def test_unwritable_folder(tmp_path):
    """As root a mode bit does not stop a write; the immutable attribute (chattr +i) does.
    Skipped where neither can make a folder unwritable."""
    folder = tmp_path / "locked"
    folder.mkdir()
    locked = False
    if os.geteuid() != 0:
        os.chmod(folder, 0o500)
        locked = True
    elif shutil.which("chattr"):
        locked = subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
    if not locked:
        pytest.skip("running as root without chattr +i: no way to make a folder unwritable")
    try:
        r = run("summary", CONV, "-f", "json", "-o", str(folder / "x.json"))
        assert r.exit_code == 1, r.output
        assert f"cannot write '{folder / 'x.json'}'" in r.output and \
            ("Permission denied" in r.output or "Operation not permitted" in r.output)
        _no_traceback(r)
        r = run("draw", CONV, "-o", str(folder / "sub" / "x.dot"))
        assert r.exit_code == 1 and "cannot make the folder" in r.output
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(folder)])
        os.chmod(folder, 0o700)


def test_every_writing_command_reports_a_located_error(tmp_path):
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file"
    cases = [("summary", CONV, "-o", str(bad / "x.txt")),
             ("draw", CONV, "-o", str(bad / "x.dot")),
             ("rf", CONV, "--plot", str(bad / "x.svg")),
             ("report", CONV, "-o", str(bad / "out"), "--no-diagrams")]
    for args in cases:
        r = run(*args)
        assert r.exit_code == 1 and "E0801" in r.output and "is a file, not a folder" in r.output, (args, r.output)
        _no_traceback(r)


def test_output_onto_a_folder_is_a_usage_error(tmp_path):
    r = run("summary", CONV, "-o", str(tmp_path))
    assert r.exit_code == 2 and "is a directory" in r.output


def test_a_failed_render_keeps_the_good_diagram(tmp_path):
    """dot fails (a dot that exits 1): the old picture stays, no temporary file."""
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\necho 'Error: layout failed' >&2\nexit 1\n")
    fake.chmod(0o755)
    out = tmp_path / "d.svg"
    out.write_text("<svg>good</svg>")
    r = run("draw", CONV, "-o", str(out), env={"ARCHVIZ_DOT": str(fake)})
    assert r.exit_code == 1 and "E0511" in r.output
    assert out.read_text() == "<svg>good</svg>" and temporaries(tmp_path) == []


# ---------------------------------------------------------------- report and gallery

def _specs(tmp_path, **texts):
    d = tmp_path / "specs"
    d.mkdir()
    for name, text in texts.items():
        (d / f"{name}.yaml").write_text(text)
    return d


def test_report_goes_on_past_failing_specs_and_removes_their_stale_outputs(tmp_path):
    d = _specs(tmp_path, a=GOOD, b=GOOD, c=GOOD)
    out = tmp_path / "out"
    r = run("report", str(d), "-o", str(out), "--diagrams" if HAS_DOT else "--no-diagrams")
    assert r.exit_code == 0, r.output
    before = set(os.listdir(out))
    assert {"a.json", "b.json", "c.json", "b.explain.txt"} <= before
    (d / "a.yaml").write_text(BROKEN)             # a spec error (exit 1)
    (d / "b.yaml").write_text("archviz: 1\nname: [unclosed\n")
    (out / "notes.md").write_text("mine")         # not an output of any spec: kept
    r = run("report", str(d), "-o", str(out), "--diagrams" if HAS_DOT else "--no-diagrams")
    assert r.exit_code == 1
    assert f"failed: {d / 'a.yaml'}" in r.output and f"failed: {d / 'b.yaml'}" in r.output
    assert "2 spec(s) failed" in r.output and "removed its outputs of an earlier run" in r.output
    after = set(os.listdir(out))
    assert not [n for n in after if n.startswith(("a.", "b."))], after
    assert {"c.json", "c.csv", "c.md", "c.summary.txt", "c.explain.txt", "notes.md"} <= after
    assert json.loads((out / "c.json").read_text())["name"] == "good"
    if HAS_DOT:
        md = (out / "gallery.md").read_text()
        assert "c.svg" in md and "a.svg" not in md and "b.svg" not in md
    assert temporaries(out) == []


def test_report_goes_on_past_an_unexpected_exception(tmp_path, monkeypatch):
    """An exception archviz did not expect (a bug) in one spec: listed as an internal error
    at the end; the specs after it are processed; exit 1."""
    import archviz
    d = _specs(tmp_path, a=GOOD, b=GOOD, c=GOOD)
    real = archviz.load

    def load(path, **kw):
        if os.path.basename(path) == "a.yaml":
            raise RecursionError("maximum recursion depth exceeded")
        return real(path, **kw)

    monkeypatch.setattr(archviz, "load", load)
    out = tmp_path / "out"
    r = run("report", str(d), "-o", str(out), "--no-diagrams")
    assert r.exit_code == 1
    assert "error[E0900]: internal error while processing" in r.output and "RecursionError" in r.output
    assert (out / "b.json").exists() and (out / "c.json").exists() and not (out / "a.json").exists()
    # --traceback: the bug propagates to be seen
    r = CliRunner().invoke(main, ["--traceback", "report", str(d), "-o", str(out), "--no-diagrams"])
    assert isinstance(r.exception, RecursionError)


def test_report_stops_when_the_output_folder_cannot_be_written(tmp_path):
    d = _specs(tmp_path, a=GOOD, b=GOOD)
    (tmp_path / "file").write_text("")
    r = run("report", str(d), "-o", str(tmp_path / "file" / "out"), "--no-diagrams")
    assert r.exit_code == 1 and r.output.count("E0801") == 1 and "stopped at" in r.output


@pytest.mark.skipif(not HAS_DOT, reason="needs Graphviz's dot")
def test_gallery_removes_the_stale_pictures_of_a_failing_spec(tmp_path):
    d = _specs(tmp_path, a=GOOD, b=GOOD)
    out = tmp_path / "out"
    assert run("gallery", str(d), "-o", str(out)).exit_code == 0
    assert (out / "a.svg").exists()
    (d / "a.yaml").write_text(BROKEN)
    r = run("gallery", str(d), "-o", str(out))
    assert r.exit_code == 1 and "failed:" in r.output
    assert not (out / "a.svg").exists() and not (out / "a.png").exists() and (out / "b.svg").exists()
    md = (out / "gallery.md").read_text()
    assert "a.svg" not in md and "b.svg" in md


# ---------------------------------------------------------------- interruption

SLOW_WRITER = r"""
import os, sys, time
import archviz.backends.files as F

def slow(path, data):          # half the bytes, then wait for the signal
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        open(os.environ["ARCHVIZ_TEST_MARKER"], "w").close()
        time.sleep(120)
        f.write(data[len(data) // 2:])

F._write_file = slow
from archviz.cli import main
main(sys.argv[1:], prog_name="archviz")
"""


def _interrupt(tmp_path, args, sig, marker_timeout=90):
    marker = tmp_path / "in-write"
    env = dict(ENV, ARCHVIZ_TEST_MARKER=str(marker))
    p = subprocess.Popen([sys.executable, "-c", SLOW_WRITER, *args], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        t0 = time.monotonic()
        while not marker.exists():
            assert p.poll() is None, p.communicate()
            assert time.monotonic() - t0 < marker_timeout, "the write never started"
            time.sleep(0.02)
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    return p.returncode, out.decode(), err.decode()


def _commands(tmp_path):
    """(args, the output file that is interrupted mid-write)."""
    o = tmp_path / "o"
    o.mkdir()
    cases = [(["summary", CONV, "-f", "json", "-o", str(o / "s.json")], o / "s.json"),
             (["draw", CONV, "-o", str(o / "d.dot")], o / "d.dot"),
             (["rf", CONV, "--plot", str(o / "rf.svg")], o / "rf.svg"),
             (["report", CONV, "-o", str(o), "--no-diagrams"], o / "exam_conv_pool.json")]
    if HAS_DOT:
        cases.append((["gallery", CONV, "-o", str(o)], o / "exam_conv_pool.svg"))
    if HAS_TORCH:
        cases.append((["export", CONV, "-o", str(o / "m.py")], o / "m.py"))
    return cases


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_an_interrupted_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, sig):
    for args, target in _commands(tmp_path):
        target.write_text("the good old output")
        rc, out, err = _interrupt(tmp_path, args, sig)
        assert rc == 128 + sig, (args, rc, err)
        assert "Traceback" not in err and f"interrupted ({signal.Signals(sig).name})" in err, (args, err)
        assert target.read_text() == "the good old output", args
        assert temporaries(target.parent) == [], (args, temporaries(target.parent))
        (tmp_path / "in-write").unlink()


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_sigterm_during_a_real_onnx_export(tmp_path):
    """The reported case: SIGTERM while torch.onnx.export writes left a .tmp-*.onnx."""
    out = tmp_path / "m.onnx"
    out.write_bytes(b"good")
    p = subprocess.Popen([sys.executable, "-m", "archviz", "export", os.path.join(SPECS, "resnet50.yaml"),
                          "-o", str(out)], env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        t0 = time.monotonic()
        while not temporaries(tmp_path):
            assert p.poll() is None, ("the export ended before it could be interrupted", p.communicate())
            assert time.monotonic() - t0 < 120
            time.sleep(0.005)
        p.send_signal(signal.SIGTERM)
        _, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 143 and b"Traceback" not in err, err
    assert out.read_bytes() == b"good" and temporaries(tmp_path) == []


def test_ctrl_c_exits_130_not_the_spec_error_code(tmp_path):
    """In process: a KeyboardInterrupt inside a command is exit 130 and one line."""
    import archviz

    def load(*a, **kw):
        raise KeyboardInterrupt

    mp = pytest.MonkeyPatch()
    mp.setattr(archviz, "_load", load)      # what the CLI calls
    try:
        r = CliRunner().invoke(main, ["summary", CONV])
    finally:
        mp.undo()
    assert r.exit_code == 130 and "interrupted (SIGINT)" in r.output and "Aborted" not in r.output
