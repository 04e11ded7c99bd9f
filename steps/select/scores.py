"""What select gathers: each evaluate pod's scores object, and what is missing from them.

Every evaluate pod writes its scores as one object, `<run prefix>/scores/<group or branch>/
scores.json`; select reads that prefix as one key-only input artifact, which Argo's GCS driver
downloads as a folder (workflow/artifacts/gcs/gcs.go `downloadObjects`). So nothing that grows with
checkpoints, branches or classes travels as a parameter (Argo offloads a pod whose args pass
128 KiB into a ConfigMap, workflow/controller/workflowpod.go `MaxEnvVarLen`).

Objects are hostile input: every field is checked, sizes and nesting are bounded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from steps.errors import InputError
from steps.evaluate.groups import BRANCH, CHECKPOINT
from steps.evaluate.stored import entry

SCORES_FILE = "scores.json"
MAX_OBJECT_BYTES = 64 * 1024 * 1024  # 32 branches x 10 checkpoints x 100 classes is ~3 MB in all
# `--upstream`: each fan-out's phase ({{tasks.T.status}}) as NAME=PHASE.
UPSTREAM = re.compile(r"([a-z][-a-z0-9]*)=([A-Za-z]+)")


def read_scores(folder: Path) -> list[dict]:
    """Rows (checkpoint, iteration, metrics; a sweep's also branch, overrides, source; and where
    the pod stored the checkpoint's predictions, when it did) of every `<group>/scores.json`
    under `folder`, oldest first per branch."""
    if not folder.is_dir():
        raise InputError(f"--scores {folder}: not a folder; expected the evaluate pods' scores objects")
    files = sorted(folder.rglob(SCORES_FILE))
    rows = [row for path in files for row in _rows(path, _load(path))]
    if not rows:
        raise InputError(f"--scores {folder}: no checkpoint was scored (did every evaluate pod fail?)")
    if len({row["checkpoint"] for row in rows}) != len(rows):
        raise InputError(f"--scores {folder}: a checkpoint was scored twice")
    return sorted(rows, key=lambda row: (row.get("branch", ""), row["iteration"]))


def _load(path: Path) -> object:
    if path.stat().st_size > MAX_OBJECT_BYTES:
        raise InputError(f"{path}: {path.stat().st_size} bytes, more than {MAX_OBJECT_BYTES} for one pod's scores")
    try:
        return json.loads(path.read_bytes())
    except RecursionError:
        raise InputError(f"{path}: JSON nested too deeply; expected a list of scores") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not JSON ({exc}); expected the list of scores an evaluate pod writes") from None


def _rows(path: Path, scores: object) -> list[dict]:
    if not isinstance(scores, list):
        raise InputError(f"{path}: expected a JSON list of scores (one per checkpoint)")
    rows = []
    for row in scores:
        name = row.get("checkpoint") if isinstance(row, dict) else None
        metrics = row.get("metrics") if isinstance(row, dict) else None
        match = CHECKPOINT.fullmatch(name) if isinstance(name, str) else None
        if match is None or not isinstance(metrics, dict):
            raise InputError(f"{path}: entry {str(row)[:80]!r} names no checkpoint (model_<iteration>.pth) or has no "
                             "metrics")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) or v is None for v in metrics.values()):
            raise InputError(f"{path}: {name}: metrics must be numbers (null for not a number)")
        clean = {str(k): float("nan") if v is None else float(v) for k, v in metrics.items()}
        branch = {k: row[k] for k in ("branch", "overrides", "source") if isinstance(row.get(k), str) and row[k]}
        if branch and not BRANCH.fullmatch(branch.get("branch", "")):
            raise InputError(f"{path}: {name}: branch {branch.get('branch')!r} is not a branch name (b0, b1, ...)")
        label = f"{branch['branch']}/{name}" if branch else name  # checkpoint names repeat across branches
        kept = entry(row.get("predictions"), f"{path}: {name}")
        stored = {"predictions": {**kept, "folder": str(path.parent)}} if kept else {}
        rows.append({"checkpoint": label, "file": name, "iteration": int(match.group(1)), "metrics": clean, **branch,
                     **stored})
    return rows


def parse_upstream(text: str) -> dict[str, str]:
    """`--upstream 'train=Succeeded evaluate=Failed'`: the phase of each fan-out select gathers."""
    pairs = text.split()
    if not all(UPSTREAM.fullmatch(pair) for pair in pairs):
        raise InputError(f"--upstream {text[:120]!r}: expected TASK=PHASE pairs, e.g. 'evaluate=Succeeded'")
    return dict(pair.split("=", 1) for pair in pairs)


@dataclass(frozen=True)
class Partial:
    """What a selection lacks: checkpoints no pod scored, fan-outs with a failed pod."""

    missing: list[str]
    failed: dict[str, str]

    def describe(self) -> str:
        parts = []
        if self.missing:
            shown = ", ".join(self.missing[:10]) + (f" and {len(self.missing) - 10} more" if len(self.missing) > 10 else "")
            parts.append(f"{len(self.missing)} checkpoint(s) not scored: {shown}")
        parts += [f"{task} {phase}" for task, phase in self.failed.items()]
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {"missing": self.missing, "failed": self.failed, "reason": self.describe()}


def partial(rows: list[dict], expected: list[str] | None, upstream: dict[str, str]) -> Partial | None:
    """None when every expected checkpoint was scored and every fan-out Succeeded."""
    scored = {row["file"] for row in rows}
    missing = [name for name in expected or [] if name not in scored]
    failed = {task: phase for task, phase in upstream.items() if phase != "Succeeded"}
    return Partial(missing, failed) if missing or failed else None
