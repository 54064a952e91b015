"""The sizes every config accepts: what `demo` and `paper` set before a method's recipe."""

SIZES = {
    # Sized so the MaskVLM demo trains in minutes on 2 CPU cores (see README).
    "demo": dict(
        total_steps=300,
        batch_size=64,
        image_size=64,
        patch_size=8,
        max_text_len=32,
        width=96,
        image_depth=3,
        text_depth=2,
        fusion_depth=1,
        text_decoder_depth=2,
        deconv_width=32,  # full-resolution convolutions dominate a CPU step: keep them thin
        heads=4,
        decoder_width=96,
        embed_dim=96,
        lr=1e-3,
        warmup_steps=30,
        checkpoint_every=100,
        stem="patch",
        log_every=25,
        eval_every=0,
    ),
    # ViT-B/16-shaped towers at 224 px, 12-layer text, 3-block fusion and decoder. No
    # recipe: each method config sets its paper's batch, schedule, lr, tokenizer and
    # sizes (base_config leaves batch_size, total_steps, lr and warmup_steps None).
    "paper": dict(
        image_size=224,
        patch_size=16,
        max_text_len=77,
        width=768,
        image_depth=12,
        text_depth=12,
        fusion_depth=3,
        text_decoder_depth=4,
        deconv_width=256,
        heads=12,
        decoder_width=768,
        embed_dim=512,
        # Every paper trained in mixed precision (fp16 on GPUs, bf16 on TPUs); mvl
        # computes in bf16 with float32 parameters and optimizer state.
        dtype="bfloat16",
        scan_layers=True,  # a pod-scale compile in minutes rather than tens of minutes
        checkpoint_every=5000,
        stem="patch",
        log_every=100,
        eval_every=10_000,
    ),
}
