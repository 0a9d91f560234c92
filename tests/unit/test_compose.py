"""The production stack in docker-compose.yml: its services, their shared settings, no host
paths, and the collector's trace pipeline.

The files are read with PyYAML when it is installed and otherwise with ``read_yaml`` below,
a small reader for the YAML subset these files use (block mappings and sequences, flow
sequences, quoted scalars, anchors, aliases and merge keys); with PyYAML present the two
must agree. When Debian's ``docker-compose`` is on PATH, its validator must accept the file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from infra.settings import Settings

try:
    import yaml
except ImportError:  # not a dev dependency yet: the reader below stands in
    yaml = None

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
COLLECTOR = ROOT / "infra" / "otel-collector.yaml"
DOCS = ROOT / "docs" / "production.md"

PROCESSES = {
    ("linkway", "migrate"),
    ("linkway", "topics"),
    ("linkway", "worker"),
    ("linkway", "relay"),
    ("linkway", "api"),
    ("linkway", "consume", "providers"),
    ("linkway", "consume", "payments"),
    ("linkway", "consume", "reporting"),
    ("linkway", "consume", "distal"),
}
SECRETS = (
    "LINKWAY_PII_KEYS",
    "POSTGRES_LINKWAY_PASSWORD",
    "POSTGRES_TEMPORAL_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
)


# --- a reader for the YAML subset the compose and collector files use ---------------------


class YamlSubsetError(ValueError):
    pass


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _split_flow(text: str) -> list[str]:
    items, quote, start = [], None, 0
    for i, ch in enumerate(text):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == ",":
            items.append(text[start:i].strip())
            start = i + 1
    items.append(text[start:].strip())
    return [item for item in items if item]


_BOOLS = {"true": True, "yes": True, "on": True, "false": False, "no": False, "off": False}


def _scalar(text: str, anchors: dict[str, Any]) -> Any:
    if text.startswith("*"):
        return anchors[text[1:]]
    if text.startswith("["):
        if not text.endswith("]"):
            raise YamlSubsetError(f"unsupported flow sequence: {text}")
        return [_scalar(item, anchors) for item in _split_flow(text[1:-1])]
    if text == "{}":
        return {}
    if text[:1] in ("{", "|", ">", "!", "%", "@", "`"):
        raise YamlSubsetError(f"outside the supported subset: {text}")
    if text.startswith('"'):
        return json.loads(text)
    if text.startswith("'"):
        return text[1:-1].replace("''", "'")
    if text in ("", "~", "null"):
        return None
    if text.lower() in _BOOLS:
        return _BOOLS[text.lower()]
    if re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", text):
        return int(text)
    return text


def _split_key(content: str) -> tuple[str, str]:
    if content.endswith(":"):
        return content[:-1], ""
    key, sep, rest = content.partition(": ")
    if not sep:
        raise YamlSubsetError(f"expected 'key: value': {content}")
    return key, rest.strip()


class _Reader:
    def __init__(self, text: str) -> None:
        self.lines: list[tuple[int, str]] = []
        for raw in text.splitlines():
            line = _strip_comment(raw)
            if line.strip():
                self.lines.append((len(line) - len(line.lstrip(" ")), line.strip()))
        self.anchors: dict[str, Any] = {}
        self.i = 0

    def block(self, indent: int) -> Any:
        if self.lines[self.i][1].startswith("- ") or self.lines[self.i][1] == "-":
            return self.sequence(indent)
        return self.mapping(indent)

    def nested(self, indent: int) -> Any:
        """The block under a key or a dash at ``indent``, or None when there is none."""
        if self.i < len(self.lines):
            nxt, content = self.lines[self.i]
            if nxt > indent or (nxt == indent and content.startswith("-")):
                return self.block(nxt)
        return None

    def value(self, rest: str, indent: int) -> Any:
        anchor = None
        if rest.startswith("&"):
            anchor, _, rest = rest.partition(" ")
            rest = rest.strip()
        value = self.nested(indent) if rest == "" else _scalar(rest, self.anchors)
        if anchor:
            self.anchors[anchor[1:]] = value
        return value

    def mapping(self, indent: int) -> dict[str, Any]:
        explicit: dict[str, Any] = {}
        merged: dict[str, Any] = {}
        while self.i < len(self.lines) and self.lines[self.i][0] == indent:
            content = self.lines[self.i][1]
            if content.startswith("-"):
                break
            key, rest = _split_key(content)
            self.i += 1
            value = self.value(rest, indent)
            if key == "<<":
                for source in value if isinstance(value, list) else [value]:
                    merged = {**source, **merged}
            else:
                explicit[key] = value
        return {**merged, **explicit}

    def sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while self.i < len(self.lines) and self.lines[self.i][0] == indent:
            content = self.lines[self.i][1]
            if not (content.startswith("- ") or content == "-"):
                break
            item = content[1:].strip()
            if (
                item
                and not item.startswith(("[", '"', "'", "*"))
                and re.match(r"[^ ]+:( |$)", item)
            ):
                # "- key: value": a mapping whose keys line up with this first one
                self.lines[self.i] = (indent + len(content) - len(item), item)
                items.append(self.mapping(self.lines[self.i][0]))
            else:
                self.i += 1
                items.append(self.value(item, indent))
        return items


def read_yaml(text: str) -> Any:
    reader = _Reader(text)
    document = reader.block(0) if reader.lines else None
    if reader.i != len(reader.lines):
        raise YamlSubsetError(f"unread line: {reader.lines[reader.i][1]}")
    return document


def load(path: Path) -> Any:
    text = path.read_text()
    document = read_yaml(text)
    if yaml is not None:
        assert document == yaml.safe_load(text), f"read_yaml and PyYAML disagree on {path.name}"
    return document


# --- helpers --------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    return load(COMPOSE)


def linkway_services(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: svc
        for name, svc in doc["services"].items()
        if isinstance(svc.get("command"), list) and svc["command"][:1] == ["linkway"]
    }


def service_with_image(doc: dict[str, Any], prefix: str) -> str:
    names = [n for n, s in doc["services"].items() if str(s.get("image", "")).startswith(prefix)]
    assert names, f"no service runs an image {prefix}*"
    return names[0]


def needs(service: dict[str, Any], other: str) -> str:
    """The condition on which ``service`` waits for ``other`` ('' when it does not wait)."""
    depends = service.get("depends_on", {})
    if isinstance(depends, list):  # the short form waits only for the start
        return "service_started" if other in depends else ""
    return depends.get(other, {}).get("condition", "")


# --- the compose file ---------------------------------------------------------------------


def test_every_linkway_process_is_its_own_service() -> None:
    commands = [tuple(s["command"]) for s in linkway_services(compose()).values()]
    assert sorted(commands) == sorted(PROCESSES)


def test_every_linkway_service_uses_the_shared_image_and_environment() -> None:
    doc = compose()
    shared = doc["x-linkway"]
    for name, svc in linkway_services(doc).items():
        assert svc["environment"] == shared["environment"], name
        assert svc["image"] == shared["image"], name
        assert svc["build"] == shared["build"], name
    # Nothing else is built from the Dockerfile without the shared settings.
    built = {n for n, s in doc["services"].items() if "build" in s}
    assert built == set(linkway_services(doc))


def test_shared_environment_names_only_real_settings() -> None:
    env = compose()["x-linkway"]["environment"]
    fields = {f"LINKWAY_{name.upper()}" for name in Settings.model_fields}
    linkway_keys = {k for k in env if k.startswith("LINKWAY_")}
    assert linkway_keys - fields == set(), "a LINKWAY_ variable that no setting reads"
    assert set(env) - linkway_keys <= {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL"}
    assert env["LINKWAY_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert env["LINKWAY_TELEMETRY_EXPORTER"] == "otlp"


def test_secrets_are_required_variables_never_values() -> None:
    text = COMPOSE.read_text()
    for name in SECRETS:
        assert re.search(r"\$\{" + name + r":\?[^}]+\}", text), f"{name} must be ${{{name}:?...}}"
        assert not re.search(r"\$\{" + name + r":?-", text), f"{name} must have no default"
    env = compose()["x-linkway"]["environment"]
    assert env["LINKWAY_PII_KEYS"].startswith("${LINKWAY_PII_KEYS:?")


def test_no_service_mounts_a_host_path() -> None:
    doc = compose()
    named = set(doc.get("volumes") or {})
    for name, svc in doc["services"].items():
        for volume in svc.get("volumes", []):
            source = volume.get("source", "") if isinstance(volume, dict) else volume.split(":")[0]
            assert not source.startswith(("/", "~", "$")), f"{name} mounts host path {source}"
            assert not re.match(r"[A-Za-z]:[\\/]", source), f"{name} mounts host path {source}"
            if source.startswith("."):
                assert (ROOT / source).resolve().is_relative_to(ROOT), f"{name}: {source}"
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in named, f"{name} mounts undeclared volume {source}"
        context = svc.get("build", {}).get("context", ".")
        assert not context.startswith(("/", "~")), f"{name} builds from {context}"


# Images their publishers have deprecated or stopped patching, with what replaces them.
DEPRECATED_IMAGES = {
    "temporalio/auto-setup": "temporalio/server with a temporalio/admin-tools schema job",
    "temporalio/web": "temporalio/ui",
    "temporalio/temporal": "temporalio/server",
    "jaegertracing/all-in-one": "jaegertracing/jaeger (Jaeger v2)",
    "bitnami/kafka": "apache/kafka",
    "wurstmeister/kafka": "apache/kafka",
    "confluentinc/cp-zookeeper": "KRaft mode (Kafka 4 has no ZooKeeper)",
    "zookeeper": "KRaft mode (Kafka 4 has no ZooKeeper)",
    "otel/opentelemetry-collector-contrib-dev": "otel/opentelemetry-collector-contrib",
    # Not updated from Grafana 12.4.0; the same OSS build is published as grafana/grafana.
    "grafana/grafana-oss": "grafana/grafana",
}


def image_name_and_tag(image: str) -> tuple[str, str]:
    """``repo/name:tag`` -> (``repo/name``, ``tag``); a ``${VAR:-default}`` image is judged
    by its default, which is what runs when the operator sets nothing."""
    if image.startswith("${"):
        image = image.partition(":-")[2].rstrip("}")
    name, _, tag = image.rpartition(":") if ":" in image else (image, "", "")
    return name, tag


def test_no_service_runs_a_deprecated_image() -> None:
    for name, svc in compose()["services"].items():
        image, _ = image_name_and_tag(svc["image"])
        assert image not in DEPRECATED_IMAGES, f"{name}: {image} -> {DEPRECATED_IMAGES[image]}"


# A release number: not latest, not a floating major like "16". PostgreSQL numbers its
# releases major.minor (16.11), everything else here major.minor.patch; Prometheus puts a
# "v" in front (v3.5.0).
RELEASE = re.compile(r"v?[0-9]+\.[0-9]+(\.[0-9]+)?")


def test_every_image_is_pinned_to_a_release() -> None:
    for name, svc in compose()["services"].items():
        image, tag = image_name_and_tag(svc["image"])
        assert image and RELEASE.fullmatch(tag), f"{name}: pin {svc['image']}"


def test_the_pinning_checks_catch_what_they_claim() -> None:
    assert image_name_and_tag("temporalio/auto-setup:1.29.1")[0] in DEPRECATED_IMAGES
    assert image_name_and_tag("${LINKWAY_IMAGE:-linkway:0.1.0}") == ("linkway", "0.1.0")
    assert image_name_and_tag("postgres") == ("postgres", "")
    assert RELEASE.fullmatch(image_name_and_tag("prom/prometheus:v3.5.0")[1])
    for floating in ("postgres:16", "kafka:latest", "kafka", "ui:2-alpine", "prometheus:v3"):
        assert not RELEASE.fullmatch(image_name_and_tag(floating)[1]), floating


def test_infrastructure_services_are_present() -> None:
    doc = compose()
    for prefix in (
        "postgres:16",
        "temporalio/server:",
        "temporalio/admin-tools:",
        "temporalio/ui:",
        "apache/kafka:",
        "otel/opentelemetry-collector-contrib:",
        "jaegertracing/jaeger:",
        "prom/prometheus:",
        "grafana/grafana:",
    ):
        service_with_image(doc, prefix)
    temporal = doc["services"][service_with_image(doc, "temporalio/server:")]
    assert temporal["environment"]["DB"] == "postgres12"
    kafka = doc["services"][service_with_image(doc, "apache/kafka:")]
    assert "broker,controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft


def test_temporal_schema_job_runs_before_the_server_and_the_namespace_after() -> None:
    doc = compose()
    services = doc["services"]
    server_name = service_with_image(doc, "temporalio/server:")
    server = services[server_name]
    jobs = {n: s for n, s in services.items() if s["image"].startswith("temporalio/admin-tools:")}
    schema = [n for n, s in jobs.items() if "schema" in " ".join(s["command"])]
    namespace = [n for n, s in jobs.items() if "namespace" in " ".join(s["command"])]
    assert len(schema) == 1 and len(namespace) == 1
    assert needs(server, schema[0]) == "service_completed_successfully"
    assert needs(services[namespace[0]], server_name) == "service_healthy"
    # Admin tools and server move together: the schema job applies the schema that
    # version of the server expects.
    tags = {image_name_and_tag(s["image"])[1] for s in [server, *jobs.values()]}
    assert len(tags) == 1, tags
    script = ROOT / "infra" / "temporal-setup" / "schema.sh"
    text = script.read_text()
    assert "temporal-sql-tool" in text and text.count("update-schema") >= 2
    for job in jobs.values():
        assert job["restart"] == "on-failure"


def test_processes_start_after_their_set_up_jobs() -> None:
    services = compose()["services"]
    by_command = {tuple(s["command"]): n for n, s in linkway_services(compose()).items()}
    migrate = by_command[("linkway", "migrate")]
    topics = by_command[("linkway", "topics")]
    for name, svc in linkway_services(compose()).items():
        if name in (migrate, topics):
            assert svc["restart"] == "on-failure", f"{name} is a one-shot job"
            continue
        assert needs(svc, migrate) == "service_completed_successfully", name
    for command in [("linkway", "relay"), *(c for c in PROCESSES if c[1] == "consume")]:
        assert needs(services[by_command[command]], topics) == "service_completed_successfully"
    temporal = service_with_image(compose(), "temporalio/server:")
    for command in [("linkway", "worker"), ("linkway", "api"), ("linkway", "consume", "providers")]:
        assert needs(services[by_command[command]], temporal) == "service_healthy"
        # The server is up before its namespace exists: wait for the namespace job too.
        assert needs(services[by_command[command]], "temporal-namespace") == (
            "service_completed_successfully"
        )


LONG_RUNNING = [c for c in PROCESSES if c[1] not in ("migrate", "topics")]


def test_every_long_running_process_runs_two_replicas_so_none_is_a_single_point_of_failure() -> (
    None
):
    services = linkway_services(compose())
    replicas = {tuple(s["command"]): s.get("deploy", {}).get("replicas") for s in services.values()}
    for command in LONG_RUNNING:
        assert replicas[command] >= 2, command


def test_every_long_running_process_has_a_healthcheck_on_its_own_probe() -> None:
    doc = compose()
    port = doc["x-linkway"]["environment"]["LINKWAY_HEALTH_PORT"]
    by_command = {tuple(s["command"]): s for s in linkway_services(doc).values()}
    for command in LONG_RUNNING:
        probe = " ".join(by_command[command]["healthcheck"]["test"])
        if command == ("linkway", "api"):
            assert "127.0.0.1:8000/" in probe
        else:
            assert f"127.0.0.1:{port}/readyz" in probe, command


def test_collector_sends_traces_to_the_trace_viewer() -> None:
    doc = compose()
    collector = doc["services"][service_with_image(doc, "otel/opentelemetry-collector-contrib:")]
    assert any(v.startswith("./infra/otel-collector.yaml:") for v in collector["volumes"])
    viewer = service_with_image(doc, "jaegertracing/")
    config = load(COLLECTOR)
    traces = config["service"]["pipelines"]["traces"]
    assert traces["receivers"] == ["otlp"]
    endpoints = [config["exporters"][name]["endpoint"] for name in traces["exporters"]]
    assert f"{viewer}:4317" in endpoints
    # Linkway's exporter is OTLP over HTTP, so it talks to the collector's port 4318.
    endpoint = doc["x-linkway"]["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"]
    collector_name = service_with_image(doc, "otel/opentelemetry-collector-contrib:")
    assert endpoint == f"http://{collector_name}:4318"
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"].endswith(":4318")


def test_collector_drops_every_attribute_linkway_blanks_on_server_spans() -> None:
    """Second line of defence: what scrub_server_span empties (the query string, the
    caller's address and port), the collector deletes from every span it forwards."""
    from infra import telemetry

    config = load(COLLECTOR)
    assert "attributes/scrub" in config["service"]["pipelines"]["traces"]["processors"]
    deleted = {
        a["key"]
        for a in config["processors"]["attributes/scrub"]["actions"]
        if a["action"] == "delete"
    }
    blanked = {
        *telemetry._QUERY_ATTRIBUTES,
        *telemetry._CLIENT_ADDRESS_ATTRIBUTES,
        *telemetry._CLIENT_PORT_ATTRIBUTES,
    }
    assert blanked <= deleted, sorted(blanked - deleted)


def test_production_docs_name_every_setting() -> None:
    text = DOCS.read_text()
    missing = [f for f in Settings.model_fields if f"LINKWAY_{f.upper()}" not in text]
    assert missing == []


def test_docker_compose_accepts_the_file_and_demands_the_secrets(tmp_path: Path) -> None:
    binary = shutil.which("docker-compose")
    if binary is None:  # CI installs Debian's docker-compose; the checks above still ran
        return
    # An empty env file, so that an operator's .env beside the compose file is not read.
    no_dotenv = tmp_path / "empty.env"
    no_dotenv.write_text("")
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    command = [binary, "--env-file", str(no_dotenv), "-f", str(COMPOSE), "config", "-q"]
    with_secrets = {**env, **{name: "placeholder" for name in SECRETS}}
    ok = subprocess.run(command, env=with_secrets, capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    without_keys = {k: v for k, v in with_secrets.items() if k != "LINKWAY_PII_KEYS"}
    refused = subprocess.run(command, env=without_keys, capture_output=True, text=True, check=False)
    assert refused.returncode != 0
    assert "LINKWAY_PII_KEYS" in refused.stderr


# --- the reader itself --------------------------------------------------------------------


def test_read_yaml_understands_the_subset_it_claims() -> None:
    text = """
x-base: &base  # comment
  image: "app:1"
  env: &env
    A: 1
    B: 'it''s'
svc:
  one:
    <<: *base
    image: app:2
    list:
      - a # trailing
      - "b, c"
    flow: ["CMD", "x, y", 'z']
    items:
      - key: k
        action: delete
      - plain
    flag: true
    none:
    empty: {}
"""
    assert read_yaml(text) == {
        "x-base": {"image": "app:1", "env": {"A": 1, "B": "it's"}},
        "svc": {
            "one": {
                "image": "app:2",
                "env": {"A": 1, "B": "it's"},
                "list": ["a", "b, c"],
                "flow": ["CMD", "x, y", "z"],
                "items": [{"key": "k", "action": "delete"}, "plain"],
                "flag": True,
                "none": None,
                "empty": {},
            }
        },
    }
