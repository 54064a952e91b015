"""Test setup: 8 simulated CPU devices (set before JAX is imported), a tokenizer trained
once per session, and tiny configs that compile and step in seconds."""

import os

# Tests compile many small programs and run each a few steps: cheaper LLVM passes halve
# compile time on CPU (the equivalence tests compare programs compiled the same way).
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "")
    + " --xla_force_host_platform_device_count=8"
    + " --xla_backend_optimization_level=0"
    + " --xla_llvm_disable_expensive_passes=true"
).strip()
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# CPU only, said explicitly: with the optional AOT compilers installed (libtpu, the CUDA
# plugin; requirements-aot.txt) JAX would otherwise probe for a TPU at start-up.
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")

import tempfile  # noqa: E402

import jax  # noqa: E402
import pytest  # noqa: E402

from mvl import config as config_lib  # noqa: E402

# Many tests compile the same tiny train_step; JAX's persistent cache (keyed by the
# compiled program) turns every compile after the first into a lookup. pytest-xdist
# workers (pytest.ini runs two: compiling is single-threaded) share one cache per run.
_run_id = os.environ.get("PYTEST_XDIST_TESTRUNUID")
_cache_dir = (
    os.path.join(tempfile.gettempdir(), f"mvl_test_jax_cache_{_run_id}")
    if _run_id
    else tempfile.mkdtemp(prefix="mvl_test_jax_cache_")
)
jax.config.update("jax_compilation_cache_dir", _cache_dir)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)

TINY = {
    "batch_size": "16",
    "total_steps": "6",
    "log_every_steps": "2",
    "data.image_size": "32",
    "data.max_text_len": "24",
    "data.eval_size": "64",
    "data.vocab_size": "128",
    "eval.batch_size": "32",
    "evals.reconstructions.count": "4",
    "model.image.patch_size": "8",
    "model.image.width": "32",
    "model.image.depth": "1",
    "model.image.num_heads": "2",
    "model.image.mlp_dim": "64",
    "model.text.width": "32",
    "model.text.depth": "1",
    "model.text.num_heads": "2",
    "model.text.mlp_dim": "64",
    "model.fusion.depth": "1",
    "model.fusion.num_heads": "2",
    "model.fusion.mlp_dim": "64",
    "model.pixel_decoder.width": "32",
    "model.pixel_decoder.depth": "1",
    "model.pixel_decoder.num_heads": "2",
    "model.pixel_decoder.mlp_dim": "64",
    "model.embed_dim": "16",
    "teacher.image.image_size": "32",
    "teacher.image.width": "32",
    "teacher.image.depth": "1",
    "teacher.image.num_heads": "2",
    "teacher.image.mlp_dim": "64",
    "checkpoint.every_steps": "2",
    "optim.warmup_steps": "2",
}


@pytest.fixture(scope="session")
def tokenizer_path(tmp_path_factory):
    from mvl.data import pipeline, tokenizer

    path = str(tmp_path_factory.mktemp("tokenizer") / "shapes.model")
    source = pipeline.make_source("shapes", "train", size=4000, seed=0, image_size=32)
    tokenizer.train_tokenizer(tokenizer.captions_from_source(source, 2000), path, vocab_size=128)
    return path


def tiny_for(method: str, arg: str = "demo") -> dict[str, str]:
    """TINY's keys that `configs/<method>.py:<arg>` has (as command-line overrides)."""
    cfg = config_lib.load_config(f"configs/{method}.py:{arg}")
    return {key: value for key, value in TINY.items() if has_key(cfg, key)}


def has_key(cfg, dotted_key: str) -> bool:
    node = cfg
    for part in dotted_key.split("."):
        if part not in node:
            return False
        node = node[part]
    return True


@pytest.fixture
def tiny_config(tokenizer_path):
    """tiny_config("maskvlm", arg="demo", **{"key": "value"}) -> a locked ConfigDict."""

    def make(method: str = "maskvlm", arg: str = "demo", **overrides):
        cfg = config_lib.load_config(f"configs/{method}.py:{arg}")
        # TINY sizes the sections this method's config has (model parts, evaluators).
        tiny = {key: value for key, value in TINY.items() if has_key(cfg, key)}
        config_lib.apply_overrides(cfg, {**tiny, "data.tokenizer": tokenizer_path, **overrides})
        return cfg

    return make


def pytest_collection_modifyitems(items):
    """Longest first: a `slow(minutes=N)` test starts before shorter ones, so the two
    workers finish the few long tests of `pytest -m slow` at about the same time (a
    long test collected last would run alone at the end). The sort is stable: tests
    without an estimate keep their collection order."""

    def minutes(item) -> float:
        marker = item.get_closest_marker("slow")
        return float(marker.kwargs.get("minutes", 0)) if marker else 0.0

    items.sort(key=minutes, reverse=True)
