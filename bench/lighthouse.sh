#!/usr/bin/env bash
# Lighthouse 12.2.3 on the login page and the phone app over emulated slow 3G (300 ms RTT,
# 400 kbps, 4x slower CPU). Needs a running server (make run) and Node 20; prints scores and TTI.
# Usage: bench/lighthouse.sh [BASE_URL] [USER] [PASSWORD]
set -euo pipefail
base=${1:-http://127.0.0.1:5000}; user=${2:-liwei}; pass=${3:-cadre-demo-2026}
out=$(mktemp -d)
jar="$out/cookies"
token=$(curl -s -c "$jar" -b "$jar" "$base/api/v1/csrf" | python3 -c 'import sys,json;print(json.load(sys.stdin)["csrf_token"])')
curl -s -c "$jar" -b "$jar" -H "X-CSRFToken: $token" -H 'Content-Type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"$pass\"}" "$base/login" > /dev/null
cookie=$(sed 's/^#HttpOnly_//' "$jar" | awk '!/^#/ && NF>=7 {printf "%s=%s; ", $6, $7}')
printf '{"Cookie": "%s"}' "$cookie" > "$out/headers.json"
flags="--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update"
for page in login app; do
  url="$base/login"; extra=()
  if [ "$page" = app ]; then url="$base/app/"; extra=(--extra-headers="$out/headers.json"); fi
  CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium} npx -y lighthouse@12.2.3 "$url" "${extra[@]}" \
    --only-categories=performance,accessibility,best-practices --throttling.rttMs=300 \
    --throttling.throughputKbps=400 --throttling.cpuSlowdownMultiplier=4 --chrome-flags="$flags" \
    --output=json --output-path="$out/$page.json" --quiet
  python3 - "$out/$page.json" "$page" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
scores = " ".join(f"{k}={v['score']}" for k, v in d["categories"].items())
print(f"{sys.argv[2]:>5}: {scores}  time-to-interactive={d['audits']['interactive']['displayValue']}"
      f"  (landed on {d['finalDisplayedUrl']})")
PY
done
