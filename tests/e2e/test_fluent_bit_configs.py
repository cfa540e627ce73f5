"""The Fluent Bit pipelines in deploy/fluent-bit, read as Fluent Bit reads them (YAML, keys
case-insensitive, sizes in decimal units), checked for what the evidence depends on.

Fluent Bit itself cannot be installed here (not in Debian 12, no binary on npm), so
`fluent-bit --dry-run` cannot vouch for these files. Instead: every key must be one Fluent Bit
documents for that plugin (it refuses to start on an unknown key), and the settings that keep the
record complete, exact, unique and private must be there. The last test removes each of those
settings in turn and checks that the checker notices, so that none of them can go quietly.

Needs only python3-yaml: it builds nothing and starts nothing (run it alone with
`python3 -m pytest -q --noconftest -p no:cacheprovider tests/e2e/test_fluent_bit_configs.py`)."""

import copy
import fnmatch
import json
import pathlib
import re
import sys

import pytest
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]
PIPELINES = REPO / "deploy" / "fluent-bit"
FILES = {"s3-object-lock.yaml": "s3", "splunk-hec.yaml": "splunk", "opensearch.yaml": "opensearch"}

# Keys as documented by Fluent Bit (its documentation's configuration tables for each plugin, as of
# 5.1), with the keys every input, filter or output accepts.
COMMON = {
    "input": {"name", "tag", "alias", "log_level", "storage.type",
              "storage.pause_on_chunks_overlimit", "mem_buf_limit", "threaded"},
    "filter": {"name", "match", "match_regex", "alias", "log_level"},
    "output": {"name", "match", "match_regex", "alias", "log_level", "retry_limit",
               "storage.total_limit_size", "workers", "tls", "tls.verify", "tls.verify_hostname",
               "tls.ca_file", "tls.ca_path", "tls.crt_file", "tls.key_file", "tls.key_passwd",
               "tls.vhost", "tls.debug", "tls.min_version", "tls.max_version", "tls.ciphers"},
}
KNOWN = {
    "service": set("""
        coro_stack_size daemon dns.mode dns.prefer_ipv4 dns.prefer_ipv6 dns.resolver flush grace
        hc_errors_count hc_period hc_retry_failure_count health_check hot_reload http_listen
        http_port http_server json.convert_nan_to_null json.escape_unicode log_file log_level
        multiline_buffer_limit parsers_file plugins_file scheduler.base scheduler.cap
        security.fips_mode storage.backlog.flush_on_shutdown storage.backlog.mem_limit
        storage.checksum storage.delete_irrecoverable_chunks storage.inherit storage.keep.rejected
        storage.max_chunks_up storage.metrics storage.path storage.rejected.limit
        storage.rejected.path storage.sync storage.trim_files storage.type""".split()),
    "tail": set("""
        buffer_chunk_size buffer_max_size db db.compare_filename db.journal_mode db.locking db.sync
        docker_mode docker_mode_flush docker_mode_parser exclude_path exit_on_eof file_cache_advise
        ignore_older inotify_watcher key offset_key parser path path_key read_from_head
        read_newly_discovered_files_from_head refresh_interval rotate_wait skip_empty_lines
        skip_long_lines tag_regex truncate_long_lines multiline.parser""".split()),
    "grep": {"regex", "exclude", "logical_op"},
    "kubernetes": set("""
        annotations buffer_size cache_use_docker_id dns_retries dns_wait_time k8s-logging.exclude
        k8s-logging.parser keep_log kube_ca_file kube_ca_path kube_meta_cache_ttl kube_tag_prefix
        kube_token_file kube_token_ttl kube_url kubelet_host kubelet_port labels merge_log
        merge_log_key merge_log_trim merge_parser namespace_annotations namespace_labels
        owner_references regex_parser use_kubelet use_tag_for_meta""".split()),
    "s3": set("""
        auto_retry_requests bucket canned_acl compression content_type endpoint external_id
        json_date_format json_date_key log_key preserve_data_ordering profile
        quarantine_dir_limit_size region retry_exhausted_action role_arn s3_key_format
        s3_key_format_tag_delimiters send_content_md5 static_file_path storage_class store_dir
        store_dir_limit_size sts_endpoint total_file_size upload_chunk_size upload_timeout
        use_put_object""".split()),
    "splunk": set("""
        channel compress host http_buffer_size http_debug_bad_request http_passwd http_user port
        splunk_token event_field event_host event_index event_index_key event_key event_source
        event_sourcetype event_sourcetype_key splunk_send_raw""".split()),
    "opensearch": set("""
        aws_auth aws_external_id aws_profile aws_region aws_role_arn aws_service_name
        aws_sts_endpoint buffer_size compress current_time_index generate_id host http_passwd
        http_user id_key include_tag_key index logstash_dateformat logstash_format logstash_prefix
        logstash_prefix_key logstash_prefix_separator path pipeline port replace_dots
        suppress_type_name tag_key time_key time_key_format time_key_nanos trace_error
        trace_output type write_operation""".split()),
}
KIND = {"inputs": "input", "filters": "filter", "outputs": "output"}

# Names Kubernetes gives container log files: <pod>_<namespace>_<container>-<64 hex>.log.
CID = "0123456789abcdef" * 4
CASTGATE_LOG = f"/var/log/containers/cg-castgate-7d9f8b6c5-x2x9z_castgate_castgate-{CID}.log"
NOT_CASTGATE = [f"/var/log/containers/fluent-bit-4kq2d_logging_fluent-bit-{CID}.log",
                f"/var/log/containers/castgate-shipper-4kq2d_logging_fluent-bit-{CID}.log",
                f"/var/log/containers/cg-castgate-7d9f8b6c5-x2x9z_castgate_init-{CID}.log",
                # a tenant's container named like castgate's, in its own namespace
                f"/var/log/containers/evil-7d9f8b6c5-x2x9z_tenant-a_castgate-{CID}.log",
                f"/var/log/containers/evil-7d9f8b6c5-x2x9z_castgate-dev_castgate-{CID}.log"]
# The keys Fluent Bit's cri/docker parsers, the kubernetes filter and the S3 output put beside
# castgate's own when they are merged at the top level.
SHIPPER_KEYS = {"time", "stream", "_p", "logtag", "log", "kubernetes", "date", "log_file"}
SECRET_KEY = re.compile(r"token|passw|secret|key_passwd|access_key|credential", re.I)
ENV_ONLY = re.compile(r"\$\{[A-Z][A-Z0-9_]*\}")


def norm(value) -> str:
    """A value as Fluent Bit sees it: YAML scalars are strings to Fluent Bit (PyYAML turns
    on/off/true/false into booleans and numbers into ints)."""
    if value is True:
        return "on"
    if value is False:
        return "off"
    return str(value).strip()


def is_on(value) -> bool:
    return norm(value).lower() in {"on", "true", "yes"}


def is_off(value) -> bool:
    return norm(value).lower() in {"off", "false", "no"}


def size(value) -> int:
    """Fluent Bit's unit sizes: k, M, G are powers of 1000 (administration/configuring-fluent-bit,
    "Unit sizes"); "false" means no limit."""
    text = norm(value)
    if text.lower() in {"false", "off"}:
        return 1 << 62
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG]?)[bB]?", text)
    assert m, f"not a Fluent Bit size: {value!r}"
    return int(float(m.group(1)) * {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}[m.group(2).lower()])


def load(name: str) -> dict:
    return yaml.safe_load((PIPELINES / name).read_text())


def plugins(doc: dict, section: str) -> list[dict]:
    return [{k.lower(): v for k, v in p.items()} for p in doc.get("pipeline", {}).get(section, [])]


def one(doc: dict, section: str, name: str) -> dict:
    found = [p for p in plugins(doc, section) if norm(p.get("name")).lower() == name]
    return found[0] if len(found) == 1 else {}


def index_template_patterns() -> list[str]:
    return json.loads((REPO / "deploy" / "siem" / "opensearch-index-template.json").read_text())[
        "index_patterns"]


def schema() -> dict:
    return json.loads((REPO / "docs" / "events.schema.json").read_text())


def in_schema(dotted: str) -> bool:
    node = schema()
    for part in dotted.split("."):
        props = node.get("properties", {})
        if part not in props:
            return False
        node = props[part]
    return True


def common_problems(doc: dict) -> list[str]:
    """What every pipeline needs: the whole line read, joined, kept exactly, buffered on disk."""
    p = []
    service = {k.lower(): v for k, v in (doc.get("service") or {}).items()}
    storage = norm(service.get("storage.path", ""))
    if not storage.startswith("/var/lib/fluent-bit/"):
        p.append("service storage.path must be on the node's disk (a hostPath under "
                 "/var/lib/fluent-bit), not in the container or /tmp")
    if norm(service.get("storage.sync", "")).lower() != "full":
        p.append("service storage.sync must be full")
    if not is_on(service.get("storage.checksum", "off")):
        p.append("service storage.checksum must be on")
    if not is_on(service.get("storage.keep.rejected", "off")):
        p.append("service storage.keep.rejected must be on (rejected chunks kept, not dropped)")

    tails = [i for i in plugins(doc, "inputs") if norm(i.get("name")) == "tail"]
    if len(tails) != 1:
        return p + ["exactly one tail input"]
    tail = tails[0]
    path = norm(tail.get("path", ""))
    if not fnmatch.fnmatchcase(CASTGATE_LOG, path):
        p.append(f"tail path {path!r} does not match castgate's container log")
    for other in NOT_CASTGATE:
        if fnmatch.fnmatchcase(other, path):
            p.append(f"tail path {path!r} also matches {other}")
    parsers = {x.strip() for x in norm(tail.get("multiline.parser", "")).split(",")}
    if not {"cri", "docker"} <= parsers:
        p.append("tail multiline.parser must join cri and docker partial lines")
    db = norm(tail.get("db", ""))
    if not db.startswith("/var/lib/fluent-bit/"):
        p.append("tail db (read positions) must be on the node's disk")
    if not is_on(tail.get("read_from_head", "off")):
        p.append("tail read_from_head must be on")
    # The largest physical line: a 16 KiB runtime piece every byte of which Docker escaped to six
    # (\u003c), or a 64 KiB castgate line (--max-line at most) a runtime did not split.
    if size(tail.get("buffer_max_size", "32k")) < max(6 * 16384, 65536) + 1024:
        p.append("tail buffer_max_size too small for castgate's lines")
    if not is_on(tail.get("skip_long_lines", "off")):
        p.append("tail skip_long_lines must be on (else one long line stops the whole file)")
    if norm(tail.get("storage.type", "memory")).lower() != "filesystem":
        p.append("tail storage.type must be filesystem")
    tag = norm(tail.get("tag", ""))

    greps = [f for f in plugins(doc, "filters") if norm(f.get("name")) == "grep"]
    if not any(norm(g.get("regex", "")) == "stream ^stdout$" for g in greps):
        p.append("a grep filter must keep only stdout (castgate's record)")
    # The path also matches a container named castgate-<something> in castgate's namespace:
    # the file's name (path_key), not the pod's metadata (missing while the API server is out of
    # reach), keeps only castgate's container.
    if norm(tail.get("path_key", "")) != "log_file":
        p.append("tail path_key must be log_file (the file name the container filter reads)")
    scoped = [norm(g.get("regex", "")) for g in greps
              if norm(g.get("regex", "")).startswith("log_file ")]
    if not scoped:
        p.append("a grep filter on log_file must keep only castgate's container")
    for regex in scoped:
        pattern = re.compile(regex.split(" ", 1)[1])
        if not pattern.search(CASTGATE_LOG):
            p.append(f"grep {regex!r} drops castgate's own log")
        for other in NOT_CASTGATE + [CASTGATE_LOG.replace("_castgate-", "_castgate-exporter-")]:
            if pattern.search(other):
                p.append(f"grep {regex!r} keeps {other}")
    kube = one(doc, "filters", "kubernetes")
    if not kube:
        return p + ["one kubernetes filter"]
    prefix = norm(kube.get("kube_tag_prefix", "kube.var.log.containers."))
    expected = tag.replace("*", CASTGATE_LOG.lstrip("/").replace("/", "."))
    if not expected.startswith(prefix) or "_" not in expected[len(prefix):]:
        p.append(f"kube_tag_prefix {prefix!r} does not fit the tail tag {tag!r}")
    if not is_on(kube.get("merge_log", "off")):
        p.append("kubernetes merge_log must be on")
    if not is_on(kube.get("keep_log", "on")) or "keep_log" not in kube:
        p.append("kubernetes keep_log must be on, written out (castgate-player verifies `log`)")
    if not is_off(kube.get("merge_log_trim", "on")):
        p.append("kubernetes merge_log_trim must be off (it alters merged values)")
    for k in ("k8s-logging.exclude", "k8s-logging.parser"):
        if not is_off(kube.get(k, "on")):
            p.append(f"kubernetes {k} must be off, written out (a pod annotation must not "
                     "stop or alter shipping)")

    for section in ("filters", "outputs"):
        for plugin in plugins(doc, section):
            match = norm(plugin.get("match", ""))
            if not fnmatch.fnmatchcase(expected, match):
                p.append(f"{plugin.get('name')} match {match!r} misses the tag {expected!r}")
    return p


def s3_problems(doc: dict) -> list[str]:
    p = common_problems(doc)
    out = one(doc, "outputs", "s3")
    if not out:
        return p + ["one s3 output"]
    if norm(out.get("compression", "")).lower() != "gzip":
        p.append("s3 compression must be gzip")
    if not is_on(out.get("send_content_md5", "off")):
        p.append("s3 send_content_md5 must be on (Object Lock)")
    if not is_on(out.get("use_put_object", "off")):
        p.append("s3 use_put_object must be on")
    key = norm(out.get("s3_key_format", ""))
    if not all(x in key for x in ("%Y", "%m", "%d")):
        p.append("s3_key_format must name the day (%Y %m %d)")
    if "$UUID" not in key:
        p.append("s3_key_format must hold $UUID (keys unique across nodes and uploads)")
    if not key.startswith("/"):
        p.append("s3_key_format must start with / (Fluent Bit puts the bucket before it)")
    store = norm(out.get("store_dir", "/tmp/fluent-bit/s3"))
    if not store.startswith("/var/lib/fluent-bit/"):
        p.append("s3 store_dir must be on the node's disk (its default is /tmp)")
    if "storage.total_limit_size" in out:
        p.append("s3 ignores storage.total_limit_size (store_dir_limit_size instead)")
    limit = norm(out.get("retry_limit", "5"))
    if not limit.isdigit() or int(limit) < 1440:
        p.append("s3 retry_limit must be a number of at least a day of attempts "
                 "(the S3 output caps 'no limit' to 5)")
    if norm(out.get("retry_exhausted_action", "")).lower() != "quarantine":
        p.append("s3 retry_exhausted_action must be quarantine (kept, not deleted)")
    if norm(out.get("endpoint", "")).lower().startswith("http://"):
        p.append("s3 endpoint must not be plain http")
    if not norm(out.get("bucket", "")):
        p.append("s3 bucket")
    return p


def tls_problems(out: dict) -> list[str]:
    p = []
    if not is_on(out.get("tls", "off")):
        p.append(f"{out.get('name')} tls must be on")
    if not is_on(out.get("tls.verify", "on")):
        p.append(f"{out.get('name')} tls.verify must stay on")
    if not is_on(out.get("tls.verify_hostname", "off")):
        p.append(f"{out.get('name')} tls.verify_hostname must be on")
    return p


def queue_problems(out: dict) -> list[str]:
    p = []
    if norm(out.get("retry_limit", "1")).lower() not in {"no_limits", "false", "off"}:
        p.append(f"{out.get('name')} retry_limit must be no_limits")
    if "storage.total_limit_size" not in out:
        p.append(f"{out.get('name')} storage.total_limit_size must be set (a bounded disk queue)")
    elif size(out["storage.total_limit_size"]) < 10**9:
        p.append(f"{out.get('name')} storage.total_limit_size below 1G would drop chunks soon")
    return p


def splunk_problems(doc: dict) -> list[str]:
    p = common_problems(doc)
    out = one(doc, "outputs", "splunk")
    if not out:
        return p + ["one splunk output"]
    p += tls_problems(out) + queue_problems(out)
    if norm(out.get("splunk_token", "")) != "${SPLUNK_HEC_TOKEN}":
        p.append("splunk_token must be ${SPLUNK_HEC_TOKEN}")
    if norm(out.get("event_key", "")) != "$log":
        p.append("splunk event_key must be $log (the line as the event, byte for byte)")
    if not is_off(out.get("splunk_send_raw", "on")):
        p.append("splunk_send_raw must be off, written out")
    if norm(out.get("event_sourcetype", "")) != "castgate:event":
        p.append("splunk event_sourcetype must be castgate:event")
    if norm(out.get("event_index", "")) != "castgate":
        p.append("splunk event_index must be castgate")
    return p


def opensearch_problems(doc: dict) -> list[str]:
    p = common_problems(doc)
    out = one(doc, "outputs", "opensearch")
    if not out:
        return p + ["one opensearch output"]
    p += tls_problems(out) + queue_problems(out)
    for k, env in (("http_user", "${OPENSEARCH_USER}"), ("http_passwd", "${OPENSEARCH_PASSWORD}")):
        if norm(out.get(k, "")) != env and not is_on(out.get("aws_auth", "off")):
            p.append(f"opensearch {k} must be {env}")
    if not is_on(out.get("suppress_type_name", "off")):
        p.append("opensearch suppress_type_name must be on")
    if not is_on(out.get("logstash_format", "off")):
        p.append("opensearch logstash_format must be on (an index per day)")
    prefix = norm(out.get("logstash_prefix", "logstash"))
    day = norm(out.get("logstash_dateformat", "%Y.%m.%d"))
    if not all(x in day for x in ("%Y", "%m", "%d")):
        p.append("opensearch logstash_dateformat must name the day")
    index = prefix + norm(out.get("logstash_prefix_separator", "-")) + "2026.03.03"
    if not any(fnmatch.fnmatchcase(index, pat) for pat in index_template_patterns()):
        p.append(f"opensearch index {index} is not covered by the shipped index template")
    time_key = norm(out.get("time_key", "@timestamp"))
    if time_key in schema()["properties"] or in_schema(time_key) or time_key in SHIPPER_KEYS:
        p.append(f"opensearch time_key {time_key!r} collides with a field of the document")
    id_key = norm(out.get("id_key", ""))
    m = re.fullmatch(r"\$(\w+)((?:\['\w+'\])*)", id_key)
    dotted = m and ".".join([m.group(1)] + re.findall(r"\['(\w+)'\]", m.group(2)))
    if dotted != "event.id" or not in_schema("event.id"):
        p.append("opensearch id_key must be $event['id'] (retries do not duplicate)")
    if norm(out.get("write_operation", "create")).lower() != "create":
        p.append("opensearch write_operation must be create (data streams)")
    if size(out.get("buffer_size", "512k")) < 10**8:
        p.append("opensearch buffer_size must be false (a cut response is retried forever)")
    return p


CHECKS = {"s3": s3_problems, "splunk": splunk_problems, "opensearch": opensearch_problems}


def unknown_keys(doc: dict) -> list[str]:
    bad = [f"top level: {k}" for k in doc
           if k not in {"service", "pipeline", "env", "parsers", "multiline_parsers", "includes"}]
    bad += [f"service: {k}" for k in (doc.get("service") or {}) if k.lower() not in KNOWN["service"]]
    for section, plugins_ in (doc.get("pipeline") or {}).items():
        if section not in KIND:
            bad.append(f"pipeline: {section}")
            continue
        for plugin in plugins_:
            name = norm(plugin.get("name", ""))
            known = KNOWN.get(name, set()) | COMMON[KIND[section]]
            bad += [f"{name}: {k}" for k in plugin if k.lower() not in known]
    return bad


def secret_problems(name: str) -> list[str]:
    """Secrets only as ${ENV}: no token, password or key written into the file."""
    p = []

    def walk(node, where):
        if isinstance(node, dict):
            for k, v in node.items():
                if SECRET_KEY.search(str(k)) and not isinstance(v, (dict, list)):
                    if not ENV_ONLY.fullmatch(norm(v)):
                        p.append(f"{where}{k} is not an ${{ENV}} reference")
                walk(v, f"{where}{k}.")
        elif isinstance(node, list):
            for v in node:
                walk(v, where)

    walk(load(name), "")
    text = (PIPELINES / name).read_text()
    for pattern, what in ((r"AKIA[0-9A-Z]{16}", "an AWS access key id"),
                          (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                           r"[0-9a-fA-F]{12}", "a HEC token"),
                          (r"-----BEGIN", "a PEM block")):
        if re.search(pattern, text):
            p.append(f"{name} holds what looks like {what}")
    return p


@pytest.mark.parametrize("name", sorted(FILES))
def test_pipeline_is_a_fluent_bit_yaml_configuration_with_documented_keys(name):
    text = (PIPELINES / name).read_text()
    assert text.startswith("# castgate"), "each file starts by saying what it is for"
    doc = load(name)
    assert set(doc["pipeline"]) == {"inputs", "filters", "outputs"}
    assert all("name" in p for s in doc["pipeline"].values() for p in s)
    assert unknown_keys(doc) == []


@pytest.mark.parametrize("name", sorted(FILES))
def test_pipeline_keeps_the_evidence(name):
    assert CHECKS[FILES[name]](load(name)) == []


@pytest.mark.parametrize("name", sorted(FILES))
def test_pipeline_writes_no_secret(name):
    assert secret_problems(name) == []
    env = set(re.findall(r"\$\{([A-Z0-9_]+)\}", (PIPELINES / name).read_text()))
    assert env, "what to fill in comes from the environment"


def test_the_shippers_keys_never_collide_with_castgates():
    """Merged at the top level, castgate's fields sit beside the shipper's own; none may share a
    name, or the record would hold a key twice."""
    assert not SHIPPER_KEYS & set(schema()["properties"])


# Each setting the evidence depends on, removed or loosened in turn, must be noticed.
MUTATIONS = [
    ("*", "service", None, "storage.path"),
    ("*", "service", None, "storage.sync"),
    ("*", "service", None, "storage.keep.rejected"),
    ("*", "inputs", "tail", "multiline.parser"),
    ("*", "inputs", "tail", "db"),
    ("*", "inputs", "tail", "read_from_head"),
    ("*", "inputs", "tail", "buffer_max_size"),
    ("*", "inputs", "tail", "skip_long_lines"),
    ("*", "inputs", "tail", "storage.type"),
    ("*", "filters", "grep", "regex"),
    ("*", "filters", "kubernetes", "kube_tag_prefix"),
    ("*", "filters", "kubernetes", "merge_log"),
    ("*", "filters", "kubernetes", "keep_log"),
    ("*", "filters", "kubernetes", "merge_log_trim"),
    ("*", "filters", "kubernetes", "k8s-logging.exclude"),
    ("s3", "outputs", "s3", "compression"),
    ("s3", "outputs", "s3", "send_content_md5"),
    ("s3", "outputs", "s3", "use_put_object"),
    ("s3", "outputs", "s3", "s3_key_format"),
    ("s3", "outputs", "s3", "store_dir"),
    ("s3", "outputs", "s3", "retry_limit"),
    ("s3", "outputs", "s3", "retry_exhausted_action"),
    ("splunk", "outputs", "splunk", "tls"),
    ("splunk", "outputs", "splunk", "tls.verify_hostname"),
    ("splunk", "outputs", "splunk", "splunk_token"),
    ("splunk", "outputs", "splunk", "event_key"),
    ("splunk", "outputs", "splunk", "splunk_send_raw"),
    ("splunk", "outputs", "splunk", "event_sourcetype"),
    ("splunk", "outputs", "splunk", "retry_limit"),
    ("splunk", "outputs", "splunk", "storage.total_limit_size"),
    ("opensearch", "outputs", "opensearch", "tls"),
    ("opensearch", "outputs", "opensearch", "http_passwd"),
    ("opensearch", "outputs", "opensearch", "suppress_type_name"),
    ("opensearch", "outputs", "opensearch", "logstash_format"),
    ("opensearch", "outputs", "opensearch", "time_key"),
    ("opensearch", "outputs", "opensearch", "id_key"),
    ("opensearch", "outputs", "opensearch", "buffer_size"),
    ("opensearch", "outputs", "opensearch", "retry_limit"),
]
LOOSENED = [
    ("s3", "outputs", "s3", "s3_key_format", "/castgate/%Y/%m/%d/%H%M%S.jsonl.gz"),
    ("s3", "outputs", "s3", "retry_limit", "no_limits"),
    ("s3", "outputs", "s3", "store_dir", "/tmp/fluent-bit/s3"),
    ("s3", "outputs", "s3", "storage.total_limit_size", "5G"),
    ("*", "inputs", "tail", "path", "/var/log/containers/*castgate*.log"),
    ("*", "inputs", "tail", "buffer_max_size", "64k"),
    ("*", "filters", "kubernetes", "k8s-logging.exclude", True),
    ("splunk", "outputs", "splunk", "tls.verify", False),
    ("splunk", "outputs", "splunk", "splunk_send_raw", True),
    ("opensearch", "outputs", "opensearch", "time_key", "@timestamp"),
    ("opensearch", "outputs", "opensearch", "logstash_prefix", "audit"),
    ("opensearch", "outputs", "opensearch", "id_key", "$event['action']"),
    ("opensearch", "outputs", "opensearch", "write_operation", "index"),
]


def mutated(doc, section, plugin, key, value=None, remove=True):
    doc = copy.deepcopy(doc)
    if section == "service":
        target = doc["service"]
    else:
        target = next(p for p in doc["pipeline"][section] if p["name"] == plugin)
    assert remove is False or key in target, f"{plugin or section} has no {key}"
    if remove:
        del target[key]
    else:
        target[key] = value
    return doc


def targets(which):
    return [n for n, kind in FILES.items() if which in ("*", kind)]


@pytest.mark.parametrize("which,section,plugin,key", MUTATIONS,
                         ids=[f"{m[0]}-{m[3]}" for m in MUTATIONS])
def test_removing_a_setting_is_noticed(which, section, plugin, key):
    for name in targets(which):
        doc = load(name)
        assert CHECKS[FILES[name]](mutated(doc, section, plugin, key)), f"{name} without {key}"


@pytest.mark.parametrize("which,section,plugin,key,value", LOOSENED,
                         ids=[f"{m[0]}-{m[3]}={m[4]}" for m in LOOSENED])
def test_loosening_a_setting_is_noticed(which, section, plugin, key, value):
    for name in targets(which):
        doc = mutated(load(name), section, plugin, key, value, remove=False)
        assert CHECKS[FILES[name]](doc), f"{name} with {key}: {value!r}"


def test_a_secret_or_an_unknown_key_written_into_a_file_is_noticed(tmp_path, monkeypatch):
    for name, kind in FILES.items():
        text = (PIPELINES / name).read_text()
        env = {"s3": None, "splunk": "${SPLUNK_HEC_TOKEN}", "opensearch": "${OPENSEARCH_PASSWORD}"}
        if env[kind]:
            leaked = text.replace(env[kind], "8f14e45f-ceea-467f-a0e6-2a5c1e7d9b3a")
        else:
            leaked = text.replace("      region:", "      role_arn: arn:aws:iam::1:role/x\n"
                                  "      aws_secret_access_key: wJalrXUtnFEMI\n      region:")
        (tmp_path / name).write_text(leaked)
    monkeypatch.setattr(sys.modules[__name__], "PIPELINES", tmp_path)
    for name in FILES:
        assert secret_problems(name), name
    (tmp_path / "unknown.yaml").write_text("pipeline:\n  outputs:\n    - name: s3\n      md5: on\n")
    assert unknown_keys(load("unknown.yaml")) == ["s3: md5"]
