"""CLIP weights in and out (mvl/weights/), the CLIP BPE tokenizer (mvl/data/clip_bpe.py)
and python -m mvl.embed, against fixtures written by real open_clip and Hugging Face
models (tests/fixtures/make_clip_fixtures.py; torch is not needed here)."""

import importlib.util
import os

import jax
import numpy as np
import pytest
from safetensors import numpy as safetensors_numpy

from mvl import embed
from mvl.data.clip_bpe import ClipBpeTokenizer
from mvl.mask.bert import bert_text_mask
from mvl.runtime.errors import UserError
from mvl.train.loop import Trainer
from mvl.train.step import make_masks
from mvl.weights import __main__ as convert_cli
from mvl.weights import open_clip as open_clip_layout
from mvl.weights import weights_file
from tests.fixtures import clip_parity

FIXTURES = os.path.join(os.path.dirname(__file__), "fixtures", "clip")
INPUTS = os.path.join(FIXTURES, "inputs.npz")
REFERENCE = os.path.join(FIXTURES, "reference.npz")
OPEN_CLIP = dict(
    kind="open_clip",
    checkpoint=os.path.join(FIXTURES, "open_clip_tiny.safetensors"),
    tokenizer=os.path.join(FIXTURES, "bpe_tiny.txt.gz"),
    arch=os.path.join(FIXTURES, "open_clip_tiny.json"),
)
HF = dict(
    kind="hf",
    checkpoint=os.path.join(FIXTURES, "hf_tiny", "model.safetensors"),
    tokenizer=os.path.join(FIXTURES, "hf_tokenizer", "tokenizer.json"),
    arch=None,  # read from hf_tiny/config.json
)


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """{"open_clip": run dir, "hf": run dir} of the tiny fixtures."""
    root = tmp_path_factory.mktemp("converted")
    return {
        source["kind"]: clip_parity.convert_to(str(root / source["kind"]), **source)
        for source in (OPEN_CLIP, HF)
    }


@pytest.mark.parametrize("kind", ["open_clip", "hf"])
def test_converted_embeddings_match_the_original_model(converted, tmp_path, kind):
    image, text = clip_parity.max_differences(
        converted[kind], INPUTS, REFERENCE, kind, str(tmp_path)
    )
    assert image < 1e-5 and text < 1e-5, (image, text)


def test_export_then_import_is_exact(converted, tmp_path):
    exported = str(tmp_path / "export.safetensors")
    assert (
        convert_cli.main(["export", "--checkpoint", converted["open_clip"], "--out", exported]) == 0
    )
    state = safetensors_numpy.load_file(exported)
    original = weights_file.load(OPEN_CLIP["checkpoint"])
    assert set(state) == set(original)  # open_clip loads it strictly
    # Only the class token's position moves (folded into mvl's [CLS] on import).
    folded = {"visual.class_embedding", "visual.positional_embedding"}
    for key in set(original) - folded:
        np.testing.assert_array_equal(state[key], original[key], err_msg=key)
    np.testing.assert_array_equal(
        state["visual.positional_embedding"][1:], original["visual.positional_embedding"][1:]
    )
    first = open_clip_layout.to_mvl(original, "original")
    again = open_clip_layout.to_mvl(state, "exported")
    same = jax.tree.map(lambda a, b: a.tobytes() == b.tobytes(), first, again)
    assert all(jax.tree.leaves(same))
    re_exported = open_clip_layout.from_mvl(again)
    assert all(re_exported[k].tobytes() == state[k].tobytes() for k in state)
    assert (tmp_path / "export.json").exists()  # open_clip's model config beside it
    # Importing the export (with the config written beside it) restores the run
    # directory bitwise, the [MASK] row export dropped included.
    reimported = clip_parity.convert_to(
        str(tmp_path / "reimported"),
        "open_clip",
        exported,
        OPEN_CLIP["tokenizer"],
        str(tmp_path / "export.json"),
    )
    first, again = (clip_parity.embed_params(d) for d in (converted["open_clip"], reimported))
    same = jax.tree.map(lambda a, b: a.tobytes() == b.tobytes(), first, again)
    assert all(jax.tree.leaves(same))


def test_bpe_ids_match_open_clip_and_hugging_face():
    reference = np.load(os.path.join(FIXTURES, "tokenizer_reference.npz"))
    ours = ClipBpeTokenizer(OPEN_CLIP["tokenizer"])
    np.testing.assert_array_equal(
        ours.encode(list(reference["samples"]), 77), reference["open_clip"]
    )
    hf_samples = list(reference["hf_samples"])
    for vocabulary in ("tokenizer.json", "merges.txt"):  # merges.txt: vocab.json beside it
        hf = ClipBpeTokenizer(os.path.join(FIXTURES, "hf_tokenizer", vocabulary))
        body = hf.encode(hf_samples, 77)[:, 1:76]
        body[body == hf.eos_id] = 0  # HF's ids stop before the end token
        np.testing.assert_array_equal(body, reference["hf"], err_msg=vocabulary)
    assert ours.decode(ours.encode("A photo of a CAT", 77)) == "a photo of a cat"
    assert ours.clip_vocab_size == 512 + 1000 + 2  # bytes, merges, start / end
    assert ours.mask_id == ours.clip_vocab_size and ours.vocab_size == ours.mask_id + 1
    assert ours.decode([ours.bos_id, ours.mask_id, *ours.encode("cat", 77)[1:]]) == "cat"


def test_converted_token_embedding_gains_a_mean_mask_row(converted):
    original = weights_file.load(OPEN_CLIP["checkpoint"])["token_embedding.weight"]
    embedding = clip_parity.embed_params(converted["open_clip"])["text"]["token_embedding"]
    embedding = embedding["embedding"]
    np.testing.assert_array_equal(embedding[:-1], original)
    np.testing.assert_array_equal(embedding[-1], original.mean(0, dtype=np.float32))


def test_clip_masking_keeps_captions_own_pad_id_and_skips_padding():
    """CLIP's pad id 0 is "!": a caption's "!" may be masked, the padding never."""
    tokenizer = ClipBpeTokenizer(OPEN_CLIP["tokenizer"])
    ids = tokenizer.encode(["wow!? a cat!.", "a dog"], 24)  # "!?" -> 0, "?"
    assert np.sum(ids[0] == 0) > ids.shape[1] - np.argmax(ids[0] == tokenizer.eos_id) - 1
    special = tokenizer.special_ids
    end = np.argmax(ids == tokenizer.eos_id, axis=1)
    caption = (np.arange(24) > 0) & (np.arange(24) < end[:, None])  # start .. end, exclusive
    np.testing.assert_array_equal(np.asarray(special.maskable(jax.numpy.asarray(ids))), caption)
    corrupted, picked = bert_text_mask(
        jax.random.PRNGKey(0), jax.numpy.asarray(ids), 1.0, tokenizer.vocab_size, special, 1.0, 0.0
    )
    np.testing.assert_array_equal(np.asarray(picked), caption)
    np.testing.assert_array_equal(np.asarray(corrupted)[caption], tokenizer.mask_id)


def overrides_of(run_dir: str) -> dict[str, str]:
    with open(os.path.join(run_dir, "config_overrides.txt")) as f:
        flags = f.read().split()
    return dict(flag[len("--config.") :].split("=", 1) for flag in flags)


def test_mvp_trains_with_an_imported_open_clip_teacher(tiny_config, converted, tmp_path):
    run = converted["open_clip"]
    mvp = Trainer(tiny_config("mvp", **{"teacher.checkpoint": run}), str(tmp_path))
    assert mvp.cfg.teacher.image.pre_norm and mvp.cfg.teacher.act == "quick_gelu"
    assert mvp.restore()[0] == 0
    teacher = open_clip_layout.to_mvl(weights_file.load(OPEN_CLIP["checkpoint"]), "")["image"]
    same = jax.tree.map(np.array_equal, jax.device_get(mvp.state.teacher), teacher)
    assert all(jax.tree.leaves(same))
    losses = [float(mvp.step(mvp.next_batch())["features/loss"]) for _ in range(4)]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0], losses


def test_clip_run_starts_from_converted_weights(tiny_config, converted, tmp_path):
    run = converted["hf"]
    cfg = tiny_config("clip", **overrides_of(run), **{"init.checkpoint": run})
    clip = Trainer(cfg, str(tmp_path))
    assert clip.restore()[0] == 0
    expected = clip_parity.embed_params(run)
    same = jax.tree.map(np.array_equal, jax.device_get(clip.state.params), expected)
    assert all(jax.tree.leaves(same))
    assert np.isfinite(float(clip.step(clip.next_batch())["loss"]))


def same_entries(params: dict, imported: dict) -> list[str]:
    """Paths of `imported`'s arrays that `params` holds unchanged."""
    same = []
    for path, value in jax.tree_util.tree_leaves_with_path(imported):
        node = params
        for key in path:
            node = node.get(key.key) if isinstance(node, dict) else None
        if node is not None and np.array_equal(node, value):
            same.append(jax.tree_util.keystr(path))
    return same


@pytest.mark.slow(minutes=1.4)
def test_maskvlm_trains_from_converted_open_clip_towers(tiny_config, converted, tmp_path):
    run = converted["open_clip"]
    flags = {**overrides_of(run), "init.checkpoint": run, "init.strict": "false"}
    trainer = Trainer(tiny_config("maskvlm", **flags), str(tmp_path))
    tokenizer = trainer.tokenizer
    assert isinstance(tokenizer, ClipBpeTokenizer) and tokenizer.mask_id == 1514
    assert trainer.restore()[0] == 0
    params, imported = jax.device_get(trainer.state.params), clip_parity.embed_params(run)
    for tower in ("image", "text"):  # every imported array was taken ([MASK] row too)
        leaves = jax.tree.leaves(imported[tower])
        assert len(same_entries(params[tower], imported[tower])) == len(leaves), tower
    assert params["text"]["token_embedding"]["embedding"].shape[0] == tokenizer.vocab_size
    assert params["mlm_head"]["to_vocab"]["kernel"].shape[-1] == tokenizer.vocab_size

    batch = trainer.next_batch()
    masks = make_masks(trainer.cfg, batch, jax.random.PRNGKey(1), trainer.model)
    ids, picked = np.asarray(batch["text"]), np.asarray(masks.text_picked)
    end = np.argmax(ids == tokenizer.eos_id, axis=1)
    caption = (np.arange(ids.shape[1]) > 0) & (np.arange(ids.shape[1]) < end[:, None])
    assert np.all(ids[:, 0] == tokenizer.bos_id) and picked.sum() > 0
    assert np.all(caption[picked])  # only real caption tokens, never start / end / pads
    corrupted = np.asarray(masks.text_ids)
    assert np.mean(corrupted[picked] == tokenizer.mask_id) > 0.5  # 80% become [MASK]
    np.testing.assert_array_equal(corrupted[~picked], ids[~picked])

    metrics = [trainer.step(trainer.next_batch()) for _ in range(3)]
    losses = [float(m["loss"]) for m in metrics]
    assert np.all(np.isfinite(losses)) and float(metrics[-1]["mlm/loss"]) > 0, losses


def test_embed_cli_on_image_files_and_caption_lines(converted, tmp_path):
    from PIL import Image

    images = np.load(INPUTS)["images"]
    for i, image in enumerate(images[:2]):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    samples = np.load(os.path.join(FIXTURES, "tokenizer_reference.npz"))["samples"][:5]
    (tmp_path / "captions.txt").write_text("\n".join(samples) + "\n")
    out = tmp_path / "out.npz"
    argv = [
        "--checkpoint",
        converted["open_clip"],
        "--image-dir",
        str(tmp_path),
        "--texts",
        str(tmp_path / "captions.txt"),
        "--out",
        str(out),
    ]
    assert embed.main(argv) == 0
    got, reference = np.load(out), np.load(REFERENCE)
    assert got["image_embeddings"].shape == (2, 16) and got["text_embeddings"].shape == (5, 16)
    for name in ("image_embeddings", "text_embeddings"):
        np.testing.assert_allclose(np.linalg.norm(got[name], axis=1), 1.0, atol=1e-5)
    assert list(got["image_files"]) == ["0.png", "1.png"]
    np.testing.assert_allclose(got["image_embeddings"], reference["open_clip_image"][:2], atol=1e-5)
    np.testing.assert_allclose(got["text_embeddings"], reference["open_clip_text"], atol=1e-5)


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_a_torch_checkpoint_without_torch_is_named(tmp_path):
    path = tmp_path / "model.bin"
    path.write_bytes(b"not read")
    with pytest.raises(UserError, match="needs torch"):
        weights_file.load(str(path))


def test_zeroshot_logits_of_converted_open_clip_equal_open_clip(converted, tmp_path):
    """The whole zero-shot path (BPE prompts, text tower, prompt ensembling, image tower)
    of a converted open_clip model against open_clip's build_zero_shot_classifier and
    its 100 x image @ classifier logits (fixtures/clip/zeroshot_reference.npz)."""
    import json

    from PIL import Image

    from mvl.evaluate import __main__ as evaluate_cli

    reference = np.load(os.path.join(FIXTURES, "zeroshot_reference.npz"))
    class_names = [str(name) for name in reference["class_names"]]
    images = np.load(INPUTS)["images"]
    # folders sort in class order; images 0..3 stay in order: classes 0, 0, 1, 2
    labels = [0, 0, 1, 2]
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = tmp_path / "val" / f"{label}_{class_names[label].replace(' ', '_')}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{i}.png")
    (tmp_path / "names.txt").write_text("\n".join(class_names) + "\n")
    (tmp_path / "templates.json").write_text(json.dumps([str(t) for t in reference["templates"]]))
    logits_file = tmp_path / "logits.npz"
    section = "--config.evals.zeroshot_benchmark"
    argv = [
        "--checkpoint", converted["open_clip"], "--eval", "zeroshot_benchmark",
        f"{section}.path={tmp_path / 'val'}",
        f"{section}.class_names={tmp_path / 'names.txt'}",
        f"{section}.templates={tmp_path / 'templates.json'}",
        f"{section}.logits_file={logits_file}",
    ]  # fmt: skip
    assert evaluate_cli.main(argv) == 0
    got = np.load(logits_file)
    np.testing.assert_array_equal(got["labels"], labels)
    np.testing.assert_allclose(got["logits"], reference["logits"], rtol=1e-5, atol=1e-5)
