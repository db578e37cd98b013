"""The command line as a process ends without tearing down its objects
(archviz.clikit.run_and_exit, issue 17), and loses nothing by it: every byte of the
output, the exit status, the exit handlers, the other threads' work."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(code: str, *args, **kw) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": ROOT}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=ROOT, **kw)


def archviz(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archviz", *args], capture_output=True, text=True, timeout=120,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT})


def test_the_whole_output_and_the_status_come_out(tmp_path):
    sys.path.insert(0, os.path.join(ROOT, "tests", "benchmarks"))
    import gen_specs
    path = gen_specs.write("dag", 3000, str(tmp_path / "dag.yaml"))
    p = archviz("summary", path, "-f", "json")
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)          # the last byte came out: the text parses
    assert len(doc["layers"]) == 3000 and doc["layers"][-1]["id"] == "a2999"
    p = archviz("summary", str(tmp_path / "missing.yaml"))
    assert p.returncode == 1 and "E0106" in p.stderr
    p = archviz("summary", path, "--no-such-option")
    assert p.returncode == 2 and "No such option" in p.stderr


GROUP = """
    import atexit, sys, threading, time
    from archviz.clikit import run_and_exit
    def group():
        {body}
    run_and_exit(group)
"""


def test_exit_handlers_run_and_the_status_is_kept(tmp_path):
    mark = tmp_path / "mark"
    p = run(GROUP.format(body=f"atexit.register(lambda: open({str(mark)!r}, 'w').write('ran')); "
                              "print('out', end=''); sys.stderr.write('err'); sys.exit(3)"))
    assert (p.returncode, p.stdout, p.stderr) == (3, "out", "err")
    assert mark.read_text() == "ran"


def test_an_exit_with_a_message_prints_it_and_fails():
    p = run(GROUP.format(body="sys.exit('it went wrong')"))
    assert (p.returncode, p.stderr.strip()) == (1, "it went wrong")


def test_another_thread_is_waited_for(tmp_path):
    """A thread still running (not a daemon): the process ends the usual way, after it."""
    mark = tmp_path / "mark"
    p = run(GROUP.format(body=f"threading.Thread(target=lambda: (time.sleep(0.5), open({str(mark)!r}, 'w')"
                              ".write('done'))).start()"))
    assert p.returncode == 0 and mark.read_text() == "done"


def test_a_closed_pipe_is_not_an_error_report(tmp_path):
    """`archviz summary ... | head -1`: the reader goes away; no traceback."""
    p = subprocess.run(f"{sys.executable} -m archviz summary specs/resnet152.yaml | head -1", shell=True,
                       capture_output=True, text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": ROOT}, timeout=120)
    assert "Traceback" not in p.stderr and "resnet152" in p.stdout
