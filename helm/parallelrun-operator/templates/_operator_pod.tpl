{{/*
The checksum on the operator's pod template: the rendered RBAC (the rules, the watched
namespaces, the ServiceAccount they are granted to). kopf looks at what it may watch when it
starts, so a change there needs a new pod, which a changed annotation makes.
*/}}
{{- define "parallelrun-operator.configChecksum" -}}
{{- include (print .Template.BasePath "/rbac.yaml") . | sha256sum }}
{{- end }}

{{/* topologySpreadConstraints, each without a labelSelector given the operator pods' own. */}}
{{- define "parallelrun-operator.topologySpread" -}}
{{- $selector := include "parallelrun-operator.selectorLabels" . | fromYaml }}
{{- $constraints := list }}
{{- range .Values.topologySpreadConstraints }}
{{- $constraint := deepCopy . }}
{{- if not $constraint.labelSelector }}
{{- $_ := set $constraint "labelSelector" (dict "matchLabels" $selector) }}
{{- end }}
{{- $constraints = append $constraints $constraint }}
{{- end }}
{{- toYaml $constraints }}
{{- end }}
