"""Empty containers many nodes share, read like {} and [] but refusing a write.

A pass that gives every node an entry most nodes leave empty (the tensors a layer shares,
the warnings of its receptive field) puts one of these there, and gives a node its own dict
or list before writing into it: two empty dicts and a list a layer were 20 MB at 100,000
layers (issue 17). A write into the shared one is a bug, and raises. Pickled or copied, each
is the same shared one again (a plain copy would be one writable dict shared by every
node of the copy)."""
from __future__ import annotations


def _refuse(self, *a, **k):
    raise TypeError(f"a shared empty {type(self).__mro__[1].__name__}: give the node its own before writing")


def _empty_dict() -> "EmptyDict":
    return EMPTY_DICT


def _empty_list() -> "EmptyList":
    return EMPTY_LIST


def _itself(self, memo=None):
    return self


class EmptyDict(dict):
    __slots__ = ()
    __setitem__ = __delitem__ = setdefault = update = pop = popitem = clear = __ior__ = _refuse
    __copy__ = __deepcopy__ = _itself

    def __reduce__(self):
        return _empty_dict, ()


class EmptyList(list):
    __slots__ = ()
    append = extend = insert = remove = pop = clear = sort = reverse = __setitem__ = __delitem__ = \
        __iadd__ = __imul__ = _refuse
    __copy__ = __deepcopy__ = _itself

    def __reduce__(self):
        return _empty_list, ()


EMPTY_DICT = EmptyDict()
EMPTY_LIST = EmptyList()
