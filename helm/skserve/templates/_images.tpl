{{/*
Image references. A digest pins the image and wins over the tag, as in Bitnami's charts:
<repository>@<digest>, else <repository>:<tag>. Call with an image map
(repository, tag, digest).
*/}}
{{- define "skserve.imageRef" -}}
{{- if .digest }}
{{- printf "%s@%s" .repository .digest }}
{{- else }}
{{- printf "%s:%s" .repository (toString .tag) }}
{{- end }}
{{- end }}

{{/*
The serving image of one slot (also the batch Jobs' image when batch.slot names that slot).
Call with (dict "root" $ "slot" $name).
*/}}
{{- define "skserve.slotImage" -}}
{{- (include "skserve.slotConfig" . | fromYaml).imageRef }}
{{- end }}

{{/*
The load test's image, its own (the serving images carry no Locust): loadtest.image, the
repository defaulting to <image.repository>-loadtest and the tag to the chart's appVersion
(built by `hack/image/build.sh --loadtest`); a digest wins over the tag.
*/}}
{{- define "skserve.loadtestImage" -}}
{{- $lt := .Values.loadtest.image }}
{{- include "skserve.imageRef" (dict "repository" ($lt.repository | default (printf "%s-loadtest" .Values.image.repository)) "tag" ($lt.tag | default .Chart.AppVersion) "digest" $lt.digest) }}
{{- end }}

{{/*
The `helm test` pod's image: tests.image, else the active slot's serving image (it has python3).
*/}}
{{- define "skserve.testImage" -}}
{{- .Values.tests.image | default (include "skserve.slotImage" (dict "root" . "slot" (include "skserve.activeSlot" .))) }}
{{- end }}
