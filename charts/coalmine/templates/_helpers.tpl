{{/* Name of the chart, or nameOverride. */}}
{{- define "coalmine.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Prefix of every object name. */}}
{{- define "coalmine.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels that select the operator pod; never change across upgrades. */}}
{{- define "coalmine.selectorLabels" -}}
app.kubernetes.io/name: {{ include "coalmine.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels of every object of the release. managed-by is Helm, never "coalmine":
the operator watches objects labelled managed-by=coalmine as its own children. */}}
{{- define "coalmine.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "coalmine.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: coalmine
{{- end -}}

{{- define "coalmine.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "coalmine.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "coalmine.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/*
What the operator does inside a watched namespace (kopf watches, the reconcile
loop's reads and server-side applies, status patches, Events). No wildcards, no
Secrets, no escalate/bind/impersonate. SSA needs create and patch (the object
may not exist yet); ownerReferences with blockOwnerDeletion need update on the
owner's finalizers subresource where OwnerReferencesPermissionEnforcement is on.
*/}}
{{- define "coalmine.namespacedRules" -}}
- apiGroups: [coalmine.dev]
  resources: [modeldeployments, modelversions, rolloutstrategies]
  verbs: [get, list, watch]
- apiGroups: [coalmine.dev]
  resources: [modeldeployments/status, modelversions/status]
  verbs: [get, patch]
- apiGroups: [coalmine.dev]
  resources: [modeldeployments/finalizers, modelversions/finalizers]
  verbs: [update]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [create, patch]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [autoscaling]
  resources: [horizontalpodautoscalers]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [gateway.networking.k8s.io]
  resources: [httproutes]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [events.k8s.io]
  resources: [events]
  verbs: [create, patch]
{{- end -}}

{{/*
Cluster-scoped reads kopf needs in every mode: it follows the CRDs it serves,
and it lists and watches namespaces (names and labels) to notice the watched
ones being deleted and created again; even with exact --namespace names it
retries a refused list for several seconds before falling back.
*/}}
{{- define "coalmine.clusterReads" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [namespaces]
  verbs: [get, list, watch]
{{- end -}}
