"""FaceScrub and CelebA preparation on tiny fake raw layouts (tests/fake_raw.py)."""

import logging
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fake_raw import make_fake_celeba, make_fake_facescrub
from lsmia.data.celeba import check_raw_celeba, prepare_celeba, select_identities
from lsmia.data.face_crop import align_crop, template_landmarks
from lsmia.data.images import open_rgb
from lsmia.data.facescrub import check_raw_facescrub, prepare_facescrub
from lsmia.data.packed import PackedDataset, verify_manifest


def reference_facescrub(root):
    """Independent reading of the reference: ImageFolder(actors) + ImageFolder(actresses),
    then list(range(n)), np.random.seed(42), shuffle, 90 % train."""
    samples, offset = [], 0
    for group in ("actors", "actresses"):
        faces = os.path.join(root, group, "faces")
        classes = sorted(os.listdir(faces))
        for label, name in enumerate(classes):
            for file in sorted(os.listdir(os.path.join(faces, name))):
                if file.lower().endswith((".jpg", ".jpeg", ".png")):
                    samples.append((f"{group}/faces/{name}/{file}", offset + label, name))
        offset += len(classes)
    indices = list(range(len(samples)))
    np.random.seed(42)
    np.random.shuffle(indices)
    cut = int(0.9 * len(indices))
    return [samples[i] for i in indices[:cut]], [samples[i] for i in indices[cut:]]


def test_facescrub_order_and_split(tmp_path):
    raw = make_fake_facescrub(tmp_path / "raw", actors=3, actresses=2, images=5, size=(40, 52))
    out = prepare_facescrub(raw, tmp_path / "packed", image_size=16, workers=1)
    verify_manifest(out)
    train, test = PackedDataset(out, "train"), PackedDataset(out, "test")
    assert train.identities == ["Actor_A0", "Actor_B1", "Actor_C2", "Actress_A0", "Actress_B1"]
    expected_train, expected_test = reference_facescrub(raw)
    for dataset, expected in ((train, expected_train), (test, expected_test)):
        assert dataset.index["source"].tolist() == [source for source, _, _ in expected]
        assert dataset.labels.tolist() == [label for _, label, _ in expected]
    assert len(train) == 22 and len(test) == 3
    # pixels: shorter side to 16 (16×20, bilinear) then centre crop, as Resize(16) + CenterCrop(16)
    source, _, _ = expected_train[0]
    original = Image.open(raw / source).convert("RGB")
    resized = np.asarray(original.resize((16, 20), Image.Resampling.BILINEAR))[2:18]
    np.testing.assert_array_equal(train[0][0].permute(1, 2, 0).numpy(), resized)


def test_facescrub_parallel_decoding_gives_same_pack(tmp_path):
    raw = make_fake_facescrub(tmp_path / "raw", actors=2, actresses=1, images=3)
    one = prepare_facescrub(raw, tmp_path / "one", image_size=8, workers=1)
    two = prepare_facescrub(raw, tmp_path / "two", image_size=8, workers=2)
    assert (one / "images.npy").read_bytes() == (two / "images.npy").read_bytes()
    assert (one / "index.csv").read_text() == (two / "index.csv").read_text()


def test_facescrub_corrupt_fail_and_skip(tmp_path):
    raw = make_fake_facescrub(tmp_path / "raw", actors=2, actresses=1, images=4, corrupt=2)
    with pytest.raises(ValueError, match="Actor_A0_0.jpeg: unreadable image"):
        prepare_facescrub(raw, tmp_path / "failed", image_size=8, workers=1)
    assert not (tmp_path / "failed").exists()
    out = prepare_facescrub(raw, tmp_path / "skipped", image_size=8, on_corrupt="skip", workers=1)
    manifest = verify_manifest(out)
    assert manifest["skipped"] == ["actors/faces/Actor_A0/Actor_A0_0.jpeg",
                                   "actors/faces/Actor_A0/Actor_A0_1.jpeg"]
    assert manifest["num_images"] == 10
    everything = PackedDataset(out)
    assert "actors/faces/Actor_A0/Actor_A0_0.jpeg" not in everything.index["source"].tolist()
    assert Counter(everything.labels.tolist()) == {0: 2, 1: 4, 2: 4}


def test_facescrub_check_names_missing_parts(tmp_path):
    problems = check_raw_facescrub(tmp_path / "absent")
    assert len(problems) == 2 and "actors/faces: missing" in problems[0]
    assert "vintage.winklerbros.net/facescrub" in problems[0]
    raw = make_fake_facescrub(tmp_path / "raw", actors=1, actresses=1, images=1)
    assert check_raw_facescrub(raw) == []
    (raw / "actresses" / "faces" / "Empty_Person").mkdir()
    assert "without images: ['Empty_Person']" in check_raw_facescrub(raw)[0]
    with pytest.raises(FileNotFoundError, match="Empty_Person"):
        prepare_facescrub(raw, tmp_path / "out", image_size=8, workers=1)


def test_celeba_identity_selection_ties_keep_first_appearance():
    ids = pd.Series([5, 3, 3, 9, 5, 7, 9, 7, 2, 2, 2])
    reference = dict(sorted(Counter(ids.tolist()).items(), key=lambda kv: kv[1], reverse=True))
    assert select_identities(ids, 4) == list(reference)[:4] == [2, 5, 3, 9]
    with pytest.raises(ValueError, match="identities: expected 1..5"):
        select_identities(ids, 6)


def test_celeba_selection_relabelling_and_split(tmp_path):
    counts = [2, 5, 3, 5, 1, 4]  # identities 1..6; 2 and 4 tie
    raw = make_fake_celeba(tmp_path / "raw", images_per_identity=counts)
    out = prepare_celeba(raw, tmp_path / "packed", identities=4, image_size=24, workers=1)
    verify_manifest(out)
    everything = PackedDataset(out)
    assert everything.identities == ["2", "4", "6", "3"]
    assert everything.manifest["settings"]["celeba_ids_by_label"] == [2, 4, 6, 3]
    table = pd.read_csv(raw / "identity_CelebA.txt", sep=" ", header=None, names=["file", "id"])
    chosen = table[table["id"].isin([2, 4, 6, 3])]
    indices = np.where(table["id"].isin([2, 4, 6, 3]))[0]  # reference: indices into all images
    np.random.seed(42)
    np.random.shuffle(indices)
    cut = int(0.9 * len(indices))
    expected = ["img_celeba/" + table["file"][i] for i in indices]
    assert everything.index["source"].tolist() == expected
    assert everything.index["split"].tolist() == ["train"] * cut + ["test"] * (len(chosen) - cut)
    label_of = {2: 0, 4: 1, 6: 2, 3: 3}
    assert everything.labels.tolist() == [label_of[table["id"][i]] for i in indices]
    assert everything.image_size == (24, 24)


def test_celeba_aligned_crop(tmp_path):
    raw = make_fake_celeba(tmp_path / "raw", identities=3)
    out = prepare_celeba(raw, tmp_path / "packed", identities=2, crop="aligned", image_size=20,
                         workers=1)
    dataset = PackedDataset(out)
    source = dataset.index["source"][0]
    assert source.startswith("img_align_celeba/")
    original = Image.open(raw / source).convert("RGB")  # 178×218 → 20×24, rows 2..21
    expected = np.asarray(original.resize((20, 24), Image.Resampling.BILINEAR))[2:22]
    np.testing.assert_array_equal(dataset[0][0].permute(1, 2, 0).numpy(), expected)


def test_align_crop_puts_landmarks_on_template():
    """A picture with dots at its landmarks: the crop shows the dots where the template says."""
    size = 64
    canvas = np.zeros((300, 260, 3), dtype=np.uint8)
    landmarks = np.array([[100, 120], [150, 118], [126, 150], [106, 178], [148, 176]], float)
    for x, y in landmarks.astype(int):
        canvas[y - 2:y + 3, x - 2:x + 3] = 255
    crop = align_crop(Image.fromarray(canvas), landmarks, size, face_factor=0.65)
    assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
    for x, y in np.round(template_landmarks(size, 0.65)).astype(int):
        window = crop[max(y - 2, 0):y + 3, max(x - 2, 0):x + 3, 0]
        assert window.max() > 100, (x, y)
    assert crop[:, :, 0].mean() < 60  # the rest stays dark


def test_align_crop_pads_with_edge_values():
    canvas = np.zeros((40, 40, 3), dtype=np.uint8)
    canvas[:, :20] = 200  # left half bright; landmarks near the left border
    landmarks = np.array([[2, 18], [8, 18], [5, 22], [3, 26], [7, 26]], float)
    crop = align_crop(Image.fromarray(canvas), landmarks, 32)
    assert crop[16, 0, 0] == 200  # beyond the left border: replicated bright edge, not black


def test_celeba_corrupt_and_checks(tmp_path):
    raw = make_fake_celeba(tmp_path / "raw", identities=3, corrupt=1)  # identity 1: one image
    with pytest.raises(ValueError, match="000001.jpg: unreadable image"):
        prepare_celeba(raw, tmp_path / "failed", identities=3, image_size=16, workers=1)
    with pytest.raises(ValueError, match=r"identities \['1'\] have no readable image"):
        prepare_celeba(raw, tmp_path / "lost", identities=3, image_size=16, on_corrupt="skip",
                       workers=1)
    raw = make_fake_celeba(tmp_path / "raw2", images_per_identity=[2, 2, 3], corrupt=1)
    out = prepare_celeba(raw, tmp_path / "skip", identities=3, image_size=16, on_corrupt="skip",
                         workers=1)
    assert PackedDataset(out).manifest["skipped"] == ["img_celeba/000001.jpg"]
    assert check_raw_celeba(raw, "landmarks") == [] and check_raw_celeba(raw, "aligned") == []
    (raw / "list_landmarks_celeba.txt").unlink()
    problems = check_raw_celeba(raw, "landmarks")
    assert len(problems) == 1 and "list_landmarks_celeba.txt: missing" in problems[0]
    assert check_raw_celeba(raw, "aligned") == []
    assert "crop: expected" in check_raw_celeba(raw, "tight")[0]
    with pytest.raises(FileNotFoundError, match="list_landmarks_celeba.txt"):
        prepare_celeba(raw, tmp_path / "x", identities=3, workers=1)


def test_symlinked_folders_are_read_once_with_a_warning(tmp_path, caplog):
    raw = make_fake_facescrub(tmp_path / "raw", actors=2, actresses=1, images=4)
    faces = raw / "actors" / "faces"
    (faces / "Actor_A0" / "loop").symlink_to("..")  # a loop back to the class folder's parent
    (faces / "Actor_B1" / "again").symlink_to(faces / "Actor_B1")  # a loop onto itself
    (faces / "Actor_A0" / "other").symlink_to(faces / "Actor_B1")  # a second way into a class
    outside = tmp_path / "elsewhere"  # a link out of the tree is followed (once)
    (outside / "more").mkdir(parents=True)
    Image.new("RGB", (20, 20)).save(outside / "more" / "extra.jpeg")
    (faces / "Actor_B1" / "external").symlink_to(outside)
    with caplog.at_level(logging.WARNING, logger="lsmia.data"):
        out = prepare_facescrub(raw, tmp_path / "packed", image_size=8, workers=1)
    table = PackedDataset(out).index
    assert len(table) == 4 + 5 + 4 and table["source"].is_unique
    assert Counter(table["identity"]) == {"Actor_A0": 4, "Actor_B1": 5, "Actress_A0": 4}
    for link in ("Actor_A0/loop", "Actor_B1/again", "Actor_A0/other"):
        assert f"{faces / link}: skipped" in caplog.text
    assert "external" not in caplog.text


KILLED_PREPARATION = """
import sys, time
import lsmia.data.facescrub as facescrub
load = facescrub.load_facescrub_image
def slow(size, path):
    time.sleep(30 if path.name.endswith("_2.jpeg") else 0)
    return load(size, path)
facescrub.load_facescrub_image = slow
facescrub.prepare_facescrub(sys.argv[1], sys.argv[2], image_size=8, workers=1)
"""


def test_killed_preparation_leaves_nothing_a_rerun_trusts_or_keeps(tmp_path):
    raw = make_fake_facescrub(tmp_path / "raw", actors=1, actresses=1, images=3)
    out = tmp_path / "data" / "private"
    process = subprocess.Popen([sys.executable, "-c", KILLED_PREPARATION, str(raw), str(out)])
    deadline = time.monotonic() + 60
    while not list(out.parent.glob(".private.staging.*/decoded.npy")):
        assert process.poll() is None and time.monotonic() < deadline, "never started decoding"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not out.exists() and len(list(out.parent.glob(".private.staging.*"))) == 1
    prepare_facescrub(raw, out, image_size=8, workers=1)
    assert sorted(p.name for p in out.parent.iterdir()) == ["private"]
    assert len(PackedDataset(out)) == 6


def test_16_bit_grey_images_are_scaled_not_clipped_and_32_bit_refused(tmp_path):
    ramp = np.linspace(0, 65535, 64 * 64).round().astype(np.uint16).reshape(64, 64)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    pixels = np.asarray(open_rgb(tmp_path / "deep.png"))
    expected = np.round(ramp / 257.0).astype(np.uint8)
    assert pixels.shape == (64, 64, 3) and (pixels == expected[..., None]).all()
    Image.fromarray(ramp.astype(np.float32)).save(tmp_path / "float.tiff")
    with pytest.raises(ValueError, match=r"float.tiff: a 32-bit float image"):
        open_rgb(tmp_path / "float.tiff")
