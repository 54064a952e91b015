"""An mvl run directory holding imported weights, and reading one back.

DIR/checkpoints/0/   orbax checkpoint: state {"params"}, the config, the run record
                     (tokenizer identity, where the weights came from)
DIR/<vocabulary>     the BPE vocabulary the text tower was trained with (a copy);
                     the saved config's data.tokenizer points at it
DIR/config_overrides.txt   the --config flags that give another config these towers

Such a directory works wherever a run's does: `teacher.checkpoint=DIR` (MVP),
`init.checkpoint=DIR`, `python -m mvl.evaluate --checkpoint DIR`, `python -m mvl.embed`.
"""

from __future__ import annotations

import os
import shutil

import flax.linen as nn
import jax
import ml_collections
import numpy as np

from mvl import checkpoint, config as config_lib
from mvl.convert import architectures, layout
from mvl.errors import UserError

CLIP_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "clip.py")


def clip_config(arch: architectures.Architecture, tokenizer_path: str) -> ml_collections.ConfigDict:
    """configs/clip.py (paper size) with `arch`'s towers and the given vocabulary."""
    cfg = config_lib.load_config(os.path.abspath(CLIP_CONFIG) + ":paper")
    architectures.apply(cfg, arch)
    cfg.data.tokenizer = tokenizer_path
    return cfg


def expected_params(cfg, vocab_size: int):
    """Shapes of the params mvl builds for `cfg` (no arrays are allocated)."""
    import jax.numpy as jnp

    from mvl.models.model import build_model

    model = build_model(cfg, vocab_size)
    size, length = cfg.model.image.image_size, cfg.model.text.max_len
    shapes = jax.eval_shape(
        lambda: model.init(
            jax.random.PRNGKey(0), jnp.zeros((1, size, size, 3)), jnp.zeros((1, length), jnp.int32)
        )
    )
    return nn.unbox(shapes["params"])


def write(
    out: str, params: dict, arch, tokenizer_file: str, source: dict
) -> ml_collections.ConfigDict:
    """Writes the run directory `out` (must not hold a checkpoint yet); returns its config."""
    from mvl.data import clip_bpe
    from mvl.train.loop import tokenizer_identity

    if os.path.isdir(os.path.join(out, "checkpoints")):
        raise UserError(f"--out {out} already holds checkpoints; choose a fresh directory")
    if not clip_bpe.is_clip_bpe(tokenizer_file):
        raise UserError(
            f"--tokenizer {tokenizer_file}: expected a CLIP BPE vocabulary "
            f"({', '.join(clip_bpe.SUFFIXES)})"
        )
    tokenizer = clip_bpe.ClipBpeTokenizer(tokenizer_file)
    # The weights against --arch first: a wrong --arch is the likelier mistake.
    cfg = clip_config(arch, os.path.join(os.path.abspath(out), os.path.basename(tokenizer_file)))
    layout.check_shapes(params, expected_params(cfg, arch.vocab_size), source["checkpoint"])
    if tokenizer.vocab_size != arch.vocab_size:
        raise UserError(
            f"--tokenizer {tokenizer_file} has {tokenizer.vocab_size} tokens but the text "
            f"tower's embedding has {arch.vocab_size}: not the vocabulary it was trained with"
        )
    os.makedirs(out, exist_ok=True)
    _copy_vocabulary(tokenizer_file, cfg.data.tokenizer)
    tokenizer = clip_bpe.ClipBpeTokenizer(cfg.data.tokenizer)  # its identity: the copy's
    run = {"tokenizer": tokenizer_identity(tokenizer), "converted_from": source}
    saver = checkpoint.Checkpointer(os.path.join(out, "checkpoints"), max_to_keep=None)
    saver.save_params(0, jax.tree.map(np.asarray, params), cfg, run)
    saver.close()
    with open(os.path.join(out, "config_overrides.txt"), "w") as f:
        f.write(" ".join(override_flags(cfg, arch)) + "\n")
    return cfg


def _copy_vocabulary(source: str, target: str):
    shutil.copyfile(source, target)
    beside = os.path.join(os.path.dirname(os.path.abspath(source)), "vocab.json")
    if source.endswith("merges.txt") and os.path.exists(beside):  # HF's pair travels together
        shutil.copyfile(beside, os.path.join(os.path.dirname(target), "vocab.json"))


def override_flags(cfg, arch) -> list[str]:
    """--config flags that give any method's config these towers and this tokenizer."""
    flags = {"data.tokenizer": cfg.data.tokenizer, **architectures.overrides(arch)}
    return [f"--config.{key}={_flag_value(value)}" for key, value in flags.items()]


def _flag_value(value) -> str:
    return "(" + ",".join(map(str, value)) + ")" if isinstance(value, tuple) else str(value)


def read(directory: str) -> tuple[ml_collections.ConfigDict, dict]:
    """(saved config, params as numpy) of the newest checkpoint of any mvl run."""
    cfg = ml_collections.ConfigDict(checkpoint.load_saved_config(directory))
    device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    params = checkpoint.load_params(directory, device, key="--checkpoint")
    return cfg, jax.tree.map(np.asarray, params)
