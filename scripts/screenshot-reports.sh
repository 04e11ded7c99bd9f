#!/bin/sh
# Render an HTML report in headless Chromium to a PNG, to look at it as a reader would.
#   scripts/screenshot-reports.sh runs/<run>/select/volumes/work/outputs/evaluation/report.html /tmp/evaluation.png
#   SIZE=1400,6000 scripts/screenshot-reports.sh runs/<run>/test/volumes/work/outputs/report/index.html /tmp/test.png
#   (the run's summary prints both pages' paths as file:// links)
# Needs Debian's chromium (apt-get install chromium).
set -eu
if [ $# -lt 1 ]; then
    echo "usage: [SIZE=W,H] $0 REPORT.html [SHOT.png]" >&2
    exit 2
fi
page=$1
shot=${2:-report.png}
size=${SIZE:-1400,2000}
case $page in /*) ;; *) page=$(pwd)/$page ;; esac
exec chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --screenshot="$shot" \
    --window-size="$size" "file://$page" 2>/dev/null
