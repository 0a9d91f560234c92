# One image for every Linkway process; the command picks the process (docker-compose.yml).
# Build: docker-compose build   (or: docker build -t linkway:0.1.0 .)

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN python -m venv /opt/linkway && /opt/linkway/bin/pip install .

FROM python:3.11-slim
# A fixed numeric uid so that platforms enforcing "run as non-root" can check it.
RUN useradd --uid 10001 --user-group --create-home --shell /usr/sbin/nologin linkway
COPY --from=build /opt/linkway /opt/linkway
ENV PATH=/opt/linkway/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LINKWAY_API_HOST=0.0.0.0 \
    LINKWAY_DATA_DIR=/home/linkway/var
USER 10001:10001
WORKDIR /home/linkway
EXPOSE 8000
CMD ["linkway", "api"]
