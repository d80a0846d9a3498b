# Laid out like ghcr.io/hatchet-dev/hatchet/hatchet-migrate.
ARG BASE_IMAGE=hatchet-local/hatchet-runtime:bookworm
FROM ${BASE_IMAGE}
WORKDIR /hatchet
COPY hatchet-migrate /hatchet/hatchet-migrate
CMD ["/hatchet/hatchet-migrate"]
