"""The torch backend: lowering to torch.fx, verification, export, benchmarks.
torch is imported here only (never by the core)."""
