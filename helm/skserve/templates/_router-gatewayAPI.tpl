{{/*
The `gatewayAPI` router (routers/gateway_api.py): one HTTPRoute. Header rules first (a
request whose x-model-version header names a serving slot's model goes to that slot), then
the weighted rule the controller rewrites (backendRefs weights, RequestMirror to a shadow
slot). Weights, mirror and header values come from the routing (templates/_live.tpl).
*/}}
{{- define "skserve.router.gatewayAPI.objects" -}}
{{- $r := .Values.rollout }}
{{- $routing := include "skserve.routing" . | fromYaml }}
{{- $slots := list (toString $routing.activeSlot) }}
{{- if $routing.previewSlot }}{{ $slots = append $slots (toString $routing.previewSlot) }}{{ end }}
# Gateway API router: header rules force a slot, the weighted rule splits the rest.
# The rollout controller rewrites backendRefs[*].weight of the last rule.
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: {{ include "skserve.fullname" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "skserve.labels" . | nindent 4 }}
    app.kubernetes.io/component: router
  annotations:
    skserve.io/strategy: {{ $r.strategy }}
    skserve.io/active-slot: {{ $routing.activeSlot }}
    {{- with $r.gatewayAPI.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  parentRefs:
    {{- range $r.gatewayAPI.parentRefs }}
    - group: gateway.networking.k8s.io
      kind: Gateway
      name: {{ .name }}
      {{- with .namespace }}
      namespace: {{ . }}
      {{- end }}
      {{- with .sectionName }}
      sectionName: {{ . }}
      {{- end }}
    {{- end }}
  {{- with $r.gatewayAPI.hostnames }}
  hostnames:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  rules:
    {{- if $r.headerMatch.enabled }}
    {{- range $slot := $slots }}
    {{- $cfg := include "skserve.slotConfig" (dict "root" $ "slot" $slot) | fromYaml }}
    - matches:
        - path:
            type: PathPrefix
            value: /
          headers:
            - type: Exact
              name: {{ $r.headerMatch.name }}
              value: {{ $cfg.model | quote }}
      backendRefs:
        - group: ""
          kind: Service
          name: {{ include "skserve.slotFullname" (dict "root" $ "slot" $slot) }}
          port: {{ $.Values.service.port }}
          weight: 1
    {{- end }}
    {{- end }}
    - matches:
        - path:
            type: PathPrefix
            value: /
      {{- with $routing.mirror }}
      filters:
        - type: RequestMirror
          requestMirror:
            backendRef:
              group: ""
              kind: Service
              name: {{ include "skserve.slotFullname" (dict "root" $ "slot" .slot) }}
              port: {{ $.Values.service.port }}
            {{- if lt (int .percent) 100 }}
            percent: {{ .percent }}
            {{- end }}
      {{- end }}
      backendRefs:
        {{- range $slot := $slots }}
        - group: ""
          kind: Service
          name: {{ include "skserve.slotFullname" (dict "root" $ "slot" $slot) }}
          port: {{ $.Values.service.port }}
          weight: {{ get $routing.weights $slot | default 0 | int }}
        {{- end }}
{{- end }}

{{- define "skserve.router.gatewayAPI.stableSelector" -}}
{{- include "skserve.selectorLabels" . }}
app.kubernetes.io/component: server
skserve.io/slot: {{ (include "skserve.routing" . | fromYaml).activeSlot }}
{{- end }}

{{- define "skserve.router.gatewayAPI.config" -}}
{{- toJson (dict "header" .Values.rollout.headerMatch.name "mirrorPercent" 0) }}
{{- end }}

{{- define "skserve.router.gatewayAPI.rules" -}}
# HTTPRoute weights, header rules and mirror: read, then replaced with its resourceVersion.
- apiGroups: ["gateway.networking.k8s.io"]
  resources: ["httproutes"]
  resourceNames: [{{ include "skserve.fullname" . | quote }}]
  verbs: ["get", "update"]
{{- end }}
