// Validates Kubernetes objects (a JSON array on stdin) against the Kubernetes API schemas of
// npm kubernetes-models (1.34) and, for the Prometheus Operator's ServiceMonitor, of
// @kubernetes-models/prometheus-operator, plus the name and label rules the API server enforces
// that the OpenAPI document does not express. Prints a JSON array of problems, one string each.
import { readFileSync } from "node:fs";

const dns1123Label = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dns1035Label = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const dns1123Subdomain = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const labelValue = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const labelKeyName = /^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$/;
const portName = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function qualifiedKey(key) {
  const parts = key.split("/");
  if (parts.length > 2) return false;
  const name = parts[parts.length - 1];
  if (name.length > 63 || !labelKeyName.test(name)) return false;
  return parts.length === 1 || (parts[0].length <= 253 && dns1123Subdomain.test(parts[0]));
}

function modelPath(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : [null, apiVersion];
  if (group === "monitoring.coreos.com")  // the Prometheus Operator's custom resources
    return `@kubernetes-models/prometheus-operator/${group}/${version}/${kind}`;
  return group ? `kubernetes-models/${group}/${version}/${kind}` : `kubernetes-models/${version}/${kind}`;
}

const objects = JSON.parse(readFileSync(0, "utf8"));
const problems = [];
const seen = new Set();
for (const o of objects) {
  const where = `${o.kind}/${o.metadata?.name}`;
  const key = `${o.apiVersion} ${o.kind} ${o.metadata?.name}`;
  if (seen.has(key)) problems.push(`${where}: rendered twice`);
  seen.add(key);
  let Model;
  try {
    Model = (await import(modelPath(o.apiVersion, o.kind)))[o.kind];
  } catch (e) {
    problems.push(`${where}: no schema for ${o.apiVersion} ${o.kind}`);
    continue;
  }
  try {
    new Model(o).validate();
  } catch (e) {
    problems.push(`${where}: ${e.message}`);
  }
  const name = o.metadata?.name ?? "";
  const nameOk = o.kind === "Service" ? name.length <= 63 && dns1035Label.test(name)
                                      : name.length <= 253 && dns1123Subdomain.test(name);
  if (!nameOk) problems.push(`${where}: invalid name`);
  const labelSets = [o.metadata?.labels, o.spec?.template?.metadata?.labels,
                     o.spec?.selector?.matchLabels, o.spec?.selector];
  if (o.kind !== "Service") labelSets.pop();
  for (const labels of labelSets) {
    for (const [k, v] of Object.entries(labels ?? {})) {
      if (!qualifiedKey(k)) problems.push(`${where}: invalid label key ${k}`);
      if (typeof v !== "string" || v.length > 63 || !labelValue.test(v))
        problems.push(`${where}: invalid label value ${k}=${JSON.stringify(v)}`);
    }
  }
  for (const annotations of [o.metadata?.annotations, o.spec?.template?.metadata?.annotations]) {
    for (const k of Object.keys(annotations ?? {}))
      if (!qualifiedKey(k)) problems.push(`${where}: invalid annotation key ${k}`);
  }
  for (const c of o.spec?.template?.spec?.containers ?? []) {
    for (const p of c.ports ?? [])
      if (p.name && (p.name.length > 15 || !portName.test(p.name) || !/[a-z]/.test(p.name)))
        problems.push(`${where}: invalid container port name ${p.name}`);
  }
  for (const p of (o.kind === "Service" ? o.spec?.ports : []) ?? [])
    if (p.name && !dns1123Label.test(p.name)) problems.push(`${where}: invalid port name ${p.name}`);
  if (o.kind === "Service" && o.spec?.loadBalancerSourceRanges && o.spec?.type !== "LoadBalancer")
    problems.push(`${where}: loadBalancerSourceRanges on a ${o.spec?.type} Service`);
  if (o.kind === "Service" && o.spec?.externalTrafficPolicy && !["LoadBalancer", "NodePort"].includes(o.spec?.type))
    problems.push(`${where}: externalTrafficPolicy on a ${o.spec?.type} Service`);
}
process.stdout.write(JSON.stringify(problems) + "\n");
