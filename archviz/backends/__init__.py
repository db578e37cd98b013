"""Backends read an analysed model: reports, explanations, diagrams, torch lowering."""
