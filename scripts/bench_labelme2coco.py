#!/usr/bin/env python
"""Benchmark `trainyard labelme2coco` (a script, not a test): images converted per second.

Generates N synthetic labelme files (JPEG + JSON, ~10 shapes each; kept in --data for reuse),
converts them, and prints images/s. With --labelme-example, also times labelme's own
examples/instance_segmentation/labelme2coco.py on the same files (run with --labelme-python,
an interpreter that has numpy, pillow, imgviz and pycocotools) and compares the two outputs.

    python scripts/bench_labelme2coco.py 2000
    python scripts/bench_labelme2coco.py 2000 --labelme-example /tmp/labelme/examples/instance_segmentation/labelme2coco.py \
        --labelme-python /tmp/labelme-venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _sample(folder: Path, count: int, image_size: tuple[int, int] = (320, 240)) -> Path:
    from steps.datasets.sample_data import generate_sample

    if len(list(folder.glob("*.json"))) != count:
        shutil.rmtree(folder, ignore_errors=True)
        started = time.perf_counter()
        generate_sample(folder, num_images=count, seed=0, image_size=image_size)
        print(f"generated {count} labelme files in {time.perf_counter() - started:.1f} s into {folder}")
    labels = sorted({s["label"] for p in folder.glob("*.json") for s in json.loads(p.read_text())["shapes"]})
    labels_file = folder.parent / f"{folder.name}-labels.txt"
    labels_file.write_text("\n".join(["__ignore__", "_background_", *labels]) + "\n")
    return labels_file


def _ours(data: Path, labels_file: Path, out: Path, workers: int | None) -> float:
    from steps.datasets.labelme2coco import labelme2coco

    started = time.perf_counter()
    labelme2coco(data, out, labels_file=labels_file, workers=workers, overwrite=True)
    return time.perf_counter() - started


def _theirs(example: Path, python: str, data: Path, labels_file: Path, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    subprocess.run([python, str(example), str(data), str(out), "--labels", str(labels_file), "--noviz"],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _compare(ours_dir: Path, theirs_dir: Path) -> None:
    ours = json.loads((ours_dir / "train.json").read_text())
    theirs = json.loads((theirs_dir / "annotations.json").read_text())
    their_categories = {c["name"]: c["id"] for c in theirs["categories"]}
    our_categories = {c["name"]: c["id"] for c in ours["categories"]}
    print(f"categories: ours {len(our_categories)}, labelme {len(their_categories)} "
          f"(labelme's includes _background_ as id {their_categories.get('_background_')}); "
          f"same ids for the others: {all(their_categories[n] == i for n, i in our_categories.items())}")
    stem = {i["id"]: Path(i["file_name"]).stem for i in theirs["images"]}
    their_anns: dict[str, list[dict]] = {}
    for ann in theirs["annotations"]:
        their_anns.setdefault(stem[ann["image_id"]], []).append(ann)
    our_stem = {i["id"]: Path(i["file_name"]).stem for i in ours["images"]}
    our_anns: dict[str, list[dict]] = {}
    for ann in ours["annotations"]:
        our_anns.setdefault(our_stem[ann["image_id"]], []).append(ann)
    print(f"annotations: ours {len(ours['annotations'])}, labelme {len(theirs['annotations'])}")
    ratios, extra, same_segmentation = [], [], 0
    for name, anns in our_anns.items():
        for mine, its in zip(anns, their_anns.get(name, [])):
            ratios.append(its["area"] / mine["area"])
            extra.append(its["area"] - mine["area"])
            same_segmentation += mine["segmentation"] == its["segmentation"]
    print(f"same polygons: {same_segmentation} of {len(ratios)}; labelme's area / ours: median "
          f"{statistics.median(ratios):.3f} (labelme fills with PIL, outline pixels included: median "
          f"{statistics.median(extra):+.0f} px per object; ours is the pixel count of the mask COCO tools "
          "rasterize from the written polygons)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("n", type=int, nargs="?", default=2000, help="number of labelme files (default 2000)")
    parser.add_argument("--data", type=Path, help="folder for the generated files (default: a temporary folder)")
    parser.add_argument("--workers", type=int, help="worker processes (default: the available cores)")
    parser.add_argument("--labelme-example", type=Path, help="labelme's examples/instance_segmentation/labelme2coco.py")
    parser.add_argument("--labelme-python", default=sys.executable, help="interpreter for labelme's example")
    args = parser.parse_args()

    from steps.parallel import available_cpus

    root = Path(tempfile.mkdtemp(prefix="bench-labelme2coco-"))
    data = args.data or root / "data"
    labels_file = _sample(data, args.n)
    seconds = _ours(data, labels_file, root / "ours", args.workers)
    workers = args.workers or available_cpus()
    print(f"trainyard labelme2coco: {args.n} images in {seconds:.2f} s = {args.n / seconds:.0f} images/s "
          f"({workers} worker(s), {available_cpus()} core(s))")
    if args.labelme_example:
        theirs = _theirs(args.labelme_example, args.labelme_python, data, labels_file, root / "labelme")
        print(f"labelme's labelme2coco.py --noviz: {args.n} images in {theirs:.2f} s = {args.n / theirs:.0f} images/s")
        _compare(root / "ours", root / "labelme")
    shutil.rmtree(root / "ours", ignore_errors=True)
    shutil.rmtree(root / "labelme", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
