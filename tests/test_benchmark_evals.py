"""The benchmark evaluators through `python -m mvl.evaluate`, on tiny datasets built here
in each on-disk format, against embeddings computed separately and the metrics written
plainly (full similarity matrix, top-K sets)."""

import glob
import json
import os

import numpy as np
import pytest
from PIL import Image

from mvl.config import loading
from mvl.evaluate.benchmarks import class_names as names_lib
from tests.conftest import TINY, has_key


def saved_run(method, tokenizer_path, tmp_path_factory):
    """A saved tiny run of `method` (2 steps) and its live trainer."""
    from mvl.train.loop import Trainer

    cfg = loading.load_config(f"configs/{method}.py:demo")
    tiny = {key: value for key, value in TINY.items() if has_key(cfg, key)}
    loading.apply_overrides(cfg, {**tiny, "data.tokenizer": tokenizer_path})
    run = tmp_path_factory.mktemp("bench") / "run"
    trainer = Trainer(cfg, str(run))
    for _ in range(2):
        trainer.step(trainer.next_batch())
    assert trainer.save()
    trainer.checkpointer.wait()
    return run, trainer


@pytest.fixture(scope="module")
def clip_run(tokenizer_path, tmp_path_factory):
    return saved_run("clip", tokenizer_path, tmp_path_factory)


WORDS = ["red", "dog", "blue", "car", "green", "tree", "small", "house", "boat"]


def png(path, seed: int, size=(40, 48)):
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def embed(trainer, image_paths, texts):
    """Image and text embeddings computed apart from the evaluators (L2-normalised)."""
    from mvl.data.decode import decode_image
    from mvl.evaluate.embeddings import Embedder

    pixels = np.stack([decode_image(p.read_bytes(), 32) for p in image_paths]) / np.float32(255)
    embedder = Embedder(trainer.model, trainer.mesh, 8)
    params = trainer.state.params
    images = embedder.images(params, pixels.astype(np.float32))
    ids = trainer.tokenizer.encode(list(texts), trainer.cfg.data.max_text_len)
    texts = embedder.texts(params, ids)
    unit = lambda x: x / np.linalg.norm(x, axis=-1, keepdims=True)
    return unit(np.asarray(images, np.float32)), unit(np.asarray(texts, np.float32))


def run_cli(run, tmp_path, *args):
    from mvl.evaluate import __main__ as evaluate_cli

    out = tmp_path / "metrics.json"
    argv = ["--checkpoint", str(run), "--json", str(out), "--tensorboard", str(tmp_path / "tb")]
    assert evaluate_cli.main(argv + list(args)) == 0
    return json.loads(out.read_text())


def test_retrieval_benchmark_on_a_karpathy_split(clip_run, tmp_path):
    run, trainer = clip_run
    images_dir = tmp_path / "images"
    entries, paths, captions = [], [], []
    for i in range(5):
        split = "train" if i == 2 else "test"  # one train image the test split leaves out
        nested = i % 2 == 0  # COCO's images_dir/filepath/filename; Flickr's flat layout
        path = png(images_dir / ("val2014" if nested else "") / f"im{i}.jpg.png", seed=i)
        sentences = [
            f"{WORDS[i]} {WORDS[(i + j + 1) % 9]} {'and ' * j}{WORDS[8 - j]}" for j in range(5)
        ]
        entry = dict(filename=path.name, split=split, sentences=[{"raw": s} for s in sentences])
        if nested:
            entry["filepath"] = "val2014"
        entries.append(entry)
        if split == "test":
            paths.append(path)
            captions += sentences
    karpathy = tmp_path / "dataset_flickr30k.json"
    karpathy.write_text(json.dumps({"images": entries, "dataset": "flickr30k"}))

    metrics = run_cli(
        run,
        tmp_path,
        "--eval",
        "flickr",
        "--config.evals.flickr.type=retrieval_benchmark",
        f"--config.evals.flickr.karpathy_json={karpathy}",
        f"--config.evals.flickr.images_dir={images_dir}",
        "--config.evals.flickr.chunk_images=3",  # two chunks, the last one short
        "--config.evals.flickr.block_size=2",
    )
    assert metrics["flickr/images"] == 4 and metrics["flickr/captions"] == 20
    image_emb, text_emb = embed(trainer, paths, captions)
    caption_image = np.repeat(np.arange(4), 5)
    similarity = image_emb @ text_emb.T
    assert np.ptp(similarity, axis=1).min() > 1e-4, "degenerate case: every caption alike"
    for k in (1, 5, 10):
        # A hit: the best true score is at least the K-th highest score of the row (a
        # tie with a wrong candidate favours the true one, as the evaluator counts it).
        kth_text = -np.sort(-similarity, axis=1)[:, k - 1]
        best_own = np.array([similarity[i, caption_image == i].max() for i in range(4)])
        kth_image = -np.sort(-similarity.T, axis=1)[:, min(k, 4) - 1]
        own = similarity.T[np.arange(20), caption_image]
        assert metrics[f"flickr/image_to_text/r@{k}"] == pytest.approx(
            np.mean(best_own >= kth_text)
        )
        assert metrics[f"flickr/text_to_image/r@{k}"] == pytest.approx(np.mean(own >= kth_image))
    # Hand-known: with 4 images, every caption's own image is in its top 5.
    assert metrics["flickr/text_to_image/r@5"] == 1.0
    assert list((tmp_path / "tb").iterdir()), "no TensorBoard events written"

    # The same pairs as a .jsonl table, rows shuffled: grouped by image, the same recalls.
    rows = [{"image": str(p.relative_to(images_dir)), "caption": c} for p, c in
            zip(np.repeat(paths, 5), captions)]  # fmt: skip
    table = tmp_path / "pairs.jsonl"
    order = np.random.default_rng(0).permutation(len(rows))
    table.write_text("".join(json.dumps(rows[i]) + "\n" for i in order))
    again = run_cli(
        run,
        tmp_path,
        "--eval",
        "pairs",
        "--config.evals.pairs.type=retrieval_benchmark",
        f"--config.evals.pairs.pairs_file={table}",
        f"--config.evals.pairs.images_dir={images_dir}",
    )
    for key, value in metrics.items():
        if key.startswith("flickr/"):
            assert again[key.replace("flickr/", "pairs/")] == pytest.approx(value), key

    # The same pairs as img2dataset-style webdataset shards (one pair per key, the image
    # repeated), in two shards: grouped by KEY.json's image_id, then by identical bytes.
    for with_ids in (True, False):
        shards = tmp_path / f"shards_{with_ids}"
        pairs = [(paths[i // 5], caption) for i, caption in enumerate(captions)]
        write_pair_shards(shards, pairs, with_ids)
        shard_metrics = run_cli(
            run,
            tmp_path,
            "--eval",
            "wds",
            "--config.evals.wds.type=retrieval_benchmark",
            f"--config.evals.wds.pairs_file={shards}",
        )
        assert shard_metrics["wds/images"] == 4 and shard_metrics["wds/captions"] == 20
        for key, value in metrics.items():
            if key.startswith("flickr/"):
                assert shard_metrics[key.replace("flickr/", "wds/")] == pytest.approx(value), key


def write_pair_shards(folder, pairs, with_ids: bool):
    """pairs [(image path, caption)] as KEY.png + KEY.txt (+ KEY.json with image_id),
    shuffled, split over two .tar shards."""
    import io
    import tarfile

    folder.mkdir()
    order = np.random.default_rng(1).permutation(len(pairs))
    for shard, part in enumerate(np.array_split(order, 2)):
        with tarfile.open(folder / f"{shard:05d}.tar", "w") as tar:
            for key in part:
                path, caption = pairs[key]
                members = {"png": path.read_bytes(), "txt": caption.encode()}
                if with_ids:
                    members["json"] = json.dumps({"image_id": path.name}).encode()
                for extension, data in members.items():
                    info = tarfile.TarInfo(f"{key:06d}.{extension}")
                    info.size = len(data)
                    tar.addfile(info, io.BytesIO(data))


@pytest.mark.slow(minutes=1.5)
def test_retrieval_benchmark_reranks_with_the_itm_head(tokenizer_path, tmp_path_factory, tmp_path):
    """MaskVLM: the ITM head re-scores each query's top k (here every candidate: k=12),
    equal to the re-ranked recalls computed from the model's own ITM scores."""
    from mvl.evaluate.embeddings import Embedder
    from mvl.evaluate.multi_caption_retrieval import reranked_multi_caption_recall

    run, trainer = saved_run("maskvlm", tokenizer_path, tmp_path_factory)
    paths = [png(tmp_path / f"{i}.png", seed=i) for i in range(4)]
    captions = [
        f"{WORDS[i]} {WORDS[(i + j + 2) % 9]} {WORDS[8 - j]}" for i in range(4) for j in range(3)
    ]
    table = tmp_path / "pairs.csv"
    table.write_text("image,caption\n" + "".join(f"{i}.png,{c}\n" for i, c in
                     zip(np.repeat(range(4), 3), captions)))  # fmt: skip
    metrics = run_cli(
        run,
        tmp_path,
        "--eval",
        "f",
        "--config.evals.f.type=retrieval_benchmark",
        f"--config.evals.f.pairs_file={table}",
        f"--config.evals.f.images_dir={tmp_path}",
        "--config.evals.f.itm_rerank_k=12",
    )
    image_emb, text_emb = embed(trainer, paths, captions)
    embedder, params = Embedder(trainer.model, trainer.mesh, 8), trainer.state.params
    from mvl.data.decode import decode_image

    pixels = np.stack([decode_image(p.read_bytes(), 32) for p in paths]) / np.float32(255)
    ids = trainer.tokenizer.encode(captions, trainer.cfg.data.max_text_len)
    image_tokens = embedder.image_tokens(params, pixels.astype(np.float32))
    text_tokens = embedder.text_tokens(params, ids)

    def itm(images, texts):
        return embedder.itm_scores(params, image_tokens[images], text_tokens[texts], ids[texts])

    expected = reranked_multi_caption_recall(
        image_emb, text_emb, np.repeat(np.arange(4), 3), itm, 12, ks=(1, 5, 10)
    )
    for key, value in expected.items():
        assert metrics[f"f_itm/{key}"] == pytest.approx(value), key
    assert "f/image_to_text/r@1" in metrics


def test_zeroshot_benchmark_on_an_image_folder(clip_run, tmp_path):
    run, trainer = clip_run
    root, paths, labels = tmp_path / "val", [], []
    for label, folder in enumerate(["n001", "n002", "n003"]):  # sorted = label order
        for j in range(3):
            paths.append(png(root / folder / f"{j}.png", seed=10 * label + j, size=(50, 36)))
            labels.append(label)
    (root / "n002" / "notes.txt").write_text("not an image: skipped")
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\ncar\n")
    templates = tmp_path / "templates.json"
    templates.write_text(json.dumps(["a photo of a {}.", "a drawing of the {}."]))

    metrics = run_cli(
        run,
        tmp_path,
        "--eval",
        "zeroshot_benchmark",
        f"--config.evals.zeroshot_benchmark.path={root}",
        f"--config.evals.zeroshot_benchmark.class_names={names}",
        f"--config.evals.zeroshot_benchmark.templates={templates}",
        "--config.evals.zeroshot_benchmark.chunk_images=4",
    )
    prompts = [
        t.format(c) for c in ("cat", "dog", "car") for t in json.loads(templates.read_text())
    ]
    image_emb, prompt_emb = embed(trainer, paths, prompts)
    classes = prompt_emb.reshape(3, 2, -1).mean(1)
    classes /= np.linalg.norm(classes, axis=-1, keepdims=True)
    predicted = np.argmax(image_emb @ classes.T, axis=1)
    assert metrics["zeroshot_benchmark/top1"] == pytest.approx(np.mean(predicted == labels))
    assert metrics["zeroshot_benchmark/top5"] == 1.0  # 3 classes: always in the top 5
    assert metrics["zeroshot_benchmark/chance"] == pytest.approx(1 / 3)
    assert metrics["zeroshot_benchmark/images"] == 9


def test_a_csv_caption_table_groups_rows_by_image(tmp_path):
    from mvl.evaluate.benchmarks.caption_table import read_caption_table
    from mvl.runtime.errors import UserError

    for name in ("a.png", "b.png"):
        png(tmp_path / name, seed=0)
    table = tmp_path / "pairs.csv"
    table.write_text('image,caption\nb.png,one\na.png,"two, with a comma"\nb.png,three\n')
    data = read_caption_table(str(table), str(tmp_path))
    assert [p.rsplit("/", 1)[1] for p in data.image_paths] == ["b.png", "a.png"]
    assert data.captions == ["one", "two, with a comma", "three"]
    assert data.caption_image.tolist() == [0, 1, 0]
    table.write_text("image,caption\nc.png,missing\n")
    with pytest.raises(UserError, match="row 2: image .*c.png does not exist"):
        read_caption_table(str(table), str(tmp_path))


def test_the_shipped_class_names_and_templates():
    where = "test"
    assert len(names_lib.class_names("imagenet1k", where)) == 1000
    assert len(names_lib.templates("openai_80", where, "imagenet1k")) == 80
    assert names_lib.templates("imagenet1k:openai_7", where)[0] == "itap of a {}."
    assert len(names_lib.class_names("cifar100", where)) == 100
    assert names_lib.class_names("cifar10", where)[0] == "airplane"
    assert len(names_lib.templates("cifar10:clip_18", where)) == 18


@pytest.mark.parametrize(
    "override, message",
    [
        ("class_names=nosuchset", "not a shipped set"),
        ("class_names=cifar10", "has 10 names but the source has 1 classes"),
        ("templates=imagenet1k:openai_9", "offers templates"),
    ],
)
def test_a_bad_zeroshot_option_is_one_line(clip_run, tmp_path, override, message):
    from mvl.runtime.errors import UserError

    run, _ = clip_run
    png(tmp_path / "val" / "a" / "0.png", seed=0)
    with pytest.raises(UserError, match=message):
        from mvl.evaluate import __main__ as evaluate_cli

        evaluate_cli.evaluate(
            evaluate_cli.config_for(type("A", (), {"config": None, "checkpoint": str(run)}), {}),
            str(run),
            ["zs"],
            {
                "evals.zs.type": "zeroshot_benchmark",
                "evals.zs.path": str(tmp_path / "val"),
                f"evals.zs.{override.split('=')[0]}": override.split("=")[1],
            },
        )


def coloured_png(path, colour, seed):
    """A flat colour with a little noise: two colours are two separable classes."""
    rng = np.random.default_rng(seed)
    pixels = np.clip(np.array(colour) + rng.normal(0, 20, (36, 36, 3)), 0, 255)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels.astype(np.uint8)).save(path)
    return path


def test_linear_probe_benchmark_on_train_and_test_folders(clip_run, tmp_path):
    from mvl.data.decode import decode_image
    from mvl.evaluate import logistic_regression
    from mvl.evaluate.embeddings import Embedder

    run, trainer = clip_run
    colours = {"blue": (30, 40, 200), "red": (200, 40, 30)}
    paths = {"train": [], "test": []}
    for split, count in (("train", 10), ("test", 4)):
        for label, (folder, colour) in enumerate(sorted(colours.items())):
            for j in range(count):
                path = coloured_png(tmp_path / split / folder / f"{j}.png", colour, 100 * label + j)
                paths[split].append((path, label))
    metrics = run_cli(
        run,
        tmp_path,
        "--eval",
        "probe_bench",
        "--config.evals.probe_bench.type=linear_probe_benchmark",
        f"--config.evals.probe_bench.train_path={tmp_path / 'train'}",
        f"--config.evals.probe_bench.path={tmp_path / 'test'}",
        "--config.evals.probe_bench.features=mean",
        "--config.evals.probe_bench.l2_grid=(0.001, 0.1)",
        "--config.evals.probe_bench.max_steps=100",
        "--config.evals.probe_bench.knn_k=3",
    )
    embedder = Embedder(trainer.model, trainer.mesh, 8)

    def features(split):
        pixels = np.stack([decode_image(p.read_bytes(), 32) for p, _ in paths[split]]) / 255
        feats = embedder.image_features(trainer.state.params, pixels.astype(np.float32), "mean")
        return feats, np.array([label for _, label in paths[split]])

    (train_x, train_y), (test_x, test_y) = features("train"), features("test")
    expected = logistic_regression.swept_linear_probe(
        train_x, train_y, test_x, test_y, 2, l2_grid=(0.001, 0.1), max_steps=100
    )
    assert metrics["probe_bench/top1"] == pytest.approx(expected["top1"])
    assert metrics["probe_bench/l2"] == expected["l2"]
    assert metrics["probe_bench/top1"] == 1.0  # colour is in every pixel
    assert metrics["probe_bench/chance"] == 0.5
    # kNN on the same features, in one block here and scored apart from the evaluator
    from mvl.evaluate import knn

    knn_top1 = knn.knn_accuracy(train_x, train_y, test_x, test_y, 2, k=3, block_size=10**6)
    assert metrics["probe_bench/knn_top1"] == pytest.approx(knn_top1)


def tiny_tfds(data_dir):
    """A two-class image dataset prepared with tfds' own builder API (array_record, as
    tfds.data_source reads), nothing downloaded."""
    import tensorflow_datasets as tfds

    class MvlTinyColours(tfds.core.GeneratorBasedBuilder):
        VERSION = tfds.core.Version("1.0.0")
        # A builder defined in a test has no code folder (no checksums to look up);
        # without this, tfds looks for one with importlib_resources, not installed.
        code_path = None

        def _info(self):
            features = {
                "image": tfds.features.Image(shape=(None, None, 3)),
                "label": tfds.features.ClassLabel(names=["blue", "red"]),
            }
            return tfds.core.DatasetInfo(
                builder=self, features=tfds.features.FeaturesDict(features)
            )

        def _split_generators(self, dl_manager):
            return {"validation": self._generate_examples(6)}

        def _generate_examples(self, count):
            for i in range(count):
                colour = (200, 40, 30) if i % 2 else (30, 40, 200)
                yield i, {"image": np.full((20, 24, 3), colour, np.uint8), "label": i % 2}

    MvlTinyColours(data_dir=str(data_dir), file_format="array_record").download_and_prepare()
    return "mvl_tiny_colours"


def test_zeroshot_benchmark_on_a_tfds_dataset(clip_run, tmp_path):
    """The label feature's names are the class names; the images arrive encoded."""
    from mvl.evaluate.benchmarks.tfds_source import read_tfds

    run, trainer = clip_run
    name = tiny_tfds(tmp_path / "tfds")
    metrics = run_cli(
        run,
        tmp_path,
        "--eval",
        "zs",
        "--config.evals.zs.type=zeroshot_benchmark",
        "--config.evals.zs.source=tfds",
        f"--config.evals.zs.tfds_name={name}",
        f"--config.evals.zs.path={tmp_path / 'tfds'}",
    )
    data = read_tfds(name, str(tmp_path / "tfds"), "validation")
    assert data.folder_names == ("blue", "red") and sorted(data.labels) == [0, 0, 0, 1, 1, 1]
    paths = []
    for i in range(6):
        paths.append(tmp_path / f"{i}.png")
        paths[-1].write_bytes(data.images[i])
    image_emb, class_emb = embed(trainer, paths, ["a photo of a blue.", "a photo of a red."])
    predicted = np.argmax(image_emb @ class_emb.T, axis=1)
    assert metrics["zs/top1"] == pytest.approx(np.mean(predicted == data.labels))
    assert metrics["zs/images"] == 6 and metrics["zs/chance"] == 0.5


def test_paper_configs_declare_the_benchmarks_their_arguments_name():
    """configs/X.py:paper,coco=DIR,... : the papers' protocols, at the end of training."""
    cfg = loading.load_config("configs/clip.py:paper,imagenet=/d/in/val,coco=/d/coco")
    assert cfg.evals.imagenet.type == "zeroshot_benchmark" and cfg.evals.imagenet.every_steps == 0
    assert (cfg.evals.imagenet.class_names, cfg.evals.imagenet.templates) == (
        "imagenet1k",
        "openai_80",
    )
    assert cfg.evals.coco.karpathy_json == "/d/coco/dataset_coco.json"
    assert (cfg.evals.coco.split, cfg.evals.coco.type) == ("test", "retrieval_benchmark")
    tuned = loading.load_config("configs/retrieval_finetune.py:paper,flickr30k=/d/f30k")
    assert tuned.evals.flickr30k.karpathy_json == "/d/f30k/dataset_flickr30k.json"
    assert "coco" not in loading.load_config("configs/maskvlm.py:paper").evals


TWO_TOWER_CONFIGS = sorted(
    name
    for name in (os.path.basename(p)[:-3] for p in glob.glob("configs/*.py"))
    if {"itc", "siglip"} & set(loading.load_config(f"configs/{name}.py:demo").objectives)
)


@pytest.mark.parametrize("name", TWO_TOWER_CONFIGS)
def test_every_two_tower_config_takes_the_benchmark_arguments(name):
    """Every method that embeds images and texts can be scored on the papers' data."""
    cfg = loading.load_config(f"configs/{name}.py:demo,imagenet=/d/in,flickr30k=/d/f30k")
    assert cfg.evals.imagenet.path == "/d/in" and cfg.evals.imagenet.every_steps == 0
    assert cfg.evals.flickr30k.karpathy_json == "/d/f30k/dataset_flickr30k.json"


def test_a_table_at_paper_scale_reads_the_benchmarks_its_runs_declare(tmp_path):
    from mvl.tables import runner

    table = runner.load_table("configs/tables/maskvlm_table5.py")
    runs = runner.plan(table, "paper", 1, str(tmp_path), config_args="flickr30k=/d/f30k")
    assert runs and all(r.config.endswith(",flickr30k=/d/f30k") for r in runs)
    for run in runs:
        cfg = loading.load_config(run.config)
        assert cfg.evals.flickr30k.karpathy_json == "/d/f30k/dataset_flickr30k.json"
    finetune = [r for r in runs if r.stage == "finetune"]
    assert all(
        loading.load_config(r.config).data.source == "karpathy:/d/f30k/dataset_flickr30k.json:train"
        for r in finetune
    )
    paper = table.at_scale("paper")
    metrics = {c.label: c.metric for c in paper.columns}
    assert metrics["FT IR"] == "flickr30k_itm/text_to_image/r@1"
    assert metrics["ZS TR"] == "flickr30k/image_to_text/r@1"
    itc_row = {r.name: r for r in paper.rows}["ITC"]  # fine-tuned without ITM: no re-rank
    assert itc_row.metrics and set(itc_row.metrics.values()) <= {
        "flickr30k/text_to_image/r@1",
        "flickr30k/image_to_text/r@1",
    }
    assert table.at_scale("demo") is table
