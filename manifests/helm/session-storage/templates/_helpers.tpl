{{/* Labels every object carries: the kustomize base's two, plus Helm's. */}}
{{- define "session-storage.labels" -}}
app.kubernetes.io/name: session-storage-webhook
app.kubernetes.io/part-of: ambient-session-storage
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "session-storage.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/*
Where the objects go. With namespace.create the chart creates namespace.name (default
ambient-session-storage), which must not be the release's own namespace: Helm stores the
release there before it creates anything, so that namespace must exist already.
*/}}
{{- define "session-storage.namespace" -}}
{{- if .Values.namespace.create -}}
{{- $name := .Values.namespace.name | default "ambient-session-storage" -}}
{{- if eq $name .Release.Namespace -}}
{{- fail (printf "namespace.create=true creates namespace %q, which cannot also be the release's namespace (-n %s): Helm stores the release there first. Install with -n default (or any existing namespace), or drop namespace.create and use --create-namespace" $name .Release.Namespace) -}}
{{- end -}}
{{- $name -}}
{{- else -}}
{{- .Values.namespace.name | default .Release.Namespace -}}
{{- end -}}
{{- end -}}

{{/* cert-manager and an existing Secret both hand the webhook files; only self-managed issues its own. */}}
{{- define "session-storage.selfManaged" -}}
{{- if eq .Values.certificates.mode "self-managed" }}true{{ end -}}
{{- end -}}

{{- define "session-storage.tlsSecret" -}}
{{- if eq .Values.certificates.mode "secret" }}{{ required "certificates.secretName is required with certificates.mode=secret" .Values.certificates.secretName }}{{ else }}session-storage-webhook-tls{{ end -}}
{{- end -}}

{{/* One env entry the chart sets, replaced by .Values.env's value of the same name. */}}
{{- define "session-storage.env" -}}
- name: {{ .name }}
  value: {{ (hasKey .env .name | ternary (get .env .name) .value) | toString | quote }}
{{- end -}}
