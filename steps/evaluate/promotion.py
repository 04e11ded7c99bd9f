"""The champion/challenger decision: a gain beyond `promotion.min_gain` that a paired bootstrap
over the validation images confirms with `promotion.min_confidence`.

Selection bias: the challenger is the best of N checkpoints on the very images it is compared
on, the champion gets one score; the best of N noisy scores is optimistic. The bootstrap is run
on the selected checkpoint only and its confidence must clear a Bonferroni-corrected level,
1 - (1 - min_confidence) / N: the chance that any of the N candidates looks that much better by
luck alone stays within 1 - min_confidence. Definitions: docs/metrics.md#promotion.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from steps.config import PromotionConfig
from steps.errors import ConfigError
from steps.evaluate.bootstrap import Comparison


@dataclass(frozen=True)
class Decision:
    promoted: bool
    reason: str
    challenger_score: float
    champion_score: float | None = None
    gain: float | None = None
    confidence: float | None = None
    required_confidence: float | None = None
    samples: int | None = None
    images: int | None = None
    candidates: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


def required_confidence(min_confidence: float, candidates: int) -> float:
    """The confidence the selected one of `candidates` checkpoints must reach (Bonferroni)."""
    return 1.0 - (1.0 - min_confidence) / max(candidates, 1)


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
           mode: str, candidates: int = 1) -> Decision:
    """Promote when the gain exceeds min_gain and the bootstrap confidence reaches the required level.

    `comparison` None skips the bootstrap (min_confidence 0).
    """
    _check_mode(mode)
    gain = challenger - champion if mode == "max" else champion - challenger
    need = required_confidence(config.min_confidence, candidates)
    stats = {"champion_score": champion, "gain": gain, "required_confidence": need, "candidates": candidates}
    if comparison is not None:
        stats.update(confidence=comparison.confidence, samples=comparison.samples, images=comparison.images)
    verdict = f"challenger {challenger:.4f} vs champion {champion:.4f} ({mode}): gain {gain:.4f}"
    if math.isnan(gain):
        return Decision(False, f"{verdict}; not a number, keeping the champion", challenger, **stats)
    if not gain > config.min_gain:
        return Decision(False, f"{verdict} <= min_gain {config.min_gain}; keeping the champion", challenger, **stats)
    if comparison is None:
        return Decision(True, f"{verdict} > min_gain {config.min_gain}", challenger, **stats)
    sure = f"confidence {comparison.confidence:.3f} over {comparison.samples} resamples of {comparison.images} images"
    if math.isnan(comparison.confidence) or comparison.confidence < need:
        return Decision(False, f"{verdict} > min_gain {config.min_gain}, but {sure} < {need:.3f} required; "
                               "keeping the champion", challenger, **stats)
    return Decision(True, f"{verdict} > min_gain {config.min_gain}; {sure} >= {need:.3f}", challenger, **stats)


def _check_mode(mode: str) -> None:
    if mode not in ("max", "min"):
        raise ConfigError(f"evaluate.select_mode: expected 'max' or 'min', got {mode!r}")
