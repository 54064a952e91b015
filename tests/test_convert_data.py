"""python -m mvl.data.convert: every format to ArrayRecord shards, the skip report, resuming
after an interruption (an injected failure after one shard, and a killed run's
half-written file), worker processes, and refusing an output written with other settings."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from mvl.data import convert, pipeline
from mvl.data.sources.array_record import ArrayRecordSource
from tests import planted_data

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLES = planted_data.planted()
EXPECTED = planted_data.expected_kinds(SAMPLES)
USABLE = sum(s.kind is None for s in SAMPLES)
USABLE_CAPTIONS = [" ".join(s.caption.decode().split())[:1000] for s in SAMPLES if s.kind is None]


def write(fmt, root):
    if fmt == "webdataset":
        return planted_data.write_webdataset(str(root / "wds"), SAMPLES)
    return planted_data.write_table(str(root / fmt), SAMPLES, fmt)


def run(fmt, path, output, *extra):
    return convert.main(["--from", fmt, "--input", str(path), "--output", str(output), *extra])


def report(output) -> dict:
    with open(os.path.join(output, "convert_report.json")) as f:
        return json.load(f)


def read_back(output) -> list[dict]:
    source = ArrayRecordSource(str(output), image_size=32)
    return [source[i] for i in range(len(source))]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "webdataset"])
def test_each_format_converts_with_every_fault_reported(fmt, tmp_path, capsys):
    path = write(fmt, tmp_path)
    assert run(fmt, path, tmp_path / "out", "--shard_size", "8") == 0
    result = report(tmp_path / "out")
    assert result["written"] == USABLE and result["shards"] == 3
    assert result["skipped"] == len(EXPECTED) and result["skipped_by_kind"] == EXPECTED
    assert {e["kind"] for e in result["skipped_examples"]} == set(EXPECTED)
    assert all(e["where"].startswith(path) for e in result["skipped_examples"])  # file + row/key
    assert f"skipped {len(EXPECTED)}" in capsys.readouterr().out
    examples = read_back(tmp_path / "out")
    assert [e["caption"] for e in examples] == [
        c.rsplit(" ", 1)[0] if len(c) == 1000 else c for c in USABLE_CAPTIONS
    ]
    assert all(e["image"].shape == (32, 32, 3) for e in examples)


def test_generated_shapes_convert_as_png(tmp_path):
    assert run("shapes", "val:10", tmp_path / "out", "--shard_size", "4") == 0
    shapes = pipeline.make_source("shapes", "val", size=10, seed=0, image_size=32)
    examples = read_back(tmp_path / "out")
    assert [e["caption"] for e in examples] == [shapes.caption(i) for i in range(10)]


def test_an_interrupted_conversion_resumes_and_ends_as_an_uninterrupted_one(
    tmp_path, monkeypatch, capsys
):
    path = write("csv", tmp_path)
    assert run("csv", path, tmp_path / "whole", "--shard_size", "8") == 0
    out = tmp_path / "resumed"
    monkeypatch.setenv(convert.FAIL_AFTER_ENV, "1")
    with pytest.raises(RuntimeError, match="injected failure after 1 shards"):
        run("csv", path, out, "--shard_size", "8")
    first = out / "data-00000-of-00003.array_record"
    assert first.exists() and not (out / "data-00001-of-00003.array_record").exists()
    written_at = first.stat().st_mtime_ns
    (out / ".data-00001-of-00003.array_record.tmp-99999").write_bytes(b"half a shard")  # a kill
    monkeypatch.delenv(convert.FAIL_AFTER_ENV)
    assert run("csv", path, out, "--shard_size", "8") == 0
    assert "resuming: 1 of 3 shards already written" in capsys.readouterr().out
    assert first.stat().st_mtime_ns == written_at  # the finished shard was not redone
    assert not list(out.glob(".*tmp-*"))
    whole, resumed = report(tmp_path / "whole"), report(out)
    for key in ("written", "skipped", "skipped_by_kind", "skipped_examples"):
        assert whole[key] == resumed[key], key
    for a, b in zip(read_back(tmp_path / "whole"), read_back(out)):
        assert a["caption"] == b["caption"] and np.array_equal(a["image"], b["image"])


def test_a_killed_conversion_resumes(tmp_path):
    path, out = write("csv", tmp_path), tmp_path / "out"
    command = [
        sys.executable,
        "-m",
        "mvl.data.convert",
        "--from",
        "csv",
        "--input",
        path,
        "--output",
        str(out),
        "--shard_size",
        "8",
    ]
    env = {**os.environ, convert.KILL_AFTER_ENV: "2"}
    killed = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert len(list(out.glob("*.array_record"))) == 2 and not (out / "convert_report.json").exists()
    resumed = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming: 2 of 3 shards already written" in resumed.stdout
    assert report(out)["written"] == USABLE and report(out)["skipped_by_kind"] == EXPECTED


def test_worker_processes_write_the_same_shards(tmp_path):
    path = write("csv", tmp_path)
    assert run("csv", path, tmp_path / "one", "--shard_size", "8") == 0
    assert run("csv", path, tmp_path / "two", "--shard_size", "8", "--workers", "2") == 0
    for name in sorted(os.listdir(tmp_path / "one")):
        if name.endswith(".array_record"):
            assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_an_output_written_with_other_settings_is_refused(tmp_path, capsys):
    path = write("csv", tmp_path)
    assert run("csv", path, tmp_path / "out", "--shard_size", "8") == 0
    assert run("csv", path, tmp_path / "out", "--shard_size", "5") == 2
    assert "holds a conversion with other settings" in capsys.readouterr().err
