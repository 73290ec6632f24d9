{{- define "clearance.name" -}}clearance{{- end -}}

{{- define "clearance.labels" -}}
app.kubernetes.io/name: clearance
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "clearance.image" -}}
{{- $root := index . 0 -}}{{- $img := index . 1 -}}
{{- printf "%s/%s:%s" $root.Values.image.registry $img.repository (default $root.Chart.AppVersion $root.Values.image.tag) -}}
{{- end -}}

{{- define "clearance.mapperHost" -}}
{{- printf "clearance-mapper.%s.svc" .Release.Namespace -}}
{{- end -}}

{{- /* The agents' port of the mapper (TLS; its certificate names clearance.mapperHost). */ -}}
{{- define "clearance.mapperAddress" -}}
{{- printf "%s:%d" (include "clearance.mapperHost" .) (int .Values.mapper.agentPort) -}}
{{- end -}}

{{- define "clearance.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "clearance.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "clearance.required" -}}
{{- $a := .Values.azure -}}
{{- $_ := required "azure.subscriptionID is required: the subscription Clearance manages identities in (az account show --query id -o tsv)" $a.subscriptionID -}}
{{- $_ := required "azure.resourceGroup is required: the resource group for workload identities" $a.resourceGroup -}}
{{- $_ := required "azure.aksClusterName is required: the AKS cluster's name" $a.aksClusterName -}}
{{- $_ := required "azure.userAssignedIdentityID is required: the client ID of the operator's managed identity (docs/azure-setup.md)" $a.userAssignedIdentityID -}}
{{- end -}}
