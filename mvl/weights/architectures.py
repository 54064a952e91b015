"""CLIP architectures: the shapes a checkpoint's layout cannot tell (heads, activation,
pixel normalisation), by name or from a config file, and the mvl config they make.

`--arch` is a name below (open_clip's spelling; `-quickgelu` selects OpenAI's
QuickGELU, which OpenAI's released weights were trained with), an open_clip model
config JSON (`{"embed_dim", "quick_gelu", "vision_cfg", "text_cfg"}`), or, for
Hugging Face, omitted: the config.json beside the safetensors is read.
"""

from __future__ import annotations

import dataclasses
import json
import os

import ml_collections

from mvl.runtime.errors import UserError

# OpenAI CLIP's pixel statistics: every public CLIP checkpoint was trained with them.
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclasses.dataclass(frozen=True)
class Architecture:
    image_size: int
    patch_size: int
    vision_width: int
    vision_layers: int
    vision_heads: int
    vision_mlp: int
    context_length: int
    vocab_size: int
    text_width: int
    text_layers: int
    text_heads: int
    text_mlp: int
    embed_dim: int
    act: str = "gelu"  # gelu | quick_gelu
    ln_eps: float = 1e-5  # torch's LayerNorm default, which CLIP kept
    pixel_mean: tuple[float, float, float] = CLIP_MEAN
    pixel_std: tuple[float, float, float] = CLIP_STD


def _vit(patch: int, width: int, layers: int, text_width: int, embed: int, image=224):
    return Architecture(
        image_size=image,
        patch_size=patch,
        vision_width=width,
        vision_layers=layers,
        vision_heads=width // 64,
        vision_mlp=4 * width,
        context_length=77,
        vocab_size=49408,
        text_width=text_width,
        text_layers=12,
        text_heads=text_width // 64,
        text_mlp=4 * text_width,
        embed_dim=embed,
    )


NAMED = {
    "ViT-B-32": _vit(32, 768, 12, 512, 512),
    "ViT-B-16": _vit(16, 768, 12, 512, 512),
    "ViT-L-14": _vit(14, 1024, 24, 768, 768),
}

# open_clip config keys whose non-default (truthy) values mvl's towers cannot express.
UNSUPPORTED = {
    "vision_cfg": (
        "ls_init_value",
        "attentional_pool",
        "no_ln_pre",
        "timm_model_name",
        "norm_kwargs",
        "act_kwargs",
        "pos_embed_type",
    ),
    "text_cfg": (
        "ls_init_value",
        "hf_model_name",
        "embed_cls",
        "no_causal_mask",
        "proj_bias",
        "pad_id",
        "norm_kwargs",
        "act_kwargs",
    ),
}
# Pooling open_clip can be configured with, and the ones mvl's towers compute: the class
# token (a LayerNorm after pooling one token is the same LayerNorm before it), and the
# end-of-text token (the last non-pad one in rows CLIP's tokenizer writes).
POOLING = {"vision_cfg": ("tok",), "text_cfg": ("argmax", "eos", "last")}


def check_supported(config: dict, where: str):
    for section, keys in UNSUPPORTED.items():
        part = config.get(section, {})
        bad = [
            k
            for k in keys
            if part.get(k) and not (k == "pos_embed_type" and part[k] == "learnable")
        ]
        pool = part.get("pool_type")
        if pool is not None and pool not in POOLING[section]:
            bad.append(f"pool_type={pool!r}")
        if bad:
            raise UserError(f"--arch {where}: {section} {', '.join(bad)} is not supported")


def named(name: str) -> Architecture:
    base, quick = (
        (name[: -len("-quickgelu")], True) if name.endswith("-quickgelu") else (name, False)
    )
    if base not in NAMED:
        known = ", ".join(sorted(NAMED) + [n + "-quickgelu" for n in sorted(NAMED)])
        raise UserError(f"--arch {name!r} is not one of {known}, nor a .json config file")
    return dataclasses.replace(NAMED[base], act="quick_gelu" if quick else "gelu")


def resolve(arch: str | None, kind: str, checkpoint: str) -> Architecture:
    """The architecture `--arch` names (or, for HF without it, the config.json beside)."""
    if not arch:
        if kind != "hf":
            raise UserError("--arch is needed for open_clip checkpoints (e.g. ViT-B-32)")
        arch = os.path.join(os.path.dirname(os.path.abspath(checkpoint)), "config.json")
        if not os.path.exists(arch):
            raise UserError(f"no --arch and no config.json beside {checkpoint}")
    if not arch.endswith(".json"):
        return named(arch)
    try:
        with open(arch) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise UserError(f"--arch {arch}: cannot read it as JSON ({e})") from None
    return (
        from_hf_config(config, arch) if "vision_config" in config else from_open_clip(config, arch)
    )


def from_open_clip(config: dict, where: str) -> Architecture:
    """open_clip's model config (open_clip/model_configs/*.json), defaults as open_clip's."""
    vision, text = config.get("vision_cfg", {}), config.get("text_cfg", {})
    check_supported(config, where)
    if not isinstance(vision.get("layers", 12), int):
        raise UserError(f"--arch {where}: only ViT image towers are supported (not ResNet)")
    width, text_width = vision.get("width", 768), text.get("width", 512)
    return Architecture(
        image_size=vision.get("image_size", 224),
        patch_size=vision.get("patch_size", 16),
        vision_width=width,
        vision_layers=vision.get("layers", 12),
        vision_heads=width // vision.get("head_width", 64),
        vision_mlp=int(width * vision.get("mlp_ratio", 4.0)),
        context_length=text.get("context_length", 77),
        vocab_size=text.get("vocab_size", 49408),
        text_width=text_width,
        text_layers=text.get("layers", 12),
        text_heads=text.get("heads", 8),
        text_mlp=int(text_width * text.get("mlp_ratio", 4.0)),
        embed_dim=config["embed_dim"],
        act="quick_gelu" if config.get("quick_gelu") else "gelu",
    )


def from_hf_config(config: dict, where: str) -> Architecture:
    """Hugging Face's CLIPConfig (config.json of a CLIPModel)."""
    vision, text = config["vision_config"], config["text_config"]
    shared = {}
    for key, default in (("hidden_act", "quick_gelu"), ("layer_norm_eps", 1e-5)):
        values = {vision.get(key, default), text.get(key, default)}
        if len(values) > 1:
            raise UserError(f"--arch {where}: the towers' {key} differ ({values}); mvl has one")
        shared[key] = values.pop()
    if shared["hidden_act"] not in ("gelu", "quick_gelu"):
        raise UserError(f"--arch {where}: hidden_act {shared['hidden_act']!r} is not supported")
    return Architecture(
        image_size=vision.get("image_size", 224),
        patch_size=vision.get("patch_size", 32),
        vision_width=vision.get("hidden_size", 768),
        vision_layers=vision.get("num_hidden_layers", 12),
        vision_heads=vision.get("num_attention_heads", 12),
        vision_mlp=vision.get("intermediate_size", 3072),
        context_length=text.get("max_position_embeddings", 77),
        vocab_size=text.get("vocab_size", 49408),
        text_width=text.get("hidden_size", 512),
        text_layers=text.get("num_hidden_layers", 12),
        text_heads=text.get("num_attention_heads", 8),
        text_mlp=text.get("intermediate_size", 2048),
        embed_dim=config.get("projection_dim", 512),
        act=shared["hidden_act"],
        ln_eps=float(shared["layer_norm_eps"]),
    )


def to_open_clip(arch: Architecture) -> dict:
    """open_clip's model config for `arch` (written beside an export)."""
    return {
        "embed_dim": arch.embed_dim,
        "quick_gelu": arch.act == "quick_gelu",
        "vision_cfg": {
            "image_size": arch.image_size,
            "layers": arch.vision_layers,
            "width": arch.vision_width,
            "head_width": arch.vision_width // arch.vision_heads,
            "mlp_ratio": arch.vision_mlp / arch.vision_width,
            "patch_size": arch.patch_size,
        },
        "text_cfg": {
            "context_length": arch.context_length,
            "vocab_size": arch.vocab_size,
            "width": arch.text_width,
            "heads": arch.text_heads,
            "layers": arch.text_layers,
            "mlp_ratio": arch.text_mlp / arch.text_width,
        },
    }


def overrides(arch: Architecture) -> dict:
    """The mvl config keys (dotted) that build `arch`'s towers, CLIP-style."""
    return {
        "data.image_size": arch.image_size,
        "data.max_text_len": arch.context_length,
        "model.image.patch_size": arch.patch_size,
        "model.image.width": arch.vision_width,
        "model.image.depth": arch.vision_layers,
        "model.image.num_heads": arch.vision_heads,
        "model.image.mlp_dim": arch.vision_mlp,
        "model.image.stem": "patch",
        "model.image.pixel_mean": tuple(arch.pixel_mean),
        "model.image.pixel_std": tuple(arch.pixel_std),
        "model.image.pre_norm": True,
        "model.text.width": arch.text_width,
        "model.text.depth": arch.text_layers,
        "model.text.num_heads": arch.text_heads,
        "model.text.mlp_dim": arch.text_mlp,
        "model.text.causal": True,
        "model.text.pool": "last",
        "model.embed_dim": arch.embed_dim,
        "model.act": arch.act,
        "model.ln_eps": arch.ln_eps,
        "model.scan_layers": False,
    }


def apply(cfg: ml_collections.ConfigDict, arch: Architecture) -> ml_collections.ConfigDict:
    """`cfg` (unlocked or locked) with `arch`'s towers; the teacher's image copies them."""
    for dotted, value in overrides(arch).items():
        *parents, leaf = dotted.split(".")
        node = cfg
        for part in parents:
            node = node[part]
        node[leaf] = value
    if "image" in cfg.teacher:  # a config with a teacher (mvl.config.add_teacher)
        cfg.teacher.image = ml_collections.ConfigDict(cfg.model.image.to_dict())
    return cfg


def from_config(model: dict) -> Architecture:
    """The architecture of an mvl run's `model` config (for export); CLIP's layout only
    fits towers built the CLIP way, so anything else is named."""
    image, text = model["image"], model["text"]
    wanted = {
        "model.image.pre_norm": (image.get("pre_norm", False), True),
        "model.image.stem": (image.get("stem", "patch"), "patch"),
        "model.text.causal": (text.get("causal", False), True),
        "model.text.pool": (text.get("pool", "first"), "last"),
        "model.scan_layers": (model.get("scan_layers", False), False),
    }
    wrong = [f"{k}={have!r} (needs {need!r})" for k, (have, need) in wanted.items() if have != need]
    if model["act"] not in ("gelu", "quick_gelu"):
        wrong.append(f"model.act={model['act']!r} (needs gelu or quick_gelu)")
    if wrong:
        raise UserError("open_clip's layout cannot hold this run's towers: " + ", ".join(wrong))
    return Architecture(
        image_size=image["image_size"],
        patch_size=image["patch_size"],
        vision_width=image["width"],
        vision_layers=image["depth"],
        vision_heads=image["num_heads"],
        vision_mlp=image["mlp_dim"],
        context_length=text["max_len"],
        vocab_size=0,  # from the token embedding
        text_width=text["width"],
        text_layers=text["depth"],
        text_heads=text["num_heads"],
        text_mlp=text["mlp_dim"],
        embed_dim=model["embed_dim"],
        act=model["act"],
        ln_eps=model["ln_eps"],
        pixel_mean=tuple(image["pixel_mean"]),
        pixel_std=tuple(image["pixel_std"]),
    )
