"""An mvl run directory holding imported weights, and reading one back.

DIR/checkpoints/0/   orbax checkpoint: state {"params"}, the config, the run record
                     (tokenizer identity, where the weights came from)
DIR/<vocabulary>     the BPE vocabulary the text tower was trained with (a copy);
                     the saved config's data.tokenizer points at it
DIR/config_overrides.txt   the --config flags that give another config these towers

The text tower's token embedding gets one row more than CLIP's: the [MASK] token the
CLIP BPE tokenizer appends (mvl/data/clip_bpe.py), so text-masking methods (MaskVLM,
MaskCLIP) can start from these towers. `export` drops that row again.

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

from mvl import config as config_lib
from mvl.runtime import checkpoint
from mvl.runtime.errors import UserError
from mvl.weights import architectures, layout

CLIP_CONFIG = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "clip.py")


def clip_config(arch: architectures.Architecture, tokenizer_path: str) -> ml_collections.ConfigDict:
    """configs/clip.py (paper size) with `arch`'s towers and the given vocabulary."""
    cfg = config_lib.load_config(os.path.abspath(CLIP_CONFIG) + ":paper")
    architectures.apply(cfg, arch)
    cfg.data.tokenizer = tokenizer_path
    # Imported weights are a reference: their embeddings (mvl.embed, parity checks) are
    # computed in float32, not in the bf16 the :paper recipe trains with; a run that
    # starts from them keeps its own dtype (config_overrides.txt does not set it).
    cfg.model.dtype = "float32"
    return cfg


def expected_params(cfg, vocab_size: int):
    """Shapes of the params mvl builds for `cfg` (no arrays are allocated)."""
    from mvl.data import special_tokens
    from mvl.models.model import build_model
    from mvl.train.state import init_params

    # Shapes only: the tokenizer's special ids add no parameters.
    model = build_model(cfg, vocab_size, special_tokens.SENTENCEPIECE)
    return nn.unbox(jax.eval_shape(lambda: init_params(model, cfg, jax.random.PRNGKey(0))))


def write(
    out: str, params: dict, arch, tokenizer_file: str, source: dict
) -> ml_collections.ConfigDict:
    """Writes the run directory `out` (must not hold a checkpoint yet); returns its config."""
    from mvl.data import clip_bpe
    from mvl.train.run_tokenizer import tokenizer_identity

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
    if tokenizer.clip_vocab_size != arch.vocab_size:
        raise UserError(
            f"--tokenizer {tokenizer_file} has {tokenizer.clip_vocab_size} tokens but the "
            f"text tower's embedding has {arch.vocab_size}: not the vocabulary it was "
            "trained with"
        )
    params = with_mask_row(params)
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


def with_mask_row(params: dict) -> dict:
    """`params` with the token embedding's [MASK] row appended (the tokenizer's id
    `clip_vocab_size`): the mean of CLIP's rows. A mean row lies inside the distribution
    the imported tower was trained on, so a masked position starts as a plausible,
    uninformative token rather than an outlier (a zero or random row); MLM then learns
    it. Computed in float32 from the original rows only, so re-importing an export (which
    drops the row) writes the same row again."""
    embedding = params["text"]["token_embedding"]["embedding"]
    mask_row = embedding.mean(axis=0, dtype=np.float32, keepdims=True).astype(embedding.dtype)
    rows = {"embedding": np.concatenate([embedding, mask_row])}
    return {**params, "text": {**params["text"], "token_embedding": rows}}


def clip_rows(cfg, run_directory: str, rows: int) -> int:
    """How many of a run's `rows` token-embedding rows are CLIP's (what export keeps):
    all but the appended [MASK] when the run's vocabulary is CLIP BPE. The vocabulary,
    looked for where the config says and in the run directory (a moved run), must have
    exactly `rows` ids; when it is found in neither, one appended row is assumed."""
    from mvl.data import clip_bpe

    path = cfg.data.tokenizer
    if not (path and clip_bpe.is_clip_bpe(path)):
        return rows  # a sentencepiece vocabulary: no row of its is CLIP's [MASK]
    moved = os.path.join(run_directory, os.path.basename(path))
    found = next((p for p in (path, moved) if os.path.exists(p)), None)
    if found is None:
        return rows - 1
    tokenizer = clip_bpe.ClipBpeTokenizer(found)
    if rows != tokenizer.vocab_size:
        raise UserError(
            f"--checkpoint {run_directory}: the token embedding has {rows} rows but its "
            f"vocabulary {found} has {tokenizer.vocab_size} ids ({tokenizer.clip_vocab_size} "
            "of CLIP's and [MASK]); a directory converted before [MASK] was added? "
            "Convert it again."
        )
    return tokenizer.clip_vocab_size


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
