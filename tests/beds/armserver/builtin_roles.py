"""Azure built-in role definitions served by the bed, with their real ids and permissions."""
from __future__ import annotations

from dataclasses import dataclass, field

_SA = "Microsoft.Storage/storageAccounts"
_KV_READS = [
    "Microsoft.Authorization/*/read",
    "Microsoft.Insights/alertRules/*",
    "Microsoft.Resources/deployments/*",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
    "Microsoft.KeyVault/checkNameAvailability/read",
    "Microsoft.KeyVault/deletedVaults/read",
    "Microsoft.KeyVault/locations/*/read",
    "Microsoft.KeyVault/vaults/*/read",
    "Microsoft.KeyVault/operations/read",
]


@dataclass(frozen=True)
class BuiltInRole:
    """One built-in role: its GUID, name and single permission block."""

    guid: str
    name: str
    description: str
    actions: list[str] = field(default_factory=list)
    not_actions: list[str] = field(default_factory=list)
    data_actions: list[str] = field(default_factory=list)
    not_data_actions: list[str] = field(default_factory=list)


BUILTIN_ROLES: list[BuiltInRole] = [
    BuiltInRole("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader",
                "View all resources, but does not allow you to make any changes.", actions=["*/read"]),
    BuiltInRole("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor",
                "Grants full access to manage all resources, but does not allow you to assign roles in "
                "Azure RBAC, manage assignments in Azure Blueprints, or share image galleries.",
                actions=["*"],
                not_actions=["Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                             "Microsoft.Authorization/elevateAccess/Action",
                             "Microsoft.Blueprint/blueprintAssignments/write",
                             "Microsoft.Blueprint/blueprintAssignments/delete",
                             "Microsoft.Compute/galleries/share/action",
                             "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete",
                             "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
                             "Microsoft.Subscription/cancel/action", "Microsoft.Subscription/enable/action"]),
    BuiltInRole("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner",
                "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
                actions=["*"]),
    BuiltInRole("18d7d88d-d35e-4fb5-a5c3-7773c20a72d9", "User Access Administrator",
                "Lets you manage user access to Azure resources.",
                actions=["*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"]),
    BuiltInRole("2a2b9908-6ea1-4ae2-8e65-a410df84e7d1", "Storage Blob Data Reader",
                "Read and list Azure Storage containers and blobs.",
                actions=[f"{_SA}/blobServices/containers/read", f"{_SA}/blobServices/generateUserDelegationKey/action"],
                data_actions=[f"{_SA}/blobServices/containers/blobs/read"]),
    BuiltInRole("ba92f5b4-2d11-453d-a403-e96b0029c9fe", "Storage Blob Data Contributor",
                "Read, write, and delete Azure Storage containers and blobs.",
                actions=[f"{_SA}/blobServices/containers/delete", f"{_SA}/blobServices/containers/read",
                         f"{_SA}/blobServices/containers/write", f"{_SA}/blobServices/generateUserDelegationKey/action"],
                data_actions=[f"{_SA}/blobServices/containers/blobs/delete", f"{_SA}/blobServices/containers/blobs/read",
                              f"{_SA}/blobServices/containers/blobs/write",
                              f"{_SA}/blobServices/containers/blobs/move/action",
                              f"{_SA}/blobServices/containers/blobs/add/action"]),
    BuiltInRole("b7e6dc6d-f1e8-4753-8033-0f276bb0955b", "Storage Blob Data Owner",
                "Provides full access to Azure Storage blob containers and data, including assigning POSIX access control.",
                actions=[f"{_SA}/blobServices/containers/*", f"{_SA}/blobServices/generateUserDelegationKey/action"],
                data_actions=[f"{_SA}/blobServices/containers/blobs/*"]),
    BuiltInRole("db58b8e5-c6ad-4a2a-8342-4190687cbf4a", "Storage Blob Delegator",
                "Allows for generation of a user delegation key which can be used to sign SAS tokens.",
                actions=[f"{_SA}/blobServices/generateUserDelegationKey/action"]),
    BuiltInRole("19e7f393-937e-4f77-808e-94535e297925", "Storage Queue Data Reader",
                "Read and list Azure Storage queues and queue messages.",
                actions=[f"{_SA}/queueServices/queues/read"],
                data_actions=[f"{_SA}/queueServices/queues/messages/read"]),
    BuiltInRole("974c5e8b-45b9-4653-ba55-5f855dd0fb88", "Storage Queue Data Contributor",
                "Read, write, and delete Azure Storage queues and queue messages.",
                actions=[f"{_SA}/queueServices/queues/delete", f"{_SA}/queueServices/queues/read",
                         f"{_SA}/queueServices/queues/write"],
                data_actions=[f"{_SA}/queueServices/queues/messages/delete", f"{_SA}/queueServices/queues/messages/read",
                              f"{_SA}/queueServices/queues/messages/write",
                              f"{_SA}/queueServices/queues/messages/process/action"]),
    BuiltInRole("c6a89b2d-59bc-44d0-9896-0f6e12d7b80a", "Storage Queue Data Message Sender",
                "Add messages to an Azure Storage queue.",
                data_actions=[f"{_SA}/queueServices/queues/messages/add/action"]),
    BuiltInRole("8a0f0c08-91a1-4084-bc3d-661d67233fed", "Storage Queue Data Message Processor",
                "Peek, retrieve, and delete a message from an Azure Storage queue.",
                data_actions=[f"{_SA}/queueServices/queues/messages/read",
                              f"{_SA}/queueServices/queues/messages/process/action"]),
    BuiltInRole("76199698-9eea-4c19-bc75-cec21354c6b6", "Storage Table Data Reader",
                "Allows for read access to Azure Storage tables and entities.",
                actions=[f"{_SA}/tableServices/tables/read"],
                data_actions=[f"{_SA}/tableServices/tables/entities/read"]),
    BuiltInRole("0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3", "Storage Table Data Contributor",
                "Allows for read, write and delete access to Azure Storage tables and entities.",
                actions=[f"{_SA}/tableServices/tables/read", f"{_SA}/tableServices/tables/write",
                         f"{_SA}/tableServices/tables/delete"],
                data_actions=[f"{_SA}/tableServices/tables/entities/read", f"{_SA}/tableServices/tables/entities/write",
                              f"{_SA}/tableServices/tables/entities/delete",
                              f"{_SA}/tableServices/tables/entities/add/action",
                              f"{_SA}/tableServices/tables/entities/update/action"]),
    BuiltInRole("4633458b-17de-408a-b874-0445c86b69e6", "Key Vault Secrets User",
                "Read secret contents. Only works for key vaults that use the 'Azure role-based access control' "
                "permission model.",
                data_actions=["Microsoft.KeyVault/vaults/secrets/getSecret/action",
                              "Microsoft.KeyVault/vaults/secrets/readMetadata/action"]),
    BuiltInRole("b86a8fe4-44ce-4948-aee5-eccb2c155cd7", "Key Vault Secrets Officer",
                "Perform any action on the secrets of a key vault, except manage permissions.",
                actions=list(_KV_READS), data_actions=["Microsoft.KeyVault/vaults/secrets/*"]),
    BuiltInRole("21090545-7ca7-4776-b22c-e363652d74d2", "Key Vault Reader",
                "Read metadata of key vaults and its certificates, keys, and secrets.",
                actions=list(_KV_READS),
                data_actions=["Microsoft.KeyVault/vaults/*/read", "Microsoft.KeyVault/vaults/secrets/readMetadata/action"]),
    BuiltInRole("00482a5a-887f-4fb3-b363-3b7fe8e74483", "Key Vault Administrator",
                "Perform all data plane operations on a key vault and all objects in it, including certificates, "
                "keys, and secrets.",
                actions=list(_KV_READS), data_actions=["Microsoft.KeyVault/vaults/*"]),
    BuiltInRole("12338af0-0e69-4776-bea7-57ae8d297424", "Key Vault Crypto User",
                "Perform cryptographic operations using keys.",
                data_actions=[f"Microsoft.KeyVault/vaults/keys/{a}" for a in
                              ("read", "update/action", "backup/action", "encrypt/action", "decrypt/action",
                               "wrap/action", "unwrap/action", "sign/action", "verify/action")]),
    BuiltInRole("14b46e9e-c2b7-41b4-b07b-48a6ebf60603", "Key Vault Crypto Officer",
                "Perform any action on the keys of a key vault, except manage permissions.",
                actions=list(_KV_READS),
                data_actions=["Microsoft.KeyVault/vaults/keys/*", "Microsoft.KeyVault/vaults/keyrotationpolicies/*"]),
]

BY_GUID: dict[str, BuiltInRole] = {r.guid: r for r in BUILTIN_ROLES}
