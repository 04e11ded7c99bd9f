#!/bin/sh
# Entry point of every trainyard image: `docker run IMAGE STEP [ARGS...]` runs
# `python -m steps.STEP ARGS...`, for the steps this image is built for ($TRAINYARD_STEPS).
# On Argo the templates set the same command explicitly, so pods do not depend on this script.
set -eu
if [ $# -eq 0 ]; then
    echo "usage: IMAGE STEP [ARGS...]   (STEP: ${TRAINYARD_STEPS})" >&2
    exit 2
fi
step=$1
shift
case " ${TRAINYARD_STEPS} " in
    *" ${step} "*) ;;
    *) echo "error: this image runs the steps ${TRAINYARD_STEPS}, not '${step}'" >&2; exit 2 ;;
esac
exec python -m "steps.${step}" "$@"
