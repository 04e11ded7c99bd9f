{{/* Names. Kubernetes names are cut to 63 characters. */}}
{{- define "trainyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "trainyard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The name of a generated object (list $ "pipeline"): `<full name>-pipeline`, so two releases in one
     namespace do not collide; the release `trainyard` gives the names of workflows/rendered/. */}}
{{- define "trainyard.objectName" -}}
{{- printf "%s-%s" (include "trainyard.fullname" (index . 0)) (index . 1) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "trainyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "trainyard.labels" -}}
helm.sh/chart: {{ include "trainyard.chart" . }}
app.kubernetes.io/name: {{ include "trainyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels as JSON, with a component: (list $ "pipeline"). */}}
{{- define "trainyard.labelsJson" -}}
{{- $labels := include "trainyard.labels" (index . 0) | fromYaml }}
{{- $_ := set $labels "app.kubernetes.io/component" (index . 1) }}
{{- toJson $labels }}
{{- end }}

{{- define "trainyard.serviceAccountName" -}}
{{- default (include "trainyard.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{- define "trainyard.artifactRepositories" -}}
{{- printf "%s-artifact-repositories" (include "trainyard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* `<registry>/<repository>:<tag>` of an image (list $ "train"); a sha256: tag pins a digest. */}}
{{- define "trainyard.image" -}}
{{- $root := index . 0 }}
{{- $image := index $root.Values.images (index . 1) }}
{{- $tag := toString ($image.tag | default $root.Values.image.tag | default $root.Chart.AppVersion) }}
{{- $separator := ternary "@" ":" (hasPrefix "sha256:" $tag) }}
{{- printf "%s/%s%s%s" ($root.Values.image.registry | trimSuffix "/") $image.repository $separator $tag }}
{{- end }}

{{/* A step's resources as JSON, with its GPU count in requests and limits (list $ "train"). */}}
{{- define "trainyard.resources" -}}
{{- $step := index (index . 0).Values.steps (index . 1) }}
{{- $resources := deepCopy (default (dict) $step.resources) }}
{{- $gpus := int (default 0 $step.gpus) }}
{{- if gt $gpus 0 }}
{{- $gpu := dict "nvidia.com/gpu" (toString $gpus) }}
{{- $_ := set $resources "requests" (merge (default (dict) $resources.requests) $gpu) }}
{{- $_ := set $resources "limits" (merge (default (dict) $resources.limits) (deepCopy $gpu)) }}
{{- end }}
{{- toJson $resources }}
{{- end }}

{{/* A step's node selector as JSON, plus the spot-node labels when the step runs on spot. */}}
{{- define "trainyard.nodeSelector" -}}
{{- $root := index . 0 }}
{{- $step := index $root.Values.steps (index . 1) }}
{{- $selector := deepCopy (default (dict) $step.nodeSelector) }}
{{- if $step.spot }}
{{- $selector = merge $selector (deepCopy $root.Values.spot.nodeSelector) }}
{{- end }}
{{- toJson $selector }}
{{- end }}

{{/* A step's tolerations as JSON, plus the spot-node ones when the step runs on spot. */}}
{{- define "trainyard.tolerations" -}}
{{- $root := index . 0 }}
{{- $step := index $root.Values.steps (index . 1) }}
{{- $tolerations := default (list) $step.tolerations }}
{{- if $step.spot }}
{{- $tolerations = concat $tolerations $root.Values.spot.tolerations | uniq }}
{{- end }}
{{- toJson $tolerations }}
{{- end }}

{{/* The `chart-overrides` parameter's default: the model registry bucket, then workflow.overrides.
     Steps apply it before the run's own `overrides`, so `-p overrides=...` keeps these. */}}
{{- define "trainyard.overrides" -}}
{{- $parts := list }}
{{- with .Values.modelRegistry }}
{{- $parts = append $parts (printf "promotion.registry=%s" .) }}
{{- end }}
{{- with .Values.workflow.overrides }}
{{- $parts = append $parts . }}
{{- end }}
{{- join " " $parts | toJson }}
{{- end }}

{{/* The `checkpoint-root` parameter's default: train's durable checkpoints in the artifact bucket. */}}
{{- define "trainyard.checkpointRoot" -}}
{{- if .Values.artifacts.durableCheckpoints }}
{{- printf "gs://%s/trainyard/checkpoints" .Values.artifacts.bucket | toJson }}
{{- else }}
{{- "" | toJson }}
{{- end }}
{{- end }}

{{/* The nightly run's parameters (nightly.parameters) as Argo arguments. */}}
{{- define "trainyard.nightlyArguments" -}}
{{- $parameters := list }}
{{- range $name, $value := .Values.nightly.parameters }}
{{- $parameters = append $parameters (dict "name" $name "value" (toString $value)) }}
{{- end }}
{{- toJson (dict "parameters" $parameters) }}
{{- end }}

{{/* A step's podSpecPatch, a JSON string (list $ "train"): its grace period and, with a GCP key Secret
     (artifacts.serviceAccountKeySecret), that key mounted into the main container and named by
     GOOGLE_APPLICATION_CREDENTIALS, so the steps (DVC push, checkpoint mirror, registry) use the identity
     Argo's executor uses. Argo merges it into the pod as a strategic merge patch (containers by name). */}}
{{- define "trainyard.podSpecPatch" -}}
{{- $root := index . 0 }}
{{- $step := index $root.Values.steps (index . 1) }}
{{- $patch := dict "terminationGracePeriodSeconds" (int $step.terminationGracePeriodSeconds) }}
{{- $key := default (dict) $root.Values.artifacts.serviceAccountKeySecret }}
{{- if $key.name }}
{{- $dir := "/var/run/secrets/trainyard/gcp" }}
{{- $_ := set $patch "volumes" (list (dict "name" "gcp-key" "secret" (dict "secretName" $key.name))) }}
{{- $env := list (dict "name" "GOOGLE_APPLICATION_CREDENTIALS" "value" (printf "%s/%s" $dir (default "key.json" $key.key))) }}
{{- $mounts := list (dict "name" "gcp-key" "mountPath" $dir "readOnly" true) }}
{{- $_ := set $patch "containers" (list (dict "name" "main" "env" $env "volumeMounts" $mounts)) }}
{{- end }}
{{- toJson $patch | toJson }}
{{- end }}

{{/* The pod's GPU count for train (TRAINYARD_POD_GPUS), when more than one: train then uses them all. */}}
{{- define "trainyard.podGpus" -}}
{{- $gpus := int (default 0 (index (index . 0).Values.steps (index . 1)).gpus) }}
{{- ternary (toString $gpus) "" (gt $gpus 1) | toJson }}
{{- end }}

{{/* The run's own prefix in the artifact repository: artifacts.keyFormat without its last part,
     the pod. Each evaluate pod writes its scores under it and select reads them all from there, so
     it must name the run (workflows/pipeline.py RUN_PREFIX is the default's). */}}
{{- define "trainyard.runPrefix" -}}
{{- $format := .Values.artifacts.keyFormat }}
{{- $prefix := trimSuffix "/{{pod.name}}" $format }}
{{- $named := or (contains "{{workflow.name}}" $prefix) (contains "{{workflow.uid}}" $prefix) }}
{{- if or (eq $prefix $format) (contains "{{pod." $prefix) (contains "{{node." $prefix) (not $named) }}
{{- fail (printf "artifacts.keyFormat %q: expected a key ending in /{{pod.name}} after a part naming the run ({{workflow.name}} or {{workflow.uid}}), e.g. trainyard/{{workflow.name}}/{{pod.name}}: the evaluate pods write their scores under that part for select to read" $format) }}
{{- end }}
{{- $prefix }}
{{- end }}

{{/* A key under the run's prefix, as JSON: (list $ "scores"). */}}
{{- define "trainyard.runKey" -}}
{{- printf "%s/%s" (include "trainyard.runPrefix" (index . 0)) (index . 1) | toJson }}
{{- end }}
