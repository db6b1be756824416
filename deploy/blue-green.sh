#!/usr/bin/env bash
# Blue-green rollouts of StreamGate's origin with kubectl alone (deploy/README.md, "Rolling out").
# Two Deployments, streamgate-server-blue and -green, one per slot (label streamgate.io/slot); the
# Service streamgate-server selects the live slot and streamgate-server-preview the idle one.
#
#   status        which slot is live; both slots' images and replicas
#   deploy IMAGE  the idle slot runs IMAGE with the live slot's replica count; waits until ready
#   switch        both Services swap slots once the idle slot is fully ready; the old one keeps
#                 running, for a rollback
#   rollback      switches back to the slot that was live before the last switch, if it still
#                 has the image it had then (scaled up again first if it was retired)
#   retire        scales the idle (old) slot to 0
#   apply [ARG…]  kubectl apply -k deploy/kubernetes, keeping the live slot and each slot's image
#                 (a plain apply sets them back to what the files say); ARGs go to kubectl apply,
#                 e.g. --dry-run=server
#
# Environment: STREAMGATE_NAMESPACE (default streamgate), STREAMGATE_ROLLOUT_TIMEOUT (default
# 10m, how long deploy and switch wait for pods), and kubectl's own (KUBECONFIG…).
set -euo pipefail
shopt -s inherit_errexit

NAMESPACE="${STREAMGATE_NAMESPACE:-streamgate}"
TIMEOUT="${STREAMGATE_ROLLOUT_TIMEOUT:-10m}"
# The names in deploy/kubernetes; check_deploy.py checks that they match.
LIVE_SERVICE=streamgate-server
PREVIEW_SERVICE=streamgate-server-preview
DEPLOYMENT_PREFIX=streamgate-server-
CONTAINER=server
SLOT_LABEL=streamgate.io/slot
# The label in a JSON pointer, "/" written "~1": the one field a switch patches.
SLOT_PATH="/spec/selector/${SLOT_LABEL%%/*}~1${SLOT_LABEL#*/}"
# Written on the live Service at each switch: the slot it left and that slot's image, which a
# rollback goes back to.
PREVIOUS_SLOT=streamgate.io/previous-slot
PREVIOUS_IMAGE=streamgate.io/previous-image
DEPLOY_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"

die() { echo "blue-green: $*" >&2; exit 1; }
say() { echo "blue-green: $*"; }
k() { kubectl --namespace "$NAMESPACE" "$@"; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

other() {
  case "$1" in
    blue) echo green ;;
    green) echo blue ;;
    *) die "unknown slot '$1' (blue or green)" ;;
  esac
}

# The slot a Service selects.
selected_slot() {
  local service="$1" slot
  slot="$(k get service "$service" -o 'jsonpath={.spec.selector.streamgate\.io/slot}')" ||
    die "cannot read Service $service in namespace $NAMESPACE (kubectl's error above)"
  case "$slot" in
    blue | green) echo "$slot" ;;
    *) die "Service $service selects no slot: its selector's $SLOT_LABEL is '$slot', not blue or green" ;;
  esac
}

# Reads one slot's Deployment into replicas, ready, updated, available, current (pods of any
# revision), generation, observed and image.
load() {
  local state
  state="$(k get deployment "$DEPLOYMENT_PREFIX$1" -o "jsonpath={.spec.replicas}|{.status.readyReplicas}|{.status.updatedReplicas}|{.status.availableReplicas}|{.status.replicas}|{.metadata.generation}|{.status.observedGeneration}|{.spec.template.spec.containers[?(@.name==\"$CONTAINER\")].image}")" ||
    die "cannot read Deployment $DEPLOYMENT_PREFIX$1 in namespace $NAMESPACE (kubectl's error above)"
  IFS='|' read -r replicas ready updated available current generation observed image <<<"$state"
  replicas="${replicas:-0}" ready="${ready:-0}" updated="${updated:-0}" available="${available:-0}"
  current="${current:-0}" generation="${generation:-0}" observed="${observed:-0}"
  [[ -n "$image" ]] || die "Deployment $DEPLOYMENT_PREFIX$1 has no container named $CONTAINER"
}

# Whether the slot loaded last runs every desired replica, all of its current revision, available.
fully_ready() {
  ((replicas > 0 && observed >= generation && updated == replicas && ready == replicas &&
    available == replicas && current == replicas))
}

# Scales a slot and waits for its rollout.
scale_and_wait() {
  local slot="$1" count="$2"
  k scale "deployment/$DEPLOYMENT_PREFIX$slot" --replicas="$count" >/dev/null ||
    die "cannot scale Deployment $DEPLOYMENT_PREFIX$slot (kubectl's error above)"
  say "waiting up to $TIMEOUT for $slot ($count replicas)"
  k rollout status "deployment/$DEPLOYMENT_PREFIX$slot" --timeout="$TIMEOUT" ||
    die "$slot is not ready after $TIMEOUT; see kubectl -n $NAMESPACE describe deployment/$DEPLOYMENT_PREFIX$slot and its pods' logs. Nothing was switched."
}

# Sets a Service's slot: one field of its selector. With `expected`, only if it still selects that
# slot (a JSON patch test), so two people switching at once cannot both succeed.
set_slot() {
  local service="$1" slot="$2" expected="${3:-}" patch
  patch="{\"op\":\"replace\",\"path\":\"$SLOT_PATH\",\"value\":\"$slot\"}"
  [[ -z "$expected" ]] || patch="{\"op\":\"test\",\"path\":\"$SLOT_PATH\",\"value\":\"$expected\"},$patch"
  k patch service "$service" --type=json -p "[$patch]" >/dev/null
}

cmd_status() {
  (($# == 0)) || die "status takes no arguments"
  local live idle preview previous previous_image slot role
  live="$(selected_slot "$LIVE_SERVICE")"
  idle="$(other "$live")"
  preview="$(selected_slot "$PREVIEW_SERVICE")"
  echo "live: $live (Service $LIVE_SERVICE); idle: $idle (Service $PREVIEW_SERVICE selects $preview)"
  printf '%-6s %-5s %-8s %-6s %-10s %-9s %s\n' SLOT ROLE REPLICAS READY UP-TO-DATE AVAILABLE IMAGE
  for slot in blue green; do
    load "$slot"
    role=idle
    [[ "$slot" != "$live" ]] || role=live
    printf '%-6s %-5s %-8s %-6s %-10s %-9s %s\n' "$slot" "$role" "$replicas" "$ready" "$updated" "$available" "$image"
  done
  previous="$(k get service "$LIVE_SERVICE" -o 'jsonpath={.metadata.annotations.streamgate\.io/previous-slot}')"
  previous_image="$(k get service "$LIVE_SERVICE" -o 'jsonpath={.metadata.annotations.streamgate\.io/previous-image}')"
  if [[ -n "$previous" ]]; then
    echo "last switch: from $previous ($previous_image); rollback goes back to it"
  else
    echo "no switch recorded yet"
  fi
  if [[ "$preview" != "$idle" ]]; then
    say "warning: Service $PREVIEW_SERVICE selects the live slot $preview; blue-green.sh apply sets it to $idle"
  fi
}

cmd_deploy() {
  if (($# != 1)) || [[ -z "$1" ]]; then
    die "usage: blue-green.sh deploy IMAGE, e.g. registry.example.com/streamgate:1.5.0"
  fi
  local new="$1" live idle want
  live="$(selected_slot "$LIVE_SERVICE")"
  idle="$(other "$live")"
  load "$live"
  want="$replicas"
  ((want > 0)) || die "the live slot $live has 0 replicas; fix that before deploying (blue-green.sh status)"
  load "$idle"
  if ((replicas > 0)) && [[ "$image" != "$new" ]]; then
    say "$idle still runs $image, kept for a rollback; it now gets $new"
  fi
  k set image "deployment/$DEPLOYMENT_PREFIX$idle" "$CONTAINER=$new" >/dev/null ||
    die "cannot set the image of Deployment $DEPLOYMENT_PREFIX$idle (kubectl's error above)"
  k annotate "deployment/$DEPLOYMENT_PREFIX$idle" --overwrite "kubernetes.io/change-cause=blue-green.sh deploy $new" >/dev/null
  scale_and_wait "$idle" "$want"
  say "$idle runs $new on $want replicas, behind Service $PREVIEW_SERVICE only. Test it, e.g."
  say "  kubectl -n $NAMESPACE port-forward svc/$PREVIEW_SERVICE 8080:8080"
  say "then put it live with: blue-green.sh switch"
}

# Makes `target` the live slot: tops it up to the live slot's replica count (its HPA may have
# trimmed it while it was idle), checks it is fully ready, then patches both Services.
flip() {
  local target="$1" live want
  live="$(other "$target")"
  load "$live"
  want="$replicas"
  local live_image="$image"
  load "$target"
  if ((replicas < want)); then
    say "$target has $replicas replicas and $live serves with $want: scaling $target up first"
    scale_and_wait "$target" "$want"
    load "$target"
  fi
  fully_ready ||
    die "$target is not fully ready ($ready ready, $updated up to date, $available available of $replicas; $current pods): not switching. Wait with: kubectl -n $NAMESPACE rollout status deployment/$DEPLOYMENT_PREFIX$target"
  set_slot "$LIVE_SERVICE" "$target" "$live" ||
    die "could not patch Service $LIVE_SERVICE from $live to $target (kubectl's error above; did someone else switch? blue-green.sh status)"
  say "Service $LIVE_SERVICE now selects $target ($image)"
  k annotate service "$LIVE_SERVICE" --overwrite "$PREVIOUS_SLOT=$live" "$PREVIOUS_IMAGE=$live_image" >/dev/null ||
    say "warning: could not record the switch on Service $LIVE_SERVICE; rollback will refuse, switch works the same"
  set_slot "$PREVIEW_SERVICE" "$live" ||
    die "Service $PREVIEW_SERVICE still selects $target, the live slot (kubectl's error above); blue-green.sh apply sets it to $live"
  say "Service $PREVIEW_SERVICE now selects $live, which keeps running ($live_image): blue-green.sh rollback"
  say "goes back to it; once satisfied, blue-green.sh retire scales it to 0"
}

cmd_switch() {
  (($# == 0)) || die "switch takes no arguments (deploy IMAGE first)"
  local live idle
  live="$(selected_slot "$LIVE_SERVICE")"
  idle="$(other "$live")"
  load "$idle"
  # An idle slot at 0 was retired: scaling it up would bring back whatever image it last ran.
  ((replicas > 0)) || die "the idle slot $idle has 0 replicas: deploy to it first (blue-green.sh deploy IMAGE)"
  flip "$idle"
}

cmd_rollback() {
  (($# == 0)) || die "rollback takes no arguments"
  local live previous previous_image
  live="$(selected_slot "$LIVE_SERVICE")"
  previous="$(k get service "$LIVE_SERVICE" -o 'jsonpath={.metadata.annotations.streamgate\.io/previous-slot}')"
  previous_image="$(k get service "$LIVE_SERVICE" -o 'jsonpath={.metadata.annotations.streamgate\.io/previous-image}')"
  [[ -n "$previous" && -n "$previous_image" ]] || die "no switch is recorded on Service $LIVE_SERVICE: nothing to roll back to"
  [[ "$previous" == "$(other "$live")" ]] || die "Service $LIVE_SERVICE records $previous as the previous slot, but $previous is live"
  load "$previous"
  [[ "$image" == "$previous_image" ]] ||
    die "$previous now runs $image, not $previous_image, which was live before the last switch: deploy that image to it (blue-green.sh deploy $previous_image), then switch"
  if ((replicas == 0)); then
    say "$previous was retired; bringing it back up with $previous_image"
  fi
  flip "$previous"
}

cmd_retire() {
  (($# == 0)) || die "retire takes no arguments"
  local live idle
  live="$(selected_slot "$LIVE_SERVICE")"
  idle="$(other "$live")"
  load "$live"
  fully_ready || die "the live slot $live is not fully ready ($ready ready of $replicas): keeping $idle up for a rollback"
  load "$idle"
  if ((replicas == 0)); then
    say "$idle already has 0 replicas"
    return
  fi
  k scale "deployment/$DEPLOYMENT_PREFIX$idle" --replicas=0 >/dev/null ||
    die "cannot scale Deployment $DEPLOYMENT_PREFIX$idle (kubectl's error above)"
  say "$idle scaled to 0 (its HPA rests until the next deploy). A rollback to it ($image) still works, slower: its pods start first"
}

# kubectl apply -k through a throwaway overlay of deploy/kubernetes that sets both Services' slots
# and both slots' images to what the cluster runs now.
cmd_apply() {
  local overlay rel dir live="" idle="" slot pair found current_image kept=()
  found="$(k get service "$LIVE_SERVICE" --ignore-not-found -o name)" ||
    die "cannot read Service $LIVE_SERVICE in namespace $NAMESPACE (kubectl's error above)"
  if [[ -n "$found" ]]; then
    live="$(selected_slot "$LIVE_SERVICE")"
    idle="$(other "$live")"
  fi
  overlay="$(mktemp -d)"
  # shellcheck disable=SC2064 # the path is known now
  trap "rm -rf '$overlay'" EXIT
  # Kustomize takes only a relative path to a base: climb from the overlay's real path to /.
  rel=""
  dir="$(cd "$overlay" && pwd -P)"
  while [[ "$dir" != / ]]; do
    rel+="../"
    dir="$(dirname "$dir")"
  done
  {
    echo "apiVersion: kustomize.config.k8s.io/v1beta1"
    echo "kind: Kustomization"
    echo "resources:"
    echo "  - $rel${DEPLOY_DIR#/}/kubernetes"
    echo "patches:"
    if [[ -n "$live" ]]; then
      for pair in "$LIVE_SERVICE:$live" "$PREVIEW_SERVICE:$idle"; do
        printf '  - target: {kind: Service, name: %s}\n    patch: |-\n      - {op: replace, path: "%s", value: %s}\n' \
          "${pair%%:*}" "$SLOT_PATH" "${pair#*:}"
      done
    fi
    for slot in blue green; do
      current_image="$(k get deployment "$DEPLOYMENT_PREFIX$slot" --ignore-not-found -o "jsonpath={.spec.template.spec.containers[?(@.name==\"$CONTAINER\")].image}")"
      [[ -n "$current_image" ]] || continue
      printf '  - target: {kind: Deployment, name: %s}\n    patch: |-\n      {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "%s"},\n       "spec": {"template": {"spec": {"containers": [{"name": "%s", "image": "%s"}]}}}}\n' \
        "$DEPLOYMENT_PREFIX$slot" "$DEPLOYMENT_PREFIX$slot" "$CONTAINER" "$current_image"
      kept+=("$slot on $current_image")
    done
  } >"$overlay/kustomization.yaml"
  if [[ -n "$live" ]]; then
    say "keeping $live live"
  else
    say "no Service $LIVE_SERVICE yet: the Services as written"
  fi
  for slot in "${kept[@]}"; do say "keeping $slot"; done
  kubectl apply -k "$overlay" "$@"
}

main() {
  command -v kubectl >/dev/null 2>&1 || die "kubectl is not on PATH"
  local command="${1:-}"
  (($# == 0)) || shift
  case "$command" in
    status) cmd_status "$@" ;;
    deploy) cmd_deploy "$@" ;;
    switch) cmd_switch "$@" ;;
    rollback) cmd_rollback "$@" ;;
    retire) cmd_retire "$@" ;;
    apply) cmd_apply "$@" ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 64
      ;;
  esac
}

main "$@"
