"""The training losses a spec may name (`loss:`), used by `archviz train-smoke`. No imports,
so the CLI can offer them without loading the compiler.

Soft Dice comes in two published forms, named (p: softmax probabilities, g: one-hot
targets, per class, then averaged over classes; ε = 1 smooths an empty class):

  dice_vnet   1 − (2·Σ p·g + ε) / (Σ p² + Σ g² + ε)   Milletari, Navab & Ahmadi 2016 (V-Net), eq. 1;
                                                       the exam's formula
  dice_plain  1 − (2·Σ p·g + ε) / (Σ p + Σ g + ε)     the Sørensen–Dice coefficient on soft masks

`dice` is `dice_vnet`, the form of the paper it is named after. The two agree on hard 0/1
masks (p² = p) and differ on soft ones (`archviz eval dice` shows both, step by step)."""
DICE_FORMS = {"dice_vnet": "1 − (2·Σ p·g + 1) / (Σ p² + Σ g² + 1), V-Net (Milletari et al. 2016)",
              "dice_plain": "1 − (2·Σ p·g + 1) / (Σ p + Σ g + 1), plain soft Dice"}
ALIASES = {"dice": "dice_vnet"}
LOSSES = ("cross_entropy", "dice", "dice_vnet", "dice_plain", "cross_entropy+dice", "cross_entropy+dice_vnet",
          "cross_entropy+dice_plain")


def resolve(name: str) -> str:
    """The loss with its Dice form named: `cross_entropy+dice` → `cross_entropy+dice_vnet`."""
    return "+".join(ALIASES.get(p, p) for p in name.split("+"))


def describe(name: str) -> str:
    parts = []
    for p in resolve(name).split("+"):
        parts.append("cross-entropy (mean over pixels)" if p == "cross_entropy" else f"soft Dice {DICE_FORMS[p]}, "
                     "averaged over classes")
    return " + ".join(parts)
