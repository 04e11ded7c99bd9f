"""A deterministic, stratified train/val(/test) split of image names.

Within each stratum (e.g. the rarest category an image holds) images are ranked by a hash of
(seed, name): the same names and seed give the same split whatever their order, and adding images
later moves few of the existing ones. Each stratum gets its share of val and test images, so a rare
category is not left out of validation by chance; the totals are exact (largest remainders).
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
    if len(set(image_names)) != len(image_names):
        raise ValueError("split_images: image names must be unique")
    if val_fraction < 0 or test_fraction < 0 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"dataset.val_fraction ({val_fraction}) + dataset.test_fraction ({test_fraction}) "
            "must be >= 0 and add up to less than 1"
        )
    groups: dict[str, list[str]] = {}
    for name in image_names:
        groups.setdefault((strata or {}).get(name, ""), []).append(name)
    sizes = {key: len(names) for key, names in groups.items()}
    n_val, n_test = split_counts(len(image_names), val_fraction, test_fraction)
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
