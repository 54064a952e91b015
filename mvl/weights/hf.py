"""Hugging Face `CLIPModel` state dict -> mvl params.

HF: `vision_model.embeddings.{patch_embedding, class_embedding, position_embedding}`,
`vision_model.pre_layrnorm` (sic), `vision_model.encoder.layers.N` (`layer_norm1`,
`self_attn.{q,k,v,out}_proj`, `layer_norm2`, `mlp.fc1`, `mlp.fc2`),
`vision_model.post_layernorm`, `visual_projection` (a bias-free Linear, [embed, width]);
`text_model.embeddings.{token_embedding, position_embedding}`, `text_model.encoder...`,
`text_model.final_layer_norm`, `text_projection`; `logit_scale`.
"""

from __future__ import annotations

from mvl.runtime.errors import UserError
from mvl.weights import layout

IGNORED = ("position_ids",)  # a buffer older transformers versions saved


def block_to_mvl(read, prefix: str) -> dict:
    def dense(name):
        return layout.linear(read(f"{prefix}{name}.weight"), read(f"{prefix}{name}.bias"))

    def norm(name):
        return layout.layer_norm(read(f"{prefix}{name}.weight"), read(f"{prefix}{name}.bias"))

    return {
        "ln_self": norm("layer_norm1"),
        "self_attn": {
            "query": dense("self_attn.q_proj"),
            "key": dense("self_attn.k_proj"),
            "value": dense("self_attn.v_proj"),
            "out": dense("self_attn.out_proj"),
        },
        "ln_mlp": norm("layer_norm2"),
        "mlp": {"fc1": dense("mlp.fc1"), "fc2": dense("mlp.fc2")},
    }


def encoder_to_mvl(read, state, tower: str, final_norm: str) -> dict:
    prefix = f"{tower}.encoder.layers."
    depth = len({k[len(prefix) :].split(".")[0] for k in state if k.startswith(prefix)})
    encoder = {f"block{i}": block_to_mvl(read, f"{prefix}{i}.") for i in range(depth)}
    norm = f"{tower}.{final_norm}"
    encoder["ln_final"] = layout.layer_norm(read(norm + ".weight"), read(norm + ".bias"))
    return encoder


def to_mvl(state: dict, where: str) -> dict:
    """mvl params from a Hugging Face CLIPModel state dict."""
    if "vision_model.embeddings.patch_embedding.weight" not in state:
        raise UserError(f"{where} has no vision_model.embeddings: not a Hugging Face CLIPModel")
    read = layout.Reader(state, where, IGNORED)
    embeddings = "vision_model.embeddings."
    image = layout.vision_embeddings(
        read(embeddings + "patch_embedding.weight"),
        read(embeddings + "class_embedding"),
        read(embeddings + "position_embedding.weight"),
    )
    image["ln_pre"] = layout.layer_norm(
        read("vision_model.pre_layrnorm.weight"), read("vision_model.pre_layrnorm.bias")
    )
    image["encoder"] = encoder_to_mvl(read, state, "vision_model", "post_layernorm")
    text = {
        "token_embedding": {"embedding": read("text_model.embeddings.token_embedding.weight")},
        "pos_embedding": read("text_model.embeddings.position_embedding.weight")[None],
        "encoder": encoder_to_mvl(read, state, "text_model", "final_layer_norm"),
    }
    params = {
        "image": image,
        "text": text,
        "image_projection": {"proj": layout.linear(read("visual_projection.weight"))},
        "text_projection": {"proj": layout.linear(read("text_projection.weight"))},
        "temperature": {"logit_scale": read("logit_scale").reshape(())},
    }
    read.finish()
    return params
