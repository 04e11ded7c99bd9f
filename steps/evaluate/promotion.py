"""The champion/challenger decision: enough validation evidence, a gain beyond
`promotion.min_gain`, and a centred paired bootstrap that confirms it at the required level.

Three corrections set the level the test must reach (docs/metrics.md#promotion):
- selection: the challenger is the best of N checkpoints on the very images it is compared on,
  so its level is divided by N (Bonferroni): the chance that any of them looks better by luck
  stays within 1 - min_confidence;
- a champion's reign: every night compares a new challenger with the same champion on much the
  same images. The k-th tested comparison of a reign on one validation split is held to
  alpha / (k (k + 1)); these sum to alpha over any number of nights, so an equal challenger is
  promoted on one split with probability at most alpha. A new split starts the count again (the
  count lives in the database, table `reigns`, and is claimed before the test so that
  overlapping selects never share a place: steps/evaluate/reign.py);
- resolution: the bootstrap draws enough resamples to see that level (TAIL_RESAMPLES beyond it).
  Where even promotion.max_bootstrap_samples cannot resolve it (fewer than one resample expected
  beyond it: nothing could pass), the reign's tests on this split are spent: the decision says so
  and runs no bootstrap (`spent`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from steps.config import PromotionConfig
from steps.errors import ConfigError
from steps.evaluate.bootstrap import Comparison

# Resamples expected beyond the test's bound: 20 put the bound's count to about +-22%; 200
# resamples at a level of 1 - 0.9917 expected fewer than 2.
TAIL_RESAMPLES = 20


@dataclass(frozen=True)
class Evidence:
    """What a comparison rests on: validation images and the objects the key scores."""

    images: int
    objects: int


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str
    challenger_score: float
    champion_score: float | None = None
    gain: float | None = None
    gain_low: float | None = None  # the gain's bootstrap interval, at `interval_level`
    gain_high: float | None = None
    interval_level: float | None = None
    confidence: float | None = None
    required_confidence: float | None = None
    samples: int | None = None
    images: int | None = None
    objects: int | None = None
    candidates: int = 1
    reign_comparison: int | None = None  # the k-th tested comparison against this champion

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def evidence(gt: dict[str, Any], key: str, plate_label: str) -> Evidence:
    """The validation images, and the objects `key` scores: its class's for a per-class key
    (`segm/AP50-plate`, `dv_AP-plate`), the plates for EIR, every object for the others."""
    names = {c["id"]: c["name"] for c in gt.get("categories", [])}
    wanted = plate_label if key == "EIR" else key.split("-", 1)[1] if "-" in key else None
    objects = sum(1 for ann in gt.get("annotations", [])
                  if not ann.get("iscrowd") and (wanted is None or names.get(ann["category_id"]) == wanted))
    return Evidence(len(gt.get("images", [])), objects)


def test_level(min_confidence: float, candidates: int = 1, reign_comparison: int = 1) -> float:
    """The level (one minus the confidence) the selected one of `candidates` checkpoints must
    reach in the `reign_comparison`-th tested comparison against the same champion."""
    k = max(reign_comparison, 1)
    return (1.0 - min_confidence) / (k * (k + 1)) / max(candidates, 1)


def required_confidence(min_confidence: float, candidates: int = 1, reign_comparison: int = 1) -> float:
    return 1.0 - test_level(min_confidence, candidates, reign_comparison)


def resamples(alpha: float, config: PromotionConfig) -> int:
    """Bootstrap resamples for a test at level `alpha`: TAIL_RESAMPLES expected beyond its bound,
    at least promotion.bootstrap_samples, at most promotion.max_bootstrap_samples."""
    wanted = math.ceil(TAIL_RESAMPLES / alpha - 1e-6) if alpha > 0 else config.max_bootstrap_samples  # 400.0000001: 400
    return min(max(config.bootstrap_samples, wanted), config.max_bootstrap_samples)


def resolvable(alpha: float, config: PromotionConfig) -> bool:
    """Whether promotion.max_bootstrap_samples resamples can pass a test at level `alpha` at all
    (gain_test passes nothing when floor(alpha (B + 1)) is 0)."""
    return math.floor(alpha * (config.max_bootstrap_samples + 1) + 1e-9) >= 1


def spent(screened: Decision, place: int, alpha: float, config: PromotionConfig) -> Decision:
    """`screened` (a gain worth testing) refused because its test could not pass: the level of its
    `place` in the champion's reign is beyond the resamples allowed."""
    need = 1.0 - alpha
    return replace(screened, promoted=False, required_confidence=need, reason=(
        f"{screened.reason}; not tested: test {place} of this champion's reign on this validation "
        f"split would need confidence {need:.6f}, which promotion.max_bootstrap_samples "
        f"({config.max_bootstrap_samples}) resamples cannot resolve: the reign's tests on this split are spent. "
        "A new validation split (a dataset version with new validation images) starts a fresh comparison; "
        "`trainyard models promote` promotes by hand; keeping the champion"))


def decide_first(score: float, config: PromotionConfig, mode: str) -> Decision:
    """No production model yet: promote when the score is a number beyond promotion.min_first_score."""
    _check_mode(mode)
    floor = config.min_first_score
    if math.isnan(score):
        return Decision(False, f"first model: score is not a number ({score}); nothing promoted", score)
    if floor is not None and not (score > floor if mode == "max" else score < floor):
        word = "above" if mode == "max" else "below"
        return Decision(False, f"first model: score {score:.4f} is not {word} promotion.min_first_score {floor}; "
                               "nothing promoted", score)
    return Decision(True, f"first model: no production model yet (score {score:.4f})", score)


def decide(challenger: float, champion: float, comparison: Comparison | None, config: PromotionConfig,
           mode: str, candidates: int = 1, reign_comparison: int = 1, evidence: Evidence | None = None) -> Decision:
    """Promote when the evidence suffices, the gain exceeds min_gain, and the bootstrap test
    (`comparison`, made at test_level(...)) confirms it.

    `comparison` None: no test was made (min_confidence 0, or the caller screening whether one
    is needed: a refusal here needs none).
    """
    _check_mode(mode)
    gain = challenger - champion if mode == "max" else champion - challenger
    need = required_confidence(config.min_confidence, candidates, reign_comparison)
    stats: dict[str, Any] = {"champion_score": champion, "gain": gain, "required_confidence": need,
                             "candidates": candidates, "reign_comparison": reign_comparison}
    if evidence is not None:
        stats.update(images=evidence.images, objects=evidence.objects)
    if comparison is not None:
        stats.update(confidence=comparison.confidence, samples=comparison.samples, gain_low=comparison.low,
                     gain_high=comparison.high, interval_level=comparison.level)
    verdict = f"challenger {challenger:.4f} vs champion {champion:.4f} ({mode}): gain {gain:+.4f}"
    if evidence is not None and (evidence.images < config.min_images or evidence.objects < config.min_objects):
        return Decision(False, f"{verdict}; not enough evidence to decide: {evidence.images} validation images and "
                               f"{evidence.objects} objects scored, promotion.min_images {config.min_images} and "
                               f"promotion.min_objects {config.min_objects} needed; keeping the champion",
                        challenger, **stats)
    if math.isnan(gain):
        return Decision(False, f"{verdict}; not a number, keeping the champion", challenger, **stats)
    if not gain > config.min_gain:
        return Decision(False, f"{verdict} <= min_gain {config.min_gain}; keeping the champion", challenger, **stats)
    if comparison is None:
        return Decision(True, f"{verdict} > min_gain {config.min_gain}", challenger, **stats)
    where = f"{comparison.samples} resamples of {comparison.images} images"
    interval = (f"{comparison.level:.1%} interval [{comparison.low:+.4f}, {comparison.high:+.4f}]"
                if not math.isnan(comparison.low) else "no interval (no resample was defined)")
    sure = f"confidence {comparison.confidence:.4f}"
    why = _level_reason(need, candidates, reign_comparison)
    if not comparison.passed:
        return Decision(False, f"{verdict}, {interval} over {where}; not confirmed above min_gain "
                               f"{config.min_gain}: {sure} < {need:.4f} required ({why}); keeping the champion",
                        challenger, **stats)
    return Decision(True, f"{verdict}, {interval} over {where}; confirmed above min_gain {config.min_gain}: "
                          f"{sure} >= {need:.4f} required ({why})", challenger, **stats)


def _level_reason(need: float, candidates: int, reign_comparison: int) -> str:
    parts = [f"{candidates} checkpoint{'s' if candidates != 1 else ''} compared"]
    if reign_comparison > 1:
        parts.append(f"test {reign_comparison} of this champion's reign")
    return ", ".join(parts)


def _check_mode(mode: str) -> None:
    if mode not in ("max", "min"):
        raise ConfigError(f"evaluate.select_mode: expected 'max' or 'min', got {mode!r}")
