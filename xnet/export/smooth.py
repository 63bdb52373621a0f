"""ONNX forms of the smooth activations (xnet/nn/smooth.py) at opset 17, written from xnet's formulas.

Opset 17 has Elu and Softplus but no Gelu (opset 20) and no SiLU, and its Softplus has neither
beta nor threshold: those are built from Erf, Tanh, Sigmoid, Mul, Add, Greater and Where.
"""

from __future__ import annotations

import math

from xnet.export.graph import Graph
from xnet.nn.smooth import _TANH_C, _TANH_K, ELU, GELU, SiLU, Softplus


def _gelu(g: Graph, layer: GELU, x: str, name: str) -> str:
    def mul(a: str, b: str, out: str) -> str:
        return g.node("Mul", [a, b], f"{name}.{out}")

    def const(what: str, value: float) -> str:
        return g.constant(f"{name}.{what}", value)

    if layer.approximate == "tanh":  # 0.5 x (1 + tanh(k (x + c x^3)))
        cx3 = mul(mul(mul(x, x, "x2"), x, "x3"), const("c", _TANH_C), "cx3")
        inner = g.node("Add", [x, cx3], f"{name}.inner")
        t = g.node("Tanh", [mul(inner, const("k", _TANH_K), "k_inner")], f"{name}.tanh")
    else:  # x Phi(x) = 0.5 x (1 + erf(x / sqrt 2))
        t = g.node("Erf", [mul(x, const("inv_sqrt2", 1.0 / math.sqrt(2.0)), "scaled")], f"{name}.erf")
    one_plus = g.node("Add", [t, const("one", 1.0)], f"{name}.one_plus")
    return mul(mul(x, const("half", 0.5), "half_x"), one_plus, "gelu")


def _silu(g: Graph, layer: SiLU, x: str, name: str) -> str:
    return g.node("Mul", [x, g.node("Sigmoid", [x], f"{name}.sigmoid")], f"{name}.silu")


def _elu(g: Graph, layer: ELU, x: str, name: str) -> str:
    # ONNX: x for x >= 0, alpha (exp(x) - 1) below; xnet's x > 0 split gives the same 0 at 0
    return g.node("Elu", [x], f"{name}.elu", alpha=layer.alpha)


def _softplus(g: Graph, layer: Softplus, x: str, name: str) -> str:
    # where(beta x > threshold, x, softplus(beta x) / beta), the multiplications left out when beta is 1
    bx = x if layer.beta == 1 else g.node("Mul", [x, g.constant(f"{name}.beta", layer.beta)], f"{name}.bx")
    soft = g.node("Softplus", [bx], f"{name}.softplus")
    if layer.beta != 1:
        soft = g.node("Div", [soft, g.constant(f"{name}.beta", layer.beta)], f"{name}.soft")
    above = g.node("Greater", [bx, g.constant(f"{name}.threshold", layer.threshold)], f"{name}.above")
    return g.node("Where", [above, x, soft], f"{name}.where")


SMOOTH_LAYERS = {GELU: _gelu, SiLU: _silu, ELU: _elu, Softplus: _softplus}
