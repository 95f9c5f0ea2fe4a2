{{/* The labels every object of the kustomize install carries (base/kustomization.yaml). */}}
{{- define "mcpguard.labels" -}}
app.kubernetes.io/part-of: mcpguard
{{- end }}

{{/* The image, tag defaulting to "v" + appVersion as in the repository's IMAGE file. */}}
{{- define "mcpguard.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default (printf "v%s" .Chart.AppVersion) }}
{{- end }}

{{/*
The checks every template relies on: the release namespace (the binary protects the name
mcpguard-system, and the webhook fence names it), the certificate mode, and at least one MCP
namespace (the fence refuses a webhook selector without one).
*/}}
{{- define "mcpguard.validate" -}}
{{- if ne .Release.Namespace "mcpguard-system" }}
{{- fail (printf "install mcpguard in the namespace mcpguard-system (helm install -n mcpguard-system), not %q: the binary and the webhook fence protect that name" .Release.Namespace) }}
{{- end }}
{{- if not (has .Values.certManagement (list "self" "cert-manager" "files")) }}
{{- fail (printf "certManagement must be self, cert-manager or files, not %q" .Values.certManagement) }}
{{- end }}
{{- if and (eq .Values.certManagement "files") (not .Values.caBundle) }}
{{- fail "certManagement=files needs caBundle: the base64 PEM CA that signed the Secret mcpguard-tls" }}
{{- end }}
{{- if and (ne .Values.certManagement "files") .Values.caBundle }}
{{- fail "caBundle is only for certManagement=files; self and cert-manager fill it in the cluster" }}
{{- end }}
{{- if not (has .Values.reportApi (list "policyreport" "openreports" "both")) }}
{{- fail (printf "reportApi must be policyreport, openreports or both, not %q" .Values.reportApi) }}
{{- end }}
{{- if not .Values.mcpNamespaces.names }}
{{- fail "mcpNamespaces.names needs at least one namespace: the webhooks select only those" }}
{{- end }}
{{- range .Values.mcpNamespaces.names }}
{{- if has . (list "kube-system" "kube-public" "kube-node-lease" "mcpguard-system") }}
{{- fail (printf "mcpNamespaces.names may not name %s: mcpguard never enforces its own or the system namespaces" .) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The MCPGUARD_CERT_MANAGEMENT value for the chart's certManagement. */}}
{{- define "mcpguard.certManagementFlag" -}}
{{- if eq .Values.certManagement "cert-manager" }}external{{ else }}{{ .Values.certManagement }}{{ end }}
{{- end }}

{{/* A webhook's clientConfig and namespaceSelector; $path is /mutate or /validate. */}}
{{- define "mcpguard.webhookClient" -}}
{{- $root := index . 0 }}
{{- $path := index . 1 -}}
clientConfig:
  service: {name: mcpguard, namespace: mcpguard-system, path: {{ $path }}, port: 443}
  {{- if eq $root.Values.certManagement "files" }}
  caBundle: {{ $root.Values.caBundle | quote }}
  {{- end }}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: In
      values:
        {{- toYaml $root.Values.mcpNamespaces.names | nindent 8 }}
    - {key: kubernetes.io/metadata.name, operator: NotIn, values: [kube-system, kube-public, kube-node-lease, mcpguard-system]}
{{- end }}

{{/* Annotations of both webhook configurations. */}}
{{- define "mcpguard.webhookAnnotations" -}}
{{- if eq .Values.certManagement "cert-manager" -}}
annotations:
  cert-manager.io/inject-ca-from: mcpguard-system/mcpguard-ca
{{- end }}
{{- end }}
