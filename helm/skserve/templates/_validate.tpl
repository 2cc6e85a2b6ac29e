{{/*
Cross-field checks the JSON schema cannot express. Included by every template that depends
on them, so `helm lint` and `helm template` fail with a message naming the field.
*/}}
{{- define "skserve.validate" -}}
{{- $r := .Values.rollout }}
{{- $enabled := include "skserve.enabledSlots" . | fromYamlArray }}
{{- if not (has $r.activeSlot $enabled) }}
{{- fail (printf "rollout.activeSlot: %q is not an enabled slot (enabled slots: %s)" $r.activeSlot (join ", " $enabled)) }}
{{- end }}
{{- if $r.previewSlot }}
{{- if not (has $r.previewSlot $enabled) }}
{{- fail (printf "rollout.previewSlot: %q is not an enabled slot (enabled slots: %s)" $r.previewSlot (join ", " $enabled)) }}
{{- end }}
{{- if eq $r.previewSlot $r.activeSlot }}
{{- fail (printf "rollout.previewSlot: must differ from rollout.activeSlot (both %q)" $r.activeSlot) }}
{{- end }}
{{- end }}
{{- if eq $r.strategy "canary" }}
{{- $sum := add ($r.weights.active | int) ($r.weights.preview | int) }}
{{- if ne (int $sum) 100 }}
{{- fail (printf "rollout.weights: active + preview must add up to 100, got %d + %d" ($r.weights.active | int) ($r.weights.preview | int)) }}
{{- end }}
{{- if and (not $r.previewSlot) (gt ($r.weights.preview | int) 0) }}
{{- fail "rollout.weights.preview: set rollout.previewSlot to the canary slot, or give the preview weight 0" }}
{{- end }}
{{- end }}
{{- if and $r.mirror.enabled (not (has $r.mirror.slot $enabled)) }}
{{- fail (printf "rollout.mirror.slot: %q is not an enabled slot" $r.mirror.slot) }}
{{- end }}
{{- $d := .Values.rolloutController.deployment }}
{{- if and .Values.rolloutController.enabled $d.enabled (not $d.prometheusUrl) }}
{{- fail "rolloutController.deployment.prometheusUrl: the in-cluster controller needs the URL of a Prometheus that scrapes the slots' pods (see k8s/README.md)" }}
{{- end }}
{{- if and $d.enabled (not .Values.rolloutController.enabled) }}
{{- fail "rolloutController.deployment.enabled needs rolloutController.enabled (its ServiceAccount, Role, ConfigMap and Lease)" }}
{{- end }}
{{- if and $r.mirror.enabled (ne $r.router "gatewayAPI") }}
{{- fail "rollout.mirror.enabled: request mirroring needs rollout.router=gatewayAPI" }}
{{- end }}
{{- $full := include "skserve.fullname" . }}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $full) }}
{{- fail (printf "release name %q: the chart names its Services %q, and a Service name is a DNS-1035 label (a letter first, then lowercase letters, digits and '-', no '.'); use another release name or set fullnameOverride" .Release.Name $full) }}
{{- end }}
{{- if and .Values.batch.enabled .Values.batch.slot (not (hasKey .Values.slots .Values.batch.slot)) }}
{{- fail (printf "batch.slot: %q is not a slot (slots: %s)" .Values.batch.slot (join ", " (keys .Values.slots | sortAlpha))) }}
{{- end }}
{{- if le (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds (%d), or SIGKILL cuts requests off mid-drain" (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds)) }}
{{- end }}
{{- range $slot := $enabled }}
{{- $cfg := include "skserve.slotConfig" (dict "root" $ "slot" $slot) | fromYaml }}
{{- $where := printf "slots.%s (over slotDefaults)" $slot }}
{{- include "skserve.validateResources" (dict "where" $where "resources" $cfg.resources) }}
{{- $a := $cfg.autoscaling }}
{{- if $a.enabled }}
{{- if gt (int $cfg.rest.min) (int $cfg.rest.max) }}
{{- fail (printf "%s: autoscaling.minReplicas (%d) is above autoscaling.maxReplicas (%d)" $where (int $cfg.rest.min) (int $cfg.rest.max)) }}
{{- end }}
{{- if not (dig "requests" "cpu" "" $cfg.resources) }}
{{- fail (printf "%s: the HPA's CPU target is a percent of resources.requests.cpu; set one" $where) }}
{{- end }}
{{- if and $a.targetMemoryUtilizationPercentage (not (dig "requests" "memory" "" $cfg.resources)) }}
{{- fail (printf "%s: the HPA's memory target is a percent of resources.requests.memory; set one or set targetMemoryUtilizationPercentage: null" $where) }}
{{- end }}
{{- end }}
{{- end }}
{{- include "skserve.validateResources" (dict "where" "batch" "resources" .Values.batch.resources) }}
{{- include "skserve.validateResources" (dict "where" "loadtest.master" "resources" .Values.loadtest.master.resources) }}
{{- include "skserve.validateResources" (dict "where" "loadtest.worker" "resources" .Values.loadtest.worker.resources) }}
{{- end }}

{{/*
Every request at most its limit, whatever the spelling (1 = "1" = "1000m", 1Gi = 1024Mi):
the API server refuses a pod whose request exceeds its limit, after helm has started the
install. Call with (dict "where" "batch" "resources" $resources).
*/}}
{{- define "skserve.validateResources" -}}
{{- $limits := .resources.limits | default dict }}
{{- range $name, $request := .resources.requests | default dict }}
{{- $limit := index $limits $name }}
{{- if and $limit (gt (include "skserve.quantity" $request | float64) (include "skserve.quantity" $limit | float64)) }}
{{- fail (printf "%s: resources.requests.%s (%v) is above resources.limits.%s (%v)" $.where $name $request $name $limit) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
A Kubernetes quantity as a plain number (500m -> 0.5, 1Gi -> 1073741824), for comparisons.
The schema allows only these spellings: a decimal number with an optional suffix.
*/}}
{{- define "skserve.quantity" -}}
{{- if kindIs "string" . }}
{{- $num := regexFind "^[+]?([0-9]+([.][0-9]*)?|[.][0-9]+)" . }}
{{- $unit := trimPrefix $num . }}
{{- $scale := dict "" 1.0 "m" 0.001 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 }}
{{- mulf (float64 $num) (get $scale $unit) }}
{{- else }}
{{- float64 . }}
{{- end }}
{{- end }}
