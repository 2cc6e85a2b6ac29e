{{/*
The `service` router (service/skserve/rollout/routers/service.py): traffic moves through the
stable Service alone, so it needs nothing but kube-proxy and renders no objects of its own.
All or nothing: the stable Service selects one slot. A split (canary): it selects every
slot's pods and the split is the ratio of their pods (slot replicas in _helpers.tpl).

Every router's file defines the same four templates:
  skserve.router.<name>.objects         its own objects ("" when it has none)
  skserve.router.<name>.stableSelector  the stable Service's selector
  skserve.router.<name>.config          its settings for the controller (JSON, annotation
                                        skserve.io/router-config on the stable Service)
  skserve.router.<name>.rules           the Role rules its calls need beyond the common ones
Adding a router = one file here and one module in service/skserve/rollout/routers/.
*/}}
{{- define "skserve.router.service.objects" -}}
{{- end }}

{{- define "skserve.router.service.stableSelector" -}}
{{- $routing := include "skserve.routing" . | fromYaml }}
{{- $split := false }}
{{- range $slot, $w := $routing.weights }}{{ if and (gt (int $w) 0) (lt (int $w) 100) }}{{ $split = true }}{{ end }}{{ end }}
{{- include "skserve.selectorLabels" . }}
app.kubernetes.io/component: server
{{- if not $split }}
skserve.io/slot: {{ $routing.activeSlot }}
{{- end }}
{{- end }}

{{- define "skserve.router.service.config" -}}
{{- toJson (dict "totalReplicas" (.Values.rollout.serviceRouter.totalReplicas | int)) }}
{{- end }}

{{- define "skserve.router.service.rules" -}}
{{- end }}
