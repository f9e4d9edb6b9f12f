# The build machine image fleetdist/build:bookworm: the local base image plus
# what compiling Python wheels and bundling an interpreter need.  Built FROM
# the debootstrapped base image (no registry is reachable); see build-image.sh.
ARG BASE_IMAGE=fleetdist/base:bookworm
FROM ${BASE_IMAGE}
# patchelf: a bundled CPython gets an $ORIGIN rpath so it finds its own libraries.
# Apt lists are dropped again: a build that needs build_deps runs apt-get update itself.
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      build-essential python3-dev python3-pip python3-venv patchelf \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb
LABEL org.fleetdist.role=build-machine
CMD ["/bin/bash"]
