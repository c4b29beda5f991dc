# shellcheck shell=bash
# Progress of the long build steps under hack/ (cluster, helm, Traefik, images):
# one line per step on stderr, with the time since the script started, e.g.
#   ==> building kube-apiserver v1.34.4 (3/9) 2m10s
# The step's own output (go, pip, debootstrap) goes to a log file, shown only
# when the step fails: its last lines and the log's path. Callers that stream
# a build (the demo) pass on the lines that start with "==> ". Sourced, never run.

progress_elapsed() {
  local s=$((SECONDS - ${PROGRESS_START:-0}))
  if ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

step() {
  if [[ -t 2 ]]; then
    printf '\033[1m==> %s\033[0m %s\n' "$*" "$(progress_elapsed)" >&2
  else
    printf '==> %s %s\n' "$*" "$(progress_elapsed)" >&2
  fi
}
info() { printf '    %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# run_logged LOG CMD...: CMD's output to LOG; when it fails, its last lines and
# the log's path on stderr, and CMD's exit status returned.
run_logged() {
  local log="$1" rc=0
  shift
  mkdir -p "$(dirname "$log")"
  "$@" >"$log" 2>&1 || rc=$?
  if ((rc != 0)); then
    printf 'error: %s failed (exit %d) after %s; the last lines of its log %s:\n' \
      "$1" "$rc" "$(progress_elapsed)" "$log" >&2
    tail -n "${PROGRESS_TAIL_LINES:-25}" "$log" | sed 's/^/    /' >&2
  fi
  return "$rc"
}

PROGRESS_START=$SECONDS
