{{/*
The `ingressNginx` router (routers/ingress_nginx.py): the main Ingress sends to the stable
Service (the active slot), the canary Ingress (same host and path) sends canary-weight
percent, and requests whose x-model-version header names its slot's model, to the slot under
test. With two or more enabled slots the canary Ingress always exists (weight 0 at rest), so
the controller only ever patches it.
*/}}
{{- define "skserve.router.ingressNginx.objects" -}}
{{- $r := .Values.rollout }}
{{- $n := $r.ingressNginx }}
{{- $routing := include "skserve.routing" . | fromYaml }}
{{- $enabled := include "skserve.enabledSlots" . | fromYamlArray }}
{{- $canary := toString $routing.previewSlot }}
{{- if not $canary }}{{ $canary = without $enabled (toString $routing.activeSlot) | first | default "" }}{{ end }}
# ingress-nginx router, primary Ingress: all traffic not taken by the canary Ingress goes to
# the stable Service (which selects the active slot).
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "skserve.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "skserve.labels" . | nindent 4 }}
    app.kubernetes.io/component: router
  {{- with $n.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  ingressClassName: {{ $n.className }}
  {{- include "skserve.router.ingressNginx.tls" . | nindent 2 }}
  rules:
    {{- include "skserve.router.ingressNginx.rule" (dict "root" . "service" (include "skserve.stableServiceName" .)) | nindent 4 }}
{{- if $canary }}
{{- $cfg := include "skserve.slotConfig" (dict "root" $ "slot" $canary) | fromYaml }}
---
# ingress-nginx router, canary Ingress: canary-weight percent of requests (0 in blueGreen
# until the switch), and every request whose x-model-version header names the slot's model
# tag (the server's own x-model-version value), go to the slot under test's Service.
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "skserve.canaryIngressName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "skserve.labels" . | nindent 4 }}
    app.kubernetes.io/component: router
    skserve.io/slot: {{ $canary }}
  annotations:
    nginx.ingress.kubernetes.io/canary: "true"
    nginx.ingress.kubernetes.io/canary-weight: {{ get $routing.weights $canary | default 0 | int | quote }}
    nginx.ingress.kubernetes.io/canary-weight-total: "100"
    {{- if $r.headerMatch.enabled }}
    nginx.ingress.kubernetes.io/canary-by-header: {{ $r.headerMatch.name }}
    nginx.ingress.kubernetes.io/canary-by-header-value: {{ $cfg.model | quote }}
    {{- end }}
spec:
  ingressClassName: {{ $n.className }}
  {{- include "skserve.router.ingressNginx.tls" . | nindent 2 }}
  rules:
    {{- include "skserve.router.ingressNginx.rule" (dict "root" . "service" (include "skserve.slotFullname" (dict "root" $ "slot" $canary))) | nindent 4 }}
{{- end }}
{{- end }}

{{- define "skserve.router.ingressNginx.tls" -}}
{{- $n := .Values.rollout.ingressNginx }}
{{- if $n.tlsSecretName }}
tls:
  - secretName: {{ $n.tlsSecretName }}
    {{- with $n.host }}
    hosts:
      - {{ . }}
    {{- end }}
{{- end }}
{{- end }}

{{/*
One rule of both Ingresses (same host and path, or ingress-nginx ignores the canary).
Call with (dict "root" $ "service" $name).
*/}}
{{- define "skserve.router.ingressNginx.rule" -}}
{{- $n := .root.Values.rollout.ingressNginx }}
- {{- with $n.host }}
  host: {{ . }}
  {{- end }}
  http:
    paths:
      - path: {{ $n.path }}
        pathType: Prefix
        backend:
          service:
            name: {{ .service }}
            port:
              name: http
{{- end }}

{{- define "skserve.router.ingressNginx.stableSelector" -}}
{{- include "skserve.router.gatewayAPI.stableSelector" . }}
{{- end }}

{{- define "skserve.router.ingressNginx.config" -}}
{{- toJson (dict "header" .Values.rollout.headerMatch.name) }}
{{- end }}

{{- define "skserve.router.ingressNginx.rules" -}}
# The canary Ingress: weight and header annotations, its backend.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  resourceNames: [{{ include "skserve.canaryIngressName" . | quote }}]
  verbs: ["get", "patch"]
{{- end }}
