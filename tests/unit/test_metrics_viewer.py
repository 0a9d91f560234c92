"""The metrics viewer of the compose stack: Prometheus scrapes the collector's Prometheus
endpoint, Grafana is provisioned with that Prometheus and the committed dashboard, and
every Linkway metric the dashboard and the documented alerts query is one the code emits,
under the name the collector's Prometheus exporter gives it."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from tests.unit.test_compose import COLLECTOR, ROOT, compose, load, service_with_image

DASHBOARD = ROOT / "infra" / "dashboards" / "linkway.json"
PROMETHEUS = ROOT / "infra" / "prometheus.yml"
PROVISIONING = ROOT / "infra" / "grafana" / "provisioning"
DOCS = ROOT / "docs" / "production.md"
SOURCES = ("api", "messaging", "ops", "workers", "payments", "inbound", "infra", "activities")
INSTRUMENTS = {
    "create_counter": "counter",
    "create_up_down_counter": "gauge",
    "create_histogram": "histogram",
    "create_observable_gauge": "gauge",
    "create_observable_counter": "counter",
    "create_observable_up_down_counter": "gauge",
    "create_gauge": "gauge",
}
# The collector's Prometheus exporter: unit to suffix (annotations like {event} vanish).
UNIT_SUFFIX = {"s": "_seconds", "ms": "_milliseconds", "By": "_bytes"}


def prometheus_names(name: str, unit: str, kind: str) -> set[str]:
    base = name.replace(".", "_")
    if unit in UNIT_SUFFIX:
        base += UNIT_SUFFIX[unit]
    elif unit == "1" and kind == "gauge":
        base += "_ratio"
    if kind == "counter":
        return {base + "_total"}
    if kind == "histogram":  # the family, and the series a query reads
        return {base, base + "_bucket", base + "_sum", base + "_count"}
    return {base}


def emitted() -> set[str]:
    """Every Linkway instrument created in the code, as Prometheus will name it."""
    names: set[str] = set()
    for package in SOURCES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr in INSTRUMENTS
                    and node.args
                    and isinstance(node.args[0], ast.Constant)
                ):
                    continue
                unit = next(
                    (k.value.value for k in node.keywords if k.arg == "unit"),  # type: ignore[attr-defined]
                    "",
                )
                kind = INSTRUMENTS[node.func.attr]
                names |= prometheus_names(node.args[0].value, unit, kind)
    return names


def queried(text: str) -> set[str]:
    return set(re.findall(r"\b(linkway_[a-z_]+)", text))


def dashboard_queries() -> list[str]:
    doc = json.loads(DASHBOARD.read_text())
    return [t["expr"] for panel in doc["panels"] for t in panel.get("targets", [])]


def test_the_names_follow_the_exporters_rules() -> None:
    assert prometheus_names("linkway.command.duration", "s", "histogram") >= {
        "linkway_command_duration_seconds_bucket"
    }
    assert prometheus_names("linkway.commands", "{command}", "counter") == {
        "linkway_commands_total"
    }
    assert prometheus_names("linkway.outbox.backlog", "{event}", "gauge") == {
        "linkway_outbox_backlog"
    }
    found = emitted()
    assert {"linkway_commands_total", "linkway_outbox_oldest_age_seconds"} <= found
    assert "linkway_outbox_oldest_age" not in found


def test_every_metric_the_dashboard_queries_is_emitted() -> None:
    queries = dashboard_queries()
    used = set().union(*(queried(q) for q in queries))
    assert len(used) >= 8, used
    assert used - emitted() == set()
    # Temporal's SDK metrics are named by its runtime: the ones used are the documented ones.
    documented = DOCS.read_text()
    for name in set().union(*(re.findall(r"\b(temporal_[a-z_]+)", q) for q in queries)):
        base = re.sub(r"_seconds_(bucket|sum|count)$", "", name)
        assert f"`{base}`" in documented, name


def test_every_linkway_metric_in_the_documented_alerts_is_emitted() -> None:
    alerts = DOCS.read_text().partition("### Alerts worth setting")[2].partition("\n## ")[0]
    used = queried(alerts)
    assert used and used - emitted() == set()


def test_prometheus_scrapes_the_collectors_prometheus_endpoint() -> None:
    doc = compose()
    collector = service_with_image(doc, "otel/opentelemetry-collector-contrib:")
    port = load(COLLECTOR)["exporters"]["prometheus"]["endpoint"].rpartition(":")[2]
    assert "prometheus" in load(COLLECTOR)["service"]["pipelines"]["metrics"]["exporters"]
    prometheus = doc["services"][service_with_image(doc, "prom/prometheus:")]
    assert any(v.startswith("./infra/prometheus.yml:") for v in prometheus["volumes"])
    config = load(PROMETHEUS)
    targets = [
        t for job in config["scrape_configs"] for s in job["static_configs"] for t in s["targets"]
    ]
    assert targets == [f"{collector}:{port}"]


def test_grafana_is_provisioned_with_prometheus_and_the_dashboard() -> None:
    doc = compose()
    name = service_with_image(doc, "grafana/grafana:")
    grafana = doc["services"][name]
    prometheus = service_with_image(doc, "prom/prometheus:")
    mounts = {v.split(":")[0]: v.split(":")[1] for v in grafana["volumes"]}
    assert mounts["./infra/grafana/provisioning"] == "/etc/grafana/provisioning"
    sources = load(PROVISIONING / "datasources" / "prometheus.yaml")["datasources"]
    assert [(s["type"], s["url"]) for s in sources] == [("prometheus", f"http://{prometheus}:9090")]
    providers = load(PROVISIONING / "dashboards" / "linkway.yaml")["providers"]
    dashboards = Path(mounts["./infra/dashboards"])
    assert [Path(p["options"]["path"]) for p in providers] == [dashboards]
    assert (ROOT / "infra" / "dashboards" / "linkway.json").exists()
    # Its administrator password is a required secret, never a default.
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"].startswith(
        "${GRAFANA_ADMIN_PASSWORD:?"
    )
    # Nothing downloads at run time.
    assert grafana["environment"]["GF_PLUGINS_PREINSTALL_DISABLED"] == "true"
