"""mvl's own FLOP count of a train step, independent of XLA's cost model.

The step is traced (`jax.jit(...).trace`) and every matrix product in its jaxpr is
counted from its shapes: a `dot_general` costs 2 x (output elements) x (contracted
size), a convolution 2 x (output elements) x (kernel elements per output feature).
The trace is the whole step as mvl runs it: every encoder pass the enabled objectives
make, the backward pass (and the forward passes remat recomputes), the teacher's
forward pass, microbatch scans (times their length). Elementwise work (softmax,
LayerNorm, the optimizer) is counted separately, one FLOP per output element, since
matrix units do not run it. Shapes in the trace are global, so per-device figures
divide by the device count (every product is split over the mesh).
"""

from __future__ import annotations

import math

import jax
import jax.extend

# Elementwise primitives, one FLOP per output element (as XLA's cost model counts them),
# and reductions, one per input element.
_ELEMENTWISE = {
    "add",
    "sub",
    "mul",
    "div",
    "neg",
    "max",
    "min",
    "abs",
    "exp",
    "exp2",
    "log",
    "log1p",
    "tanh",
    "logistic",
    "erf",
    "rsqrt",
    "sqrt",
    "pow",
    "integer_pow",
    "square",
    "select_n",
    "erf_inv",
    "sign",
    "add_any",
    "clamp",
    "rem",
    "floor",
    "ceil",
    "round",
    "is_finite",
    "eq",
    "ne",
    "ge",
    "gt",
    "le",
    "lt",
    "and",
    "or",
    "not",
    "xor",
}
_REDUCTIONS = {
    "reduce_sum", "reduce_max", "reduce_min", "reduce_and", "reduce_or", "argmax", "argmin",
    "cumsum", "cummax", "cumlogsumexp", "reduce_prod",
}  # fmt: skip


def _size(aval) -> int:
    return math.prod(getattr(aval, "shape", ()) or (1,))


def _dot_flops(eqn) -> int:
    lhs = eqn.invars[0].aval
    (lhs_contract, _), _ = eqn.params["dimension_numbers"]
    contracted = math.prod(lhs.shape[d] for d in lhs_contract)
    return 2 * _size(eqn.outvars[0].aval) * contracted


def _conv_flops(eqn) -> int:
    rhs = eqn.invars[1].aval
    out_feature_dim = eqn.params["dimension_numbers"].rhs_spec[0]
    per_output = _size(rhs) // rhs.shape[out_feature_dim]
    return 2 * _size(eqn.outvars[0].aval) * per_output


# cuDNN's fused attention (model.attention=cudnn) is one opaque primitive per pass:
# its matmuls, counted from the shapes, as the XLA path's dot_generals would be:
# forward Q.K^T and P.V, backward dV, dP, dQ, dK.
_CUDNN_ATTENTION_MATMULS = {
    "dot_product_attention_fwd_wrapper": 2,
    "dot_product_attention_bwd_wrapper": 4,
}


def _cudnn_attention_flops(eqn) -> int:
    q, k = eqn.invars[0].aval, eqn.invars[1].aval
    if eqn.params.get("layout") == 1:  # BNTH: [batch, heads, length, head dim]
        (batch, heads, length_q, dim), length_k = q.shape, k.shape[2]
    else:  # BTNH, what jax.nn.dot_product_attention passes
        (batch, length_q, heads, dim), length_k = q.shape, k.shape[1]
    one = 2 * batch * heads * length_q * length_k * dim
    return _CUDNN_ATTENTION_MATMULS[eqn.primitive.name] * one


def _sub_jaxprs(eqn):
    for value in eqn.params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, jax.extend.core.ClosedJaxpr):
                yield item.jaxpr
            elif isinstance(item, jax.extend.core.Jaxpr):
                yield item


def count(jaxpr) -> tuple[int, int]:
    """(matmul FLOPs, elementwise FLOPs) of a jaxpr, nested jaxprs included."""
    matmul = elementwise = 0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "dot_general":
            matmul += _dot_flops(eqn)
        elif name == "conv_general_dilated":
            matmul += _conv_flops(eqn)
        elif name in _ELEMENTWISE:
            elementwise += sum(_size(v.aval) for v in eqn.outvars)
        elif name in _REDUCTIONS:
            elementwise += _size(eqn.invars[0].aval)
        elif name in _CUDNN_ATTENTION_MATMULS:
            matmul += _cudnn_attention_flops(eqn)
        elif name == "pallas_call":  # a kernel (splash attention): its body once per tile
            m, e = count(eqn.params["jaxpr"])
            tiles = math.prod(eqn.params["grid_mapping"].grid)
            matmul, elementwise = matmul + tiles * m, elementwise + tiles * e
        elif name == "shard_map":  # the body's shapes are one device's: once per device
            axes = eqn.params.get("newly_manual_axes") or eqn.params["mesh"].axis_names
            devices = math.prod(eqn.params["mesh"].shape[axis] for axis in axes)
            m, e = count(eqn.params["jaxpr"])
            matmul, elementwise = matmul + devices * m, elementwise + devices * e
        elif name == "cond":  # one branch runs: the dearest
            branches = [count(b.jaxpr) for b in eqn.params["branches"]]
            best = max(branches, key=sum)
            matmul, elementwise = matmul + best[0], elementwise + best[1]
        else:
            times = eqn.params.get("length", 1) if name == "scan" else 1
            for sub in _sub_jaxprs(eqn):
                m, e = count(sub)
                matmul, elementwise = matmul + times * m, elementwise + times * e
    return matmul, elementwise


def step_flops(traced, num_devices: int) -> dict:
    """FLOPs of one step from a `jax.jit(...).trace(...)` result: global and per device."""
    matmul, elementwise = count(traced.jaxpr.jaxpr)
    total = matmul + elementwise
    return {
        "global": float(total),
        "per_device": total / num_devices,
        "matmul_global": float(matmul),
        "elementwise_global": float(elementwise),
    }
