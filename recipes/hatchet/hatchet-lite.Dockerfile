# Laid out like ghcr.io/hatchet-dev/hatchet/hatchet-lite: everything at /, config in /config.
ARG BASE_IMAGE=hatchet-local/hatchet-runtime:bookworm
FROM ${BASE_IMAGE}
COPY hatchet-lite hatchet-admin hatchet-migrate entrypoint.sh /
COPY static-assets /static-assets
ENV LITE_STATIC_ASSET_DIR=/static-assets \
    LITE_FRONTEND_BASE_PATH=/ \
    LITE_FRONTEND_PORT=8081 \
    LITE_RUNTIME_PORT=8888
EXPOSE 8888 7070
CMD ["./entrypoint.sh"]
