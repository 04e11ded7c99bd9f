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
champion's reign of nightly equal challengers (`reign`: 10 nights on one split).

`long`: a long reign (60 nights, the best of the cluster's 6 checkpoints each night) whose
validation split is replaced by fresh images every N nights, counted by three rules: the
project's (a new split starts the count again), one count for the whole reign, and one count
capped where the resamples' resolution ends; then the power of a clearly better challenger by
the place its test takes in a reign. Its AP on 20,000 resamples is the cost: about 8 s a reign.

Not a test: run it by hand (shared 2-core machines: a few minutes per section):
    python scripts/promotion_power.py --trials 400 --sections table,reign
    python scripts/promotion_power.py --trials 40 --sections long
"""

from __future__ import annotations

import argparse
import functools
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
from steps.evaluate.promotion import Evidence, decide, resamples, resolvable, test_level  # noqa: E402

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
    weights = np.atleast_2d(weights).astype(np.int32)  # counts of at most a split's images
    plates = int(weights[0].sum())  # one plate an image: every row has as many
    counted = weights[:, predictions.image]  # resamples x detections
    tp = np.cumsum(counted * predictions.hit, axis=1, dtype=np.int32)
    ranked = np.cumsum(counted, axis=1, dtype=np.int32)  # tp + fp, the same integers
    precision = tp / (ranked + np.spacing(1))
    envelope = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]
    # pycocotools reads the envelope at the first rank whose recall tp / plates reaches each
    # threshold: tp reaching the least count m with m / plates >= threshold (the same division).
    counts = np.arange(plates + 1)
    needed = np.searchsorted(counts / plates, RECALL_THRESHOLDS, side="left")
    detections = tp.shape[1]
    at = np.take(first_reached(tp, plates), needed, axis=1)  # C order: the mean below sums as the project's
    reached = at < detections
    values = np.take_along_axis(envelope, np.minimum(at, detections - 1), axis=1) if detections else at * 0.0
    return np.where(reached, values, 0.0).mean(axis=1)


def first_reached(tp: np.ndarray, plates: int) -> np.ndarray:
    """For each row of cumulative true-positive counts `tp` (rows x detections, non-decreasing),
    the first rank at which it reaches m, for m = 0 .. plates (`detections` where it never does):
    rank j is the first for every m in (tp[j - 1], tp[j]], set for all rows at once."""
    rows, detections = tp.shape
    first = np.full((rows, plates + 1), detections, dtype=np.int64)
    first[:, 0] = 0
    if detections == 0:
        return first
    steps = np.diff(tp, prepend=0, axis=1).ravel()
    ranks = np.repeat(np.tile(np.arange(detections), rows), steps)
    totals = tp[:, -1]
    starts = np.repeat(np.cumsum(totals) - totals, totals)
    first[np.repeat(np.arange(rows), totals), np.arange(len(ranks)) - starts + 1] = ranks
    return first


def check_against_the_project(seed: int = 7, images: int = 40) -> None:
    """The fast AP equals the project's segm/AP50-plate on a split and on bootstrap resamples."""
    from steps.config import EvaluateConfig
    from steps.metrics.resampled import by_image as _by_image, resample_gt as _resample, resample_results as _results
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


@functools.lru_cache(maxsize=8)
def resample_weights(images: int, samples: int) -> np.ndarray:
    """How often each image is in each of the project's resamples (seed 0: every test draws the same)."""
    return np.array([np.bincount(d, minlength=images) for d in draw_resamples(images, samples)], dtype=np.int32)


def night(champion: Predictions, challengers: list[Predictions], images: int, config: PromotionConfig,
          reign: int = 1, resampled: dict | None = None) -> tuple[bool, bool]:
    """(promoted, tested): whether the project's decision promotes the best of `challengers` over
    `champion` as test `reign` of its reign, and whether it ran the test (what takes a place in
    the reign: steps/evaluate/evaluate.py `_decide`). `resampled`: a cache of AP on resamples,
    by (model, resamples), shared by decisions about the same models (it keeps the models, so
    that no other takes their id)."""
    ones = np.ones(images)
    scores = [ap50(c, ones)[0] for c in challengers]
    best = challengers[int(np.argmax(scores))]
    ours, theirs = max(scores), ap50(champion, ones)[0]
    seen = Evidence(images, images)
    screened = decide(ours, theirs, None, config, "max", len(challengers), reign, seen)
    if not screened.promoted:
        return False, False
    alpha = test_level(config.min_confidence, len(challengers), reign)
    if not resolvable(alpha, config):  # the reign's tests on this split are spent
        return False, False
    samples = resamples(alpha, config)
    cache = {} if resampled is None else resampled

    def on_resamples(model: Predictions) -> np.ndarray:
        if (id(model), samples) not in cache:
            cache[(id(model), samples)] = (model, ap50(model, resample_weights(images, samples)))
        return cache[(id(model), samples)][1]

    comparison = gain_test(screened.gain, on_resamples(best) - on_resamples(champion), config.min_gain, alpha, images)
    return decide(ours, theirs, comparison, config, "max", len(challengers), reign, seen).promoted, True


def decision(champion: Predictions, challengers: list[Predictions], images: int, config: PromotionConfig,
             reign: int = 1) -> bool:
    """Whether the project's decision promotes the best of `challengers` over `champion`."""
    return night(champion, challengers, images, config, reign)[0]


def rate(trials: int, seed: int, images: int, champion_recall: float, challenger_recall: float,
         config: PromotionConfig, candidates: int = 1, reign: int = 1) -> float:
    """Share of `trials` comparisons that promote: the best of `candidates` challengers against a
    champion, as test `reign` of its reign."""
    rng = np.random.default_rng(seed)
    promoted = 0
    for _ in range(trials):
        difficulty = rng.standard_normal(images)
        champion = simulate(rng, difficulty, champion_recall)
        challengers = [simulate(rng, difficulty, challenger_recall) for _ in range(candidates)]
        promoted += decision(champion, challengers, images, config, reign)
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


# How a long reign counts its tests. "per split" is the project's rule (steps/evaluate/reign.py).
RULES = {
    "one count": "every test of the reign counted together, whatever the split",
    "capped": "one count, but never beyond the last place the allowed resamples resolve",
    "per split": "counted per validation split: a new split starts again at 1",
}


def last_resolved(config: PromotionConfig, candidates: int) -> int:
    """The last place in a reign whose level promotion.max_bootstrap_samples resolves."""
    place = 1
    while resolvable(test_level(config.min_confidence, candidates, place + 1), config):
        place += 1
    return place


def long_reign(trials: int, seed: int, images: int, nights: int, every: int, candidates: int,
               config: PromotionConfig) -> dict[str, dict[str, float]]:
    """A champion (recall 0.90) against the best of `candidates` equal challengers every night
    for `nights` nights, on a validation split of `images` images that is replaced by a fresh one
    every `every` nights. Every rule sees the same splits and challengers.

    Per rule: `false`, the share of reigns in which an equal challenger was promoted (any night);
    `place`, the mean place the last night's test takes in its reign (reigns still unbroken)."""
    cap = last_resolved(config, candidates)
    tallies = {rule: {"false": 0, "alive": 0, "place": 0} for rule in RULES}
    for trial in range(trials):
        rng = np.random.default_rng([seed, trial])
        tests = {rule: [0] * (1 + (nights - 1) // every) for rule in RULES}  # tests run, per split
        deposed = set()
        for day in range(1, nights + 1):
            split = (day - 1) // every
            if (day - 1) % every == 0:  # a fresh validation split: new images, the champion scored on them
                difficulty = rng.standard_normal(images)
                champion = simulate(rng, difficulty, 0.9)
                resampled: dict = {}
            challengers = [simulate(rng, difficulty, 0.9) for _ in range(candidates)]
            resampled = {key: value for key, value in resampled.items() if value[0] is champion}  # last night's go
            for rule in RULES:
                if rule in deposed:
                    continue
                done = tests[rule][split] if rule == "per split" else sum(tests[rule])
                place = min(1 + done, cap) if rule == "capped" else 1 + done
                promoted, tested = night(champion, challengers, images, config, place, resampled)
                tests[rule][split] += tested
                if promoted:
                    tallies[rule]["false"] += 1
                    deposed.add(rule)
                elif day == nights:
                    tallies[rule]["alive"] += 1
                    tallies[rule]["place"] += place
    return {rule: {"false": t["false"] / trials, "place": t["place"] / max(t["alive"], 1)} for rule, t in tallies.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400, help="simulated comparisons (or reigns) per figure (default 400)")
    parser.add_argument("--sizes", default="8,60,500", help="validation images (default 8,60,500)")
    parser.add_argument("--config", default="configs/cluster.yaml", help="the promotion settings decided with")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sections", default="table,reign,long",
                        help="what to run, comma-separated: table (one comparison by size), reign (10 nights), "
                        "long (a long reign with fresh validation splits; default: all)")
    parser.add_argument("--nights", type=int, default=60, help="the long reign's nights (default 60)")
    parser.add_argument("--split-every", type=int, default=10, help="nights between fresh validation splits (default 10)")
    parser.add_argument("--candidates", type=int, default=6,
                        help="checkpoints compared each night in the long reign (default 6: the cluster config's)")
    parser.add_argument("--reign-images", type=int, default=60, help="validation images in the reigns (default 60)")
    parser.add_argument("--power-sizes", default="60,150",
                        help="validation images for the long reign's power by place (default 60,150)")
    args = parser.parse_args()
    sections = set(args.sections.split(","))

    check_against_the_project()
    configured = load_config(args.config).promotion
    # The test itself at every size; the configured minimum evidence is reported beside it.
    config = configured.model_copy(update={"min_images": 0, "min_objects": 0})
    print(f"promotion decision by simulation: {args.trials} trials a figure, settings of {args.config} "
          f"(min_confidence {config.min_confidence}, min_gain {config.min_gain}, at most "
          f"{config.max_bootstrap_samples} resamples); the fast AP equals the project's segm/AP50-plate (checked)")
    started = time.perf_counter()
    if "table" in sections:
        print(f"{'images':>6}  {'equal 0.90':>10}  {'worse 0.88':>10}  {'better 0.97':>11}  "
              f"{'12: equal':>9}  {'12: better':>10}  configured (min_images {configured.min_images})")
        for images in (int(n) for n in args.sizes.split(",")):
            cells = [rate(args.trials, args.seed, images, 0.9, 0.9, config),
                     rate(args.trials, args.seed + 1, images, 0.9, 0.88, config),
                     rate(args.trials, args.seed + 2, images, 0.9, 0.97, config),
                     rate(args.trials, args.seed + 3, images, 0.9, 0.9, config, candidates=12),
                     rate(args.trials, args.seed + 4, images, 0.9, 0.97, config, candidates=12)]
            refused = images < configured.min_images or images < configured.min_objects
            print(f"{images:>6}  {cells[0]:>10.1%}  {cells[1]:>10.1%}  {cells[2]:>11.1%}  {cells[3]:>9.1%}  "
                  f"{cells[4]:>10.1%}  {'refused: not enough evidence' if refused else 'decided as above'}", flush=True)
    if "reign" in sections:
        nights = 10
        spent = reign_rate(args.trials, args.seed + 5, args.reign_images, nights, config, spend=True)
        flat = reign_rate(args.trials, args.seed + 5, args.reign_images, nights, config, spend=False)
        print(f"a reign of {nights} nightly equal challengers on {args.reign_images} images: one promoted in "
              f"{spent:.1%} of reigns with alpha spending, {flat:.1%} with every night at the first night's level",
              flush=True)
    if "long" in sections:
        cap = last_resolved(config, args.candidates)
        print(f"a reign of {args.nights} nights, the best of {args.candidates} equal checkpoints each night, a fresh "
              f"validation split of {args.reign_images} images every {args.split_every} nights ({args.trials} reigns):")
        figures = long_reign(args.trials, args.seed + 6, args.reign_images, args.nights, args.split_every,
                             args.candidates, config)
        print(f"  {'rule':<10}  {'equal promoted':>14}  {'place of the last test':>22}")
        for rule, cells in figures.items():
            print(f"  {rule:<10}  {cells['false']:>14.1%}  {cells['place']:>22.1f}  ({RULES[rule]})", flush=True)
        places = sorted({1, args.split_every, cap, cap + 1})
        print(f"a clearly better challenger (the best of {args.candidates} at recall 0.97, champion 0.90), promoted by "
              f"its place in the reign ({args.trials} comparisons; beyond place {cap}, {config.max_bootstrap_samples} "
              "resamples cannot resolve the level: spent):")
        print(f"  {'images':>6}  " + "  ".join(f"{f'place {k}':>9}" for k in places))
        for images in (int(n) for n in args.power_sizes.split(",")):
            cells = [rate(args.trials, args.seed + 7, images, 0.9, 0.97, config, args.candidates, k) for k in places]
            print(f"  {images:>6}  " + "  ".join(f"{cell:>9.1%}" for cell in cells), flush=True)
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
