"""One module per layout family; each exposes ``build(model, opts) -> Dot``."""
