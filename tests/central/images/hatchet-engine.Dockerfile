# Laid out like ghcr.io/hatchet-dev/hatchet/hatchet-engine: the binary in /hatchet.
ARG BASE_IMAGE=hatchet-local-rig/hatchet-runtime:bookworm
FROM ${BASE_IMAGE}
WORKDIR /hatchet
COPY hatchet-engine /hatchet/hatchet-engine
CMD ["/hatchet/hatchet-engine"]
