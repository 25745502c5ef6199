{{/* Names, labels and the values derived from several keys, shared by the templates. */}}

{{- define "moecap.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* <release>-<name>, or the release name alone when it already contains the chart name. */}}
{{- define "moecap.fullname" -}}
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

{{- define "moecap.coordinatorName" -}}
{{- printf "%s-coordinator" (include "moecap.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "moecap.agentName" -}}
{{- printf "%s-agent" (include "moecap.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "moecap.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "moecap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: include with (dict "root" . "component" "agent"). */}}
{{- define "moecap.selectorLabels" -}}
app.kubernetes.io/name: {{ include "moecap.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* The coordinator's gRPC address as the agents dial it: the Service's cluster DNS name. */}}
{{- define "moecap.coordinatorAddress" -}}
{{- printf "%s.%s.svc.%s:%d" (include "moecap.coordinatorName" .) .Release.Namespace .Values.clusterDomain (int .Values.coordinator.grpcPort) -}}
{{- end -}}

{{/* image reference: include with (dict "root" . "image" .Values.agent.image). */}}
{{- define "moecap.image" -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}

{{/* True (non-empty) when the agents use GPUs. */}}
{{- define "moecap.agentUsesGpus" -}}
{{- if ne .Values.agent.backend "cpu" -}}true{{- end -}}
{{- end -}}

{{/* TLS flags, identical for both components; the Secret is mounted at /etc/moecap/tls. */}}
{{- define "moecap.tlsArgs" -}}
- --tls-cert=/etc/moecap/tls/tls.crt
- --tls-key=/etc/moecap/tls/tls.key
- --tls-ca=/etc/moecap/tls/ca.crt
{{- end -}}
