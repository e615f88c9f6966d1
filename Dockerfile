# Daraja: multi-stage image. Build stage installs the locked dependencies with uv (the same
# `uv sync --locked` as the README); the runtime stage runs as a non-root user.
FROM python:3.11-slim AS build
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
RUN python3 -m pip install --no-cache-dir uv
WORKDIR /app
# Dependencies first (cached layer), then the project itself.
COPY pyproject.toml uv.lock README.md ./
ARG DARAJA_EXTRAS=""
RUN uv sync --locked --no-dev --no-install-project $DARAJA_EXTRAS
COPY bot ./bot
COPY handlers ./handlers
COPY translation ./translation
COPY storage ./storage
COPY locales ./locales
# `--build-arg DARAJA_EXTRAS="--extra voice"` adds voice-note transcription (faster-whisper).
ARG DARAJA_EXTRAS=""
RUN uv sync --locked --no-dev $DARAJA_EXTRAS

FROM python:3.11-slim
RUN useradd --system --create-home --uid 10001 daraja \
    && mkdir -p /data /models && chown daraja:daraja /data /models && chmod 700 /data
WORKDIR /app
COPY --from=build --chown=daraja:daraja /app /app
ENV PATH="/app/.venv/bin:${PATH}" \
    DARAJA_DATABASE_URL="sqlite+aiosqlite:////data/daraja.db" \
    DARAJA_MODELS_DIR="/models" \
    DARAJA_METRICS_PORT="9108" \
    DARAJA_VOICE_MODELS_DIR="/models/voice" \
    PYTHONUNBUFFERED=1
VOLUME ["/data", "/models"]
USER daraja
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s CMD ["daraja", "health"]
ENTRYPOINT ["daraja"]
CMD ["run"]
