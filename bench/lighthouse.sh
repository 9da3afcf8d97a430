#!/usr/bin/env bash
# Lighthouse 12.2.3 on the login page and the phone app over emulated slow 3G (300 ms RTT,
# 400 kbps, 4x slower CPU). Needs a running server (make run) and Node 20; prints scores and TTI
# for each run, and with RUNS > 1 the median of the app's figures.
# Usage: [RUNS=3] [LIGHTHOUSE=path/to/lighthouse] bench/lighthouse.sh [BASE_URL] [USER] [PASSWORD]
# (LIGHTHOUSE defaults to `npx -y lighthouse@12.2.3`; an install elsewhere, e.g. /tmp, saves the
# download. Chrome's port list refuses some ports, e.g. 5060/5061: serve on another.)
# THROTTLING=devtools: the load itself slowed down, observed figures (see below).
# HTTPS=1 measures the shape phones meet in the field (README, "Deployment over HTTPS"): nginx with
# TLS and HTTP/2 in front of BASE_URL, on 127.0.0.1:${HTTPS_PORT:-5443}, with a throwaway self-signed
# certificate (needs nginx and openssl; started and stopped here, nothing installed).
set -euo pipefail
base=${1:-http://127.0.0.1:5000}; user=${2:-liwei}; pass=${3:-cadre-demo-2026}
runs=${RUNS:-1}
lighthouse=${LIGHTHOUSE:-npx -y lighthouse@12.2.3}
out=$(mktemp -d)
jar="$out/cookies"
flags="--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update"
if [ "${HTTPS:-0}" = 1 ]; then
  port=${HTTPS_PORT:-5443}
  upstream=${base#http://}
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$out/key.pem" -out "$out/cert.pem" -days 1 \
    -subj "/CN=127.0.0.1" 2>/dev/null
  mkdir -p "$out/nginx"
  cat > "$out/nginx.conf" <<CONF
daemon off; pid $out/nginx.pid; error_log $out/nginx-error.log; worker_processes 1;
events {}
http {
  access_log off;
  client_body_temp_path $out/nginx/body; proxy_temp_path $out/nginx/proxy;
  fastcgi_temp_path $out/nginx/fcgi; uwsgi_temp_path $out/nginx/uwsgi; scgi_temp_path $out/nginx/scgi;
  server {
    listen 127.0.0.1:$port ssl http2;
    ssl_certificate $out/cert.pem; ssl_certificate_key $out/key.pem;
    client_max_body_size 12m;
    location / {
      proxy_pass http://$upstream;
      proxy_set_header Host \$host;
      proxy_set_header X-Forwarded-For \$remote_addr;
      proxy_set_header X-Forwarded-Proto https;
    }
  }
}
CONF
  nginx -c "$out/nginx.conf" &
  nginx_pid=$!
  trap 'kill $nginx_pid 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -sk -o /dev/null "https://127.0.0.1:$port/login" && break; sleep 0.1; done
  base="https://127.0.0.1:$port"
  flags="$flags --ignore-certificate-errors"
fi
token=$(curl -sk -c "$jar" -b "$jar" "$base/api/v1/csrf" | python3 -c 'import sys,json;print(json.load(sys.stdin)["csrf_token"])')
curl -sk -c "$jar" -b "$jar" -H "X-CSRFToken: $token" -H 'Content-Type: application/json' \
  -d "{\"username\":\"$user\",\"password\":\"$pass\"}" "$base/login" > /dev/null
cookie=$(sed 's/^#HttpOnly_//' "$jar" | awk '!/^#/ && NF>=7 {printf "%s=%s; ", $6, $7}')
printf '{"Cookie": "%s"}' "$cookie" > "$out/headers.json"
# Lighthouse's default: the load runs unthrottled and the slow link is simulated from its trace.
# THROTTLING=devtools slows the real load instead (the same link as Lighthouse's devtools presets
# adjust it: latency x3.75, throughput x0.9) and reports what was observed.
throttling=(--throttling.rttMs=300 --throttling.throughputKbps=400 --throttling.cpuSlowdownMultiplier=4)
if [ "${THROTTLING:-simulate}" = devtools ]; then
  throttling=(--throttling-method=devtools --throttling.requestLatencyMs=1125
    --throttling.downloadThroughputKbps=360 --throttling.uploadThroughputKbps=360
    --throttling.cpuSlowdownMultiplier=4)
fi
for run in $(seq 1 "$runs"); do
  for page in login app; do
    url="$base/login"; extra=()
    if [ "$page" = app ]; then url="$base/app/"; extra=(--extra-headers="$out/headers.json"); fi
    CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium} $lighthouse "$url" "${extra[@]}" \
      --only-categories=performance,accessibility,best-practices "${throttling[@]}" --chrome-flags="$flags" \
      --output=json --output-path="$out/$page-$run.json" --quiet
    python3 - "$out/$page-$run.json" "$page" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
scores = " ".join(f"{k}={v['score']}" for k, v in d["categories"].items())
a = d["audits"]
print(f"{sys.argv[2]:>5}: {scores}  time-to-interactive={a['interactive']['displayValue']}"
      f"  fcp={a['first-contentful-paint']['displayValue']}  lcp={a['largest-contentful-paint']['displayValue']}"
      f"  tbt={a['total-blocking-time']['displayValue']}  (landed on {d['finalDisplayedUrl']})")
PY
  done
done
if [ "$runs" -gt 1 ]; then
  python3 - "$out" "$runs" <<'PY'
import json, statistics, sys
out, runs = sys.argv[1], int(sys.argv[2])
for page in ("login", "app"):
    ds = [json.load(open(f"{out}/{page}-{i}.json")) for i in range(1, runs + 1)]
    med = lambda f: statistics.median(f(d) for d in ds)
    print(f"{page:>5} median of {runs}: performance={med(lambda d: d['categories']['performance']['score'])}"
          f"  time-to-interactive={med(lambda d: d['audits']['interactive']['numericValue']) / 1000:.1f} s"
          f"  lcp={med(lambda d: d['audits']['largest-contentful-paint']['numericValue']) / 1000:.1f} s")
PY
fi
