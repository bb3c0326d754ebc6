# The code location image: the project and its definitions, served by `dagster code-server start`
# on port 4000. The same image runs each run (K8sRunLauncher / DockerRunLauncher start it with
# `dagster api execute_run`). No key, password or data dir is baked in: they come from the
# environment at run time (see README, "Deploying").
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/dagster_home

# An unprivileged user owns nothing but its home and DAGSTER_HOME.
RUN groupadd --system --gid 10001 dagster \
    && useradd --system --uid 10001 --gid dagster --create-home --home-dir /home/dagster dagster

WORKDIR /opt/dagster/app
# The project from its own files only (no network fetch of our code, no dev extras).
COPY pyproject.toml README.md ./
COPY pipeline ./pipeline
RUN pip install --no-compile ".[deploy]"

COPY deploy/dagster.yaml /opt/dagster/dagster_home/dagster.yaml
RUN mkdir -p /opt/dagster/dagster_home /data \
    && chown -R dagster:dagster /opt/dagster/dagster_home /data

USER dagster
EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", \
     "-m", "pipeline.definitions", "--location-name", "cloudglue_pipeline"]
