"""The `model` section: the shared towers every method has, and the sections of the
model parts only some methods build, added by the method configs that use them
(`add_model_parts`), so a CLIP run's saved config carries no MLIM decoder.

Which config holds which part section (the objectives that build each part read it):
  fusion          maskvlm (+ _ema, _mvp), retrieval_finetune (ITM's fusion encoder;
                  MaskVLM's MIM / MLM through it)
  pixel_decoder   mae, maskvlm (+ _ema, _mvp), clip_mae (objectives.mim)
  feature_decoder maskclip (objectives.distill / features with head="decoder")
  text_decoder    maskclip (objectives.mlm with encoder="text_decoder")
  single_stream   mlim (MLIM's encoder: mlm / recon / stream_itm)
  deconv_decoder  mlim (objectives.recon)
  caption_decoder siglip2 (objectives.caption: LocCa's captioning decoder)
"""

from __future__ import annotations

import ml_collections

from mvl.config.errors import ConfigError
from mvl.config.sizes import SIZES


def model_section(s: dict, image_size, max_text_len) -> ml_collections.ConfigDict:
    """The towers and settings every method's model has (`s`: a size)."""
    return ml_collections.ConfigDict(
        dict(
            image=dict(
                image_size=image_size,
                patch_size=s["patch_size"],
                # Stochastic depth: each block's residual branches are dropped per
                # example with this probability during training (BEiT / MVP: 0.1).
                drop_path=0.0,
                # > 0: each residual branch is scaled by a learned per-channel vector
                # initialised at this value (CaiT / BEiT's layer scale; BEiT-B: 0.1).
                layer_scale=0.0,
                width=s["width"],
                depth=s["image_depth"],
                num_heads=s["heads"],
                mlp_dim=4 * s["width"],
                stem=s["stem"],  # "patch" (ViT's linear embedding) or "conv" (shallow CNN)
                pixel_mean=(0.5, 0.5, 0.5),
                pixel_std=(0.25, 0.25, 0.25),
                pre_norm=False,  # LayerNorm the embedded tokens first (CLIP's ln_pre)
                # "learned" (a parameter) or "sincos2d": MAE's fixed 2-D sine-cosine
                # table, no parameter (mvl/models/positions.py); width divisible by 4
                positions="learned",
            ),
            text=dict(
                max_len=max_text_len,
                width=s["width"],
                depth=s["text_depth"],
                num_heads=s["heads"],
                mlp_dim=4 * s["width"],
                # CLIP's text tower (imported weights): causal attention, pooled at the
                # last non-pad token (end-of-text); mvl's own: bidirectional, [CLS] first
                causal=False,
                pool="first",  # first | last
            ),
            embed_dim=s["embed_dim"],
            init_temperature=0.07,
            act="gelu",
            ln_eps=1e-6,
            # compute dtype (float32 | bfloat16); parameters and optimizer state stay float32
            dtype=s.get("dtype", "float32"),
            remat="none",  # recompute blocks in the backward pass: none | full | dots
            # the attention kernel (mvl/models/attention.py), same numbers from each:
            # xla (any device) | cudnn (NVIDIA GPUs, bfloat16, head dim a multiple of 8
            # up to 128) | splash (TPU: Pallas splash attention)
            attention="xla",
            # each block stack as one nn.scan: compile time independent of depth
            scan_layers=s.get("scan_layers", False),
        )
    )


def _part_sections(s: dict) -> dict[str, dict]:
    return dict(
        fusion=dict(depth=s["fusion_depth"], num_heads=s["heads"], mlp_dim=4 * s["width"]),
        pixel_decoder=dict(
            width=s["decoder_width"],
            depth=s["fusion_depth"],
            num_heads=s["heads"],
            mlp_dim=4 * s["decoder_width"],
            cross_attention=True,
            positions="learned",  # or "sincos2d" (MAE's decoder), as model.image.positions
            # carry the encoder's [CLS] through the decoder's blocks, dropped only before
            # the pixel prediction (MAE); False: the decoder sees the patch tokens only
            keep_cls=False,
        ),
        # MaskCLIP: predicts the teacher's features of hidden patches (shallow [?]).
        feature_decoder=dict(
            width=s["decoder_width"],
            depth=s["fusion_depth"],
            num_heads=s["heads"],
            mlp_dim=4 * s["decoder_width"],
        ),
        # MaskCLIP: text-only transformer between the text tower and the MLM head.
        text_decoder=dict(
            depth=s["text_decoder_depth"], num_heads=s["heads"], mlp_dim=4 * s["width"]
        ),
        # MLIM: one transformer over [text; CNN patch embeddings].
        single_stream=dict(
            width=s["width"],
            depth=s["image_depth"],
            num_heads=s["heads"],
            mlp_dim=4 * s["width"],
        ),
        # MLIM: channels of the first of log2(patch_size) transposed convolutions
        # (halving after each); the paper does not give them [?].
        deconv_decoder=dict(width=s["deconv_width"]),
        # SigLIP 2 / LocCa: the captioning decoder (causal self-attention, cross-attention
        # to the image's patch tokens); its depth in the paper is not known here [?].
        caption_decoder=dict(
            width=s["width"],
            depth=s["fusion_depth"],
            num_heads=s["heads"],
            mlp_dim=4 * s["width"],
        ),
    )


PART_NAMES = tuple(_part_sections(SIZES["demo"]))


def add_model_parts(c, size: str, *parts: str):
    """Adds the `model.<part>` sections of `parts` (PART_NAMES) sized for `size`; a
    section the config already has is kept as it is."""
    sections = _part_sections(SIZES[size])
    for part in parts:
        if part not in sections:
            raise ConfigError(f"unknown model part {part!r}; parts: {', '.join(PART_NAMES)}")
        if part not in c.model:
            c.model[part] = sections[part]
