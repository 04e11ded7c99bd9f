"""A deterministic, stratified train/val(/test) split of image names that never moves an image.

Within each stratum (e.g. the rarest category an image holds) images are ranked by a hash of
(seed, name): the same names and seed give the same split whatever their order. Each stratum gets
its share of val and test images, so a rare category is not left out of validation by chance; the
totals are exact (largest remainders).

Across dataset versions an image keeps the split it was first given (`assign_splits` with the
earlier assignments): otherwise a growing dataset reshuffles its strata and the production model
is scored on images it trained on. Only the new images are split, topping val and test up to their
shares of the whole, stratified among the new images.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping

from steps.errors import ConfigError

SPLITS = ("train", "val", "test")


def split_counts(total: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(val, test) image counts: rounded shares, at least 1 each when asked for (and >= 3 images),
    and always at least one training image."""

    def count(fraction: float) -> int:
        wanted = math.floor(total * fraction + 0.5)
        return max(wanted, 1) if fraction > 0 and total >= 3 else wanted

    n_val, n_test = count(val_fraction), count(test_fraction)
    while n_val + n_test >= total and n_val + n_test > 0:  # keep at least one training image
        if n_val >= n_test:
            n_val -= 1
        else:
            n_test -= 1
    return n_val, n_test


def _apportion(sizes: dict[str, int], wanted: int, fraction: float, room: dict[str, int]) -> dict[str, int]:
    """Split `wanted` units over strata in proportion to their sizes, within each one's room.

    Largest remainders get the units left over after rounding down; ties go to strata that keep
    a training image, then to bigger strata, then by name (deterministic).
    """
    quota = {key: size * fraction for key, size in sizes.items()}
    given = {key: min(math.floor(quota[key]), room[key]) for key in sizes}
    left = wanted - sum(given.values())
    while left < 0:  # only when the totals were cut to keep a training image
        key = min((k for k in given if given[k] > 0), key=lambda k: (quota[k] - given[k], -sizes[k], k))
        given[key] -= 1
        left += 1
    while left > 0:
        open_keys = [k for k in sizes if given[k] < room[k]]
        if not open_keys:
            break
        key = min(open_keys, key=lambda k: (given[k] + 1 >= room[k], -(quota[k] - given[k]), -sizes[k], k))
        given[key] += 1
        left -= 1
    return given


def split_images(
    image_names: list[str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    strata: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Assign each image to train/val/test; independent of input order.

    `strata` maps an image name to its stratum (default: one stratum); `test_fraction=0` gives a
    two-way train/val split.
    """
    _check(image_names, val_fraction, test_fraction)
    n_val, n_test = split_counts(len(image_names), val_fraction, test_fraction)
    return _stratified(image_names, n_val, n_test, val_fraction, test_fraction, seed, strata)


def assign_splits(
    image_names: list[str],
    previous: Mapping[str, str],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    strata: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Like split_images, but every image named in `previous` (name -> split of an earlier version)
    keeps that split; the new ones fill val and test up to their shares of all `image_names`."""
    _check(image_names, val_fraction, test_fraction)
    kept = {name: previous[name] for name in image_names if previous.get(name) in SPLITS}
    if not kept:
        return split_images(image_names, val_fraction, test_fraction, seed, strata)
    new = [name for name in image_names if name not in kept]
    n_val, n_test = split_counts(len(image_names), val_fraction, test_fraction)
    held = list(kept.values())
    want_val = min(max(n_val - held.count("val"), 0), len(new))
    want_test = min(max(n_test - held.count("test"), 0), len(new) - want_val)
    if "train" not in held and new and want_val + want_test == len(new):  # keep at least one training image
        if want_val >= want_test:
            want_val -= 1
        else:
            want_test -= 1
    share = max(len(new), 1)
    fresh = _stratified(new, want_val, want_test, want_val / share, want_test / share, seed, strata)
    return {name: kept.get(name) or fresh[name] for name in sorted(image_names)}


def _check(image_names: list[str], val_fraction: float, test_fraction: float) -> None:
    if len(set(image_names)) != len(image_names):
        raise ValueError("split_images: image names must be unique")
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"dataset.val_fraction ({val_fraction}) + dataset.test_fraction ({test_fraction}) "
            "must be >= 0 and add up to less than 1"
        )


def _stratified(image_names: list[str], n_val: int, n_test: int, val_fraction: float, test_fraction: float,
                seed: int, strata: Mapping[str, str] | None) -> dict[str, str]:
    """n_val and n_test of `image_names` (exactly), spread over strata in proportion to their sizes."""
    groups: dict[str, list[str]] = {}
    for name in image_names:
        groups.setdefault((strata or {}).get(name, ""), []).append(name)
    sizes = {key: len(names) for key, names in groups.items()}
    tests = _apportion(sizes, n_test, test_fraction, dict(sizes))
    vals = _apportion(sizes, n_val, val_fraction, {key: sizes[key] - tests[key] for key in sizes})

    def rank(name: str) -> tuple[str, str]:
        return hashlib.sha256(f"{seed}\0{name}".encode()).hexdigest(), name

    split: dict[str, str] = {}
    for key, names in groups.items():
        ordered = sorted(names, key=rank)
        n_test_here, n_val_here = tests[key], vals[key]
        split.update({name: "test" for name in ordered[:n_test_here]})
        split.update({name: "val" for name in ordered[n_test_here : n_test_here + n_val_here]})
        split.update({name: "train" for name in ordered[n_test_here + n_val_here :]})
    return {name: split[name] for name in sorted(image_names)}
