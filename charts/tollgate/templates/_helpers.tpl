{{- define "tollgate.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "tollgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tollgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tollgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "tollgate.labels" -}}
{{ include "tollgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "tollgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "tollgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Lease that elects the one replica writing resource status. */}}
{{- define "tollgate.leaseName" -}}
{{- printf "%s-status-writer" (include "tollgate.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Envoy's preStop hook: POST /drain on Tollgate's admin port over the pod's loopback, with the pod
token, using only bash (no curl in the Envoy image). Blocks until Tollgate answers, which it does once
drained. Tollgate already gone (connection refused): nothing left to drain.
*/}}
{{- define "tollgate.preStopDrain" -}}
token=$(cat /run/tollgate/pod-token) || exit 1
exec 3<>/dev/tcp/127.0.0.1/{{ .Values.tollgate.adminPort }} || exit 0
printf 'POST /drain HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n' "$token" >&3
response=$(cat <&3)
case "$response" in "HTTP/1.1 200 "*) exit 0 ;; esac
echo "POST /drain failed: ${response%%$'\r'*}" >&2
exit 1
{{- end -}}

{{- define "tollgate.servicePort" -}}
{{- if .Values.service.port -}}{{ .Values.service.port }}{{- else if .Values.tls.enabled -}}443{{- else -}}80{{- end -}}
{{- end -}}

{{/*
Envoy bootstrap: envoy/envoy.yaml (copied verbatim into files/envoy.yaml, a unit test keeps them
identical) with its placeholders filled, plus what only the pod needs: the /ready listener for the
kubelet and, when enabled, TLS on the gateway listener.
*/}}
{{- define "tollgate.envoyConfig" -}}
{{- $v := .Values.envoy -}}
{{- $raw := .Files.Get "files/envoy.yaml" -}}
{{- $raw = $raw | replace "{{LISTEN_ADDRESS}}" "0.0.0.0" -}}
{{- $raw = $raw | replace "{{LISTEN_PORT}}" (toString $v.port) -}}
{{- $raw = $raw | replace "{{ENVOY_ADMIN_PORT}}" "9901" -}}
{{- $raw = $raw | replace "{{EXTPROC_SOCKET}}" "/run/tollgate/extproc.sock" -}}
{{- $raw = $raw | replace "{{MCP_SOCKET}}" "/run/tollgate/mcp.sock" -}}
{{- $raw = $raw | replace "{{MAX_BODY_BYTES}}" (toString (int64 $v.maxBodyBytes)) -}}
{{- $raw = $raw | replace "{{MESSAGE_TIMEOUT}}" $v.messageTimeout -}}
{{- $raw = $raw | replace "{{UPSTREAM_CA_FILE}}" $v.upstreamCaFile -}}
{{- $raw = $raw | replace "{{CONNECT_TIMEOUT}}" $v.timeouts.connect -}}
{{- $raw = $raw | replace "{{FIRST_BYTE_TIMEOUT}}" $v.timeouts.firstByte -}}
{{- $raw = $raw | replace "{{STREAM_IDLE_TIMEOUT}}" $v.timeouts.streamIdle -}}
{{- $raw = $raw | replace "{{REQUEST_TIMEOUT}}" $v.timeouts.request -}}
{{- $raw = $raw | replace "{{RETRY_BASE_INTERVAL}}" $v.retry.baseInterval -}}
{{- $raw = $raw | replace "{{RETRY_MAX_INTERVAL}}" $v.retry.maxInterval -}}
{{- $raw = $raw | replace "{{RETRY_BUDGET_PERCENT}}" (toString $v.retry.budgetPercent) -}}
{{- $raw = $raw | replace "{{RETRY_MIN_CONCURRENCY}}" (toString $v.retry.minRetryConcurrency) -}}
{{- $raw = $raw | replace "{{XFF_NUM_TRUSTED_HOPS}}" (toString (int $v.xffNumTrustedHops)) -}}
{{- if regexMatch "[{][{][A-Z_]+[}][}]" $raw -}}
{{- fail (printf "files/envoy.yaml has a placeholder the chart does not fill: %s" (regexFind "[{][{][A-Z_]+[}][}]" $raw)) -}}
{{- end -}}
{{- $cfg := fromYaml $raw -}}
{{- if hasKey $cfg "Error" -}}
{{- fail (printf "files/envoy.yaml does not parse: %s" $cfg.Error) -}}
{{- end -}}
{{- $static := $cfg.static_resources -}}
{{- if .Values.tls.enabled -}}
{{- $gateway := index $static.listeners 0 -}}
{{- $chain := index $gateway.filter_chains 0 -}}
{{- $tls := fromYaml (include "tollgate.envoyTls" .) -}}
{{- $_ := set $chain "transport_socket" $tls -}}
{{- end -}}
{{- $health := fromYaml (include "tollgate.envoyHealthListener" .) -}}
{{- $_ := set $static "listeners" (append $static.listeners $health) -}}
{{- $admin := fromYaml (include "tollgate.envoyAdminCluster" .) -}}
{{- $_ := set $static "clusters" (append $static.clusters $admin) -}}
{{- toYaml $cfg -}}
{{- end -}}

{{- define "tollgate.envoyTls" -}}
name: envoy.transport_sockets.tls
typed_config:
  "@type": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext
  common_tls_context:
    alpn_protocols: ["h2", "http/1.1"]
    tls_certificates:
    - certificate_chain: { filename: /etc/tollgate/tls/tls.crt }
      private_key: { filename: /etc/tollgate/tls/tls.key }
      # Renewed certificates (cert-manager) are picked up without a restart.
      watched_directory: { path: /etc/tollgate/tls }
{{- end -}}

{{- define "tollgate.envoyHealthListener" -}}
name: envoy_health
address:
  socket_address: { address: 0.0.0.0, port_value: {{ .Values.envoy.healthPort }} }
filter_chains:
- filters:
  - name: envoy.filters.network.http_connection_manager
    typed_config:
      "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
      stat_prefix: envoy_health
      route_config:
        virtual_hosts:
        - name: ready
          domains: ["*"]
          # Exactly GET /ready (the kubelet's probes); everything else is 404 (docs/security.md).
          routes:
          - match: { path: /ready, headers: [{ name: ":method", string_match: { exact: GET } }] }
            route: { cluster: envoy_admin }
      http_filters:
      - name: envoy.filters.http.router
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
{{- end -}}

{{- define "tollgate.envoyAdminCluster" -}}
name: envoy_admin
type: STATIC
connect_timeout: 1s
load_assignment:
  cluster_name: envoy_admin
  endpoints:
  - lb_endpoints:
    - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: 9901 } } }
{{- end -}}
