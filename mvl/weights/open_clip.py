"""open_clip's CLIP state dict <-> mvl params (`image`, `text`, projections, logit
scale), in both directions through the same key names, so export then import is exact.

open_clip: `visual.conv1`, `visual.class_embedding`, `visual.positional_embedding`,
`visual.ln_pre`, `visual.transformer.resblocks.N` (`ln_1`, `attn.in_proj_*` holding
query, key and value stacked, `attn.out_proj`, `ln_2`, `mlp.c_fc`, `mlp.c_proj`),
`visual.ln_post`, `visual.proj` [width, embed]; the text tower at the top level
(`token_embedding`, `positional_embedding`, `transformer.resblocks.N`, `ln_final`,
`text_projection` [width, embed]); `logit_scale` (log of the inverse temperature, as
mvl's).
"""

from __future__ import annotations

import numpy as np

from mvl.runtime.errors import UserError
from mvl.weights import layout

# Buffers some open_clip versions save: derived, not learned.
IGNORED = ("attn_mask", "position_ids")


def block_to_mvl(read, prefix: str) -> dict:
    query, key, value = np.split(read(prefix + "attn.in_proj_weight"), 3)
    bq, bk, bv = np.split(read(prefix + "attn.in_proj_bias"), 3)
    return {
        "ln_self": layout.layer_norm(read(prefix + "ln_1.weight"), read(prefix + "ln_1.bias")),
        "self_attn": {
            "query": layout.linear(query, bq),
            "key": layout.linear(key, bk),
            "value": layout.linear(value, bv),
            "out": layout.linear(
                read(prefix + "attn.out_proj.weight"), read(prefix + "attn.out_proj.bias")
            ),
        },
        "ln_mlp": layout.layer_norm(read(prefix + "ln_2.weight"), read(prefix + "ln_2.bias")),
        "mlp": {
            "fc1": layout.linear(read(prefix + "mlp.c_fc.weight"), read(prefix + "mlp.c_fc.bias")),
            "fc2": layout.linear(
                read(prefix + "mlp.c_proj.weight"), read(prefix + "mlp.c_proj.bias")
            ),
        },
    }


def block_from_mvl(block: dict, prefix: str) -> dict:
    attn = block["self_attn"]
    parts = [attn[name] for name in ("query", "key", "value")]
    return {
        **layout.unlayer_norm(block["ln_self"], prefix + "ln_1"),
        prefix + "attn.in_proj_weight": np.concatenate([p["kernel"].T for p in parts]),
        prefix + "attn.in_proj_bias": np.concatenate([p["bias"] for p in parts]),
        **layout.unlinear(attn["out"], prefix + "attn.out_proj"),
        **layout.unlayer_norm(block["ln_mlp"], prefix + "ln_2"),
        **layout.unlinear(block["mlp"]["fc1"], prefix + "mlp.c_fc"),
        **layout.unlinear(block["mlp"]["fc2"], prefix + "mlp.c_proj"),
    }


def encoder_to_mvl(read, prefix: str, depth: int, final_norm: str) -> dict:
    encoder = {f"block{i}": block_to_mvl(read, f"{prefix}resblocks.{i}.") for i in range(depth)}
    encoder["ln_final"] = layout.layer_norm(
        read(final_norm + ".weight"), read(final_norm + ".bias")
    )
    return encoder


def encoder_from_mvl(encoder: dict, prefix: str, final_norm: str) -> dict:
    blocks = sorted((k for k in encoder if k.startswith("block")), key=lambda k: int(k[5:]))
    out = {}
    for i, name in enumerate(blocks):
        out.update(block_from_mvl(encoder[name], f"{prefix}resblocks.{i}."))
    out.update(layout.unlayer_norm(encoder["ln_final"], final_norm))
    return out


def depth_of(state: dict, prefix: str) -> int:
    """Number of residual blocks under `prefix` (e.g. "visual.transformer.")."""
    found = {
        int(k[len(prefix) + len("resblocks.") :].split(".")[0])
        for k in state
        if k.startswith(prefix + "resblocks.")
    }
    if found != set(range(len(found))):
        raise UserError(f"open_clip checkpoint: blocks under {prefix} are not 0..N-1")
    return len(found)


def to_mvl(state: dict[str, np.ndarray], where: str) -> dict:
    """mvl params from an open_clip CLIP state dict (ViT image tower)."""
    if "visual.conv1.weight" not in state:
        raise UserError(f"{where} has no visual.conv1.weight: not an open_clip ViT CLIP")
    read = layout.Reader(state, where, IGNORED)
    image = layout.vision_embeddings(
        read("visual.conv1.weight"),
        read("visual.class_embedding"),
        read("visual.positional_embedding"),
    )
    image["ln_pre"] = layout.layer_norm(read("visual.ln_pre.weight"), read("visual.ln_pre.bias"))
    image["encoder"] = encoder_to_mvl(
        read, "visual.transformer.", depth_of(state, "visual.transformer."), "visual.ln_post"
    )
    text = {
        "token_embedding": {"embedding": read("token_embedding.weight")},
        "pos_embedding": read("positional_embedding")[None],
        "encoder": encoder_to_mvl(
            read, "transformer.", depth_of(state, "transformer."), "ln_final"
        ),
    }
    params = {
        "image": image,
        "text": text,
        "image_projection": {"proj": {"kernel": read("visual.proj")}},
        "text_projection": {"proj": {"kernel": read("text_projection")}},
        "temperature": {"logit_scale": read("logit_scale").reshape(())},
    }
    read.finish()
    return params


def from_mvl(params: dict) -> dict[str, np.ndarray]:
    """open_clip's state dict from mvl params with CLIP-shaped towers."""
    params = _as_numpy(params)
    image, text = params["image"], params["text"]
    conv, class_embedding, positions = layout.unvision_embeddings(image)
    scale = params.get("temperature", {}).get("logit_scale", np.float32(np.log(1 / 0.07)))
    state = {
        "visual.conv1.weight": conv,
        "visual.class_embedding": class_embedding,
        "visual.positional_embedding": positions,
        **layout.unlayer_norm(image["ln_pre"], "visual.ln_pre"),
        **encoder_from_mvl(image["encoder"], "visual.transformer.", "visual.ln_post"),
        "visual.proj": params["image_projection"]["proj"]["kernel"],
        "token_embedding.weight": text["token_embedding"]["embedding"],
        "positional_embedding": text["pos_embedding"][0],
        **encoder_from_mvl(text["encoder"], "transformer.", "ln_final"),
        "text_projection": params["text_projection"]["proj"]["kernel"],
        "logit_scale": np.asarray(scale, np.float32).reshape(()),
    }
    return {k: np.ascontiguousarray(v, np.float32) for k, v in state.items()}


def _as_numpy(tree):
    import jax

    return jax.tree.map(lambda x: np.asarray(x, np.float32), tree)
