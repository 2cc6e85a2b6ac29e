{{/*
The batch/v1 Job manifest `skserve batch` creates Jobs from (key job.yaml of the
<fullname>-batch ConfigMap, see _names.tpl). The CLI replaces the container's args per invocation, sets
completions/parallelism from its options, and creates the Job suspended when
maxConcurrentJobs are already running.
*/}}
{{- define "skserve.batchJob" -}}
{{- $slot := .Values.batch.slot | default (include "skserve.activeSlot" .) }}
{{- $cfg := include "skserve.slotConfig" (dict "root" $ "slot" $slot) | fromYaml }}
{{- $b := .Values.batch }}
apiVersion: batch/v1
kind: Job
metadata:
  generateName: {{ include "skserve.batchJobPrefix" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "skserve.labels" . | nindent 4 }}
    app.kubernetes.io/component: batch
    skserve.io/batch: "true"
    skserve.io/slot: {{ $slot }}
    skserve.io/model-version: {{ $cfg.modelVersion | quote }}
spec:
  completionMode: Indexed
  completions: {{ $b.instanceCount }}
  parallelism: {{ $b.parallelism }}
  backoffLimitPerIndex: {{ $b.backoffLimitPerIndex }}
  maxFailedIndexes: {{ $b.maxFailedIndexes }}
  ttlSecondsAfterFinished: {{ $b.ttlSecondsAfterFinished }}
  activeDeadlineSeconds: {{ $b.activeDeadlineSeconds }}
  template:
    metadata:
      labels:
        {{- include "skserve.labels" . | nindent 8 }}
        app.kubernetes.io/component: batch
        skserve.io/batch: "true"
        skserve.io/slot: {{ $slot }}
        skserve.io/model-version: {{ $cfg.modelVersion | quote }}
    spec:
      restartPolicy: Never
      serviceAccountName: {{ include "skserve.serviceAccountName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "skserve.podSecurityContext" . | nindent 8 }}
      containers:
        - name: batch
          image: {{ $cfg.imageRef | quote }}
          imagePullPolicy: {{ $cfg.image.pullPolicy }}
          command: ["skserve"]
          args: ["batch", "run", "--input", "/data/input", "--output", "/data/output"]
          securityContext:
            {{- include "skserve.containerSecurityContext" . | nindent 12 }}
          env:
            - name: SKSERVE_MODEL
              value: {{ $cfg.model | quote }}
            - name: SKSERVE_MODEL_STORE
              value: /opt/skserve/models
            - name: BENTOML_HOME
              value: /home/app/bentoml
            - name: BENTOML_DO_NOT_TRACK
              value: "true"
            - name: OMP_NUM_THREADS
              value: "1"
            - name: OPENBLAS_NUM_THREADS
              value: "1"
            - name: MKL_NUM_THREADS
              value: "1"
          resources:
            {{- toYaml $b.resources | nindent 12 }}
          volumeMounts:
            {{- include "skserve.scratchMounts" . | nindent 12 }}
            - name: data
              mountPath: /data
      volumes:
        {{- include "skserve.scratchVolumes" . | nindent 8 }}
        - name: data
          persistentVolumeClaim:
            claimName: {{ include "skserve.batchPvcName" . }}
{{- end }}
