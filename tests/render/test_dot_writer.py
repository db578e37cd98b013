"""The DOT writer: quoting, HTML labels, stable number text, statement order."""
from archviz.backends.render.dot import Dot, Html, fmt_num, quote


def test_quote_escapes_and_html():
    assert quote('a "b"\\c\nd') == '"a \\"b\\"\\\\c\\nd"'
    assert quote(Html("x<SUB>t</SUB>")) == "<x<SUB>t</SUB>>"
    assert quote(True) == "true"
    assert quote(3) == "3"


def test_html_closing_bracket_survives_graphviz_243():
    # dot 2.43 drops a literal ']' that ends an HTML label
    assert quote(Html("[h; x]")) == "<[h; x&#93;>"


def test_numbers_have_no_float_noise():
    assert fmt_num(0.1 + 0.2) == "0.3"
    assert fmt_num(2.0) == "2"
    assert fmt_num(1.25) == "1.25"


def test_statements_in_order_and_ports():
    d = Dot("g", comment="c */ x", rankdir="TB")
    d.node("a.b", label="A", width=1.9)
    with d.subgraph("cluster_x", label="X"):
        d.node("c")
    d.edge(("a.b", None, "e"), ("c", "m", "w"), weight=0, style=None)
    d.rank_same(["a.b", "c"])
    text = d.source()
    assert text.splitlines()[0] == "/* c * / x */"
    assert '"a.b" [label="A" width=1.9]' in text
    assert '"a.b":e -> "c":"m":w [weight=0]' in text
    assert text.index('subgraph "cluster_x"') < text.index("->")
    assert '{rank=same; "a.b"; "c";}' in text
    assert text.endswith("}\n")
