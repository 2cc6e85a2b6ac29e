{{/*
Who owns what: the values on install, the rollout controller after it has changed something,
and the values again for whatever you change in an upgrade.

The controller (`skserve rollout`, service/skserve/rollout/cluster.py) records what it sets:
- the routing, as JSON in the stable Service's `skserve.io/routing` annotation (active and
  preview slot, percent per slot, the gatewayAPI mirror);
- a slot's model, model-version label and image, as JSON in the slot Deployment's
  `skserve.io/deployed` annotation;
- while a rollout moves a slot's scale, `skserve.io/controlled-scale` on its Deployment (its
  replicas and HPA bounds are the controller's until it puts the rest bounds back).
Next to each, the chart writes a hash of the values it rendered from (`skserve.io/routing-values`,
`skserve.io/deployed-values`). On upgrade (`lookup` of the live objects; `helm template` and
client dry runs see none): when the hash still matches, those values were not changed, and
the chart renders what the controller recorded; when it differs, you changed them, and the
values win. rollout.followController=false makes the values always win.
*/}}

{{/*
The routing the values ask for: {activeSlot, previewSlot, weights (percent per enabled slot),
mirror}. Returns YAML.
*/}}
{{- define "skserve.valuesRouting" -}}
{{- $r := .Values.rollout }}
{{- $weights := dict }}
{{- range $slot := include "skserve.enabledSlots" . | fromYamlArray }}
{{- $w := 0 }}
{{- if eq $slot $r.activeSlot }}
{{- $w = ternary 100 ($r.weights.active | int) (eq $r.strategy "blueGreen") }}
{{- else if and $r.previewSlot (eq $slot $r.previewSlot) (eq $r.strategy "canary") }}
{{- $w = $r.weights.preview | int }}
{{- end }}
{{- $_ := set $weights $slot $w }}
{{- end }}
{{- $mirror := dict }}
{{- if $r.mirror.enabled }}{{ $mirror = dict "slot" $r.mirror.slot "percent" ($r.mirror.percent | int) }}{{ end }}
{{- toYaml (dict "activeSlot" $r.activeSlot "previewSlot" $r.previewSlot "weights" $weights "mirror" $mirror) }}
{{- end }}

{{/*
The routing to render: the controller's record when the routing values are the ones it was
recorded over, else the values. Adds `valuesHash` and `source` (values|controller).
*/}}
{{- define "skserve.routing" -}}
{{- $values := include "skserve.valuesRouting" . | fromYaml }}
{{- $hash := toJson $values | sha256sum | trunc 16 }}
{{- $out := $values }}
{{- $_ := set $out "source" "values" }}
{{- if .Values.rollout.followController }}
{{- $svc := lookup "v1" "Service" .Release.Namespace (include "skserve.stableServiceName" .) }}
{{- $ann := dig "metadata" "annotations" dict $svc }}
{{- $live := get $ann "skserve.io/routing" }}
{{- if and $live (eq (get $ann "skserve.io/routing-values") $hash) }}
{{- $l := fromJson $live }}
{{- $enabled := include "skserve.enabledSlots" . | fromYamlArray }}
{{- if has (toString (get $l "activeSlot")) $enabled }}
{{- $weights := dict }}
{{- range $slot := $enabled }}{{ $_ := set $weights $slot (dig "weights" $slot 0 $l | int) }}{{ end }}
{{- $preview := toString (get $l "previewSlot" | default "") }}
{{- if not (has $preview $enabled) }}{{ $preview = "" }}{{ end }}
{{- $mirror := get $l "mirror" | default dict }}
{{- $out = dict "activeSlot" (get $l "activeSlot") "previewSlot" $preview "weights" $weights "mirror" $mirror "source" "controller" }}
{{- end }}
{{- end }}
{{- end }}
{{- $_ := set $out "valuesHash" $hash }}
{{- toYaml $out }}
{{- end }}

{{/*
The routing as the annotation records it (JSON, what the controller reads and extends).
*/}}
{{- define "skserve.routingRecord" -}}
{{- $r := include "skserve.routing" . | fromYaml }}
{{- toJson (dict "activeSlot" $r.activeSlot "previewSlot" $r.previewSlot "weights" $r.weights "mirror" $r.mirror) }}
{{- end }}

{{/*
The model, model version and image a slot serves: the controller's record when the slot's
values are the ones it was recorded over, else the values. Returns YAML {model, modelVersion,
image (a reference), valuesHash, source}. Call with (dict "root" $ "slot" $name "cfg" $cfg)
where $cfg is the slot's values config.
*/}}
{{- define "skserve.slotDeployed" -}}
{{- $values := dict "model" (toString .cfg.model) "modelVersion" (toString .cfg.modelVersion) "image" (include "skserve.imageRef" .cfg.image) }}
{{- $hash := toJson $values | sha256sum | trunc 16 }}
{{- $out := $values }}
{{- $_ := set $out "source" "values" }}
{{- if .root.Values.rollout.followController }}
{{- $dep := lookup "apps/v1" "Deployment" .root.Release.Namespace (include "skserve.slotFullname" .) }}
{{- $ann := dig "metadata" "annotations" dict $dep }}
{{- if and (get $ann "skserve.io/deployed") (eq (get $ann "skserve.io/deployed-values") $hash) }}
{{- $l := fromJson (get $ann "skserve.io/deployed") }}
{{- $out = dict "model" (get $l "model") "modelVersion" (get $l "modelVersion") "image" (get $l "image") "source" "controller" }}
{{- end }}
{{- end }}
{{- $_ := set $out "valuesHash" $hash }}
{{- toYaml $out }}
{{- end }}

{{/*
A slot's live scale: {exists, replicas, controlled, min, max} from its Deployment and HPA
(exists false on install and in `helm template`). Call with (dict "root" $ "slot" $name).
*/}}
{{- define "skserve.slotLiveScale" -}}
{{- $name := include "skserve.slotFullname" . }}
{{- $dep := lookup "apps/v1" "Deployment" .root.Release.Namespace $name }}
{{- $hpa := lookup "autoscaling/v2" "HorizontalPodAutoscaler" .root.Release.Namespace $name }}
{{- $ann := dig "metadata" "annotations" dict $dep }}
{{- toYaml (dict "exists" (not (empty $dep)) "replicas" (dig "spec" "replicas" 0 $dep | int) "controlled" (hasKey $ann "skserve.io/controlled-scale") "hpa" (not (empty $hpa)) "min" (dig "spec" "minReplicas" 1 $hpa | int) "max" (dig "spec" "maxReplicas" 1 $hpa | int)) }}
{{- end }}

{{/*
The active slot to render (the controller's when it has switched it).
*/}}
{{- define "skserve.activeSlot" -}}
{{- (include "skserve.routing" . | fromYaml).activeSlot }}
{{- end }}
