"""The Azure built-in roles Clearance knows, with their exact permissions, and Azure's wildcard
matching: a permission is granted by a role when it matches one of its actions (dataActions for a
data permission) and none of its notActions (notDataActions). Names compare case-insensitively.

Permissions are from the built-in role definitions (reference: azure-permissions.md §4). Azure has
no "Storage Queue Data Owner" nor "Storage Table Data Owner" role, so there is none here.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

SA = "Microsoft.Storage/storageAccounts"
KV = "Microsoft.KeyVault"
# The control-plane reads every Key Vault data role but the *User ones carries.
_KV_READS = ("Microsoft.Authorization/*/read", "Microsoft.Insights/alertRules/*",
             "Microsoft.Resources/deployments/*", "Microsoft.Resources/subscriptions/resourceGroups/read",
             "Microsoft.Support/*", f"{KV}/checkNameAvailability/read", f"{KV}/deletedVaults/read",
             f"{KV}/locations/*/read", f"{KV}/vaults/*/read", f"{KV}/operations/read")


@lru_cache(maxsize=4096)
def _pattern(p: str) -> re.Pattern[str]:
    return re.compile(re.escape(p.lower()).replace(r"\*", ".*"))


def matches(permission: str, pattern: str) -> bool:
    """Azure's permission matching: case-insensitive, ``*`` matches any run of characters (also '/')."""
    if "*" not in pattern:
        return permission.lower() == pattern.lower()
    return _pattern(pattern).fullmatch(permission.lower()) is not None


@dataclass(frozen=True)
class Role:
    name: str
    id: str  # the role definition's GUID, the same in every tenant
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()

    def grants(self, permission: str, data: bool) -> bool:
        allow, deny = (self.data_actions, self.not_data_actions) if data else (self.actions, self.not_actions)
        return any(matches(permission, a) for a in allow) and not any(matches(permission, n) for n in deny)


BUILTIN_ROLES: tuple[Role, ...] = (
    Role("Storage Blob Data Reader", "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
         actions=(f"{SA}/blobServices/containers/read", f"{SA}/blobServices/generateUserDelegationKey/action"),
         data_actions=(f"{SA}/blobServices/containers/blobs/read",)),
    Role("Storage Blob Data Contributor", "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
         actions=(f"{SA}/blobServices/containers/delete", f"{SA}/blobServices/containers/read",
                  f"{SA}/blobServices/containers/write", f"{SA}/blobServices/generateUserDelegationKey/action"),
         data_actions=(f"{SA}/blobServices/containers/blobs/delete", f"{SA}/blobServices/containers/blobs/read",
                       f"{SA}/blobServices/containers/blobs/write", f"{SA}/blobServices/containers/blobs/move/action",
                       f"{SA}/blobServices/containers/blobs/add/action")),
    Role("Storage Blob Data Owner", "b7e6dc6d-f1e8-4753-8033-0f276bb0955b",
         actions=(f"{SA}/blobServices/containers/*", f"{SA}/blobServices/generateUserDelegationKey/action"),
         data_actions=(f"{SA}/blobServices/containers/blobs/*",)),
    Role("Storage Queue Data Reader", "19e7f393-937e-4f77-808e-94535e297925",
         actions=(f"{SA}/queueServices/queues/read",),
         data_actions=(f"{SA}/queueServices/queues/messages/read",)),
    Role("Storage Queue Data Contributor", "974c5e8b-45b9-4653-ba55-5f855dd0fb88",
         actions=(f"{SA}/queueServices/queues/delete", f"{SA}/queueServices/queues/read",
                  f"{SA}/queueServices/queues/write"),
         data_actions=(f"{SA}/queueServices/queues/messages/delete", f"{SA}/queueServices/queues/messages/read",
                       f"{SA}/queueServices/queues/messages/write",
                       f"{SA}/queueServices/queues/messages/process/action")),
    Role("Storage Queue Data Message Sender", "c6a89b2d-59bc-44d0-9896-0f6e12d7b80a",
         data_actions=(f"{SA}/queueServices/queues/messages/add/action",)),
    Role("Storage Queue Data Message Processor", "8a0f0c08-91a1-4084-bc3d-661d67233fed",
         data_actions=(f"{SA}/queueServices/queues/messages/read",
                       f"{SA}/queueServices/queues/messages/process/action")),
    Role("Storage Table Data Reader", "76199698-9eea-4c19-bc75-cec21354c6b6",
         actions=(f"{SA}/tableServices/tables/read",),
         data_actions=(f"{SA}/tableServices/tables/entities/read",)),
    Role("Storage Table Data Contributor", "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3",
         actions=(f"{SA}/tableServices/tables/read", f"{SA}/tableServices/tables/write",
                  f"{SA}/tableServices/tables/delete"),
         data_actions=(f"{SA}/tableServices/tables/entities/read", f"{SA}/tableServices/tables/entities/write",
                       f"{SA}/tableServices/tables/entities/delete", f"{SA}/tableServices/tables/entities/add/action",
                       f"{SA}/tableServices/tables/entities/update/action")),
    Role("Key Vault Secrets User", "4633458b-17de-408a-b874-0445c86b69e6",
         data_actions=(f"{KV}/vaults/secrets/getSecret/action", f"{KV}/vaults/secrets/readMetadata/action")),
    Role("Key Vault Secrets Officer", "b86a8fe4-44ce-4948-aee5-eccb2c155cd7", actions=_KV_READS,
         data_actions=(f"{KV}/vaults/secrets/*",)),
    Role("Key Vault Crypto User", "12338af0-0e69-4776-bea7-57ae8d297424",
         data_actions=tuple(f"{KV}/vaults/keys/{a}" for a in (
             "read", "update/action", "backup/action", "encrypt/action", "decrypt/action", "wrap/action",
             "unwrap/action", "sign/action", "verify/action"))),
    Role("Key Vault Certificates Officer", "a4417e6f-fecd-4de8-b567-7b0420556985", actions=_KV_READS,
         data_actions=(f"{KV}/vaults/certificatecas/*", f"{KV}/vaults/certificates/*",
                       f"{KV}/vaults/certificatecontacts/write")),
    Role("Key Vault Reader", "21090545-7ca7-4776-b22c-e363652d74d2", actions=_KV_READS,
         data_actions=(f"{KV}/vaults/*/read", f"{KV}/vaults/secrets/readMetadata/action")),
    Role("Reader", "acdd72a7-3385-48ef-bd42-f606fba81ae7", actions=("*/read",)),
    Role("Contributor", "b24988ac-6180-42a0-ab88-20f7382dd24c", actions=("*",),
         not_actions=("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                      "Microsoft.Authorization/elevateAccess/Action", "Microsoft.Blueprint/blueprintAssignments/write",
                      "Microsoft.Blueprint/blueprintAssignments/delete", "Microsoft.Compute/galleries/share/action",
                      "Microsoft.Purview/consents/write", "Microsoft.Purview/consents/delete",
                      "Microsoft.Resources/deploymentStacks/manageDenySetting/action",
                      "Microsoft.Subscription/cancel/action", "Microsoft.Subscription/enable/action")),
)

_BY_NAME = {r.name.lower(): r for r in BUILTIN_ROLES}


def builtin_role(name: str) -> Role | None:
    """The built-in role of this name (any case), None when Clearance does not know it."""
    return _BY_NAME.get(name.strip().lower())
