"""Static analysis passes over a LayerGraph: shapes → expects → params/MACs/element-wise."""
from archviz.passes.driver import analyse, check_expects, cost_pass, shapes_pass

__all__ = ["analyse", "check_expects", "cost_pass", "shapes_pass"]
