"""The pieces both CLIP layouts (open_clip, Hugging Face) share with mvl's: torch keeps
a Linear's weight as [out, in] and a Conv's as [out, in, kh, kw]; Flax keeps [in, out]
and [kh, kw, in, out]. Every map here is a transpose, split or concatenation, so a
conversion there and back is bitwise exact."""

from __future__ import annotations

import numpy as np

from mvl.runtime.errors import UserError


class Reader:
    """A state dict read key by key; what is never read is reported (a layout this
    converter does not know), as is a key it needs that is missing."""

    def __init__(self, state: dict[str, np.ndarray], where: str, ignored=()):
        self.state, self.where = state, where
        self.unread = {k for k in state if not any(k.endswith(s) for s in ignored)}

    def __call__(self, key: str) -> np.ndarray:
        if key not in self.state:
            raise UserError(f"{self.where} has no {key!r}: not a checkpoint of this layout?")
        self.unread.discard(key)
        return np.asarray(self.state[key], np.float32)

    def has(self, key: str) -> bool:
        return key in self.state

    def finish(self):
        if self.unread:
            shown = ", ".join(sorted(self.unread)[:6])
            raise UserError(
                f"{self.where}: {len(self.unread)} entries this converter does not map "
                f"(e.g. {shown}); a different architecture?"
            )


def linear(weight, bias=None) -> dict:
    out = {"kernel": weight.T}
    if bias is not None:
        out["bias"] = bias
    return out


def unlinear(params: dict, prefix: str, bias: bool = True) -> dict:
    out = {f"{prefix}.weight": params["kernel"].T}
    if bias:
        out[f"{prefix}.bias"] = params["bias"]
    return out


def layer_norm(weight, bias) -> dict:
    return {"LayerNorm_0": {"scale": weight, "bias": bias}}


def unlayer_norm(params: dict, prefix: str) -> dict:
    ln = params["LayerNorm_0"]
    return {f"{prefix}.weight": ln["scale"], f"{prefix}.bias": ln["bias"]}


def conv(weight) -> np.ndarray:
    return weight.transpose(2, 3, 1, 0)


def unconv(kernel) -> np.ndarray:
    return kernel.transpose(3, 2, 0, 1)


def vision_embeddings(conv_weight, class_embedding, positions) -> dict:
    """mvl's patch embedding, [CLS] and positions from CLIP's. CLIP adds a position to
    its class token too; mvl's [CLS] has none, so that position is folded into it."""
    width = conv_weight.shape[0]
    return {
        "patch_embed": {"kernel": conv(conv_weight), "bias": np.zeros(width, np.float32)},
        "cls_token": (class_embedding + positions[0])[None, None],
        "pos_embedding": positions[None, 1:],
    }


def unvision_embeddings(image: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(conv weight, class embedding, positions) in CLIP's form: the class token's
    position is zero (folded into it on import), and mvl's patch-embedding bias, which
    CLIP lacks, is folded into the patch positions (both are added to every patch)."""
    bias = image["patch_embed"]["bias"]
    patches = image["pos_embedding"][0]
    if np.any(bias):
        patches = patches + bias
    positions = np.concatenate([np.zeros_like(patches[:1]), patches])
    return unconv(image["patch_embed"]["kernel"]), image["cls_token"][0, 0], positions


def check_shapes(params: dict, expected: dict, where: str):
    """Converted params against the shapes the mvl model for the architecture has."""
    import jax

    from mvl.runtime import checkpoint

    def shapes(tree):
        return {
            jax.tree_util.keystr(p, simple=True, separator="/"): tuple(np.shape(v))
            for p, v in jax.tree_util.tree_leaves_with_path(tree)
        }

    problems = checkpoint.describe_mismatch(shapes(params), shapes(expected))
    if problems:
        raise UserError(f"{where} does not fit --arch: " + "; ".join(problems))
