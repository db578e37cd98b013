"""An ONNX export that fails to write (a full disk) is the output error naming the file
(E0801), not "torch's ONNX exporter failed"; nothing is left behind."""
from __future__ import annotations

import errno
import os

import pytest

torch = pytest.importorskip("torch")

import archviz                                            # noqa: E402
from archviz.backends.torch.export import export_onnx     # noqa: E402
from archviz.errors import ArchvizError                   # noqa: E402

SPEC = os.path.join(os.path.dirname(__file__), "..", "..", "specs", "exam_conv_pool.yaml")


def test_a_full_disk_during_onnx_export_is_an_output_error(tmp_path, monkeypatch):
    def full(*a, **kw):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(torch.onnx, "export", full)
    out = tmp_path / "m.onnx"
    out.write_bytes(b"good")
    with pytest.raises(ArchvizError) as ei:
        export_onnx(archviz.load(SPEC), str(out))
    e = ei.value
    assert e.code == "E0801" and e.message == f"cannot write '{out}': {os.strerror(errno.ENOSPC)}"
    assert out.read_bytes() == b"good" and sorted(os.listdir(tmp_path)) == ["m.onnx"]
