{{/*
Chart name, truncated to 63 characters (the DNS label limit).
*/}}
{{- define "skserve.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Chart label value: name-version.
*/}}
{{- define "skserve.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels for every object of the release.
*/}}
{{- define "skserve.labels" -}}
helm.sh/chart: {{ include "skserve.chart" . }}
{{ include "skserve.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: skserve
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Selector labels shared by every pod of the release (never change after install).
*/}}
{{- define "skserve.selectorLabels" -}}
app.kubernetes.io/name: {{ include "skserve.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Selector labels of the serving pods of one slot. Deployment selectors are immutable, so the
model version is deliberately not part of them.
Call with (dict "root" $ "slot" $slotName).
*/}}
{{- define "skserve.slotSelectorLabels" -}}
{{ include "skserve.selectorLabels" .root }}
app.kubernetes.io/component: server
skserve.io/slot: {{ .slot }}
{{- end }}

{{/*
All labels of one slot's objects and pods. Call with (dict "root" $ "slot" $name "cfg" $cfg).
*/}}
{{- define "skserve.slotLabels" -}}
{{ include "skserve.labels" .root }}
app.kubernetes.io/component: server
skserve.io/slot: {{ .slot }}
skserve.io/model-version: {{ .cfg.modelVersion | quote }}
{{- end }}

{{/*
Effective configuration of one slot: .Values.slotDefaults overlaid with the slot's own keys.
Map-valued keys (autoscaling, podDisruptionBudget, image, ...) are merged one level deep,
key by key, so a slot can set `autoscaling.enabled: false` or `replicas: 0` (sprig's merge
functions skip false/0 values, hence this explicit loop). Returns YAML; use with fromYaml.
Call with (dict "root" $ "slot" $name).
*/}}
{{- define "skserve.slotConfig" -}}
{{- $root := .root }}
{{- $cfg := deepCopy $root.Values.slotDefaults }}
{{- $own := index $root.Values.slots .slot | default dict }}
{{- range $k, $v := $own }}
{{- if and (kindIs "map" $v) (kindIs "map" (index $cfg $k)) }}
{{- $merged := deepCopy (index $cfg $k) }}
{{- range $k2, $v2 := $v }}
{{- $_ := set $merged $k2 $v2 }}
{{- end }}
{{- $_ := set $cfg $k $merged }}
{{- else }}
{{- $_ := set $cfg $k $v }}
{{- end }}
{{- end }}
{{- if not $cfg.image.repository }}{{ $_ := set $cfg.image "repository" $root.Values.image.repository }}{{ end }}
{{- if not $cfg.image.tag }}{{ $_ := set $cfg.image "tag" (toString $cfg.modelVersion) }}{{ end }}
{{- if not $cfg.image.pullPolicy }}{{ $_ := set $cfg.image "pullPolicy" $root.Values.image.pullPolicy }}{{ end }}
{{- if not $cfg.image.digest }}{{ $_ := set $cfg.image "digest" ($root.Values.image.digest | default "") }}{{ end }}
{{- /* What the slot serves: its values, or what the rollout controller deployed there
       (templates/_live.tpl). imageRef is the reference to render. */}}
{{- $deployed := include "skserve.slotDeployed" (dict "root" $root "slot" .slot "cfg" $cfg) | fromYaml }}
{{- $_ := set $cfg "model" $deployed.model }}
{{- $_ := set $cfg "modelVersion" $deployed.modelVersion }}
{{- $_ := set $cfg "imageRef" $deployed.image }}
{{- $_ := set $cfg "deployed" $deployed }}
{{- /* Its part in the routing: active, preview (the slot under test, or the old slot kept
       for an undo) or idle (0 replicas, HPA inactive). */}}
{{- $routing := include "skserve.routing" $root | fromYaml }}
{{- $w := get $routing.weights .slot | default 0 | int }}
{{- $active := eq .slot (toString $routing.activeSlot) }}
{{- $preview := and (ne (toString $routing.previewSlot) "") (eq .slot (toString $routing.previewSlot)) }}
{{- $running := or $active (and $preview (or (gt $w 0) (eq $root.Values.rollout.strategy "blueGreen") (eq $routing.source "controller"))) }}
{{- $a := $cfg.autoscaling }}
{{- $rest := dict "min" ($cfg.replicas | int) "max" ($cfg.replicas | int) "hpa" $a.enabled }}
{{- if $a.enabled }}{{ $rest = dict "min" ($a.minReplicas | int) "max" ($a.maxReplicas | int) "hpa" true }}{{ end }}
{{- $n := $rest.min }}
{{- $low := $rest.min }}
{{- $high := $rest.max }}
{{- $previewWeight := 0 }}
{{- if $routing.previewSlot }}{{ $previewWeight = get $routing.weights (toString $routing.previewSlot) | default 0 | int }}{{ end }}
{{- $split := and (gt $previewWeight 0) (lt $previewWeight 100) }}
{{- if not $running }}
{{- $n = 0 }}
{{- else if and $split (eq $root.Values.rollout.router "service") }}
{{- /* Replica ratio (service/skserve/rollout/scaling.py): the canary gets max(1, floor(w x
       total / 100)) pods, pinned; the active slot the rest, at least. */}}
{{- $total := $root.Values.rollout.serviceRouter.totalReplicas | int }}
{{- $canary := min (max 1 (div (mul $previewWeight $total) 100)) (sub $total 1) }}
{{- if $preview }}
{{- $n = $canary }}{{ $low = $canary }}{{ $high = $canary }}
{{- else }}
{{- $n = sub $total $canary }}{{ $low = $n }}{{ $high = max $rest.max $n }}
{{- end }}
{{- else if and $split $preview }}
{{- /* A weighted router's canary: its minimum follows its weight (of the active slot's). */}}
{{- $activeCfg := index $root.Values.slots (toString $routing.activeSlot) | default dict }}
{{- $base := dig "autoscaling" "minReplicas" ($root.Values.slotDefaults.autoscaling.minReplicas) $activeCfg | int }}
{{- if not $a.enabled }}{{ $base = dig "replicas" ($root.Values.slotDefaults.replicas) $activeCfg | int }}{{ end }}
{{- $n = max 1 (ceil (divf (mul $base $w) 100) | int) }}{{ $low = $n }}{{ $high = max $rest.max $n }}
{{- end }}
{{- /* While the controller moves the slot's scale: what it set. */}}
{{- $live := include "skserve.slotLiveScale" (dict "root" $root "slot" .slot) | fromYaml }}
{{- $controlled := and $root.Values.rollout.followController $live.controlled }}
{{- if $controlled }}
{{- $n = $live.replicas }}
{{- if $live.hpa }}{{ $low = $live.min }}{{ $high = $live.max }}{{ end }}
{{- end }}
{{- $_ := set $cfg "replicas" $n }}
{{- $_ := set $cfg.autoscaling "minReplicas" (max 1 $low) }}
{{- $_ := set $cfg.autoscaling "maxReplicas" (max 1 $low $high) }}
{{- $_ := set $cfg "rest" $rest }}
{{- $_ := set $cfg "running" $running }}
{{- $_ := set $cfg "controlled" $controlled }}
{{- $_ := set $cfg "liveReplicas" (ternary $live.replicas 0 $live.exists) }}
{{- $_ := set $cfg "weight" $w }}
{{- toYaml $cfg }}
{{- end }}

{{/*
Enabled slot names, sorted, as a YAML list (use with fromYamlArray).
*/}}
{{- define "skserve.enabledSlots" -}}
{{- $out := list }}
{{- range $name := keys .Values.slots | sortAlpha }}
{{- $s := index $.Values.slots $name }}
{{- if ne (toString (dig "enabled" true $s)) "false" }}
{{- $out = append $out $name }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
Traffic weight (0-100) of one slot in the routing to render (templates/_live.tpl): blueGreen:
100 for the active slot; canary: rollout.weights.active / .preview; 0 for any other slot; or
what the rollout controller set. Call with (dict "root" $ "slot" $name).
*/}}
{{- define "skserve.slotWeight" -}}
{{- $routing := include "skserve.routing" .root | fromYaml }}
{{- get $routing.weights .slot | default 0 | int }}
{{- end }}

{{/*
Pod-level securityContext (hardened; uid/gid 10001 is the image's user).
*/}}
{{- define "skserve.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{/*
Container-level securityContext.
*/}}
{{- define "skserve.containerSecurityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/*
Environment the serving image needs. Call with (dict "root" $ "cfg" $cfg "model" $modelTag).
*/}}
{{- define "skserve.env" -}}
- name: SKSERVE_MODEL
  value: {{ .model | quote }}
- name: SKSERVE_WORKERS
  value: {{ .cfg.workers | quote }}
- name: SKSERVE_HOST
  value: "0.0.0.0"
- name: SKSERVE_PORT
  value: {{ .root.Values.service.targetPort | quote }}
- name: SKSERVE_MODEL_STORE
  value: /opt/skserve/models
- name: BENTOML_HOME
  value: /home/app/bentoml
- name: SKSERVE_DRAIN_FILE
  value: /tmp/skserve-draining
- name: BENTOML_DO_NOT_TRACK
  value: "true"
- name: OMP_NUM_THREADS
  value: "1"
- name: OPENBLAS_NUM_THREADS
  value: "1"
- name: MKL_NUM_THREADS
  value: "1"
{{- with .cfg.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
Writable scratch volumes for a read-only root filesystem: /tmp and BENTOML_HOME.
*/}}
{{- define "skserve.scratchVolumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratch.tmpSizeLimit }}
- name: bentoml-home
  emptyDir:
    sizeLimit: {{ .Values.scratch.bentomlHomeSizeLimit }}
{{- end }}
{{- define "skserve.scratchMounts" -}}
- name: tmp
  mountPath: /tmp
- name: bentoml-home
  mountPath: /home/app/bentoml
{{- end }}

{{/*
Relabelling of the serving pods' scrape targets, shared by the PodMonitor and the
ServiceMonitor and spelled the same way (snake_case) in k8s/monitoring/prometheus-scrape.yaml
for a Prometheus without the operator: `slot`, `release` and `model_version` (the model the
pod serves, from its skserve.io/model annotation) are what `skserve rollout` selects a slot by.
*/}}
{{- define "skserve.monitoringRelabelings" -}}
- sourceLabels: [__meta_kubernetes_pod_label_skserve_io_slot]
  targetLabel: slot
- sourceLabels: [__meta_kubernetes_pod_label_app_kubernetes_io_instance]
  targetLabel: release
- sourceLabels: [__meta_kubernetes_pod_annotation_skserve_io_model]
  targetLabel: model_version
- sourceLabels: [__meta_kubernetes_pod_label_skserve_io_model_version]
  targetLabel: pod_model_version
{{- end }}
