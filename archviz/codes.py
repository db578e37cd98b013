"""Every error and warning code archviz gives, in one table, referenced by name.

A code is a stable contract (JSON output, scripts and docs quote it): a value never changes
and is never reused for a new meaning; a name may be improved.  The hundreds say which part
of archviz found the problem: 01 the spec's text and structure, 02 expressions, 03
references, 04 shapes, 05 what is not supported, 06 torch lowering, 07 warnings, 08 output
files, 09 internal errors.  The code ending in 00 of each range is its error class's own.

    raise SpecError("duplicate key 'x'", span, code=E.DUPLICATE_KEY)

`docs/errors.md` is generated from this table (`make docs`; `archviz errors` prints it).
This module imports nothing from archviz, so every layer may use it.
"""
from __future__ import annotations


class Code(str):
    """An error code: the string itself ("E0301", so `err.code == "E0301"` and JSON keep
    working), with `.kind`, the error class that carries it, and `.title`, what it means."""

    def __new__(cls, value: str, kind: str, title: str):
        self = super().__new__(cls, value)
        self.kind = kind
        self.title = title
        return self

    def __reduce__(self):       # pickle and copy give the table's own Code (str's would call Code(value))
        return (_lookup, (str(self),))


class E:
    """The codes by name (the namespace every `code=` refers to)."""

    # -- 00: the classes' own, and several at once
    ERROR = Code("E0000", "ArchvizError", "an error with no more specific code")
    MULTIPLE = Code("E0001", "MultipleErrors", "several problems found in one run (each has its own code)")

    # -- 01: the spec's text and structure
    SPEC = Code("E0100", "SpecError", "a problem in a spec's text or structure")
    YAML_SYNTAX = Code("E0101", "SpecError", "YAML syntax error (or a second document in the file)")
    DUPLICATE_KEY = Code("E0102", "SpecError", "a key given twice in one mapping")
    YAML_ANCHOR = Code("E0103", "SpecError", "a YAML anchor, alias or merge key (not allowed in a spec)")
    YAML_TAG = Code("E0104", "SpecError", "a YAML tag (not allowed in a spec)")
    BAD_KEY = Code("E0105", "SpecError", "a mapping key that is not a plain name")
    UNREADABLE_SPEC = Code("E0106", "SpecError",
                           "the spec file cannot be read: missing, a folder, too large or not UTF-8 text")
    NOT_A_MAPPING = Code("E0107", "SpecError", "a spec file that is not a mapping (archviz:, name:, nodes:, ...)")
    UNKNOWN_KEY = Code("E0108", "SpecError", "an unknown key (at the top, in a block, an output or an input)")
    FORMAT_VERSION = Code("E0109", "SpecError", "an `archviz:` format version this archviz does not read")
    BAD_SECTION = Code("E0110", "SpecError",
                       "a section that is not the list or mapping it must be (or an unknown loss)")
    UNKNOWN_OP = Code("E0111", "SpecError", "an unknown op (a node's `op:` or a key of `defaults:`)")
    UNKNOWN_ATTR = Code("E0112", "SpecError", "an unknown attribute of an op, or param of a block")
    BAD_ATTR = Code("E0113", "SpecError", "an attribute or block param of the wrong type or out of range")
    MISSING_ATTR = Code("E0114", "SpecError", "a required attribute or block param left out")
    BAD_OVERRIDE = Code("E0115", "SpecError", "a `-p NAME=VALUE` override the spec cannot take")
    BLOCK_IS_OP = Code("E0116", "SpecError", "a block with the name of a built-in op")
    BAD_PARAM_DEF = Code("E0117", "SpecError", "a malformed block param definition {type: T, default: V}")
    EMPTY_BLOCK = Code("E0118", "SpecError", "a block without nodes")
    NO_INPUTS = Code("E0119", "SpecError", "a spec without `inputs:`")
    BAD_INPUT_NAME = Code("E0120", "SpecError", "an input name that is not an identifier")
    BAD_INPUT_SHAPE = Code("E0121", "SpecError", "an input shape that is not a list of sizes (without batch)")
    NO_NODES = Code("E0122", "SpecError", "a spec without `nodes:`")
    OUTPUT_WITHOUT_FROM = Code("E0123", "SpecError", "an output without `from: NODE`")
    BAD_EXPECT = Code("E0124", "SpecError", "an `expect:` that is not a shape")
    BAD_REFERENCE = Code("E0125", "SpecError", "a malformed reference or `in:` value")
    NODE_NOT_MAPPING = Code("E0126", "SpecError", "a node that is not a mapping {id: ..., op: ...}")
    BAD_NODE_ID = Code("E0127", "SpecError", "a node id that is missing or not a name")
    DUPLICATE_NODE = Code("E0128", "SpecError", "a node id used twice in one scope (or a block input's name)")
    MISSING_OP = Code("E0129", "SpecError", "a node without `op:`")
    BAD_WHEN = Code("E0130", "SpecError", "a `when:` that is not true or false")
    NO_INPUT = Code("E0131", "SpecError", "a first node without `in:` (there is no previous node)")
    BAD_PORTS = Code("E0132", "SpecError", "inputs that do not match the input ports of the op or block")
    BAD_REPEAT = Code("E0133", "SpecError", "a malformed `repeat:` (its count, var or keys)")
    RECURSIVE_BLOCK = Code("E0134", "SpecError", "a block that calls itself")
    TOO_MANY_LAYERS = Code("E0135", "SpecError", "more layers after expansion than archviz builds")
    BAD_BYPASS = Code("E0140", "SpecError", "a bypassed node that does not say, or cannot, which input it passes")
    BAD_SHARE = Code("E0145", "SpecError", "a malformed `share:` (a node, or a mapping of parameter to node)")
    SHARE_FROZEN = Code("E0146", "SpecError", "a shared parameter frozen in one node and trainable in the other")
    IMPORT = Code("E0150", "ImportSpecError", "a problem with a spec import")
    IMPORT_NOT_FOUND = Code("E0151", "ImportSpecError", "an imported spec file that does not exist")
    IMPORT_CYCLE = Code("E0152", "ImportSpecError", "specs that import each other")
    BAD_IMPORT = Code("E0153", "SpecError", "a malformed import entry {path: FILE, as: NAME}")
    IMPORT_OUTSIDE = Code("E0154", "ImportSpecError", "an import outside the folders a spec may read")
    TOO_DEEP = Code("E0160", "SpecError", "YAML nested deeper than archviz reads")
    EVAL_VALUE = Code("E0170", "SpecError", "a value `archviz eval` cannot use (its shape, range or kind)")
    EVAL_FILE = Code("E0171", "SpecError", "an `archviz eval --input` file that is not a mapping of names to values")
    EVAL_NAME = Code("E0172", "SpecError", "a name the `archviz eval` kind does not take")
    NOTHING_SELECTED = Code("E0173", "SpecError", "a `--only` selection of `archviz compare` that matches no layer of a model")

    # -- 02: `${...}` expressions
    EXPRESSION = Code("E0200", "ExpressionError", "a problem in a `${...}` expression")
    EXPR_SYNTAX = Code("E0201", "ExpressionError", "a malformed or unterminated `${...}` expression")
    BAD_EXPRESSION = Code("E0202", "ExpressionError",
                          "an expression that uses what is not allowed, or cannot be computed on its values")
    UNKNOWN_NAME = Code("E0203", "ExpressionError", "an unknown name in an expression")
    EXPR_TOO_LARGE = Code("E0204", "ExpressionError", "an expression whose value is beyond a size bound")

    # -- 03: references between nodes
    REFERENCE = Code("E0300", "RefError", "a reference that cannot be resolved")
    UNKNOWN_NODE = Code("E0301", "RefError", "a reference to an unknown node")
    UNKNOWN_OUTPUT = Code("E0302", "RefError", "a reference to an output port the node does not have")
    BAD_INDEX = Code("E0303", "RefError", "an index on a node that is not repeated, or beyond its copies")
    DUPLICATE_ID = Code("E0304", "RefError", "two nodes of the graph with one id")
    INPUT_COUNT = Code("E0305", "RefError", "an op or block given the wrong number of inputs")
    CYCLE = Code("E0306", "RefError", "a node that reads its own output (a cycle)")
    SHARE_NO_PARAM = Code("E0320", "RefError", "a `share:` naming a parameter (or a node) that has none to share")
    SHARE_CYCLE = Code("E0321", "RefError", "a node that shares weights with itself, directly or through others")
    SHARE_KIND = Code("E0322", "RefError", "a parameter shared with a buffer, or a buffer with a parameter")

    # -- 04: shapes
    SHAPE = Code("E0400", "ShapeError", "shape inference failed")
    OP_REFUSED = Code("E0401", "ShapeError", "an op's rule refused the node's inputs or attributes")
    SHARE_SHAPE = Code("E0420", "ShapeError", "shared tensors of different shapes")
    EXPECT = Code("E0450", "ExpectError", "an `expect:` shape assertion did not hold")
    EXPECT_MISMATCH = Code("E0451", "ExpectError", "a node's shape differs from its `expect:`")

    # -- 05: not supported
    UNSUPPORTED = Code("E0500", "UnsupportedError", "something archviz does not support")
    MISSING_RULE = Code("E0501", "MissingRuleError", "an op without the rule asked for (never counted as 0)")
    NO_TORCH = Code("E0502", "UnsupportedError", "the command needs PyTorch, which is not installed")
    NO_CUDA = Code("E0503", "UnsupportedError", "a CUDA device asked for where torch sees no GPU")
    NO_GRAPHVIZ = Code("E0510", "GraphvizMissingError", "Graphviz's `dot` program is not installed")
    GRAPHVIZ_FAILED = Code("E0511", "GraphvizFailedError", "Graphviz's `dot` failed on the diagram")
    DIAGRAM_FORMAT = Code("E0512", "UnsupportedError", "a diagram file extension archviz cannot write")
    UNKNOWN_LAYOUT = Code("E0513", "UnsupportedError", "an unknown diagram layout")
    LAYOUT_MISMATCH = Code("E0514", "UnsupportedError", "a graph without the structure the layout draws")
    BAD_UNROLL = Code("E0515", "UnsupportedError", "an `--unroll` outside the steps a diagram shows")
    NO_FSDP = Code("E0520", "UnsupportedError", "torch refuses FSDP here (its reason is quoted)")
    BAD_SIZE_OPTION = Code("E0521", "UnsupportedError", "an `archviz size` option it cannot take (an unknown "
                           "optimizer or strategy, devices that do not divide, a graph tensor parallelism cannot split)")

    # -- 06: torch lowering
    LOWERING = Code("E0600", "LoweringError", "the spec cannot be lowered to torch")
    NO_TORCH_RULE = Code("E0601", "LoweringError", "an op without a torch lowering")
    TORCH_FAILED = Code("E0602", "LoweringError", "torch raised an error running the lowered module")
    TORCH_NAME_CLASH = Code("E0603", "LoweringError", "a node id that shadows an attribute of torch.nn.Module")
    CANNOT_TRAIN = Code("E0604", "LoweringError", "a layer torch cannot train at this batch size")
    ONNX_FAILED = Code("E0605", "LoweringError", "torch's ONNX exporter failed")
    # import from torch (archviz import, archviz.from_torch)
    TORCH_IMPORT = Code("E0610", "TorchImportError", "a torch module cannot be imported as a spec")
    IMPORT_TARGET = Code("E0611", "TorchImportError",
                         "an import TARGET (package.module:callable or file.py:callable) that cannot be found")
    IMPORT_CALL = Code("E0612", "TorchImportError", "the import target raised while building the model")
    IMPORT_INPUTS = Code("E0613", "TorchImportError", "inputs that do not fit the imported model (its forward raised)")
    IMPORT_DATA_FLOW = Code("E0614", "TorchImportError",
                            "control flow or a size that depends on tensor values (it cannot be traced)")
    IMPORT_UNMAPPED = Code("E0615", "TorchImportError", "modules or functions of the model that map to no archviz op")
    IMPORT_CHECK = Code("E0616", "TorchImportError",
                        "the round trip check failed: the imported spec's numbers or outputs differ from torch's")
    RANK_FAILED = Code("E0620", "LoweringError", "a rank of a distributed train-smoke failed (the others were stopped)")
    RANK_TIMEOUT = Code("E0621", "LoweringError", "a distributed train-smoke did not finish within its timeout")
    NOTHING_TO_TRAIN = Code("E0622", "LoweringError", "a spec with no trainable parameter: no loss can go down")
    LOSS_OUTPUT = Code("E0623", "LoweringError", "an output a classification loss cannot be computed on "
                                                 "(no class axis, or one class)")

    # -- 07: warnings (the spec compiles, but probably not to what was meant)
    WARNING = Code("W0700", "SpecWarning", "a warning about the spec")
    UNREACHABLE = Code("W0701", "SpecWarning", "layers whose output reaches no graph output (still counted)")
    UNUSED_INPUT = Code("W0702", "SpecWarning", "an input no output uses")
    UNTRAINABLE = Code("W0703", "SpecWarning", "a layer torch runs at inference but cannot train at these shapes")
    SUSPICIOUS_USE = Code("W0704", "SpecWarning", "a use torch runs but that is almost always a mistake "
                                                 "(linear on a 4-D feature map without flatten)")

    # -- 08: output files
    OUTPUT = Code("E0800", "OutputError", "an output file cannot be written")
    CANNOT_WRITE = Code("E0801", "OutputError", "writing an output failed (the path, then the OS's reason)")
    NOT_A_FILE = Code("E0802", "OutputError", "an output path that is a folder, a socket or another non-file")
    STALE_OUTPUT = Code("E0803", "OutputError", "an earlier run's output of a failing spec cannot be removed")

    # -- 09: archviz itself
    INTERNAL = Code("E0900", "ArchvizError", "an internal error (a bug in archviz: please report it)")


# what each range of codes is about, by its hundreds ("E0301"[1:3] == "03")
RANGES = {
    "00": "General", "01": "The spec's text and structure", "02": "`${...}` expressions",
    "03": "References between nodes", "04": "Shapes", "05": "Not supported", "06": "Torch lowering",
    "07": "Warnings (the spec compiles, but probably not to what was meant)", "08": "Output files",
    "09": "archviz itself",
}


def _table() -> dict:
    out = {}
    for name, code in vars(E).items():
        if isinstance(code, Code):
            if code in out:
                raise ValueError(f"code {code} is named twice: {out[code].name} and {name}")
            code.name = name
            out[str(code)] = code
    return dict(sorted(out.items(), key=lambda kv: kv[0][1:]))     # by number: W07xx among the Es


def _lookup(value: str) -> Code:
    return ALL[value]


ALL: dict = _table()        # "E0301" -> Code, in the order of the numbers
