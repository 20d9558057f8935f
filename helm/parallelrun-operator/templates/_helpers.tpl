{{/* Chart name, at most 63 characters (a label value). */}}
{{- define "parallelrun-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's resources, at most 63 characters (DNS label, Service name). */}}
{{- define "parallelrun-operator.fullname" -}}
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

{{/* Name of cluster-scoped resources: two releases in different namespaces must not clash. */}}
{{- define "parallelrun-operator.clusterName" -}}
{{- printf "%s-%s" (include "parallelrun-operator.fullname" .) .Release.Namespace }}
{{- end }}

{{- define "parallelrun-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "parallelrun-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "parallelrun-operator.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "parallelrun-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "parallelrun-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "parallelrun-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "parallelrun-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "parallelrun-operator.runnerImage" -}}
{{- printf "%s:%s" .Values.runnerImage.repository (default .Chart.AppVersion .Values.runnerImage.tag) }}
{{- end }}

{{- define "parallelrun-operator.progressKeySecret" -}}
{{- default (printf "%s-progress-key" (include "parallelrun-operator.fullname" .)) .Values.progressKey.existingSecret }}
{{- end }}

{{- define "parallelrun-operator.progressUrl" -}}
{{- printf "http://%s.%s.svc:%d/v1/progress" (include "parallelrun-operator.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}

{{/*
The operator's RBAC rules, from their single source files/operator-rules.yaml, as a YAML
list. The argument is a dict: "context" (the root context) and "scope":
  "all"        every rule (cluster-wide mode);
  "cluster"    the rules on cluster-scoped resources (namespaced mode's ClusterRole: kopf
               reads the CRD, and watches namespaces even when given a fixed list);
  "namespaced" the rules on namespaced resources (namespaced mode's Roles).
A rule mixing cluster-scoped and namespaced resources cannot be split: the render fails.
*/}}
{{- define "parallelrun-operator.rules" -}}
{{- $rules := .context.Files.Get "files/operator-rules.yaml" | fromYamlArray }}
{{- if and (eq (len $rules) 1) (kindIs "string" (index $rules 0)) }}
{{- fail (printf "files/operator-rules.yaml is not a YAML list: %s" (index $rules 0)) }}
{{- end }}
{{- $clusterScoped := list "customresourcedefinitions" "namespaces" }}
{{- $selected := list }}
{{- range $rules }}
{{- $cluster := 0 }}
{{- range .resources }}
{{- if has (first (splitList "/" .)) $clusterScoped }}{{ $cluster = add1 $cluster }}{{ end }}
{{- end }}
{{- if and (gt $cluster 0) (lt $cluster (len .resources)) }}
{{- fail (printf "files/operator-rules.yaml: a rule mixes cluster-scoped and namespaced resources: %v" .resources) }}
{{- end }}
{{- if eq $.scope "all" }}
{{- $selected = append $selected . }}
{{- else if and (eq $.scope "cluster") (gt $cluster 0) }}
{{- $selected = append $selected . }}
{{- else if and (eq $.scope "namespaced") (eq $cluster 0) }}
{{- $selected = append $selected . }}
{{- end }}
{{- end }}
{{- toYaml $selected }}
{{- end }}

{{/*
The namespace of `helm test`'s step: helmTest.namespace, else the first watched namespace,
else the release's (the operator watches every namespace then).
*/}}
{{- define "parallelrun-operator.testNamespace" -}}
{{- default (default .Release.Namespace (first .Values.watchNamespaces)) .Values.helmTest.namespace }}
{{- end }}
