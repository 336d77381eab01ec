"""Packed dataset format: round trip, manifest hashes, selection, batching, bad inputs."""

import json
import os
import time

import numpy as np
import pandas as pd
import pytest
import torch

import lsmia.data.packed as packed_module
from lsmia.data.packed import (PackedDataset, iterate_batches, read_manifest, verify_manifest,
                               write_packed)


def _inputs(n=12, classes=3, size=6, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, size, size + 2, 3), dtype=np.uint8)
    labels = np.arange(n) % classes
    index = pd.DataFrame({
        "label": labels,
        "identity": [f"person {label}" for label in labels],
        "split": ["train"] * (n - 4) + ["test"] * 4,
        "source": [f"img_{i}.jpg" for i in range(n)],
    })
    return images, index


@pytest.fixture
def packed(tmp_path):
    images, index = _inputs()
    path = write_packed(tmp_path / "set", images, index, {"seed": 7, "note": "x"},
                        skipped=["bad.jpg"])
    return path, images, index


def test_round_trip(packed):
    path, images, index = packed
    assert sorted(p.name for p in path.iterdir()) == [".verified.json", "images.npy", "index.csv",
                                                      "manifest.json"]
    table = pd.read_csv(path / "index.csv")
    assert list(table.columns) == ["row", "label", "identity", "split", "source"]
    assert table["row"].tolist() == list(range(len(images)))
    everything = PackedDataset(path)
    assert len(everything) == 12 and everything.num_classes == 3
    assert everything.identities == ["person 0", "person 1", "person 2"]
    assert everything.image_size == (6, 8)
    assert everything.labels.dtype == np.int64
    np.testing.assert_array_equal(everything.labels, index["label"])
    for i in (0, 5, 11):
        image, label = everything[i]
        assert image.dtype == torch.uint8 and image.shape == (3, 6, 8)
        np.testing.assert_array_equal(image.permute(1, 2, 0).numpy(), images[i])
        assert label == index["label"][i]
    batch, labels = everything.batch([3, 1, 10])
    assert batch.shape == (3, 3, 6, 8) and labels.dtype == torch.int64
    np.testing.assert_array_equal(batch.permute(0, 2, 3, 1).numpy(), images[[3, 1, 10]])
    assert labels.tolist() == index["label"][[3, 1, 10]].tolist()


def test_manifest_contents(packed):
    path, _, _ = packed
    manifest = verify_manifest(path)
    assert manifest["num_images"] == 12 and manifest["num_classes"] == 3
    assert manifest["image_size"] == [6, 8]
    assert manifest["counts"]["train"]["images"] == 8 and manifest["counts"]["test"]["images"] == 4
    assert manifest["counts"]["train"]["per_class_min"] == 2
    assert manifest["counts"]["train"]["per_class_max"] == 3
    assert manifest["settings"] == {"seed": 7, "note": "x"}
    assert manifest["skipped"] == ["bad.jpg"]
    assert manifest["provenance"]["seed"] == 7
    assert set(manifest["sha256"]) == {"images.npy", "index.csv"}


def test_split_and_rows_selection(packed):
    path, images, index = packed
    train, test = PackedDataset(path, "train"), PackedDataset(path, split="test")
    assert train.rows.tolist() == list(range(8)) and test.rows.tolist() == [8, 9, 10, 11]
    assert train.num_classes == test.num_classes == 3
    chosen = PackedDataset(path, rows=[9, 2])
    np.testing.assert_array_equal(chosen.batch([0, 1])[0].permute(0, 2, 3, 1).numpy(), images[[9, 2]])
    assert PackedDataset(path, "train", rows=[4, 0]).labels.tolist() == [1, 0]
    with pytest.raises(ValueError, match=r"\[9\] are not in split 'train'"):
        PackedDataset(path, "train", rows=[1, 9])
    with pytest.raises(IndexError, match="outside"):
        PackedDataset(path, rows=[12])
    with pytest.raises(ValueError, match="split"):
        PackedDataset(path, "valid")


def test_tampering_detected(packed):
    path = packed[0]
    data = bytearray((path / "images.npy").read_bytes())
    data[-1] ^= 0xFF
    (path / "images.npy").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="images.npy"):
        verify_manifest(path)


def test_tampered_index_detected(packed):
    path = packed[0]
    text = (path / "index.csv").read_text().replace("person 1", "person X")
    (path / "index.csv").write_text(text)
    with pytest.raises(ValueError, match="index.csv"):
        verify_manifest(path)


def _flip_last_byte_keeping_mtime(file):
    time.sleep(0.05)  # past the file system's timestamp tick, so the ctime moves
    info = file.stat()
    data = bytearray(file.read_bytes())
    data[-1] ^= 0xFF
    file.write_bytes(bytes(data))
    os.utime(file, ns=(info.st_atime_ns, info.st_mtime_ns))


def test_reader_refuses_a_changed_byte_even_with_the_mtime_put_back(packed):
    path = packed[0]
    PackedDataset(path)
    _flip_last_byte_keeping_mtime(path / "images.npy")
    with pytest.raises(ValueError, match=r"images\.npy: SHA-256 .* does not match"):
        PackedDataset(path, "train")


def test_files_are_hashed_once_until_they_change(packed, monkeypatch):
    path = packed[0]
    hashed = []
    real = packed_module.sha256_of
    monkeypatch.setattr(packed_module, "sha256_of", lambda file: hashed.append(file.name) or real(file))
    monkeypatch.setattr(packed_module, "_CHECKED", {})  # a new job: only the stamp on disk helps
    PackedDataset(path)
    PackedDataset(path, "test")
    assert hashed == []  # write_packed stamped the files it hashed
    (path / ".verified.json").unlink()
    PackedDataset(path)
    PackedDataset(path, "train")
    assert sorted(hashed) == ["images.npy", "index.csv"]  # once per job, then from memory
    assert (path / ".verified.json").is_file()
    time.sleep(0.05)
    (path / "index.csv").write_text((path / "index.csv").read_text())  # same bytes, new ctime
    PackedDataset(path)
    assert sorted(hashed) == ["images.npy", "index.csv", "index.csv"]


def test_missing_or_foreign_manifest(tmp_path, packed):
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        PackedDataset(tmp_path / "nothing")
    path = packed[0]
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="format_version 99"):
        read_manifest(path)
    (path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_manifest(path)


@pytest.mark.parametrize("change, message", [
    (lambda im, ix: (im.astype(np.float32), ix), "uint8"),
    (lambda im, ix: (im[..., :1], ix), "N×H×W×3"),
    (lambda im, ix: (im[:-1], ix), "index has 12 rows but images has 11"),
    (lambda im, ix: (im, ix.drop(columns="source")), "missing columns \\['source'\\]"),
    (lambda im, ix: (im, ix.assign(label=ix["label"] + 1)), "contiguous labels"),
    (lambda im, ix: (im, ix.assign(label=ix["label"].where(ix["label"] != 1, 2))), "missing \\[1\\]"),
    (lambda im, ix: (im, ix.assign(split="valid")), "unexpected values \\['valid'\\]"),
    (lambda im, ix: (im, ix.assign(identity=[f"p{i}" for i in range(12)])), "more than one identity"),
    (lambda im, ix: (im, ix.assign(label=ix["label"].astype(float))), "integers"),
])
def test_bad_inputs_rejected(tmp_path, change, message):
    images, index = change(*_inputs())
    with pytest.raises(ValueError, match=message):
        write_packed(tmp_path / "bad", images, index, {})
    assert not (tmp_path / "bad").exists()


def test_iterate_batches_covers_every_position_once(packed):
    path = packed[0]
    train = PackedDataset(path, "train")
    seen = []
    for images, labels in iterate_batches(train, 3, shuffle=True,
                                          generator=torch.Generator().manual_seed(1), device="cpu"):
        assert images.dtype == torch.uint8 and labels.dtype == torch.int64
        assert len(images) == len(labels) <= 3
        seen += labels.tolist()
    assert sorted(seen) == sorted(train.labels.tolist())
    runs = [[labels.tolist() for _, labels in iterate_batches(
        train, 3, shuffle=True, generator=torch.Generator().manual_seed(5), device="cpu",
        prefetch=prefetch)] for prefetch in (True, False)]
    assert runs[0] == runs[1]
    sizes = [len(labels) for _, labels in iterate_batches(train, 3, shuffle=False, drop_last=True)]
    assert sizes == [3, 3]
    ordered = torch.cat([images for images, _ in iterate_batches(train, 5, shuffle=False)])
    assert torch.equal(ordered, train.batch(np.arange(8))[0])


def test_iterate_batches_stops_early_cleanly(packed):
    train = PackedDataset(packed[0], "train")
    batches = iterate_batches(train, 1, shuffle=False)
    next(batches)
    batches.close()  # the prefetch thread must not hang
    with pytest.raises(ValueError, match="batch_size"):
        next(iterate_batches(train, 0, shuffle=False))


def test_prefetch_keeps_order_and_raises_loader_errors():
    from lsmia.data.prefetch import prefetched

    assert list(prefetched(lambda x: x * 2, range(7))) == [0, 2, 4, 6, 8, 10, 12]

    def load(x):
        if x == 3:
            raise OSError("disk gone")
        return x

    results = prefetched(load, range(6))
    assert [next(results) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(OSError, match="disk gone"):
        next(results)
