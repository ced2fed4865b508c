"""Tests of boda.duplicates: pixel hash, perceptual hashes, clustering."""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from boda.duplicates import (
    DEFAULT_MAX_DISTANCE,
    dhash,
    find_exact_duplicates,
    find_near_duplicates,
    hamming,
    phash,
    pixel_hash,
)
from boda.duplicates._clusters import _popcount_swar
from boda.duplicates._hashes import _lanczos_matrix
from boda.errors import InvalidImageError, InvalidParameterError
from boda.io import read_image, write_image


def _u8(img: np.ndarray) -> np.ndarray:
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(_u8(img)).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())), dtype=np.float32) / 255


def _resize(img: np.ndarray, factor: float) -> np.ndarray:
    h, w = img.shape[:2]
    pil = Image.fromarray(_u8(img)).resize((round(w * factor), round(h * factor)), Image.LANCZOS)
    return np.asarray(pil, dtype=np.float32) / 255


@pytest.fixture(scope="module")
def kodak(kodak_paths) -> list[np.ndarray]:
    return [read_image(p) for p in kodak_paths]


# --------------------------------------------------------------------- pixel_hash


def test_pixel_hash_same_picture_in_lossless_formats_is_equal(tmp_path, kodak_rgb):
    img = kodak_rgb[:120, :160]
    hashes = {
        ext: pixel_hash(read_image(write_image(tmp_path / f"a.{ext}", img)))
        for ext in ("png", "tif", "bmp")
    }
    webp = tmp_path / "a.webp"
    Image.fromarray(_u8(img)).save(webp, lossless=True)  # write_image has no lossless switch
    hashes["webp"] = pixel_hash(read_image(webp))
    assert len(set(hashes.values())) == 1, hashes
    assert hashes["png"] == pixel_hash(img)  # float in, quantised the way files store it
    jpeg = pixel_hash(read_image(write_image(tmp_path / "a.jpg", img, quality=95)))
    assert jpeg != hashes["png"]


def test_pixel_hash_properties(rng):
    img = rng.random((30, 40, 3)).astype(np.float32)
    h = pixel_hash(img)
    assert len(h) == 32 and int(h, 16) >= 0
    assert pixel_hash(img.copy()) == h  # deterministic
    assert pixel_hash(_u8(img)) == h  # uint8 input is the same picture
    changed = _u8(img).copy()
    changed[7, 9, 1] ^= 1  # one least-significant bit
    assert pixel_hash(changed) != h
    # Same bytes, other shape: not a duplicate.
    assert pixel_hash(_u8(img).reshape(40, 30, 3)) != h
    gray = rng.random((20, 25)).astype(np.float32)
    assert pixel_hash(gray) == pixel_hash(np.repeat(gray[:, :, None], 3, axis=2))
    # uint8 input takes a shortcut; every shape must still hash as its float twin.
    gray_u8 = _u8(gray)
    for u8 in (gray_u8, gray_u8[:, :, None], np.repeat(gray_u8[:, :, None], 3, axis=2)):
        assert pixel_hash(u8) == pixel_hash(u8.astype(np.float32) / 255)
    with pytest.raises(InvalidImageError):
        pixel_hash(np.zeros((4, 4, 2)))
    with pytest.raises(InvalidImageError):
        pixel_hash(np.zeros((4, 4, 2), np.uint8))


# ------------------------------------------------------------- perceptual hashes


def test_lanczos_matrix_reproduces_pillow_resize(kodak_paths):
    """With Pillow's uint8 rounding between the two passes, the result is identical."""
    gray = np.asarray(Image.open(kodak_paths[0]).convert("L"))[:, :437]
    for height, width in [(32, 32), (8, 9), (50, 17)]:
        ref = np.asarray(Image.fromarray(gray).resize((width, height), Image.LANCZOS))
        horizontal = np.clip(np.round(gray @ _lanczos_matrix(gray.shape[1], width).T), 0, 255)
        ours = np.clip(np.round(_lanczos_matrix(gray.shape[0], height) @ horizontal), 0, 255)
        np.testing.assert_array_equal(ours, ref)
    # Upsampling (no filter stretching): Pillow's fixed-point weights round a
    # few half-way values the other way.
    small = gray[:20, :30]
    ref = np.asarray(Image.fromarray(small).resize((45, 32), Image.LANCZOS)).astype(float)
    horizontal = np.clip(np.round(small @ _lanczos_matrix(30, 45).T), 0, 255)
    ours = np.clip(np.round(_lanczos_matrix(20, 32) @ horizontal), 0, 255)
    assert np.abs(ours - ref).max() <= 1 and np.mean(ours != ref) < 0.01


def test_phash_and_dhash_match_imagehash(kodak_paths, kodak):
    imagehash = pytest.importorskip("imagehash")
    for path, img in zip(kodak_paths, kodak, strict=True):
        pil = Image.open(path)
        ref_p = int(str(imagehash.phash(pil)), 16)
        ref_d = int(str(imagehash.dhash(pil)), 16)
        # phash: identical on all Kodak photos; 2 bits of slack for BLAS rounding.
        assert hamming(phash(img), ref_p) <= 2, path.name
        # dhash compares neighbouring pixels of a uint8 thumbnail in imagehash
        # (ties -> 0), boda's float thumbnail has no ties: up to 6 of 64 bits
        # differ on the 24 Kodak photos.
        assert hamming(dhash(img), ref_d) <= 8, path.name


def test_hash_values_and_bit_order():
    ramp = np.tile(np.linspace(0, 1, 90, dtype=np.float32), (40, 1))
    assert dhash(ramp) == 2**64 - 1  # every pixel brighter than its left neighbour
    assert dhash(ramp[:, ::-1]) == 0
    # Flat images: no structure, so no rounding noise may decide the bits.
    for value in (0.0, 0.3, 1.0):
        for shape in [(17, 23), (64, 64, 3), (1, 300)]:
            flat = np.full(shape, value, np.float32)
            assert phash(flat) == (1 << 63 if value else 0), (value, shape)
            assert dhash(flat) == 0
    # Bright left half: the hash's top row/column bits follow the cosine signs.
    half = np.zeros((64, 64), np.float32)
    half[:, :32] = 1.0
    bits = f"{phash(half):064b}"
    assert bits[0] == "1" and bits[1] == "1"  # DC and the first horizontal frequency
    assert set(bits[8::8]) == {"0"}  # no vertical structure
    for h in (phash(ramp), dhash(ramp)):
        assert 0 <= h < 2**64 and isinstance(h, int)


def test_phash_exactly_half_bits_set(kodak):
    # Threshold at the median of 64 distinct coefficients -> 32 ones.
    for img in kodak:
        assert phash(img).bit_count() == 32


def test_hashes_hardly_depend_on_resolution(kodak):
    for img in kodak:
        for factor in (0.5, 0.3, 2.4):
            other = _resize(img, factor)
            assert hamming(phash(img), phash(other)) <= 4
            assert hamming(dhash(img), dhash(other)) <= 4


def test_hashes_see_through_edits_and_separate_photos(kodak):
    edits = [
        lambda im: _jpeg(im, 70),
        lambda im: _jpeg(_resize(im, 0.6), 80),
        lambda im: np.clip(im * 1.08, 0, 1),
        lambda im: im[5:-5, 5:-5],  # 1 % per side
        lambda im: ndimage.gaussian_filter(im, (1.5, 1.5, 0)),
    ]
    originals = [phash(im) for im in kodak]
    for base, img in zip(originals, kodak, strict=True):
        for edit in edits:
            assert hamming(base, phash(edit(img))) <= DEFAULT_MAX_DISTANCE
    for a, b in itertools.combinations(originals, 2):
        assert hamming(a, b) > DEFAULT_MAX_DISTANCE + 5


def test_hashes_reject_bad_input():
    with pytest.raises(InvalidImageError):
        phash(np.zeros((0, 5)))
    with pytest.raises(InvalidImageError):
        dhash(np.zeros((5, 5, 4)))


def test_hamming():
    assert hamming(0, 0) == 0
    assert hamming(0, 2**64 - 1) == 64
    assert hamming(0b1011, 0b0001) == 2
    assert hamming(-1, 2**64 - 1) == 0  # signed SQLite storage of the same hash
    assert hamming(-(2**63), 2**63) == 0
    with pytest.raises(InvalidParameterError):
        hamming(2**64, 0)
    with pytest.raises(InvalidParameterError):
        hamming(0, -(2**63) - 1)


def test_hashes_exported_as_hex_strings_feed_back_in():
    # ImageRecord.to_dict (boda report --json) writes phash as f"{h:016x}".
    a, b = 0x0123456789ABCDEF, 0x0123456789ABCDEE
    assert hamming(f"{a:016x}", b) == hamming(a, b) == 1
    assert hamming("0xffffffffffffffff", -1) == 0
    assert find_near_duplicates([f"{a:016x}", b, f"{~a & (2**64 - 1):016x}"], 4) == [[0, 1]]
    with pytest.raises(InvalidParameterError, match="not a hex string"):
        hamming("not-a-hash", 0)
    with pytest.raises(InvalidParameterError, match="64-bit"):
        hamming("1" + "0" * 16, 0)  # 65 bits


# -------------------------------------------------------------------- clustering


def test_popcount_fallback_matches_python(rng):
    values = rng.integers(0, 2**64, 1000, dtype=np.uint64, endpoint=False)
    values[:3] = [0, 2**64 - 1, 2**63]
    expected = [int(v).bit_count() for v in values]
    assert _popcount_swar(values).tolist() == expected


def test_find_exact_duplicates():
    assert find_exact_duplicates([]) == []
    assert find_exact_duplicates(["a", "b", "c"]) == []
    assert find_exact_duplicates(["x", "y", "x", "z", "y", "x"]) == [[0, 2, 5], [1, 4]]


def _planted(rng: np.random.Generator, n: int, max_flips: int) -> np.ndarray:
    """Random hashes, a third of them close copies (chains included) of earlier ones."""
    values = rng.integers(0, 2**64, n, dtype=np.uint64, endpoint=False)
    for i in range(n // 3, n):
        if rng.random() < 0.5:
            source = values[rng.integers(0, i)]
            for bit in rng.choice(64, rng.integers(0, max_flips + 1), replace=False):
                source ^= np.uint64(1) << np.uint64(bit)
            values[i] = source
    return values


def _reference_pairs(values: np.ndarray, d: int) -> set[tuple[int, int]]:
    dist = np.bitwise_count(values[:, None] ^ values[None, :])
    i, j = np.nonzero(np.triu(dist <= d, k=1))
    return set(zip(i.tolist(), j.tolist(), strict=True))


def _reference_clusters(values: np.ndarray, d: int) -> list[list[int]]:
    n = values.size
    pairs = np.array(sorted(_reference_pairs(values, d)) or np.zeros((0, 2), int))
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    groups = [np.flatnonzero(labels == k).tolist() for k in np.unique(labels)]
    return sorted((g for g in groups if len(g) > 1), key=lambda g: g[0])


@pytest.mark.parametrize(("n", "d"), [(300, 0), (2000, 4), (3000, DEFAULT_MAX_DISTANCE), (800, 20)])
def test_find_near_duplicates_equals_brute_force(rng, n, d):
    values = _planted(rng, n, d + 3)
    values[-20:] = values[:20]  # exact repeats are clustered too
    hashes = [int(v) for v in values]
    assert find_near_duplicates(hashes, d) == _reference_clusters(values, d)


def test_find_near_duplicates_single_linkage_and_order():
    chain = [0b0000, 0b0011, 0b1111, 2**64 - 1, 0b0011]
    assert find_near_duplicates(chain, max_distance=2) == [[0, 1, 2, 4]]
    assert find_near_duplicates(chain, max_distance=1) == [[1, 4]]
    assert find_near_duplicates(chain, max_distance=64) == [[0, 1, 2, 3, 4]]
    assert find_near_duplicates([], 5) == [] and find_near_duplicates([7], 5) == []
    # Signed storage of the same hash is the same hash.
    assert find_near_duplicates([-1, 2**64 - 1], max_distance=0) == [[0, 1]]


def test_find_near_duplicates_rejects_bad_arguments():
    for bad in (-1, 65, 2.5, True):
        with pytest.raises(InvalidParameterError):
            find_near_duplicates([1, 2], max_distance=bad)
    with pytest.raises(InvalidParameterError, match=r"hashes\[1\]"):
        find_near_duplicates([1, 2**64])


def test_bundled_examples_show_both_duplicate_kinds():
    """examples/images (made by examples/make_sample_images.py) decodes and holds one of each."""
    folder = Path(__file__).parent.parent / "examples" / "images"
    paths = sorted(folder.rglob("*.jpg"))
    if not paths:
        pytest.skip("examples/images not generated")
    names = [p.relative_to(folder).as_posix() for p in paths]
    images = [read_image(p) for p in paths]
    exact = find_exact_duplicates([pixel_hash(im) for im in images])
    near = find_near_duplicates([phash(im) for im in images])
    assert [[names[i] for i in g] for g in exact] == [["more/parrots_copy.jpg", "parrots.jpg"]]
    assert [[names[i] for i in g] for g in near] == [
        ["hats.jpg", "hats_resized.jpg"],
        ["more/parrots_copy.jpg", "parrots.jpg"],
    ]


def test_hashes_must_be_integers():
    from boda.duplicates import find_near_duplicates, hamming
    from boda.errors import InvalidParameterError

    for bad in (1.7, 1.0, None, True):  # hex strings are read as hex (see above)
        with pytest.raises(InvalidParameterError, match="not a 64-bit hash"):
            hamming(bad, 1)
    with pytest.raises(InvalidParameterError, match=r"hashes\[0\]"):
        find_near_duplicates([1.5, 0], max_distance=1)
    assert hamming(np.uint64(2**64 - 1), -1) == 0  # numpy and SQLite-signed forms


def test_nearest_distances_equal_brute_force_and_scale(rng):
    from boda.duplicates import hamming, nearest_distances

    hashes = [int(v) for v in rng.integers(0, 2**63, 300, dtype=np.int64)]
    hashes[5] = hashes[9] ^ 0b101  # a close pair
    expected = [min(hamming(a, b) for j, b in enumerate(hashes) if j != i)
                for i, a in enumerate(hashes)]  # fmt: skip
    assert nearest_distances(hashes).tolist() == expected
    assert nearest_distances([7, 7]).tolist() == [0, 0]
    # Blocks of rows, as in a large look-alike group: the same answer.
    big = [int(v) for v in rng.integers(0, 2**16, 3000)]
    brute = np.array(big, dtype=np.uint64)
    diff = np.bitwise_count(brute[:, None] ^ brute[None, :]).astype(int)
    np.fill_diagonal(diff, 99)
    assert nearest_distances(big).tolist() == diff.min(axis=1).tolist()
