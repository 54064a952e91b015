"""The model: the shared encoders, plus the heads of the config's enabled objectives.

The encoders (image tower, text tower, cross-modal fusion, single stream) are declared
for every config; each enabled objective adds its own heads (mvl/objectives: an
objective module owns its heads) under the attribute names that are the checkpoints'
parameter paths. Which parts get parameters is decided by use: `init_params`
(mvl/train/state.py) runs every enabled objective's loss once inside `Module.init`.
Flax linen's `Module.setup` docstring: "setup is called once lazily on a module
instance when a module is bound, immediately before any other methods like __call__
are invoked"; a submodule assigned in setup but never called never runs its own
setup or compact body, so it creates no variables (flax.linen.Module.setup; the
"setup vs compact" guide: submodule names are the attributes they are assigned to).
So a CLIP config gets no fusion, decoder or single-stream parameters without any
list of parts; tests/test_train.py checks every demo config's parameter paths.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from mvl import mask
from mvl.data import special_tokens
from mvl.models.fusion import CrossModalEncoder
from mvl.models.heads import l2_normalize
from mvl.models.single_stream import SingleStreamEncoder
from mvl.models.text import TextTower, pooled
from mvl.models.vision import VisionTower


def text_valid(ids, special: special_tokens.SpecialIds):
    """bool [B, L]: which positions hold the caption, by the tokenizer's ids."""
    return special.valid(ids)


class MultimodalModel(nn.Module):
    run: ml_collections.FrozenConfigDict  # the whole config (objectives build their heads)
    vocab_size: int  # the tokenizer's
    special: special_tokens.SpecialIds  # the tokenizer's special ids

    @property
    def config(self):
        """The `model` section of the config."""
        return self.run.model

    @property
    def parts(self) -> set[str]:
        """The attribute names of the parts that get parameters under this config (the
        top-level keys of the parameter tree), found by an abstract init: no arrays."""
        from mvl.train.state import param_parts  # local: training imports the model

        return param_parts(self, self.run)

    def layer_kwargs(self) -> dict:
        c = self.config
        return dict(act=c.act, ln_eps=c.ln_eps, dtype=jnp.dtype(c.dtype))

    def stack_kwargs(self) -> dict:
        """The settings of parts built of attention blocks."""
        c = self.config
        # .get: configs saved before model.attention existed ran the XLA kernel
        attention = c.get("attention", "xla")
        return dict(self.layer_kwargs(), remat=c.remat, scan=c.scan_layers, attention=attention)

    def setup(self):
        from mvl import objectives  # local: objectives import the model's parts

        c, stack = self.config, self.stack_kwargs()
        # Hidden patches are replaced by a learned token only when the mask replaces them.
        mask_token = mask.patch_handling(self.run.mask) == mask.REPLACE
        self.image = VisionTower(mask_token=mask_token, **dict(c.image), **stack)
        self.text = TextTower(vocab_size=self.vocab_size, **dict(c.text), **stack)
        # Fusion and the single stream exist only in configs that add their sections
        # (mvl.config.add_model_parts); parameters are still created only by use.
        if "fusion" in c:
            self.image_fusion = CrossModalEncoder(**dict(c.fusion), **stack)
            self.text_fusion = CrossModalEncoder(**dict(c.fusion), **stack)
        if "single_stream" in c:
            self.single_stream = SingleStreamEncoder(
                vocab_size=self.vocab_size,
                mask_id=self.special.mask,
                max_len=c.text.max_len,
                image_size=c.image.image_size,
                patch_size=c.image.patch_size,
                pixel_mean=c.image.pixel_mean,
                pixel_std=c.image.pixel_std,
                **dict(c.single_stream),
                **stack,
            )
        for attribute, head in objectives.heads_of(self.run, self).items():
            setattr(self, attribute, head)  # linen names the submodule by the attribute

    def _valid(self, ids):
        return text_valid(ids, self.special)

    def head(self, attribute: str, *args):
        """Calls one objective's head by its attribute name."""
        return getattr(self, attribute)(*args)

    # Encoders -------------------------------------------------------------------
    def encode_image(self, images, patch_mask=None, keep_idx=None):
        return self.image(images, patch_mask, keep_idx)

    def encode_text(self, ids):
        return self.text(ids, self._valid(ids))

    def encode_stream(self, images, ids, patch_mask=None, text_keep=None, image_keep=None):
        """(text tokens, patch tokens) of the single-stream encoder (MLIM)."""
        return self.single_stream(ids, self._valid(ids), images, patch_mask, text_keep, image_keep)

    def fuse_image(self, image_tokens, text_tokens, ids, cls_only=False):
        """Image queries attend to the text; `cls_only`: only the [CLS] output [B, 1, D]
        (what ITM reads), skipping the other tokens' work in the last block."""
        return self.image_fusion(image_tokens, None, text_tokens, self._valid(ids), cls_only)

    def fuse_text(self, text_tokens, ids, image_tokens, cls_only=False):
        """Text queries attend to the image; `cls_only` as for fuse_image."""
        return self.text_fusion(text_tokens, self._valid(ids), image_tokens, None, cls_only)

    # What evaluation reads of ITC's and ITM's heads (mvl/evaluate) ----------------
    def embed_image(self, image_tokens):
        return l2_normalize(self.image_projection(image_tokens[:, 0]))

    def embed_text(self, text_tokens, ids):
        caption = pooled(text_tokens, self._valid(ids), self.config.text.pool)
        return l2_normalize(self.text_projection(caption))

    def logit_scale(self):
        return self.temperature()

    def itm_logits(self, fused_image, fused_text):
        return self.itm_head(jnp.concatenate([fused_image[:, 0], fused_text[:, 0]], axis=-1))


def build_model(cfg, vocab_size: int, special: special_tokens.SpecialIds) -> MultimodalModel:
    """The model of `cfg` (validated: mvl/validate.py); `vocab_size` and `special` are
    the tokenizer's (its `vocab_size`, `special_ids`)."""
    from mvl import user_modules

    user_modules.load(cfg)  # objectives a user module registers (run before validate too)
    return MultimodalModel(ml_collections.FrozenConfigDict(cfg), vocab_size, special)


def build_teacher(cfg) -> VisionTower | None:
    """The teacher image tower of `cfg.teacher` (its params live in TrainState.teacher)."""
    if cfg.teacher.kind == "none":
        return None
    common = dict(
        act=cfg.teacher.get("act") or cfg.model.act,
        ln_eps=cfg.teacher.get("ln_eps") or cfg.model.ln_eps,
        dtype=jnp.dtype(cfg.model.dtype),
        attention=cfg.model.get("attention", "xla"),
    )
    # An EMA teacher averages the student's parameters, so it needs their layout
    # (scanned blocks or not); a frozen one is read from a run saved unscanned.
    scan = cfg.model.scan_layers if cfg.teacher.kind == "ema" else False
    return VisionTower(**dict(cfg.teacher.image), **common, scan=scan)
