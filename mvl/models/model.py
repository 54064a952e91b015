"""Assembles towers, fusion and heads from a config; each part is its own method.

Only the parts the enabled objectives need are built (mvl/objectives registers what
each needs), so e.g. a CLIP config has no fusion or decoder parameters. Objectives
call the methods through mvl/train/forward.py, which shares encoder passes.
"""

from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import ml_collections

from mvl import masking
from mvl.data import special_tokens
from mvl.models.decoders import DeconvDecoder, TextDecoder, TokenDecoder
from mvl.models.fusion import CrossModalEncoder
from mvl.models.heads import (
    Codebook,
    ItmHead,
    LogitScale,
    MlmHead,
    Projection,
    SigmoidScaleBias,
    l2_normalize,
)
from mvl.models.single_stream import SingleStreamEncoder
from mvl.models.text import TextTower, pooled
from mvl.models.vision import VisionTower

COMPONENTS = (
    "image",
    "text",
    "projections",  # image / text -> shared embedding space
    "temperature",  # ITC's learnable logit scale
    "sigmoid",  # SigLIP's learnable scale and bias
    "fusion",
    "itm_head",
    "pixel_decoder",
    "mlm_head",
    "feature_head",  # linear: a teacher's per-patch features (MVP)
    "feature_decoder",  # transformer: a teacher's features of hidden patches (MaskCLIP)
    "codebook",  # MaskCLIP's online quantizer
    "text_decoder",  # transformer between the text tower and the MLM head (MaskCLIP)
    "single_stream",  # one encoder over [text; image patches] (MLIM)
    "deconv_decoder",  # patch grid -> image (MLIM's RECON)
    "stream_itm_head",  # match / no-match from the single stream's [CLS] (MLIM's ITM)
)


def text_valid(ids, special: special_tokens.SpecialIds = special_tokens.SENTENCEPIECE):
    """bool [B, L]: which positions hold the caption, by the tokenizer's ids."""
    return special.valid(ids)


class MultimodalModel(nn.Module):
    config: ml_collections.FrozenConfigDict  # the `model` section of a config
    components: tuple[str, ...]
    vocab_size: int
    image_mask_token: bool = False  # hidden patches are replaced by a learned token
    image_keep_count: int = 0  # > 0: hidden patches are dropped; this many stay visible
    feature_dim: int = 0  # width of the teacher features the feature head predicts
    codebook_size: int = 0
    special: special_tokens.SpecialIds = special_tokens.SENTENCEPIECE  # the tokenizer's ids

    def setup(self):
        c, common = self.config, self._common()
        stack = dict(common, remat=c.remat, scan=c.scan_layers)  # parts built of blocks
        has = set(self.components)
        if "image" in has:
            self.image = VisionTower(mask_token=self.image_mask_token, **dict(c.image), **stack)
        if "text" in has:
            self.text = TextTower(vocab_size=self.vocab_size, **dict(c.text), **stack)
        if "projections" in has:
            self.image_projection = Projection(c.embed_dim)
            self.text_projection = Projection(c.embed_dim)
        if "temperature" in has:
            self.temperature = LogitScale(c.init_temperature)
        if "sigmoid" in has:
            self.sigmoid = SigmoidScaleBias()
        if "fusion" in has:
            self.image_fusion = CrossModalEncoder(**dict(c.fusion), **stack)
            self.text_fusion = CrossModalEncoder(**dict(c.fusion), **stack)
        if "itm_head" in has:
            self.itm_head = ItmHead()
        num_patches = (c.image.image_size // c.image.patch_size) ** 2
        dropped = dict(insert_mask_tokens=self.image_keep_count > 0, num_patches=num_patches)
        if "pixel_decoder" in has:
            self.pixel_decoder = TokenDecoder(
                out_dim=c.image.patch_size**2 * 3, **dropped, **dict(c.pixel_decoder), **stack
            )
        if "mlm_head" in has:
            self.mlm_head = MlmHead(self.vocab_size, **common)
        if "feature_head" in has:
            self.feature_head = Projection(self.feature_dim)
        if "feature_decoder" in has:
            self.feature_decoder = TokenDecoder(
                out_dim=self.feature_dim, **dropped, **dict(c.feature_decoder), **stack
            )
        if "codebook" in has:
            self.codebook = Codebook(self.codebook_size, self.feature_dim)
        if "text_decoder" in has:
            self.text_decoder = TextDecoder(**dict(c.text_decoder), **stack)
        if "single_stream" in has:
            image = c.image
            self.single_stream = SingleStreamEncoder(
                vocab_size=self.vocab_size,
                mask_id=self.special.mask,
                max_len=c.text.max_len,
                image_size=image.image_size,
                patch_size=image.patch_size,
                pixel_mean=image.pixel_mean,
                pixel_std=image.pixel_std,
                **dict(c.single_stream),
                **stack,
            )
        if "stream_itm_head" in has:
            self.stream_itm_head = ItmHead()
        if "deconv_decoder" in has:
            self.deconv_decoder = DeconvDecoder(
                c.image.patch_size, c.deconv_decoder.width, c.act, common["dtype"]
            )

    def _valid(self, ids):
        return text_valid(ids, self.special)

    def _common(self):
        return dict(
            act=self.config.act, ln_eps=self.config.ln_eps, dtype=jnp.dtype(self.config.dtype)
        )

    # Encoders -------------------------------------------------------------------
    def encode_image(self, images, patch_mask=None, keep_idx=None):
        return self.image(images, patch_mask, keep_idx)

    def encode_text(self, ids):
        return self.text(ids, self._valid(ids))

    def encode_stream(self, images, ids, patch_mask=None, text_keep=None, image_keep=None):
        """(text tokens, patch tokens) of the single-stream encoder (MLIM)."""
        return self.single_stream(ids, self._valid(ids), images, patch_mask, text_keep, image_keep)

    def embed_image(self, image_tokens):
        return l2_normalize(self.image_projection(image_tokens[:, 0]))

    def embed_text(self, text_tokens, ids):
        caption = pooled(text_tokens, self._valid(ids), self.config.text.pool)
        return l2_normalize(self.text_projection(caption))

    def logit_scale(self):
        return self.temperature()

    def sigmoid_scale_bias(self):
        return self.sigmoid()

    # Fusion ---------------------------------------------------------------------
    def fuse_image(self, image_tokens, text_tokens, ids, cls_only=False):
        """Image queries attend to the text; `cls_only`: only the [CLS] output [B, 1, D]
        (what ITM reads), skipping the other tokens' work in the last block."""
        return self.image_fusion(image_tokens, None, text_tokens, self._valid(ids), cls_only)

    def fuse_text(self, text_tokens, ids, image_tokens, cls_only=False):
        """Text queries attend to the image; `cls_only` as for fuse_image."""
        return self.text_fusion(text_tokens, self._valid(ids), image_tokens, None, cls_only)

    # Heads ----------------------------------------------------------------------
    def itm_logits(self, fused_image, fused_text):
        return self.itm_head(jnp.concatenate([fused_image[:, 0], fused_text[:, 0]], axis=-1))

    def stream_itm_logits(self, text_tokens):
        """Match / no-match of the (text, image) pair a single-stream pass encoded."""
        return self.stream_itm_head(text_tokens[:, 0])

    def decode_pixels(self, image_tokens, context_tokens=None, context_ids=None, keep_idx=None):
        """Pixels of every patch from patch tokens ([CLS] dropped), optionally text-conditioned.

        `keep_idx` says where the tokens of a dropped-patch encoding belong.
        """
        valid = None if context_ids is None else self._valid(context_ids)
        return self.pixel_decoder(image_tokens[:, 1:], context_tokens, valid, keep_idx)

    def predict_features(self, image_tokens):
        """Teacher features of every patch, predicted from patch tokens ([CLS] dropped)."""
        return self.feature_head(image_tokens[:, 1:])

    def decode_features(self, image_tokens, keep_idx=None):
        """Teacher features of every patch from a transformer decoder ([CLS] dropped)."""
        return self.feature_decoder(image_tokens[:, 1:], None, None, keep_idx)

    def codewords(self):
        return self.codebook()

    def decode_text(self, text_tokens, ids):
        return self.text_decoder(text_tokens, self._valid(ids))

    def decode_image(self, patch_tokens):
        """An image [B, H, W, 3] in [0, 1] from single-stream patch tokens (no [CLS])."""
        return self.deconv_decoder(patch_tokens)

    def mlm_logits(self, text_tokens):
        return self.mlm_head(text_tokens)

    def __call__(self, images, ids):
        """Touches every built part once; used only to initialise parameters."""
        has = set(self.components)
        patch_mask = keep_idx = None
        if self.image_mask_token:
            patch_mask = jnp.zeros(images.shape[:1] + (self.image.grid**2,), bool)
        if self.image_keep_count:
            keep_idx = jnp.broadcast_to(
                jnp.arange(self.image_keep_count), images.shape[:1] + (self.image_keep_count,)
            )
        image_tokens = self.encode_image(images, patch_mask, keep_idx) if "image" in has else None
        text_tokens = self.encode_text(ids) if "text" in has else None
        outputs = {}
        if "projections" in has:
            outputs.update(
                image=self.embed_image(image_tokens), text=self.embed_text(text_tokens, ids)
            )
        if "temperature" in has:
            outputs["scale"] = self.logit_scale()
        if "sigmoid" in has:
            outputs["sigmoid"] = self.sigmoid_scale_bias()
        if "fusion" in has:
            fused_image = self.fuse_image(image_tokens, text_tokens, ids)
            fused_text = self.fuse_text(text_tokens, ids, image_tokens)
            if "itm_head" in has:
                outputs["itm"] = self.itm_logits(fused_image, fused_text)
        if "pixel_decoder" in has:
            cross = self.config.pixel_decoder.cross_attention
            context = (text_tokens, ids) if cross else (None, None)
            outputs["pixels"] = self.decode_pixels(image_tokens, *context, keep_idx)
        if "feature_head" in has:
            outputs["features"] = self.predict_features(image_tokens)
        if "feature_decoder" in has:
            outputs["decoded_features"] = self.decode_features(image_tokens, keep_idx)
        if "codebook" in has:
            outputs["codewords"] = self.codewords()
        if "text_decoder" in has:
            text_tokens = self.decode_text(text_tokens, ids)
        if "single_stream" in has:
            patch_mask = jnp.zeros(images.shape[:1] + (self._grid() ** 2,), bool)
            text_tokens, patch_tokens = self.encode_stream(images, ids, patch_mask)
            if "deconv_decoder" in has:
                outputs["image"] = self.decode_image(patch_tokens)
            if "stream_itm_head" in has:
                outputs["stream_itm"] = self.stream_itm_logits(text_tokens)
        if "mlm_head" in has:
            outputs["mlm"] = self.mlm_logits(text_tokens)
        return outputs

    def _grid(self) -> int:
        return self.config.image.image_size // self.config.image.patch_size


def build_model(
    cfg, vocab_size: int, special: special_tokens.SpecialIds = special_tokens.SENTENCEPIECE
) -> MultimodalModel:
    """The model with exactly the parts the config's enabled objectives need; `vocab_size`
    and `special` are the tokenizer's (its `vocab_size`, `special_ids`)."""
    from mvl import objectives  # local: objectives import model-free math only

    needed = set()
    for name in objectives.enabled(cfg.objectives):
        needed.update(objectives.get(name).needs(cfg.objectives[name]))
    if not needed:
        raise ValueError("config objectives: no objective has a non-zero weight")
    components = tuple(c for c in COMPONENTS if c in needed)
    if masking.modality_dropout_enabled(cfg.mask.modality_dropout) and (
        "single_stream" not in components
    ):
        raise ValueError(
            "config mask.modality_dropout needs a single-stream encoder (an objective with "
            "encoder='single_stream'); two-tower models always see both modalities"
        )
    mask = cfg.mask.image
    grid = cfg.model.image.image_size // cfg.model.image.patch_size
    drop = mask.kind != "none" and mask.drop
    distill = cfg.objectives.get("distill")
    return MultimodalModel(
        ml_collections.FrozenConfigDict(cfg.model),
        components,
        vocab_size,
        image_mask_token=mask.kind != "none" and not drop and "image" in components,
        image_keep_count=grid * grid - masking.hidden_count(mask, grid) if drop else 0,
        feature_dim=cfg.teacher.image.width if cfg.teacher.kind != "none" else 0,
        codebook_size=distill.codebook_size if distill is not None else 0,
        special=special,
    )


def build_teacher(cfg) -> VisionTower | None:
    """The teacher image tower of `cfg.teacher` (its params live in TrainState.teacher)."""
    if cfg.teacher.kind == "none":
        return None
    if cfg.teacher.kind not in ("frozen", "ema"):
        raise ValueError(
            f"config teacher.kind={cfg.teacher.kind!r} is not one of none, frozen, ema"
        )
    if cfg.teacher.kind == "ema" and dict(cfg.teacher.image) != dict(cfg.model.image):
        raise ValueError("config teacher.kind='ema' needs teacher.image equal to model.image")
    common = dict(
        act=cfg.teacher.get("act") or cfg.model.act,
        ln_eps=cfg.teacher.get("ln_eps") or cfg.model.ln_eps,
        dtype=jnp.dtype(cfg.model.dtype),
    )
    # An EMA teacher averages the student's parameters, so it needs their layout
    # (scanned blocks or not); a frozen one is read from a run saved unscanned.
    scan = cfg.model.scan_layers if cfg.teacher.kind == "ema" else False
    return VisionTower(**dict(cfg.teacher.image), **common, scan=scan)
