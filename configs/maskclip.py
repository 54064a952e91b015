"""MaskCLIP: CLIP + masked self-distillation + MLM (Dong et al., CVPR 2023).

Mask: image 75% random patches, dropped from the student's input (MAE-style [?]); text
      ~20% BERT masking for the MLM branch.
Encoder: ViT student + text transformer; an EMA (mean) teacher copy of the image tower
      sees the full image, momentum 0.996 -> 1 on a cosine [?].
Target: the teacher's per-patch features, turned into soft codeword distributions by an
      online quantizer (codebook of `objectives.distill.codebook_size` = 8192 [?], teacher
      temperature 0.04 [?], student 0.1 [?]; DINO/iBOT defaults); the masked token ids.
Head: a shallow transformer decoder that re-inserts the dropped patches and predicts the
      teacher features (depth `model.feature_decoder.depth` [?]), scored by cross-entropy
      of codeword distributions over the masked patches; a 4-layer text decoder then the
      MLM head. Loss = ITC + 0.05 distill + 0.05 MLM.
ITC runs on the student's masked-image embedding (`objectives.itc.masked_image`) [?]:
one student pass serves both the contrastive and the distillation losses.
Optimiser (SLIP's CLIP recipe): AdamW lr 5e-4, wd 0.5, betas (0.9, 0.98), eps 1e-8.

Run (CPU demo, embedded `shapes` data):
  python -m mvl.main --config configs/maskclip.py:demo --workdir /tmp/mvl_maskclip
Paper size (ViT-B/16 at 224 px; text 12 layers, width 512, 8 heads, context 77):
  python -m mvl.main --config configs/maskclip.py:paper --workdir gs://...

What it should reach: on the demo, retrieval and zero-shot near configs/clip.py:demo.
Paper (YFCC-15M, 25 epochs, batch 4096) [REVIEW]: ImageNet zero-shot 44.5 vs CLIP 37.6,
linear probe 73.7 vs 66.5, fine-tune 83.6 vs 80.5; Flickr30k zero-shot I2T/T2I
70.1/45.6 vs 52.9/32.8; COCO 41.4/25.5 vs 27.5/17.7. Not reproduced here.
"""

from mvl import config as mvl_config


def get_config(arg=None):
    args = mvl_config.parse_arg(arg)
    paper = "paper" in args
    c = mvl_config.base_config("paper" if paper else "demo")
    c.mask.image.update(kind="random", ratio=0.75, drop=True)
    c.mask.text.update(kind="bert", ratio=0.2)
    c.teacher.kind = "ema"
    c.teacher.momentum = 0.996
    c.objectives.itc = dict(weight=1.0, max_scale=100.0, masked_image=True)
    c.objectives.distill = dict(
        weight=0.05,
        head="decoder",
        codebook_size=8192 if paper else 512,
        teacher_temperature=0.04,
        student_temperature=0.1,
    )
    c.objectives.mlm = dict(weight=0.05, encoder="text_decoder")
    c.optim.update(weight_decay=0.5, b1=0.9, b2=0.98, eps=1e-8)
    if paper:
        c.optim.lr = 5e-4
        c.data.max_text_len = 77
        c.model.text.update(width=512, num_heads=8, mlp_dim=2048)
        c.model.text_decoder.update(num_heads=8, mlp_dim=2048)
    return c
