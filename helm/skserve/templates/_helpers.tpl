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
{{- /* Replicas the rollout implies: with the service router and the canary strategy the
       traffic split is the replica ratio, so the weights decide each slot's replicas. */}}
{{- $w := include "skserve.slotWeight" (dict "root" $root "slot" .slot) | int }}
{{- if and (eq $root.Values.rollout.router "service") (eq $root.Values.rollout.strategy "canary") }}
{{- $total := $root.Values.rollout.serviceRouter.totalReplicas | int }}
{{- $n := div (add (mul $w $total) 99) 100 }}
{{- $_ := set $cfg "replicas" $n }}
{{- if eq $n 0 }}{{ $_ := set $cfg.autoscaling "enabled" false }}{{ end }}
{{- if $cfg.autoscaling.enabled }}
{{- $_ := set $cfg.autoscaling "minReplicas" (max $n ($cfg.autoscaling.minReplicas | int)) }}
{{- $_ := set $cfg.autoscaling "maxReplicas" (max $n ($cfg.autoscaling.maxReplicas | int)) }}
{{- end }}
{{- end }}
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
Traffic weight (0-100) of one slot under the current strategy. blueGreen: 100 for the
active slot, 0 for the others. canary: rollout.weights.active for the active slot,
rollout.weights.preview for the preview slot, 0 for any other slot.
Call with (dict "root" $ "slot" $name).
*/}}
{{- define "skserve.slotWeight" -}}
{{- $r := .root.Values.rollout }}
{{- if eq .slot $r.activeSlot }}
{{- if eq $r.strategy "blueGreen" }}100{{ else }}{{ $r.weights.active | int }}{{ end }}
{{- else if and $r.previewSlot (eq .slot $r.previewSlot) (eq $r.strategy "canary") }}
{{- $r.weights.preview | int }}
{{- else }}0{{ end }}
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
