{{/* Name of the chart. */}}
{{- define "elibadcode.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Full name: release-scoped, at most 63 characters. */}}
{{- define "elibadcode.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels shared by every object of the release (no component). */}}
{{- define "elibadcode.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "elibadcode.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: elibadcode
{{- end -}}

{{/* Labels of the operator's objects. */}}
{{- define "elibadcode.labels" -}}
{{ include "elibadcode.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "elibadcode.selectorLabels" -}}
app.kubernetes.io/name: {{ include "elibadcode.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "elibadcode.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "elibadcode.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository[:tag][@digest] */}}
{{- define "elibadcode.image" -}}
{{- $tag := default .root.Chart.AppVersion .image.tag -}}
{{- if .image.digest -}}
{{- printf "%s@%s" .image.repository .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The namespaces worker service accounts are created in: the release namespace plus worker.serviceAccount.namespaces. */}}
{{- define "elibadcode.workerNamespaces" -}}
{{- $nss := list .Release.Namespace -}}
{{- range .Values.worker.serviceAccount.namespaces }}{{ $nss = append $nss . }}{{ end -}}
{{- range .Values.watchNamespaces }}{{ $nss = append $nss . }}{{ end -}}
{{- $nss | uniq | join "," -}}
{{- end -}}

{{/* The URL worker pods POST live progress to: the progress Service in the release namespace. */}}
{{- define "elibadcode.progressUrl" -}}
{{- printf "http://%s-progress.%s.svc:%v/v1/progress" (include "elibadcode.fullname" .) .Release.Namespace .Values.progress.port -}}
{{- end -}}

{{/* RBAC rules of the operator (ClusterRole, or a Role per watched namespace); see rbac.yaml. */}}
{{- define "elibadcode.rules" -}}
- apiGroups: ["elibadcode.dev"]
  resources: ["backdoorscans"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["elibadcode.dev"]
  resources: ["backdoorscans/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["elibadcode.dev"]
  resources: ["backdoorscans/finalizers"]
  verbs: ["update"]
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end -}}
