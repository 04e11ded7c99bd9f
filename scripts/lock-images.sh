#!/usr/bin/env bash
# Lock every dependency of every image with hashes: images/<name>/requirements.in (top-level pins)
# becomes images/<name>/requirements.txt (the full resolved set), and images/build-requirements.in
# becomes images/build-requirements.txt, resolved for the images' Python and platform (not this
# machine's). The Dockerfiles install the locks with `pip install --require-hashes --no-deps`.
#
#   scripts/lock-images.sh             # keep the locked versions that still fit (`make lock`)
#   scripts/lock-images.sh --upgrade   # newest versions the .in pins allow
#
# Needs uv (pyproject's dev extra); UV=... picks another one. It reads only the index's metadata.
set -euo pipefail

# One Python for every image: 3.12, the python3 of Ubuntu 24.04 that the CUDA base images of the
# train image ship (its build stage compiles detectron2 against it); the record image uses the
# official python:3.12 image. Platform: glibc 2.36 of Debian bookworm (record), the older of the
# two bases (Ubuntu 24.04 has 2.39), on x86_64 like the GKE node pools.
PYTHON_VERSION=3.12
PYTHON_PLATFORM=x86_64-manylinux_2_36

root="$(cd "$(dirname "$0")/.." && pwd)"
uv="${UV:-$(command -v uv || echo "$root/.venv/bin/uv")}"
[ -x "$uv" ] || { echo "error: uv not found: pip install uv (or make install), or set UV=" >&2; exit 2; }
extra=()
case "${1:-}" in
    --upgrade) extra+=(--upgrade) ;;
    "") ;;
    *) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

cd "$root"
# Resolve for the target Python without downloading one (sdists are only read for metadata).
export UV_PYTHON_DOWNLOADS=never
for input in images/build-requirements.in images/*/requirements.in; do
    output="${input%.in}.txt"
    echo "==> $output"
    "$uv" pip compile --quiet --generate-hashes \
        --python-version "$PYTHON_VERSION" --python-platform "$PYTHON_PLATFORM" \
        ${extra[@]+"${extra[@]}"} "$input" --output-file "$output"
done
