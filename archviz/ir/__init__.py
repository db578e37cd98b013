from archviz.ir.graph import LayerGraph, Node, Ref, Shape

__all__ = ["LayerGraph", "Node", "Ref", "Shape"]
