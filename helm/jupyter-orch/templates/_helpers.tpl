{{/* Names and labels. */}}
{{- define "jupyter-orch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "jupyter-orch.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "jupyter-orch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jupyter-orch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "jupyter-orch.labels" -}}
{{ include "jupyter-orch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "jupyter-orch.serviceAccountName" -}}
{{- default (include "jupyter-orch.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* Team mode: where the orchestrator answers, behind the hub's proxy. */}}
{{- define "jupyter-orch.prefix" -}}
{{- printf "%sservices/%s/" (.Values.hub.baseUrl | trimSuffix "/" | printf "%s/") .Values.hub.serviceName }}
{{- end }}

{{/* Team mode: the orchestrator's in-cluster URL (the users' servers, worker pods). */}}
{{- define "jupyter-orch.serviceURL" -}}
{{- printf "http://%s.%s.svc:%v%s" (include "jupyter-orch.fullname" .) .Release.Namespace .Values.service.port (include "jupyter-orch.prefix" .) }}
{{- end }}

{{- define "jupyter-orch.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret and key holding the hub API token. */}}
{{- define "jupyter-orch.hubTokenSecret" -}}
{{- if .Values.hub.apiTokenFromSecret.name }}
{{- .Values.hub.apiTokenFromSecret.name }}
{{- else }}
{{- include "jupyter-orch.fullname" . }}
{{- end }}
{{- end }}

{{- define "jupyter-orch.hubTokenKey" -}}
{{- if .Values.hub.apiTokenFromSecret.name }}
{{- required "hub.apiTokenFromSecret.key: the key of the hub API token in hub.apiTokenFromSecret.name" .Values.hub.apiTokenFromSecret.key }}
{{- else -}}
hub-api-token
{{- end }}
{{- end }}

{{/* The hub API token the chart keeps: the value given, else the one this release's Secret
already holds (kept across upgrades), else a new one. `lookup` answers nothing under
`helm template` and dry runs: there a new token is rendered each time. */}}
{{- define "jupyter-orch.hubToken" -}}
{{- if .Values.hub.apiToken }}
{{- .Values.hub.apiToken }}
{{- else }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "jupyter-orch.fullname" .) | default dict }}
{{- $data := get $existing "data" | default dict }}
{{- if hasKey $data "hub-api-token" }}
{{- index $data "hub-api-token" | b64dec }}
{{- else }}
{{- randAlphaNum 64 }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Secret and key holding the database URL (a hook Secret unless an existing one is
named, so that the migration hook can read it before anything else of the release exists). */}}
{{- define "jupyter-orch.dbSecret" -}}
{{- if .Values.db.existingSecret.name }}
{{- .Values.db.existingSecret.name }}
{{- else }}
{{- include "jupyter-orch.fullname" . }}-db
{{- end }}
{{- end }}

{{- define "jupyter-orch.dbKey" -}}
{{- if .Values.db.existingSecret.name }}
{{- required "db.existingSecret.key: the key of the database URL in db.existingSecret.name" .Values.db.existingSecret.key }}
{{- else -}}
db-url
{{- end }}
{{- end }}

{{- define "jupyter-orch.postgresqlName" -}}
{{- include "jupyter-orch.fullname" . }}-postgresql
{{- end }}

{{/* Team mode needs exactly one database. */}}
{{- define "jupyter-orch.checkDatabase" -}}
{{- $n := 0 }}
{{- if .Values.db.url }}{{ $n = add1 $n }}{{ end }}
{{- if .Values.db.existingSecret.name }}{{ $n = add1 $n }}{{ end }}
{{- if .Values.postgresql.enabled }}{{ $n = add1 $n }}{{ end }}
{{- if ne $n 1 }}
{{- fail "team mode needs exactly one database: db.url, db.existingSecret.name, or postgresql.enabled=true (a trial PostgreSQL)" }}
{{- end }}
{{- end }}

{{/* Labels of the pods of zero-to-jupyterhub's components, as a NetworkPolicy peer. */}}
{{- define "jupyter-orch.hubPeer" -}}
{{- $ := index . 0 -}}
podSelector:
  matchLabels:
    component: {{ index . 1 }}
{{- if $.Values.networkPolicy.hubNamespace }}
namespaceSelector:
  matchLabels:
    kubernetes.io/metadata.name: {{ $.Values.networkPolicy.hubNamespace }}
{{- end }}
{{- end }}

{{/* The traitlets configuration of the orchestrator (the ConfigMap's
jupyter_server_config.json); what must agree with other objects of the chart is given on
the command line instead (the Deployment's args), so that `config` cannot contradict it. */}}
{{- define "jupyter-orch.config" -}}
{{- $chart := dict
  "ServerApp" (dict "ip" "0.0.0.0" "allow_remote_access" true "trust_xheaders" true "open_browser" false)
  "OrchApp" (dict "provider" "kubernetes" "data_dir" "/srv/orch" "hub_groups_interval" .Values.hub.groupsInterval)
  "KubernetesProvider" (dict
    "namespace" .Release.Namespace
    "server_url" (include "jupyter-orch.serviceURL" .)
    "server_id" (include "jupyter-orch.fullname" .)
    "owner_pod" "")
}}
{{- mustMergeOverwrite $chart (deepCopy .Values.config) | toPrettyJson }}
{{- end }}

{{/* The value of the jupyter-orch/server label of the orchestrator's worker pods. */}}
{{- define "jupyter-orch.serverId" -}}
{{- (include "jupyter-orch.config" . | fromJson).KubernetesProvider.server_id }}
{{- end }}
