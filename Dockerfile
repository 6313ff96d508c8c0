# syntax=docker/dockerfile:1
#
# One multi-stage build for the four Kencana services. They are one Python project (`kencana`, one
# pyproject.toml, shared code in shared/), so a single dependency layer serves all of them; each service is a
# small final target that only sets its port, health check and default command:
#
#   docker build --target registry  -t kencana-registry  .
#   docker build --target uppka     -t kencana-uppka     .
#   docker build --target dashat    -t kencana-dashat    .
#   docker build --target reporting -t kencana-reporting .
#
# Every image runs three roles; the default command is the API, the others are chosen at run time:
#   API       (default)  uvicorn <svc>.main:create_app --factory --no-server-header --host 0.0.0.0 --port <port>
#   relay                python -m <svc>.relay        (registry, uppka, dashat)
#   consumer             python -m <svc>.consumer     (uppka, dashat, reporting)
#   migrations           kencana migrate [--service <svc>]
#
# The base is pinned by digest (the python:3.11-slim manifest list) so that a rebuild pulls the same bytes; bump it
# on purpose. Where Docker Hub cannot be reached, pass a local Python 3.11 image instead (`make test-compose` builds
# one from Debian's packages: --build-arg PYTHON_IMAGE=kencana-python-base:bookworm-3.11, README "Docker").
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# --- builder: resolves and installs everything into /opt/venv; pip and setuptools stay here ---------------
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app

# Dependencies first, from the lock, so that source edits do not reinstall them (layer cache).
# Every dependency ships a manylinux wheel for CPython 3.11, so no compiler is needed even here;
# --only-binary makes a missing wheel fail the build instead of silently compiling.
# What the wheels ship but the services never load goes before anything is copied on: the packages' own test
# suites (numpy, matplotlib... about 24 MB with their bytecode) and C/Cython sources, headers and type stubs (about
# 12 MB). Measured on the registry image: 442 MB before, see README "Docker" for after.
COPY deploy/docker/requirements.lock deploy/docker/build-requirements.lock deploy/docker/
RUN pip install --only-binary=:all: --no-deps -r deploy/docker/build-requirements.lock \
 && pip install --only-binary=:all: --no-deps -r deploy/docker/requirements.lock \
 && pip check \
 && site=$(python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])") \
 && find "$site" -depth -type d -name tests -exec rm -rf {} + \
 && find "$site" -type f \( -name '*.pyi' -o -name '*.pxd' -o -name '*.pyx' -o -name '*.h' -o -name '*.c' \
      -o -name '*.cpp' \) -delete

COPY pyproject.toml ./
COPY shared ./shared
COPY cli ./cli
COPY services ./services
COPY docs/events ./docs/events
# Editable install on purpose: shared.config.REPO_ROOT is derived from the location of shared/, and
# `kencana migrate` finds each service's alembic.ini and migrations/ under REPO_ROOT/services/<svc>. Keeping
# the source at /app (same path in the final stage) keeps that layout; the installed finder maps the
# packages to /app and needs neither pip nor setuptools at run time.
RUN pip install --no-deps --no-build-isolation -e . \
 && pip uninstall -y setuptools wheel pip \
 && python -m compileall -q --invalidation-mode unchecked-hash /app /opt/venv

# --- runtime: no compiler, no pip in the venv, no root ---------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 kencana \
 && useradd --system --uid 10001 --gid kencana --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin kencana \
 && mkdir -p /var/lib/kencana/keys /opt/kencana \
 && chown -R 10001:10001 /var/lib/kencana
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
COPY deploy/docker/healthcheck.py /opt/kencana/healthcheck.py
# Matplotlib (reporting's charts) builds its font cache on first import: seconds of CPU at every container start,
# minutes on a loaded machine (the reporting API went unhealthy while building it). Built once here, into the
# writable cache directory the containers use.
RUN mkdir -p /tmp/matplotlib \
 && MPLCONFIGDIR=/tmp/matplotlib /opt/venv/bin/python -c "import matplotlib.font_manager" \
 && chown -R 10001:10001 /tmp/matplotlib
# Bytecode is precompiled above, so the root filesystem can be mounted read-only. KENCANA_STATE_DIR holds the
# development JWT key pair (compose mounts a volume there); matplotlib needs a writable cache directory.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    KENCANA_STATE_DIR=/var/lib/kencana \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /app
USER 10001:10001
# Relay and consumer processes serve Prometheus metrics here when <SVC>_METRICS_PORT=9100.
EXPOSE 9100
STOPSIGNAL SIGTERM

FROM runtime AS registry
LABEL org.opencontainers.image.title="kencana-registry" \
      io.kencana.roles="api,relay"
ENV KENCANA_HEALTHCHECK_URL=http://127.0.0.1:8001/healthz
EXPOSE 8001
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/opt/kencana/healthcheck.py"]
CMD ["uvicorn", "registry.main:create_app", "--factory", "--no-server-header", "--host", "0.0.0.0", "--port", "8001"]

FROM runtime AS uppka
LABEL org.opencontainers.image.title="kencana-uppka" \
      io.kencana.roles="api,relay,consumer"
ENV KENCANA_HEALTHCHECK_URL=http://127.0.0.1:8002/healthz
EXPOSE 8002
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/opt/kencana/healthcheck.py"]
CMD ["uvicorn", "uppka.main:create_app", "--factory", "--no-server-header", "--host", "0.0.0.0", "--port", "8002"]

FROM runtime AS dashat
LABEL org.opencontainers.image.title="kencana-dashat" \
      io.kencana.roles="api,relay,consumer"
ENV KENCANA_HEALTHCHECK_URL=http://127.0.0.1:8003/healthz
EXPOSE 8003
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/opt/kencana/healthcheck.py"]
CMD ["uvicorn", "dashat.main:create_app", "--factory", "--no-server-header", "--host", "0.0.0.0", "--port", "8003"]

FROM runtime AS reporting
LABEL org.opencontainers.image.title="kencana-reporting" \
      io.kencana.roles="api,consumer"
ENV KENCANA_HEALTHCHECK_URL=http://127.0.0.1:8004/healthz
EXPOSE 8004
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "/opt/kencana/healthcheck.py"]
CMD ["uvicorn", "reporting.main:create_app", "--factory", "--no-server-header", "--host", "0.0.0.0", "--port", "8004"]
