#!/usr/bin/env bash
# One-time Azure set-up for the Clearance operator (see docs/azure-setup.md).
# Creates the operator's managed identity, its federated credential for the operator's
# ServiceAccount, and the least roles it needs on the resource groups it manages.
# Required: RESOURCE_GROUP, AKS_CLUSTER_NAME. Optional: MANAGED_RESOURCE_GROUPS (space separated;
# resource groups whose resources ClientIntents may target; default: RESOURCE_GROUP),
# CLEARANCE_NAMESPACE (default clearance-system).
set -euo pipefail
: "${RESOURCE_GROUP:?set RESOURCE_GROUP to the resource group of the AKS cluster}"
: "${AKS_CLUSTER_NAME:?set AKS_CLUSTER_NAME}"
NS=${CLEARANCE_NAMESPACE:-clearance-system}
MANAGED=${MANAGED_RESOURCE_GROUPS:-$RESOURCE_GROUP}
SUB=$(az account show --query id -o tsv)
ISSUER=$(az aks show -g "$RESOURCE_GROUP" -n "$AKS_CLUSTER_NAME" --query oidcIssuerProfile.issuerUrl -o tsv)
[ -n "$ISSUER" ] || { echo "the cluster has no OIDC issuer: az aks update -g $RESOURCE_GROUP -n $AKS_CLUSTER_NAME --enable-oidc-issuer --enable-workload-identity" >&2; exit 1; }

IDENTITY=clearance-operator-$AKS_CLUSTER_NAME
az identity create -g "$RESOURCE_GROUP" -n "$IDENTITY" -o none
CLIENT_ID=$(az identity show -g "$RESOURCE_GROUP" -n "$IDENTITY" --query clientId -o tsv)
PRINCIPAL_ID=$(az identity show -g "$RESOURCE_GROUP" -n "$IDENTITY" --query principalId -o tsv)
az identity federated-credential create -g "$RESOURCE_GROUP" --identity-name "$IDENTITY" \
  -n clearance-operator --issuer "$ISSUER" --subject "system:serviceaccount:$NS:clearance-operator" \
  --audiences api://AzureADTokenExchange -o none

# 1. Create and delete workload identities in the cluster's resource group.
az role assignment create --assignee-object-id "$PRINCIPAL_ID" --assignee-principal-type ServicePrincipal \
  --role "Managed Identity Contributor" --scope "/subscriptions/$SUB/resourceGroups/$RESOURCE_GROUP" -o none
# Read the AKS cluster (its OIDC issuer) and the resource group (its location).
az role assignment create --assignee-object-id "$PRINCIPAL_ID" --assignee-principal-type ServicePrincipal \
  --role "Reader" --scope "/subscriptions/$SUB/resourceGroups/$RESOURCE_GROUP" -o none

# 2. A custom role for role definitions and assignments, assignable only to the managed groups.
scopes=""
for rg in $MANAGED; do scopes="$scopes\"/subscriptions/$SUB/resourceGroups/$rg\","; done
ROLE="Clearance Operator ($AKS_CLUSTER_NAME)"
cat > /tmp/clearance-operator-role.json <<JSON
{
  "Name": "$ROLE",
  "Description": "Lets the Clearance operator manage the custom roles, role assignments and Key Vault access policies it creates for workload identities.",
  "Actions": [
    "Microsoft.Authorization/roleDefinitions/read",
    "Microsoft.Authorization/roleDefinitions/write",
    "Microsoft.Authorization/roleDefinitions/delete",
    "Microsoft.Authorization/roleAssignments/read",
    "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleAssignments/delete",
    "Microsoft.Resources/subscriptions/read",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Resources/subscriptions/resources/read",
    "Microsoft.Storage/storageAccounts/read",
    "Microsoft.Storage/storageAccounts/blobServices/containers/read",
    "Microsoft.Storage/storageAccounts/queueServices/queues/read",
    "Microsoft.Storage/storageAccounts/tableServices/tables/read",
    "Microsoft.Storage/storageAccounts/fileServices/shares/read",
    "Microsoft.KeyVault/vaults/read",
    "Microsoft.KeyVault/vaults/accessPolicies/write"
  ],
  "NotActions": [],
  "DataActions": [],
  "NotDataActions": [],
  "AssignableScopes": [${scopes%,}]
}
JSON
az role definition create --role-definition @/tmp/clearance-operator-role.json -o none 2>/dev/null \
  || az role definition update --role-definition @/tmp/clearance-operator-role.json -o none
for rg in $MANAGED; do
  az role assignment create --assignee-object-id "$PRINCIPAL_ID" --assignee-principal-type ServicePrincipal \
    --role "$ROLE" --scope "/subscriptions/$SUB/resourceGroups/$rg" -o none
done

echo "azure.subscriptionID=$SUB"
echo "azure.resourceGroup=$RESOURCE_GROUP"
echo "azure.aksClusterName=$AKS_CLUSTER_NAME"
echo "azure.userAssignedIdentityID=$CLIENT_ID"
