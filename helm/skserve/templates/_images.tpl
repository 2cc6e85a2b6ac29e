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
A job's own image (the serving images carry neither Locust nor the Kubernetes client): the
given image map, the repository defaulting to <image.repository>-<job> and the tag to the
chart's appVersion (built by `hack/image/build.sh --<job>`); a digest wins over the tag.
Call with (dict "root" $ "job" "loadtest" "image" .Values.loadtest.image).
*/}}
{{- define "skserve.jobImage" -}}
{{- $i := .image }}
{{- include "skserve.imageRef" (dict "repository" ($i.repository | default (printf "%s-%s" .root.Values.image.repository .job)) "tag" ($i.tag | default .root.Chart.AppVersion) "digest" $i.digest) }}
{{- end }}

{{/*
The `helm test` pod's image: tests.image, else the active slot's serving image (it has python3).
*/}}
{{- define "skserve.testImage" -}}
{{- .Values.tests.image | default (include "skserve.slotImage" (dict "root" . "slot" (include "skserve.activeSlot" .))) }}
{{- end }}
