{{/* Chart name, overridable. */}}
{{- define "loopline.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every resource name: <release>-loopline, or the release name alone when it already says loopline. */}}
{{- define "loopline.fullname" -}}
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

{{- define "loopline.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "loopline.labels" -}}
helm.sh/chart: {{ include "loopline.chart" . }}
{{ include "loopline.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: loopline
{{- end -}}

{{- define "loopline.selectorLabels" -}}
app.kubernetes.io/name: {{ include "loopline.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "loopline.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "loopline.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create=false (name the existing ServiceAccount the operator should use)" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository@digest when a digest is given, else repository:tag (tag defaults to appVersion). Call with (dict "image" ... "root" $). */}}
{{- define "loopline.image" -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository (default .root.Chart.AppVersion .image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Name of the Lease the replicas elect a leader on: one per release, so two releases never share a leader. */}}
{{- define "loopline.leaseName" -}}
{{- include "loopline.fullname" . -}}
{{- end -}}

{{/* A rule across values that a JSON schema would only report as a bare number; failing here says why. */}}
{{- define "loopline.validate" -}}
{{- if and (gt (int .Values.operator.replicas) 1) (not .Values.operator.leaderElection.enabled) -}}
{{- fail (printf "operator.replicas=%d needs operator.leaderElection.enabled=true: without a Lease every replica would reconcile and they would fight over the same objects" (int .Values.operator.replicas)) -}}
{{- end -}}
{{- if and .Values.trainingProgress.enabled (eq (int .Values.trainingProgress.port) (int .Values.operator.port)) -}}
{{- fail (printf "trainingProgress.port=%d is operator.port too: the progress endpoint needs a port of its own (e.g. 8081)" (int .Values.trainingProgress.port)) -}}
{{- end -}}
{{- end -}}
