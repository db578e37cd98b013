"""Static analysis passes over a LayerGraph: shapes → expects → shared weights (ties) → params/MACs/element-wise →
training checks → lint warnings → receptive fields, run by the driver's table (archviz.passes.driver)."""
from archviz.passes.driver import PASSES, analyse, check_expects, cost_pass, run, shapes_pass

__all__ = ["PASSES", "analyse", "check_expects", "cost_pass", "run", "shapes_pass"]
