"""The training losses a spec may name (`loss:`), used by `archviz train-smoke`. No imports,
so the CLI can offer them without loading the compiler."""
LOSSES = ("cross_entropy", "dice", "cross_entropy+dice")
