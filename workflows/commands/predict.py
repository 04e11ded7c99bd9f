"""`trainyard predict IMAGES... [--model ID]`: a registered model on new images: drawings and COCO results."""

from __future__ import annotations

import argparse
from pathlib import Path

from workflows.commands.models import REGISTRY_HELP, _registry

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="run the production model (or --model ID) on images: drawings and COCO results",
                       description="Predict with a registered model (production by default) on image files or folders "
                       "of images, with the settings it was trained and evaluated with. Writes OUTPUT/predictions.json "
                       "(COCO results), OUTPUT/images.json (the COCO images they refer to), the drawn images under "
                       "OUTPUT/images/ and OUTPUT/index.html.")
    p.add_argument("images", nargs="+", type=Path, metavar="IMAGE", help="image files, or folders of them")
    p.add_argument("--model", default="production", help="model id (default: the production model)")
    p.add_argument("--registry", help=REGISTRY_HELP)
    p.add_argument("--output", type=Path, default=Path("predictions"), help="output folder (default ./predictions)")
    p.add_argument("--score-threshold", type=float,
                   help="draw and write predictions scoring at least this (default: the model's test.score_threshold)")
    p.set_defaults(func=run)


def _images(given: list[Path]) -> list[Path]:
    from steps.errors import InputError

    found: list[Path] = []
    for path in given:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"{path}: no such image file or folder")
    if not found:
        raise InputError(f"{', '.join(map(str, given))}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return found


def run(args: argparse.Namespace) -> int:
    import tempfile

    from steps import registry
    from steps.errors import InputError

    registry_uri = _registry(args.registry)
    images = _images(args.images)
    if args.score_threshold is not None and not 0 <= args.score_threshold <= 1:
        raise InputError(f"--score-threshold {args.score_threshold}: give a number from 0 to 1")
    model_id = args.model
    if model_id == "production":
        current = registry.production(registry_uri)
        if current is None:
            raise InputError(f"{registry_uri}: no production model yet; pass --model ID (`trainyard models list`)")
        model_id = current["model_id"]
    model = registry.show(registry_uri, model_id)
    with tempfile.TemporaryDirectory(prefix="trainyard-predict-") as scratch:
        folder = registry.fetch_model(registry_uri, model_id, Path(scratch) / model_id)
        page = predict(folder, model.lineage.get("backend") or "torchvision", model_id, images, args.output,
                       args.score_threshold)
    print(f"predicted {len(images)} image(s) with {model_id}: {args.output / 'predictions.json'}")
    print(f"  drawings: file://{page.resolve()}")
    return 0


def predict(model_folder: Path, backend: str, model_id: str, images: list[Path], out_dir: Path,
            threshold: float | None) -> Path:
    """Predict, write the COCO results and the drawings; return the page."""
    from PIL import Image

    from steps.config import load_config
    from steps.jsonio import write_json
    from steps.metrics import read_plates
    from steps.models import get_backend
    from steps.models.batching import predict_images
    from steps.reports.pages import ReportItem, write_test_report
    from steps.reports.visualize import draw_predictions

    config = load_config(model_folder / "config.yaml")
    shown_at = config.test.score_threshold if threshold is None else threshold
    predictor = get_backend(backend).load(model_folder / "model.pth")
    categories = predictor.categories
    names = {c["id"]: c["name"] for c in categories}
    plate = config.evaluate.plate_label
    coco_images, results, items = [], [], []
    inputs = [(path, number) for number, path in enumerate(images, start=1)]
    for (path, number), predicted in zip(inputs, predict_images(predictor, inputs, shown_at, config.test.batch_size)):
        picture = Image.open(path).convert("RGB")
        coco_images.append({"id": number, "file_name": str(path), "width": picture.width, "height": picture.height})
        results += predicted
        reads = read_plates(predicted, names, plate, config.evaluate.read_score) if plate in names.values() else []
        items.append(ReportItem(file_name=str(path), num_detections=len(predicted), plate_reads=[t for _, t in reads],
                                image=draw_predictions(picture, predicted, categories, plate, reads)))
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(out_dir / "predictions.json", results, indent=None)
    write_json(out_dir / "images.json", {"images": coco_images, "categories": categories})
    return write_test_report(out_dir, items, {}, f"trainyard predictions: {model_id}",
                             {"model": model_id, "images": str(len(images)), "drawn at score": str(shown_at)})
