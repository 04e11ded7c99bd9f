#!/usr/bin/env bash
# Build every trainyard image with one tag, and push them: images/<name>/Dockerfile becomes
# REGISTRY/trainyard-<name>:TAG (the names the Helm chart's `image.registry` + `image.tag` give).
# Run it in your CI (it needs a Docker engine with BuildKit); nothing here builds images.
#
#   scripts/build-images.sh [--push] [--platform linux/amd64] REGISTRY [TAG]
#   scripts/build-images.sh --pin-digests      # print the digests of the base images
#
# TAG defaults to trainyard's version (steps/__init__.py). DOCKER=... picks another docker CLI.
# Each image is labelled (OCI) with TAG, the commit it is built from (`git rev-parse HEAD`) and the
# repository URL ([project.urls] Source of pyproject.toml; SOURCE=... overrides it).
set -euo pipefail

usage() { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

root="$(cd "$(dirname "$0")/.." && pwd)"
docker="${DOCKER:-docker}"
push=false
pin=false
platform="linux/amd64"
positional=()
while [ $# -gt 0 ]; do
    case "$1" in
        --push) push=true ;;
        --pin-digests) pin=true ;;
        --platform) shift; platform="${1:?--platform needs a value}" ;;
        -h|--help) usage ;;
        -*) echo "error: unknown option $1" >&2; usage ;;
        *) positional+=("$1") ;;
    esac
    shift
done

images=()
for dockerfile in "$root"/images/*/Dockerfile; do
    images+=("$(basename "$(dirname "$dockerfile")")")
done

if $pin; then
    # Each `ARG *_IMAGE=name:tag` default, resolved to the digest it points at today.
    grep -h '^ARG [A-Z_]*_IMAGE=' "$root"/images/*/Dockerfile | sort -u | while read -r _ assignment; do
        base="${assignment#*=}"
        digest="$("$docker" buildx imagetools inspect "$base" --format '{{json .Manifest.Digest}}' | tr -d '"')"
        echo "${assignment}@${digest}"
    done
    exit 0
fi

[ ${#positional[@]} -ge 1 ] || usage
registry="${positional[0]%/}"
tag="${positional[1]:-$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$root/steps/__init__.py")}"
[ -n "$tag" ] || { echo "error: no TAG given and no __version__ in steps/__init__.py" >&2; exit 2; }

[ "$platform" = linux/amd64 ] || echo "warning: the dependency locks are resolved for x86_64 Linux (scripts/lock-images.sh), not $platform" >&2
source="${SOURCE:-$(sed -n 's/^Source = "\(.*\)"$/\1/p' "$root/pyproject.toml")}"
revision="$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)"
if [ "$revision" != unknown ] && [ -n "$(git -C "$root" status --porcelain 2>/dev/null)" ]; then
    echo "warning: uncommitted changes: the images are labelled with revision $revision, which lacks them" >&2
fi

cd "$root"
for name in "${images[@]}"; do
    ref="$registry/trainyard-$name:$tag"
    echo "==> building $ref"
    DOCKER_BUILDKIT=1 "$docker" build --platform "$platform" --file "images/$name/Dockerfile" \
        --build-arg "VERSION=$tag" --build-arg "REVISION=$revision" --build-arg "SOURCE=$source" \
        --tag "$ref" .
done
if $push; then
    for name in "${images[@]}"; do
        ref="$registry/trainyard-$name:$tag"
        echo "==> pushing $ref"
        "$docker" push "$ref"
    done
fi
echo "built ${#images[@]} image(s) with tag $tag$($push && echo ', pushed' || true): helm install ... --set image.registry=$registry --set image.tag=$tag"
