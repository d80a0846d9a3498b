# Laid out like ghcr.io/hatchet-dev/hatchet/hatchet-migrate, with the binary of the
# hatchet-lite image that `hatchet-local images build` made.
ARG LITE_IMAGE=hatchet-local/hatchet-lite:v0.101.27
ARG BASE_IMAGE=hatchet-local/hatchet-runtime:bookworm
FROM ${LITE_IMAGE} AS lite
FROM ${BASE_IMAGE}
WORKDIR /hatchet
COPY --from=lite /hatchet-migrate /hatchet/hatchet-migrate
CMD ["/hatchet/hatchet-migrate"]
