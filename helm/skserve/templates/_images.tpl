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
{{- $cfg := include "skserve.slotConfig" . | fromYaml }}
{{- include "skserve.imageRef" $cfg.image }}
{{- end }}

{{/*
The load test's image: loadtest.image when it names a repository, tag or digest (repository
defaulting to image.repository, tag to the active slot's), else the active slot's image,
digest included.
*/}}
{{- define "skserve.loadtestImage" -}}
{{- $lt := .Values.loadtest.image }}
{{- $active := include "skserve.slotConfig" (dict "root" . "slot" .Values.rollout.activeSlot) | fromYaml }}
{{- if or $lt.repository $lt.tag $lt.digest }}
{{- include "skserve.imageRef" (dict "repository" ($lt.repository | default .Values.image.repository) "tag" ($lt.tag | default $active.image.tag) "digest" $lt.digest) }}
{{- else }}
{{- include "skserve.imageRef" $active.image }}
{{- end }}
{{- end }}

{{/*
The `helm test` pod's image: tests.image, else the active slot's serving image (it has python3).
*/}}
{{- define "skserve.testImage" -}}
{{- .Values.tests.image | default (include "skserve.slotImage" (dict "root" . "slot" .Values.rollout.activeSlot)) }}
{{- end }}
