"""Work done once per object: the passes share objects between the layers written alike
(an output shape, an Attrs, a receptive-field list), so a reader that turns each into text
or an answer does it once per object, not once per layer (issue 17)."""
from __future__ import annotations


def by_id(memo: dict, obj, make):
    """make(obj), once per object. `memo` is keyed by id(obj) and keeps obj beside the
    answer, so an id is never read for another object that took it after the first died."""
    got = memo.get(id(obj))
    if got is None or got[0] is not obj:
        got = memo[id(obj)] = (obj, make(obj))
    return got[1]
