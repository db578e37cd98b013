"""The DOT text is deterministic: compared with golden files in tests/golden/render/.

Update them after an intended change with

    ARCHVIZ_UPDATE_GOLDEN=1 python -m pytest -q tests/render/test_golden.py

and look at the diff (and at the rendered pictures) before committing.
"""
import os

import pytest

from archviz.backends.render import to_dot

from .conftest import HERE, load

GOLDEN = os.path.join(os.path.dirname(HERE), "golden", "render")
UPDATE = os.environ.get("ARCHVIZ_UPDATE_GOLDEN") == "1"

CASES = [
    ("mini_resnet", "graph", {}),
    ("mini_resnet", "graph", {"expand": True}),
    ("mini_resnet", "graph", {"depth": 1}),
    ("mini_resnet", "residual", {}),
    ("mini_resnet", "residual", {"expand": True, "rankdir": "LR"}),
    ("mini_unet", "unet", {}),
    ("mini_unet", "unet", {"depth": 1}),
    ("mini_unet_pad", "unet", {"depth": 1}),
    ("mini_mlp", "graph", {"shapes": False}),
    ("mini_rnn", "unrolled", {}),
    ("mini_bilstm", "unrolled", {"unroll": 2}),
    ("mini_encdec", "unrolled", {}),
    ("mini_bilstm", "cell", {}),
    ("mini_gru", "cell", {}),
    ("mini_rnn", "cell", {}),
    ("mini_seq2seq", "seq2seq", {}),
    ("mini_encdec", "seq2seq", {}),
    ("mini_bahdanau", "seq2seq", {}),
    ("mini_bahdanau", "unrolled", {}),
]


def _name(spec, layout, kw):
    extra = "".join(f"-{k}{'' if v is True else '_' + str(v)}" for k, v in sorted(kw.items()))
    return f"{spec}.{layout}{extra}.dot"


@pytest.mark.parametrize("spec,layout,kw", CASES, ids=[_name(*c)[:-4] for c in CASES])
def test_golden_dot(spec, layout, kw):
    text = to_dot(load(spec), layout, **kw)
    assert text == to_dot(load(spec), layout, **kw)           # same input, same bytes
    path = os.path.join(GOLDEN, _name(spec, layout, kw))
    if UPDATE or not os.path.exists(path):
        if not UPDATE:
            pytest.fail(f"missing golden file {path}: run with ARCHVIZ_UPDATE_GOLDEN=1")
        os.makedirs(GOLDEN, exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return
    with open(path, encoding="utf-8") as f:
        want = f.read()
    assert text == want, f"DOT text differs from {path} (ARCHVIZ_UPDATE_GOLDEN=1 updates it)"


def test_golden_files_have_no_orphans():
    want = {_name(*c) for c in CASES}
    have = {f for f in os.listdir(GOLDEN) if f.endswith(".dot")} if os.path.isdir(GOLDEN) else set()
    assert have <= want, f"golden files without a case: {sorted(have - want)}"


def test_auto_equals_the_chosen_layout():
    m = load("mini_unet")
    assert to_dot(m, "auto") == to_dot(m, "unet")
