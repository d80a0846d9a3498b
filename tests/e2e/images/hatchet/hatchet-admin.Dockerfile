# Laid out like ghcr.io/hatchet-dev/hatchet/hatchet-admin.
ARG BASE_IMAGE=hatchet-local/hatchet-runtime:bookworm
FROM ${BASE_IMAGE}
WORKDIR /hatchet
COPY hatchet-admin /hatchet/hatchet-admin
CMD ["/hatchet/hatchet-admin"]
