{{/*
The `haproxy` router (routers/haproxy.py): HAProxy (Debian's package, image built by
hack/image/build-haproxy.sh) as a Deployment behind the stable Service. Its configuration is
the layout routers/haproxy.py's render_config writes for `skserve up` (tests/chart check
they agree): a weighted backend with one server per slot (its Service), one backend per slot
for requests whose x-model-version header names that slot's model (a map file), retries of a
failed prediction on the other slot. The controller sets weights, addresses and the map at
run time through the runtime API, on every HAProxy pod (the admin Service is headless);
only the controller's pods may reach it (NetworkPolicy).
*/}}
{{- define "skserve.router.haproxy.objects" -}}
{{- $h := .Values.rollout.haproxy }}
{{- $name := include "skserve.haproxyName" . }}
{{- $config := include "skserve.haproxy.config" . }}
{{- $map := include "skserve.haproxy.map" . | trim }}
# The in-cluster HAProxy's configuration; weights and header routes change at run time
# through the runtime API (skserve rollout). A restarted pod starts from these.
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "skserve.labels" . | nindent 4 }}
    app.kubernetes.io/component: haproxy
data:
  haproxy.cfg: |
    {{- $config | nindent 4 }}
  versions.map: |
    {{- $map | nindent 4 }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "skserve.labels" . | nindent 4 }}
    app.kubernetes.io/component: haproxy
spec:
  replicas: {{ $h.replicas }}
  revisionHistoryLimit: {{ .Values.revisionHistoryLimit }}
  selector:
    matchLabels:
      {{- include "skserve.selectorLabels" . | nindent 6 }}
      app.kubernetes.io/component: haproxy
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  template:
    metadata:
      labels:
        {{- include "skserve.labels" . | nindent 8 }}
        app.kubernetes.io/component: haproxy
      annotations:
        # restart on a new configuration, not on new runtime state: the weights, slot
        # addresses and header map the controller sets through the runtime API (a helm
        # upgrade during or after a rollout renders them as the controller left them; a
        # restart would cut every keep-alive client's connection)
        checksum/config: {{ printf "%s%d" (regexReplaceAll "(?m)^    server .*$" $config "") ($h.checkIntervalMs | int) | sha256sum }}
    spec:
      serviceAccountName: {{ include "skserve.serviceAccountName" . }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
      {{- with .Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- include "skserve.podSecurityContext" . | nindent 8 }}
      containers:
        - name: haproxy
          image: {{ include "skserve.imageRef" $h.image | quote }}
          imagePullPolicy: {{ $h.image.pullPolicy }}
          args: ["-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
          securityContext:
            {{- include "skserve.containerSecurityContext" . | nindent 12 }}
          ports:
            - name: http
              containerPort: {{ $h.port }}
              protocol: TCP
            - name: admin
              containerPort: {{ $h.adminPort }}
              protocol: TCP
          # ready once a slot passes its health checks (HAProxy's monitor-uri)
          readinessProbe:
            httpGet:
              path: /healthz
              port: http
            periodSeconds: 2
            timeoutSeconds: 2
            failureThreshold: 2
          livenessProbe:
            tcpSocket:
              port: http
            periodSeconds: 10
            timeoutSeconds: 3
            failureThreshold: 3
          lifecycle:
            preStop:
              exec:
                # Out of the Service's endpoints first, then a soft stop (SIGUSR1): HAProxy
                # stops listening and finishes the requests it has.
                command: ["/bin/sh", "-c", "sleep {{ .Values.preStopSleepSeconds }}; kill -USR1 1"]
          resources:
            {{- toYaml $h.resources | nindent 12 }}
          volumeMounts:
            - name: config
              mountPath: /usr/local/etc/haproxy
              readOnly: true
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: config
          configMap:
            name: {{ $name }}
        - name: tmp
          emptyDir:
            sizeLimit: 16Mi
---
# The runtime API of every HAProxy pod (headless: the controller resolves one address per pod).
apiVersion: v1
kind: Service
metadata:
  name: {{ include "skserve.haproxyAdminName" . }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "skserve.labels" . | nindent 4 }}
    app.kubernetes.io/component: haproxy
spec:
  clusterIP: None
  selector:
    {{- include "skserve.selectorLabels" . | nindent 4 }}
    app.kubernetes.io/component: haproxy
  ports:
    - name: admin
      port: {{ $h.adminPort }}
      targetPort: admin
      protocol: TCP
{{- if .Values.networkPolicy.enabled }}
---
# HAProxy: HTTP from the same sources as the servers; the runtime API only from the rollout
# controller's pods; out only to DNS and the servers.
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ $name }}
  namespace: {{ .Release.Namespace }}
  labels:
    {{- include "skserve.labels" . | nindent 4 }}
    app.kubernetes.io/component: haproxy
spec:
  podSelector:
    matchLabels:
      {{- include "skserve.selectorLabels" . | nindent 6 }}
      app.kubernetes.io/component: haproxy
  policyTypes:
    - Ingress
    - Egress
  ingress:
    - ports:
        - port: http
          protocol: TCP
      {{- with .Values.networkPolicy.ingressFrom }}
      from:
        {{- toYaml . | nindent 8 }}
      {{- end }}
    - ports:
        - port: admin
          protocol: TCP
      from:
        - podSelector:
            matchLabels:
              {{- include "skserve.selectorLabels" . | nindent 14 }}
              app.kubernetes.io/component: rollout-controller
  egress:
    {{- if .Values.networkPolicy.allowDNS }}
    - to:
        - namespaceSelector: {}
      ports:
        - port: 53
          protocol: UDP
        - port: 53
          protocol: TCP
    {{- end }}
    - to:
        - podSelector:
            matchLabels:
              {{- include "skserve.selectorLabels" . | nindent 14 }}
              app.kubernetes.io/component: server
      ports:
        - port: {{ .Values.service.targetPort }}
          protocol: TCP
{{- end }}
{{- end }}

{{/*
haproxy.cfg: the layout of routers/haproxy.py render_config, for the cluster: every enabled
slot's Service as its server (a slot that does not run is parked and disabled until the
controller points it somewhere), weights from the routing (templates/_live.tpl).
*/}}
{{- define "skserve.haproxy.config" -}}
{{- $h := .Values.rollout.haproxy }}
{{- $routing := include "skserve.routing" . | fromYaml }}
{{- $slots := include "skserve.enabledSlots" . | fromYamlArray }}
{{- $check := printf "check inter %d fall 2 rise 1" ($h.checkIntervalMs | int) -}}
global
    stats socket ipv4@0.0.0.0:{{ $h.adminPort }} level admin
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 2s
    timeout check 2s
    option http-buffer-request
    retries 2
    option redispatch 1
    retry-on conn-failure empty-response response-timeout 500 502 503 504
    default-server init-addr last,libc

frontend fe_skserve
    bind :{{ $h.port }}
    monitor-uri /healthz
    monitor fail if { nbsrv(be_slots) lt 1 }
    http-request set-var(txn.slot) req.hdr({{ .Values.rollout.headerMatch.name }}),map(/usr/local/etc/haproxy/versions.map)
    use_backend %[var(txn.slot)] if { var(txn.slot) -m found }
    default_backend be_slots
{{- range $backend := prepend $slots "" }}

backend {{ if $backend }}be_{{ $backend }}{{ else }}be_slots{{ end }}
    balance roundrobin
    option httpchk GET /readyz
{{- range $slot := ternary (list $backend) $slots (ne $backend "") }}
{{- $cfg := include "skserve.slotConfig" (dict "root" $ "slot" $slot) | fromYaml }}
{{- $address := ternary (printf "%s.%s.svc:%d" (include "skserve.slotFullname" (dict "root" $ "slot" $slot)) $.Release.Namespace ($.Values.service.port | int)) "127.0.0.1:1" $cfg.running }}
{{- $weight := ternary (get $routing.weights $slot | default 0 | int) 1 (eq $backend "") }}
    server {{ $slot }} {{ $address }} weight {{ $weight }} {{ $check }}{{ if not $cfg.running }} disabled{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{/*
versions.map: `<model> be_<slot>` for every slot that runs (header routing from the start).
*/}}
{{- define "skserve.haproxy.map" -}}
{{- range $slot := include "skserve.enabledSlots" . | fromYamlArray }}
{{- $cfg := include "skserve.slotConfig" (dict "root" $ "slot" $slot) | fromYaml }}
{{- if $cfg.running }}
{{ $cfg.model }} be_{{ $slot }}
{{- end }}
{{- end }}
{{- end }}

{{- define "skserve.router.haproxy.stableSelector" -}}
{{- include "skserve.selectorLabels" . }}
app.kubernetes.io/component: haproxy
{{- end }}

{{- define "skserve.router.haproxy.config" -}}
{{- toJson (dict "adminPort" (.Values.rollout.haproxy.adminPort | int) "versionMap" "/usr/local/etc/haproxy/versions.map") }}
{{- end }}

{{- define "skserve.router.haproxy.rules" -}}
{{- end }}
