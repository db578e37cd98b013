"""Shared test helpers: the errors archviz.load raises for a spec, as a flat list."""
from __future__ import annotations

import pytest

import archviz
from archviz.errors import ArchvizError, MultipleErrors


def errors_of(path, **params) -> list:
    """Every error of loading `path` (a MultipleErrors unpacked); fails if it loads."""
    with pytest.raises(ArchvizError) as ei:
        archviz.load(path, **params)
    e = ei.value
    return e.errors if isinstance(e, MultipleErrors) else [e]


def one_error(path, **params) -> ArchvizError:
    """The single error of loading `path`: one mistake, one error."""
    errs = errors_of(path, **params)
    assert len(errs) == 1, [str(e) for e in errs]
    return errs[0]
