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
