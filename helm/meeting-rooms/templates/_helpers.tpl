{{/* Chart name, truncated to the 63 characters a DNS label allows. */}}
{{- define "meeting-rooms.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-qualified name; component names append "-room-service" / "-edge". */}}
{{- define "meeting-rooms.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "meeting-rooms.roomService.fullname" -}}
{{- printf "%s-room-service" (include "meeting-rooms.fullname" .) -}}
{{- end -}}

{{- define "meeting-rooms.edge.fullname" -}}
{{- printf "%s-edge" (include "meeting-rooms.fullname" .) -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "meeting-rooms.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "meeting-rooms.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: meeting-rooms
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: (dict "root" $ "component" "room-service"). The
component value is also the Prometheus job name (ServiceMonitor jobLabel), which the alert
rules and the dashboard select on. */}}
{{- define "meeting-rooms.selectorLabels" -}}
app.kubernetes.io/name: {{ include "meeting-rooms.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "meeting-rooms.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "meeting-rooms.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "meeting-rooms.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "meeting-rooms.secretName" -}}
{{- default (include "meeting-rooms.fullname" .) .Values.secret.existingSecret -}}
{{- end -}}

{{/* An env value as text; whole numbers stay whole (values arrive as float64). */}}
{{- define "meeting-rooms.envValue" -}}
{{- if and (kindIs "float64" .) (eq . (floor .)) -}}
{{- . | int64 | toString -}}
{{- else -}}
{{- . | toString -}}
{{- end -}}
{{- end -}}

{{/* Env entries of a tier: (dict "root" $ "prefix" "ROOM_SERVICE_" "tier" .Values.roomService
"fixed" (dict "GRPC_ADDRESS" "0.0.0.0:50051") "reserved" (list "grpc_address")). Program
options by name from tier.settings, then tier.env, then secrets, then tier.extraEnv. */}}
{{- define "meeting-rooms.env" -}}
{{- $prefix := .prefix -}}
{{- range $name, $value := .fixed }}
- name: {{ printf "%s%s" $prefix $name }}
  value: {{ include "meeting-rooms.envValue" $value | quote }}
{{- end }}
{{- range $option, $value := .tier.settings }}
{{- if has $option $.reserved }}
{{- fail (printf "settings.%s is set by the chart (see the tier's port values)" $option) }}
{{- end }}
- name: {{ printf "%s%s" $prefix (upper $option) }}
  value: {{ include "meeting-rooms.envValue" $value | quote }}
{{- end }}
{{- range $name, $value := .tier.env }}
- name: {{ $name }}
  value: {{ include "meeting-rooms.envValue" $value | quote }}
{{- end }}
{{- range $name, $key := .tier.secretEnv }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ include "meeting-rooms.secretName" $.root }}
      key: {{ $key }}
      {{- /* The internal token is never optional: a pod without it must not start. */}}
      optional: {{ ne $key "internal-token" }}
{{- end }}
{{- with .tier.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Fails the render unless the internal token can come from a Secret (fail closed: the
room service must never run without it because a Secret or a key was left out). */}}
{{- define "meeting-rooms.requireInternalToken" -}}
{{- $secret := .Values.secret -}}
{{- if not $secret.existingSecret -}}
{{- if not $secret.create -}}
{{- fail "the internal token is required: set secret.existingSecret (a Secret with the key internal-token) or secret.create with secret.values.internal-token" -}}
{{- end -}}
{{- if not (index ($secret.values | default dict) "internal-token") -}}
{{- fail "secret.values.internal-token is required when secret.create is true" -}}
{{- end -}}
{{- end -}}
{{- end -}}
