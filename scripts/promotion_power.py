"""False-promotion rate and power of the promotion decision, by simulation.

Each trial draws a validation split of N images with one plate each and two models' predictions
on it, scores both with segm/AP50-plate, and decides with the project's own code
(`steps.evaluate.promotion.decide` after `gain_test` over `draw_resamples`, the level from
`test_level`, the resample count from `resamples`): what the evaluate step does, with a fast
vectorised AP in place of running the COCO evaluator on every resample. Before any trial the
script checks that this AP is the project's `segm/AP50-plate` (`family_metrics`) on a split and
on resamples of it, to the last bit.

The models: a model finds an image's plate (a true positive, score uniform in 0.5-1) when
rho * z_image + sqrt(1 - rho^2) * e_model < Phi^-1(recall): images are easy or hard for both
models alike (rho 0.5). Each image also gets a false positive (score uniform in 0.05-0.8) with
probability 0.2 per model. Scenarios: an equal challenger (recall 0.90 vs 0.90: every promotion
is a false one), a slightly worse one (0.88), a clearly better one (0.97: a promotion is a
correct one, the power), the best of a 12-checkpoint sweep of equal or better ones, and a
champion's reign of nightly equal challengers.

Not a test: run it by hand; a full run takes a few minutes (shared 2-core machines: longer).
    python scripts/promotion_power.py --trials 400
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from steps.config import PromotionConfig, load_config  # noqa: E402
from steps.evaluate.bootstrap import draw_resamples, gain_test  # noqa: E402
from steps.evaluate.promotion import Evidence, decide, resamples, test_level  # noqa: E402

RECALL_THRESHOLDS = np.linspace(0.0, 1.00, 101)  # pycocotools' params.recThrs
RHO = 0.5  # how much the two models agree on which images are hard
FALSE_POSITIVE_RATE = 0.2


@dataclass(frozen=True)
class Predictions:
    """One model's plate detections on a split: image index, score and true/false positive."""

    image: np.ndarray
    score: np.ndarray
    hit: np.ndarray


def simulate(rng: np.random.Generator, difficulty: np.ndarray, recall: float) -> Predictions:
    n = len(difficulty)
    found = RHO * difficulty + math.sqrt(1 - RHO**2) * rng.standard_normal(n) < NormalDist().inv_cdf(recall)
    false = rng.random(n) < FALSE_POSITIVE_RATE
    image = np.concatenate([np.flatnonzero(found), np.flatnonzero(false)])
    score = np.concatenate([rng.uniform(0.5, 1.0, found.sum()), rng.uniform(0.05, 0.8, false.sum())])
    hit = np.concatenate([np.ones(found.sum(), bool), np.zeros(false.sum(), bool)])
    order = np.argsort(-score, kind="mergesort")
    return Predictions(image[order], score[order], hit[order])


def ap50(predictions: Predictions, weights: np.ndarray) -> np.ndarray:
    """COCO AP at IoU 0.5 of the one class, for each row of `weights` (how often each image is
    in a resample; all ones: the split itself), exactly as pycocotools' accumulate computes it:
    a repeated image's detections are copies of equal score, ranked next to each other."""
    weights = np.atleast_2d(weights).astype(np.int64)
    rows, plates = len(weights), int(weights[0].sum())  # one plate an image: every row has as many
    counted = weights[:, predictions.image]  # resamples x detections
    tp = np.cumsum(counted * predictions.hit, axis=1)
    fp = np.cumsum(counted * ~predictions.hit, axis=1)
    precision = tp / (tp + fp + np.spacing(1))
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    # pycocotools reads the envelope at the first rank whose recall tp / plates reaches each
    # threshold: tp reaching the least count m with m / plates >= threshold (the same division).
    counts = np.arange(plates + 1)
    needed = np.searchsorted(counts / plates, RECALL_THRESHOLDS, side="left")
    # One search over all rows at once: each row's counts shifted above the previous row's.
    detections = tp.shape[1]
    shift = np.arange(rows)[:, None] * (plates + 1)
    at = np.searchsorted((tp + shift).ravel(), (needed[None, :] + shift).ravel(), side="left").reshape(rows, -1)
    at -= np.arange(rows)[:, None] * detections
    reached = at < detections
    values = np.take_along_axis(envelope, np.minimum(at, detections - 1), axis=1) if detections else at * 0.0
    return np.where(reached, values, 0.0).mean(axis=1)


def check_against_the_project(seed: int = 7, images: int = 40) -> None:
    """The fast AP equals the project's segm/AP50-plate on a split and on bootstrap resamples."""
    from steps.config import EvaluateConfig
    from steps.evaluate.bootstrap import _by_image, _resample, _results
    from steps.masks import encode, polygons_to_mask
    from steps.metrics.summary import family_metrics

    rng = np.random.default_rng(seed)
    model = simulate(rng, rng.standard_normal(images), 0.8)
    plate, elsewhere = [4.0, 4.0, 24.0, 4.0, 24.0, 14.0, 4.0, 14.0], [20.0, 20.0, 30.0, 20.0, 30.0, 30.0, 20.0, 30.0]
    gt = {"images": [{"id": i + 1, "file_name": f"{i}.png", "height": 32, "width": 32} for i in range(images)],
          "categories": [{"id": 1, "name": "plate"}],
          "annotations": [{"id": i + 1, "image_id": i + 1, "category_id": 1, "segmentation": [plate],
                           "bbox": [4.0, 4.0, 20.0, 10.0], "area": 200.0, "iscrowd": 0} for i in range(images)]}
    results = [{"image_id": int(i) + 1, "category_id": 1, "score": float(s),
                "bbox": [4.0, 4.0, 20.0, 10.0] if hit else [20.0, 20.0, 10.0, 10.0],
                "segmentation": encode(polygons_to_mask([plate if hit else elsewhere], 32, 32))}
               for i, s, hit in zip(model.image, model.score, model.hit)]
    config, ones = EvaluateConfig(), np.ones(images)
    expected = family_metrics("segm", gt, results, config)["segm/AP50-plate"]
    assert ap50(model, ones)[0] == expected, (ap50(model, ones)[0], expected)
    by_image, annotations = _by_image(results), _by_image(gt["annotations"])
    draws = draw_resamples(images, 6, seed)
    fast = ap50(model, np.array([np.bincount(drawn, minlength=images) for drawn in draws]))
    for drawn, ours in zip(draws, fast):
        resampled = _resample(gt, gt["images"], drawn, annotations)
        theirs = family_metrics("segm", resampled, _results(drawn, gt["images"], by_image), config)["segm/AP50-plate"]
        assert ours == theirs, (ours, theirs)


def decision(champion: Predictions, challengers: list[Predictions], images: int, config: PromotionConfig,
             reign: int = 1) -> bool:
    """Whether the project's decision promotes the best of `challengers` over `champion`."""
    ones = np.ones(images)
    scores = [ap50(c, ones)[0] for c in challengers]
    best = challengers[int(np.argmax(scores))]
    ours, theirs = max(scores), ap50(champion, ones)[0]
    seen = Evidence(images, images)
    screened = decide(ours, theirs, None, config, "max", len(challengers), reign, seen)
    if not screened.promoted:
        return False
    alpha = test_level(config.min_confidence, len(challengers), reign)
    weights = np.array([np.bincount(d, minlength=images) for d in draw_resamples(images, resamples(alpha, config))])
    comparison = gain_test(screened.gain, ap50(best, weights) - ap50(champion, weights), config.min_gain, alpha, images)
    return decide(ours, theirs, comparison, config, "max", len(challengers), reign, seen).promoted


def rate(trials: int, seed: int, images: int, champion_recall: float, challenger_recall: float,
         config: PromotionConfig, candidates: int = 1) -> float:
    rng = np.random.default_rng(seed)
    promoted = 0
    for _ in range(trials):
        difficulty = rng.standard_normal(images)
        champion = simulate(rng, difficulty, champion_recall)
        challengers = [simulate(rng, difficulty, challenger_recall) for _ in range(candidates)]
        promoted += decision(champion, challengers, images, config)
    return promoted / trials


def reign_rate(trials: int, seed: int, images: int, nights: int, config: PromotionConfig, spend: bool) -> float:
    """Share of reigns of `nights` equal challengers (same split, same champion) in which one was
    promoted; `spend` False tests every night at the first night's level."""
    rng = np.random.default_rng(seed)
    deposed = 0
    for _ in range(trials):
        difficulty = rng.standard_normal(images)
        champion = simulate(rng, difficulty, 0.9)
        for night in range(1, nights + 1):
            if decision(champion, [simulate(rng, difficulty, 0.9)], images, config, night if spend else 1):
                deposed += 1
                break
    return deposed / trials


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400, help="simulated comparisons per figure (default 400)")
    parser.add_argument("--sizes", default="8,60,500", help="validation images (default 8,60,500)")
    parser.add_argument("--config", default="configs/cluster.yaml", help="the promotion settings decided with")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    check_against_the_project()
    configured = load_config(args.config).promotion
    # The test itself at every size; the configured minimum evidence is reported beside it.
    config = configured.model_copy(update={"min_images": 0, "min_objects": 0})
    print(f"promotion decision by simulation: {args.trials} trials a figure, settings of {args.config} "
          f"(min_confidence {config.min_confidence}, min_gain {config.min_gain}); "
          f"the fast AP equals the project's segm/AP50-plate (checked)")
    print(f"{'images':>6}  {'equal 0.90':>10}  {'worse 0.88':>10}  {'better 0.97':>11}  "
          f"{'12: equal':>9}  {'12: better':>10}  configured (min_images {configured.min_images})")
    started = time.perf_counter()
    for images in (int(n) for n in args.sizes.split(",")):
        cells = [rate(args.trials, args.seed, images, 0.9, 0.9, config),
                 rate(args.trials, args.seed + 1, images, 0.9, 0.88, config),
                 rate(args.trials, args.seed + 2, images, 0.9, 0.97, config),
                 rate(args.trials, args.seed + 3, images, 0.9, 0.9, config, candidates=12),
                 rate(args.trials, args.seed + 4, images, 0.9, 0.97, config, candidates=12)]
        refused = images < configured.min_images or images < configured.min_objects
        print(f"{images:>6}  {cells[0]:>10.1%}  {cells[1]:>10.1%}  {cells[2]:>11.1%}  {cells[3]:>9.1%}  "
              f"{cells[4]:>10.1%}  {'refused: not enough evidence' if refused else 'decided as above'}", flush=True)
    reign_images = 60
    nights = 10
    spent = reign_rate(args.trials, args.seed + 5, reign_images, nights, config, spend=True)
    flat = reign_rate(args.trials, args.seed + 5, reign_images, nights, config, spend=False)
    print(f"a reign of {nights} nightly equal challengers on {reign_images} images: one promoted in {spent:.1%} of "
          f"reigns with alpha spending, {flat:.1%} with every night at the first night's level")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
