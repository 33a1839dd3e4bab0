{{/* Names: the release's, cut to the 63 characters a label value allows. */}}
{{- define "consentgate.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "consentgate.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The selector of the proxy's pods: Services, the PDB and the NetworkPolicy use it,
so nothing else the chart runs (the GeoIP CronJob) may carry both labels. */}}
{{- define "consentgate.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "consentgate.labels" -}}
helm.sh/chart: {{ include "consentgate.chart" . }}
{{ include "consentgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "consentgate.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "consentgate.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "consentgate.secretName" -}}
{{- default (include "consentgate.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{- define "consentgate.geoipSecretName" -}}
{{- default (printf "%s-geoip" (include "consentgate.fullname" .)) .Values.geoip.existingSecret -}}
{{- end -}}

{{- define "consentgate.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "consentgate.geoipImage" -}}
{{- printf "%s:%s" .Values.geoip.image.repository .Values.geoip.image.tag -}}
{{- end -}}

{{/* Where the config file is mounted, and the database file geoipupdate writes. */}}
{{- define "consentgate.configDir" -}}/etc/consentgate{{- end -}}
{{- define "consentgate.geoipFile" -}}
{{- printf "%s/%s.mmdb" (trimSuffix "/" .Values.geoip.mountPath) .Values.geoip.edition -}}
{{- end -}}

{{/* validate refuses values that would deploy something broken or unsafe, with the value
to change. Every template that depends on them includes it. */}}
{{- define "consentgate.validate" -}}
{{- $mode := .Values.redis.mode -}}
{{- if not (has $mode (list "none" "single" "sentinel" "cluster")) -}}
{{- fail (printf "redis.mode: %q: want none, single, sentinel or cluster" $mode) -}}
{{- end -}}
{{- if eq $mode "none" -}}
{{- if or .Values.autoscaling.enabled (gt (int .Values.replicaCount) 1) -}}
{{- fail "redis.mode none keeps consent in each instance's memory: set replicaCount: 1 and autoscaling.enabled: false, or point redis.* at a Redis so the instances share consent" -}}
{{- end -}}
{{- else -}}
{{- if not .Values.redis.addrs -}}
{{- fail (printf "redis.mode %s: redis.addrs is empty" $mode) -}}
{{- end -}}
{{- if and (eq $mode "single") (gt (len .Values.redis.addrs) 1) -}}
{{- fail "redis.mode single takes one address in redis.addrs (several are a Cluster: mode cluster; Sentinels: mode sentinel)" -}}
{{- end -}}
{{- if and (eq $mode "sentinel") (not .Values.redis.masterName) -}}
{{- fail "redis.mode sentinel: set redis.masterName, the master the Sentinels monitor" -}}
{{- end -}}
{{- end -}}
{{- if and (ne $mode "sentinel") .Values.redis.masterName -}}
{{- fail (printf "redis.masterName is for redis.mode sentinel, not %s" $mode) -}}
{{- end -}}
{{- if eq (int .Values.ports.http) (int .Values.ports.admin) -}}
{{- fail "ports.http and ports.admin are the same port: the admin listener could not bind" -}}
{{- end -}}
{{- $cfg := .Values.config | default dict -}}
{{- range $key, $use := dict "listen" "ports.http" "admin_listen" "ports.admin" "admin_token" "secret.adminToken" -}}
{{- if hasKey $cfg $key -}}
{{- fail (printf "config.%s: set %s instead" $key $use) -}}
{{- end -}}
{{- end -}}
{{- if hasKey (get $cfg "anonymise" | default dict) "secret" -}}
{{- fail "config.anonymise.secret: a secret does not belong in a ConfigMap: set secret.anonymiseSecret" -}}
{{- end -}}
{{- $consent := get $cfg "consent" | default dict -}}
{{- if hasKey $consent "store" -}}
{{- fail "config.consent.store: set redis.mode instead (none is the memory store)" -}}
{{- end -}}
{{- $redis := get $consent "redis" | default dict -}}
{{- range $key, $use := dict "addrs" "redis.addrs" "cluster" "redis.mode" "master_name" "redis.masterName" "password" "redis.password" "username" "redis.username" "tls" "redis.tls" -}}
{{- if hasKey $redis $key -}}
{{- fail (printf "config.consent.redis.%s: set %s instead" $key $use) -}}
{{- end -}}
{{- end -}}
{{- if hasKey (get $cfg "geo" | default dict) "database" -}}
{{- fail "config.geo.database: set geoip.* instead (the chart mounts the database)" -}}
{{- end -}}
{{- if and (dig "telemetry" "otlp" "headers" dict $cfg) (not .Values.configSecret) -}}
{{- fail "config.telemetry.otlp.headers holds secrets (an API key): set configSecret: true, so the config file goes into a Secret rather than a ConfigMap" -}}
{{- end -}}
{{- $upstream := get $cfg "upstream" | default dict -}}
{{- $drain := int .Values.drainSeconds -}}
{{- if lt $drain 1 -}}
{{- fail "drainSeconds: at least 1, or a rolling update drops the hits in flight while endpoints are updated" -}}
{{- end -}}
{{- /* preStop sleep, then /readyz failing for --drain-delay, then in-flight hits, each
within upstream.timeout (at most 60s when written in seconds), then a margin. */ -}}
{{- $upstreamSeconds := 5 -}}
{{- with get $upstream "timeout" -}}
{{- if regexMatch "^[0-9]+s$" (toString .) -}}
{{- $upstreamSeconds = int (trimSuffix "s" (toString .)) -}}
{{- end -}}
{{- end -}}
{{- $need := add (mul 2 $drain) $upstreamSeconds 5 -}}
{{- if lt (int .Values.terminationGracePeriodSeconds) (int $need) -}}
{{- fail (printf "terminationGracePeriodSeconds: %d is shorter than the drain (2 × drainSeconds %d + upstream.timeout %ds + 5s margin = %ds): the kubelet would kill hits in flight" (int .Values.terminationGracePeriodSeconds) $drain $upstreamSeconds (int $need)) -}}
{{- end -}}
{{- if .Values.geoip.enabled -}}
{{- if not (has .Values.geoip.updater (list "sidecar" "cronjob" "none")) -}}
{{- fail (printf "geoip.updater: %q: want sidecar, cronjob or none" .Values.geoip.updater) -}}
{{- end -}}
{{- if and (ne .Values.geoip.updater "none") (not .Values.geoip.existingSecret) (or (not .Values.geoip.accountID) (not .Values.geoip.licenseKey)) -}}
{{- fail "geoip: set geoip.accountID and geoip.licenseKey (MaxMind), or geoip.existingSecret" -}}
{{- end -}}
{{- if and (eq .Values.geoip.updater "none") (not .Values.geoip.existingClaim) -}}
{{- fail "geoip.updater none: set geoip.existingClaim, the volume that holds the database" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* config is the config file: values.config under what the chart owns. */}}
{{- define "consentgate.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $_ := set $cfg "listen" (printf ":%d" (int .Values.ports.http)) -}}
{{- $_ := set $cfg "admin_listen" (printf ":%d" (int .Values.ports.admin)) -}}
{{- $consent := get $cfg "consent" | default dict -}}
{{- if eq .Values.redis.mode "none" -}}
{{- $_ := set $consent "store" "memory" -}}
{{- else -}}
{{- $_ := set $consent "store" "redis" -}}
{{- $redis := get $consent "redis" | default dict -}}
{{- $_ := set $redis "addrs" .Values.redis.addrs -}}
{{- if eq .Values.redis.mode "cluster" -}}
{{- $_ := set $redis "cluster" true -}}
{{- end -}}
{{- if eq .Values.redis.mode "sentinel" -}}
{{- $_ := set $redis "master_name" .Values.redis.masterName -}}
{{- end -}}
{{- with .Values.redis.username -}}
{{- $_ := set $redis "username" . -}}
{{- end -}}
{{- if .Values.redis.tls -}}
{{- $_ := set $redis "tls" true -}}
{{- end -}}
{{- $_ := set $consent "redis" $redis -}}
{{- end -}}
{{- $_ := set $cfg "consent" $consent -}}
{{- if .Values.geoip.enabled -}}
{{- $geo := get $cfg "geo" | default dict -}}
{{- $_ := set $geo "database" (include "consentgate.geoipFile" .) -}}
{{- $_ := set $cfg "geo" $geo -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/* The sidecar's script: geoipupdate every intervalHours (the init container made the
first download). geoipupdate writes a temporary file and renames it over the database,
and consentgate, which checks the file every 10 s, reloads it by itself: nothing signals
it, so the pod shares no process namespace. The shell is the container's PID 1, which
ignores SIGTERM without a trap: sleep in the background and wait, so the pod stops at
once instead of after its grace period. */}}
{{- define "consentgate.geoipScript" -}}
set -u
trap 'exit 0' TERM INT
while true; do
  sleep {{ mul (int .Values.geoip.intervalHours) 3600 }} & wait $!
  geoipupdate -v || echo "geoipupdate failed; the current database stays in use" >&2
done
{{- end -}}

{{- define "consentgate.geoipEnv" -}}
- name: GEOIPUPDATE_EDITION_IDS
  value: {{ .Values.geoip.edition | quote }}
- name: GEOIPUPDATE_DB_DIR
  value: {{ .Values.geoip.mountPath | quote }}
- name: GEOIPUPDATE_ACCOUNT_ID
  valueFrom:
    secretKeyRef:
      name: {{ include "consentgate.geoipSecretName" . }}
      key: GEOIPUPDATE_ACCOUNT_ID
- name: GEOIPUPDATE_LICENSE_KEY
  valueFrom:
    secretKeyRef:
      name: {{ include "consentgate.geoipSecretName" . }}
      key: GEOIPUPDATE_LICENSE_KEY
{{- end -}}
