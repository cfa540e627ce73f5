{{- define "castgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "castgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A label value: at most 63 characters of [A-Za-z0-9._-], starting and ending with an
alphanumeric character ("+" in a SemVer build suffix is not allowed). */}}
{{- define "castgate.labelValue" -}}
{{- regexReplaceAll "[^A-Za-z0-9._-]" . "_" | trunc 63 | trimAll "._-" -}}
{{- end -}}

{{- define "castgate.labels" -}}
app.kubernetes.io/name: {{ include "castgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "castgate.labelValue" .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ include "castgate.labelValue" (printf "%s-%s" .Chart.Name .Chart.Version) | quote }}
{{- end -}}

{{- define "castgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "castgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "castgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "castgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* A whole number as digits. Helm reads every YAML number as a float, and prints 1048576 as
1.048576e+06, which castgate (and Kubernetes, for ports) refuse. */}}
{{- define "castgate.int" -}}
{{- if kindIs "float64" . -}}{{- int64 . -}}{{- else -}}{{- . -}}{{- end -}}
{{- end -}}

{{/* Seconds in a castgate duration ("90s", "5m", "1h", "2d", or a plain number of seconds). */}}
{{- define "castgate.seconds" -}}
{{- $text := include "castgate.int" . | trim -}}
{{- if not (regexMatch "^[0-9]{1,9}[smhd]?$" $text) -}}
{{- fail (printf "%q is not a duration (like 90s, 5m, 1h)" $text) -}}
{{- end -}}
{{- $n := regexFind "^[0-9]+" $text | int64 -}}
{{- $unit := trimPrefix (regexFind "^[0-9]+" $text) $text -}}
{{- if eq $unit "m" -}}{{- mul $n 60 -}}
{{- else if eq $unit "h" -}}{{- mul $n 3600 -}}
{{- else if eq $unit "d" -}}{{- mul $n 86400 -}}
{{- else -}}{{- $n -}}
{{- end -}}
{{- end -}}

{{/* The pod's termination grace: the preStop delay (load balancers stop sending new
connections), castgate's own shutdown grace (live sessions may finish), then time to write every
session's end and the signer's last line. */}}
{{- define "castgate.terminationGrace" -}}
{{- if .Values.terminationGracePeriodSeconds -}}
{{- include "castgate.int" .Values.terminationGracePeriodSeconds -}}
{{- else -}}
{{- add (include "castgate.seconds" .Values.lifecycle.preStopDelay) (include "castgate.seconds" .Values.gateway.shutdownGrace) 30 -}}
{{- end -}}
{{- end -}}

{{/* The Service of one entry of targetServices: "<fullname>-<target>", the target lowercased with
every character a Service name may not hold replaced by "-"; when that is over 63 characters, it is
cut and ends with a hash of the target so that two long names stay apart. */}}
{{- define "castgate.targetServiceName" -}}
{{- $root := index . 0 -}}
{{- $target := index . 1 -}}
{{- $base := include "castgate.fullname" $root -}}
{{- $suffix := regexReplaceAll "[^a-z0-9-]+" (lower $target) "-" | trimAll "-" -}}
{{- $name := printf "%s-%s" $base $suffix -}}
{{- if gt (len $name) 63 -}}
{{- $name = printf "%s-%s" ($name | trunc 54 | trimSuffix "-") (sha256sum $target | trunc 8) -}}
{{- end -}}
{{- $name -}}
{{- end -}}

{{/* Refuses values that would render objects the API rejects, or a gateway that cannot work,
with a message naming the value. */}}
{{- define "castgate.validate" -}}
{{- $_ := required "keys.existingSecret is required: the Secret with host_ed25519, user_ca and recording (see values.yaml)" .Values.keys.existingSecret -}}
{{- $_ := required "knownHosts is required: castgate never trusts a target's host key on first use" .Values.knownHosts -}}
{{- if not .Values.targets.targets -}}
{{- fail "targets.targets is required: list the servers users may reach (name, host, port)" -}}
{{- end -}}
{{- $names := dict -}}
{{- $ports := dict "2222" "the shared SSH port" "8080" "the health port" -}}
{{- range $i, $t := .Values.targetServices -}}
{{- $target := required (printf "targetServices[%d].target is required" $i) $t.target -}}
{{- $port := required (printf "targetServices[%d].containerPort is required" $i) $t.containerPort | include "castgate.int" -}}
{{- $name := include "castgate.targetServiceName" (list $ $target) -}}
{{- if hasKey $names $name -}}
{{- fail (printf "targetServices: %q and %q would both be Service %q; rename one target" (get $names $name) $target $name) -}}
{{- end -}}
{{- $_ := set $names $name $target -}}
{{- if hasKey $ports $port -}}
{{- fail (printf "targetServices[%d] (%s): containerPort %s is already %s" $i $target $port (get $ports $port)) -}}
{{- end -}}
{{- $_ := set $ports $port (printf "the port of target %s" $target) -}}
{{- end -}}
{{- if and .Values.networkPolicy.enabled (not .Values.networkPolicy.egress) -}}
{{- fail "networkPolicy.egress is empty: with the policy enabled castgate could reach neither its targets nor the identity provider (list them, see values.yaml)" -}}
{{- end -}}
{{- end -}}

{{/* Replicas the Deployment starts with (or the autoscaler's floor). */}}
{{- define "castgate.minReplicas" -}}
{{- if .Values.autoscaling.enabled -}}{{- include "castgate.int" .Values.autoscaling.minReplicas -}}
{{- else -}}{{- include "castgate.int" .Values.replicaCount -}}{{- end -}}
{{- end -}}
