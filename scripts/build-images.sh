#!/usr/bin/env bash
# Builds moecap's container images from deploy/docker/ with whichever engine this machine has,
# then prints each image's size and build time.
#
#   scripts/build-images.sh [IMAGE...]        IMAGE: coordinator, agent-cpu (the default pair),
#                                             agent (CUDA: needs NVIDIA's base images), or all
#   MOECAP_IMAGE_ENGINE=docker|podman|buildah   the engine (default: the first that works, in
#                                             that order; buildah and podman build with
#                                             --isolation chroot, which needs no OCI runtime)
#   MOECAP_IMAGE_TAG=TAG                      tag of the images built (default: dev)
#   MOECAP_IMAGE_PREFIX=REGISTRY/             prefix of their names (default: none)
#   MOECAP_IMAGE_BASE=auto|pull|debootstrap   where debian:bookworm and debian:bookworm-slim
#                                             come from when the engine lacks them. auto: pull,
#                                             and if that fails (offline) make them with
#                                             debootstrap from Debian's archive; debootstrap:
#                                             never pull
#   MOECAP_DEBIAN_MIRROR=URL                  debootstrap's mirror (default: deb.debian.org)
#
# Exit status: 0 built, 1 a build failed, 3 no engine or no way to get a base image (the message
# says what to install). The figures go to stdout as the last lines, one image per line.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
tag="${MOECAP_IMAGE_TAG:-dev}"
prefix="${MOECAP_IMAGE_PREFIX:-}"
base_policy="${MOECAP_IMAGE_BASE:-auto}"
mirror="${MOECAP_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

die() {
  echo "build-images: $1" >&2
  exit "${2:-1}"
}

images=("$@")
[ "${#images[@]}" -eq 0 ] && images=(coordinator agent-cpu)
[ "${images[0]}" = "all" ] && images=(coordinator agent-cpu agent)
for image in "${images[@]}"; do
  [ -f "deploy/docker/Dockerfile.$image" ] ||
    die "no image '$image': one of coordinator, agent-cpu, agent, all" 2
done

# --- the engine -------------------------------------------------------------------------------
# A docker client without a daemon, or a podman whose runtime may not start containers, still
# answers --version: each is tried by a call that needs it to work.
engine_works() {
  case "$1" in
    docker) command -v docker >/dev/null && docker info >/dev/null 2>&1 ;;
    podman) command -v podman >/dev/null && podman info >/dev/null 2>&1 ;;
    buildah) command -v buildah >/dev/null && buildah info >/dev/null 2>&1 ;;
    *) die "MOECAP_IMAGE_ENGINE=$1: one of docker, podman, buildah" 2 ;;
  esac
}
engine="${MOECAP_IMAGE_ENGINE:-}"
if [ -z "$engine" ]; then
  for candidate in docker podman buildah; do
    if engine_works "$candidate"; then
      engine="$candidate"
      break
    fi
  done
  [ -n "$engine" ] || die "no container engine: install docker (with its daemon), podman or \
buildah (Debian: apt-get install buildah)" 3
elif ! engine_works "$engine"; then
  die "MOECAP_IMAGE_ENGINE=$engine does not work here ('$engine info' fails)" 3
fi

has_image() {
  case "$engine" in
    docker) docker image inspect "$1" >/dev/null 2>&1 ;;
    *) "$engine" image exists "$1" 2>/dev/null || "$engine" inspect --type image "$1" >/dev/null 2>&1 ;;
  esac
}

# --- the base images --------------------------------------------------------------------------
# The Debian bases, made offline: a minbase Debian 12 from Debian's archive, imported under the
# names the Dockerfiles use (slim as well: the runtime stages only need apt and a shell). The
# build stage's base is not enough: each runtime stage names its own.
debootstrap_bases() {
  command -v debootstrap >/dev/null ||
    die "debian:bookworm cannot be pulled and debootstrap is missing (apt-get install \
debootstrap), or pull the base images where a registry is reachable" 3
  local rootfs="$root/build/images/debian-bookworm-rootfs"
  if [ ! -x "$rootfs/usr/bin/apt-get" ]; then
    echo "build-images: debootstrap --variant=minbase bookworm from $mirror" >&2
    rm -rf "$rootfs"
    mkdir -p "$rootfs"
    local started=$SECONDS
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$root/build/images/debootstrap.log" 2>&1 ||
      die "debootstrap failed: see build/images/debootstrap.log" 3
    echo "build-images: debootstrap took $((SECONDS - started)) s" >&2
  fi
  local names=(docker.io/library/debian:bookworm docker.io/library/debian:bookworm-slim)
  case "$engine" in
    docker)
      tar -C "$rootfs" -c . | docker import - debian:bookworm >/dev/null
      docker tag debian:bookworm debian:bookworm-slim
      ;;
    podman)
      tar -C "$rootfs" -c . | podman import - "${names[0]}" >/dev/null
      podman tag "${names[0]}" "${names[1]}"
      ;;
    buildah)
      local container tarball="$root/build/images/debian-bookworm.tar"
      tar -C "$rootfs" -cf "$tarball" .
      container="$(buildah from scratch)"
      buildah add "$container" "$tarball" / >/dev/null  # a local tar archive is unpacked
      rm -f "$tarball"
      buildah config --cmd /bin/bash "$container"
      buildah commit --quiet "$container" "${names[0]}" >/dev/null
      buildah rm "$container" >/dev/null
      buildah tag "${names[0]}" "${names[1]}"
      ;;
  esac
  echo "build-images: imported the debootstrapped Debian 12 as debian:bookworm and" \
       "debian:bookworm-slim" >&2
}

needs_debian=0
for image in "${images[@]}"; do
  grep -q '^FROM debian:' "deploy/docker/Dockerfile.$image" && needs_debian=1
done
if [ "$needs_debian" = 1 ]; then
  missing=0
  for base in debian:bookworm debian:bookworm-slim; do
    has_image "$base" || has_image "docker.io/library/$base" || missing=1
  done
  if [ "$missing" = 1 ]; then
    pulled=0
    if [ "$base_policy" != "debootstrap" ]; then
      if "$engine" pull debian:bookworm >/dev/null 2>&1 &&
          "$engine" pull debian:bookworm-slim >/dev/null 2>&1; then
        pulled=1
      elif [ "$base_policy" = "pull" ]; then
        die "cannot pull debian:bookworm (offline?); MOECAP_IMAGE_BASE=debootstrap makes it" 3
      else
        echo "build-images: debian:bookworm cannot be pulled: making it with debootstrap" >&2
      fi
    fi
    [ "$pulled" = 1 ] || debootstrap_bases
  fi
fi

# --- the builds -------------------------------------------------------------------------------
build_one() {
  local image="$1" name="$2"
  local file="deploy/docker/Dockerfile.$image"
  case "$engine" in
    docker) DOCKER_BUILDKIT=1 docker build -f "$file" -t "$name" . ;;
    # --format docker keeps the HEALTHCHECK (the OCI image format has none); --pull=false uses
    # the local bases when they are there.
    podman)
      podman build --isolation chroot --layers --format docker --pull=false \
        --ignorefile "$file.dockerignore" -f "$file" -t "$name" .
      ;;
    buildah)
      buildah bud --isolation chroot --layers --format docker --pull=false \
        --ignorefile "$file.dockerignore" -f "$file" -t "$name" .
      ;;
  esac
}

image_size() {
  case "$engine" in
    docker) echo "$(( $(docker image inspect --format '{{.Size}}' "$1") / 1000000 )) MB" ;;
    podman) echo "$(( $(podman image inspect --format '{{.Size}}' "$1") / 1000000 )) MB" ;;
    buildah) buildah images --noheading --format '{{.Size}}' "$1" | head -n1 ;;
  esac
}

mkdir -p build/images
declare -a report
status=0
for image in "${images[@]}"; do
  case "$image" in
    agent) name="${prefix}moecap-agent:$tag" ;;
    *) name="${prefix}moecap-$image:$tag" ;;
  esac
  log="build/images/$image.log"
  echo "build-images: $engine builds $name (log: $log)" >&2
  started=$SECONDS
  if build_one "$image" "$name" >"$log" 2>&1; then
    report+=("$(printf '%-32s %10s %6d s' "$name" "$(image_size "$name")" $((SECONDS - started)))")
  else
    tail -n 30 "$log" >&2
    report+=("$(printf '%-32s   FAILED after %d s (see %s)' "$name" $((SECONDS - started)) "$log")")
    status=1
  fi
done

echo "== images ($engine)"
printf '%-32s %10s %8s\n' IMAGE SIZE "BUILD"
printf '%s\n' "${report[@]}"
exit "$status"
