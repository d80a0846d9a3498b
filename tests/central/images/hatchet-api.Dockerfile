# Laid out like ghcr.io/hatchet-dev/hatchet/hatchet-api: the binary in /hatchet.
ARG BASE_IMAGE=hatchet-local-rig/hatchet-runtime:bookworm
FROM ${BASE_IMAGE}
WORKDIR /hatchet
COPY hatchet-api /hatchet/hatchet-api
EXPOSE 8080
CMD ["/hatchet/hatchet-api"]
