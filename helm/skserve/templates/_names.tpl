{{/*
Object names. Kubernetes and its controllers append to some of the names the chart sets, and
every name, with what is appended, must stay a DNS label (at most 63 characters; Services also
start with a letter). So each kind of object has a budget: the longest name the chart gives it.

  kind                      what gets appended                                  budget
  Deployment                ReplicaSet "-<pod-template-hash, up to 10>",
                            then its pods "-<5 random>"                  63 - 11 - 6 = 46
  Job (not Indexed)         pods "-<5 random>"; the job-name label <= 63      63 - 6 = 57
  batch Job generateName    `skserve batch invoke` appends "<MMDDhhmmss>-<4>"
                            (15), the Indexed pods "-<index, up to 99999>"
                            (6: their hostname) and "-<5 random>"   63 - 15 - 6 - 6 = 36
  everything else           nothing (Services, the test Pod, whose name is its
                            hostname, HPAs, PDBs, ConfigMaps, RBAC, routes...)     63

The slot objects (Deployment, Service, HPA, PDB) share one name, so they all get the
Deployment's budget; the load test's master Job and Service share the Job's.

A name that does not fit keeps its suffix whole and the head of the release part, and gets
"-<5 hex>" of the sha256 of the whole name: `<head>-<hash>-<suffix>`. Two release names
that only differ past the cut still get different objects (the same rule as Bitnami's and
helm's trunc-and-hash names).
*/}}
{{- define "skserve.names.budgets" -}}
deployment: 46
job: 57
batchJobPrefix: 36
label: 63
{{- end }}

{{/*
<stem><suffix> if it fits in max characters, else <stem head>-<hash5><suffix>.
Call with (dict "stem" $s "suffix" "-blue" "max" 46).
*/}}
{{- define "skserve.names.fit" -}}
{{- $full := printf "%s%s" .stem .suffix }}
{{- if le (len $full) (int .max) }}
{{- $full }}
{{- else }}
{{- $head := trunc (int (sub (sub (int .max) (len .suffix)) 6)) .stem | trimSuffix "-" }}
{{- printf "%s-%s%s" $head (sha256sum $full | trunc 5) .suffix }}
{{- end }}
{{- end }}

{{/*
The full name every object name starts from, before any fitting: <release>-<chart name>, or
<release> when it already contains the chart name, or fullnameOverride.
*/}}
{{- define "skserve.names.stem" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The name of one of the release's objects: the stem plus a suffix, fitted to a budget.
Call with (dict "root" $ "suffix" "-batch" "budget" "label").
*/}}
{{- define "skserve.names.object" -}}
{{- $max := get (include "skserve.names.budgets" . | fromYaml) .budget }}
{{- include "skserve.names.fit" (dict "stem" (include "skserve.names.stem" .root) "suffix" .suffix "max" $max) }}
{{- end }}

{{/*
Fully qualified app name: the stable Service, ServiceAccount, NetworkPolicy, routes, monitors.
*/}}
{{- define "skserve.fullname" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "" "budget" "label") }}
{{- end }}

{{/*
Name of one slot's Deployment, Service, HPA and PDB. Call with (dict "root" $ "slot" $name).
*/}}
{{- define "skserve.slotFullname" -}}
{{- include "skserve.names.object" (dict "root" .root "suffix" (printf "-%s" .slot) "budget" "deployment") }}
{{- end }}

{{- define "skserve.stableServiceName" -}}
{{- include "skserve.fullname" . }}
{{- end }}

{{- define "skserve.previewServiceName" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "-preview" "budget" "label") }}
{{- end }}

{{- define "skserve.canaryIngressName" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "-canary" "budget" "label") }}
{{- end }}

{{/*
The rollout controller's RBAC objects, and its ConfigMap (state) and Lease: the controller
finds them by this rule (service/skserve/rollout/naming.py mirrors it).
*/}}
{{- define "skserve.rolloutName" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "-rollout" "budget" "label") }}
{{- end }}

{{- define "skserve.rolloutControllerName" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "-rollout" "budget" "deployment") }}
{{- end }}

{{/*
The in-cluster HAProxy (haproxy router): its Deployment and ConfigMap, and the headless
Service in front of its runtime API.
*/}}
{{- define "skserve.haproxyName" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "-haproxy" "budget" "deployment") }}
{{- end }}

{{- define "skserve.haproxyAdminName" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "-haproxy-admin" "budget" "label") }}
{{- end }}

{{- define "skserve.testPodName" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "-test-predict" "budget" "label") }}
{{- end }}

{{/*
The batch ConfigMap and ResourceQuota (`skserve batch` finds the ConfigMap by its "-batch"
suffix and the release's labels), and the generateName of the Jobs it creates.
*/}}
{{- define "skserve.batchName" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "-batch" "budget" "label") }}
{{- end }}

{{- define "skserve.batchJobPrefix" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "-batch-" "budget" "batchJobPrefix") }}
{{- end }}

{{- define "skserve.loadtestMasterName" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "-loadtest-master" "budget" "job") }}
{{- end }}

{{- define "skserve.loadtestWorkerName" -}}
{{- include "skserve.names.object" (dict "root" . "suffix" "-loadtest-worker" "budget" "deployment") }}
{{- end }}

{{- define "skserve.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "skserve.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "skserve.rolloutServiceAccountName" -}}
{{- default (include "skserve.rolloutName" .) .Values.rolloutController.serviceAccount.name }}
{{- end }}

{{- define "skserve.batchPvcName" -}}
{{- default (include "skserve.names.object" (dict "root" . "suffix" "-batch-data" "budget" "label")) .Values.batch.persistence.existingClaim }}
{{- end }}
