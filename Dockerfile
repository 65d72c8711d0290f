# One image for both tiers:
#   docker run IMAGE python -m room_service
#   docker run IMAGE python -m edge_gateway
# Listen addresses default to 0.0.0.0 inside the container; everything else is set with
# ROOM_SERVICE_* / EDGE_GATEWAY_* variables or flags (see --help).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Dependencies first, pinned by constraints.txt, so code changes reuse this layer.
COPY pyproject.toml constraints.txt ./
RUN python -m venv /opt/venv \
    && python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && /opt/venv/bin/pip install -c constraints.txt -r /tmp/requirements.txt
COPY . .
RUN /opt/venv/bin/pip install -c constraints.txt . \
    && /opt/venv/bin/python -c "import room_service, edge_gateway, meeting.v1.room_service_pb2"

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROOM_SERVICE_GRPC_ADDRESS=0.0.0.0:50051 \
    ROOM_SERVICE_METRICS_ADDRESS=0.0.0.0:9101 \
    EDGE_GATEWAY_HTTP_ADDRESS=0.0.0.0:8080
# Numeric, so Kubernetes can verify runAsNonRoot.
USER 10001:10001
WORKDIR /tmp
EXPOSE 8080 50051 9101
CMD ["python", "-m", "edge_gateway"]
